"""The one-command demo: synthesize a corpus offline, train, evaluate, transcribe.

``speech-rnn demo`` needs nothing but the installed packages: espeak-ng speaks sentences
from our own generator in many voices (cached in ``data/generated/synthetic``), the default
model trains within a wall-clock budget with TensorBoard logs in ``runs/demo``, and the
held-out split (unseen voices, unseen sentences) is scored and a few files transcribed.
Unless ``--no-lm``, a word 3-gram LM counted from the training sentences alone (never dev or
test: their overlap with it is printed) is tuned on dev and saved in the run folder
(``speech-rnn lm attach``), and the test set is scored greedy and with the LM side by side.
Running it again reuses the corpus and resumes the run.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from ..config import Config
from ..errors import ConfigError
from ..evaluate import evaluate_run
from ..log import add_log_flags
from ..manifest import read_manifest
from ..recognizer import load_model
from ..runlm import attach_lm
from ..text import normalize_text
from ..train import train
from .corpus import build_corpus

DEFAULT_CORPUS = Path("data/generated/synthetic")
DEFAULT_RUN = Path("runs/demo")
# The demo's preset for its 20-minute CPU budget, applied before --set (which overrides any
# of it). `speech-rnn train` keeps the defaults for hours of data; docs/accuracy.md has the
# measurements behind each value: more, smaller updates (batch 8) at a higher peak rate that
# a cosine brings down by the end of the budget, shortest utterances first in epoch 1, a
# blank-leaning start, layer normalization between the BiLSTMs and light dropout; each
# utterance's features normalized by their own mean and variance (better on the held-out
# voices of dev). Windows every 3 frames, the default: every 4 ran 28% more steps in the
# 20 minutes but ended 3.7 points of dev CER behind. Two BiLSTM layers, not three: 65% more
# steps in the 20 minutes on a slow 2-core machine and 1.1 points lower dev CER at the end.
DEMO_PRESET = (
    "train.batch_size=8",
    "train.learning_rate=0.002",
    "train.warmup_steps=100",
    "train.lr_schedule=warmup_cosine",
    "train.sortagrad=true",
    "train.eval_at_stop=true",
    "features.normalization=utterance",
    "model.blank_bias_init=2.0",
    "model.layer_norm=true",
    "model.dropout=0.1",
    "model.input_dropout=0.0",
    "model.lstm_layers=2",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_log_flags(parser)
    parser.add_argument(
        "--hours",
        type=float,
        # 4 h rather than 2: the same 20 minutes see each sentence fewer times and score 2
        # points lower dev CER on unseen voices (docs/accuracy.md, "Data variety")
        default=4.0,
        metavar="H",
        help="hours of synthetic speech to build (cached, and extended when asked for more; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=20.0,
        metavar="M",
        help="training budget in wall-clock minutes (default: %(default)s)",
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        metavar="DIR",
        help="where the synthetic corpus is built (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_RUN,
        metavar="RUN_DIR",
        help="run folder (default: %(default)s); an existing one is resumed",
    )
    parser.add_argument("--seed", type=int, default=0, help="corpus and training seed")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="config override for training, e.g. --set model.lstm_units=128",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=5,
        metavar="N",
        help="held-out files to transcribe at the end (default: %(default)s)",
    )
    parser.add_argument(
        "--lm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count a word LM from the training sentences into the run folder, tune it "
        "on dev, and score test with it too (default: on)",
    )


def run(args) -> int:

    if args.hours <= 0 or args.minutes <= 0:
        raise ConfigError("--hours and --minutes must be positive")
    print(f"[1/4] synthetic corpus: {args.hours:g} h in {args.corpus} (cached after the first run)")
    manifests = build_corpus(args.corpus, hours=args.hours, seed=args.seed, progress=not args.quiet)

    print(f"[2/4] training for at most {args.minutes:g} min into {args.out}")
    print(f"      watch it live: tensorboard --logdir {args.out.parent} --host 127.0.0.1")
    config = Config().with_overrides(
        [*DEMO_PRESET, f"train.max_minutes={args.minutes}", f"train.seed={args.seed}", *args.set]
    )
    train(manifests["train"], manifests["dev"], args.out, config, verbose=0 if args.quiet else 1)

    print("[3/4] held-out test set (unseen voices and sentences)")
    if args.lm:
        settings = attach_lm(args.out, manifests["train"], manifests["dev"], [manifests["test"]])
        for path, o in settings["overlap"].items():
            print(
                f"      {Path(path).name}: {o['in_lm_text']} of {o['sentences']} sentences "
                "also in the LM's training text"
            )
        print(
            f"      LM: {settings['sentences']} training sentences, order {settings['order']}; "
            f"tuned on dev: alpha {settings['alpha']:g} beta {settings['beta']:g}"
        )
    reports = {
        "greedy": evaluate_run(
            args.out,
            manifests["test"],
            out=args.out / "demo_test_report.json",
            use_lm=False,
            progress=not args.quiet,
        )
    }
    if args.lm:
        reports["with LM"] = evaluate_run(
            args.out,
            manifests["test"],
            out=args.out / "demo_test_report_lm.json",
            progress=not args.quiet,
        )
    for name, report in reports.items():
        print(
            f"      {name + ':':<8} test WER {100 * report['wer']:.2f}%  "
            f"CER {100 * report['cer']:.2f}%  ({report['utterances']} utterances)"
        )

    print(f"[4/4] transcribing {args.samples} held-out files")
    recognizer = load_model(args.out, use_lm=args.lm)
    test = read_manifest(manifests["test"])
    for utt in random.Random(args.seed).sample(test, min(args.samples, len(test))):
        result = recognizer.transcribe(utt.audio_filepath)
        print(
            f"  {Path(utt.audio_filepath).name} ({utt.speaker})\n"
            f"    ref: {normalize_text(utt.text, recognizer.config.text)}\n"
            f"    hyp: {result.text}"
        )
        if recognizer.run_lm is not None:
            greedy = recognizer.transcribe(utt.audio_filepath, beam_width=1)
            print(f"    greedy (no LM): {greedy.text}")
    print(
        f"\nrun folder: {args.out}\nmonitor:    tensorboard --logdir {args.out.parent} "
        f"--host 127.0.0.1\ntranscribe: speech-rnn transcribe --model {args.out} FILE..."
    )
    return 0
