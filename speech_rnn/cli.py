"""The ``speech-rnn`` command: prepare, train, evaluate, transcribe.

Every project error (bad audio, bad manifest line, bad config) is printed as one line and
the command exits with status 2; no TensorFlow traceback reaches the user.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up chatter (C++ lines about CUDA drivers and oneDNN,
    printed before its logging is configured) sent to /dev/null, so that a CLI error is one
    line. Python exceptions are unaffected. SPEECH_RNN_TF_LOGS=1 keeps the chatter."""
    if os.environ.get("SPEECH_RNN_TF_LOGS"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()  # the CUDA probe logs here, not at import
        except ImportError:
            pass  # reported properly when a command actually needs TensorFlow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def default_shared_data() -> Path | None:
    """``../shared/data`` beside the project (or $SPEECH_RNN_SHARED_DATA), if present."""
    env = os.environ.get("SPEECH_RNN_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


# -- train ----------------------------------------------------------------------------------
def _add_train(sub):
    p = sub.add_parser("train", help="train a model (or resume the run in --out)",
                       description="Train a BiLSTM-CTC model. Running it again on the same "
                                   "--out folder resumes the run.")
    p.add_argument("--train", nargs="+", required=True, metavar="MANIFEST",
                   help="training manifest(s): JSONL (NeMo style) or DeepSpeech CSV")
    p.add_argument("--train-weights", nargs="+", type=float, metavar="W",
                   help="mix the --train manifests in these proportions (one weight each); "
                        "default: every utterance once per epoch")
    p.add_argument("--dev", metavar="MANIFEST",
                   help="dev manifest scored (WER/CER) after every epoch; picks best.keras")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to create or resume")
    p.add_argument("--config", metavar="FILE", help="config file (YAML or JSON) to start from")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set train.batch_size=32 (repeatable)")
    p.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    p.add_argument("--minutes", type=float, help="shortcut for --set train.max_minutes=M")
    p.add_argument("--seed", type=int, help="shortcut for --set train.seed=N")
    p.add_argument("--jit-compile", dest="jit_compile", action=argparse.BooleanOptionalAction,
                   default=None, help="compile the training step with XLA (default: on)")
    p.add_argument("--strict", action="store_true",
                   help="stop on any unusable utterance instead of dropping it with a warning")
    p.add_argument("--quiet", action="store_true", help="no per-step progress bar")
    p.set_defaults(func=_run_train)


def _train_config(args):
    from .config import Config
    config = Config.load(args.config) if args.config else Config()
    overrides = list(args.set)
    for flag, key in (("epochs", "train.epochs"), ("minutes", "train.max_minutes"),
                      ("seed", "train.seed"), ("jit_compile", "train.jit_compile")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.strict:
        overrides.append("train.strict=true")
    return config.with_overrides(overrides)


def _run_train(args) -> int:
    from .runfolder import RunFolder
    from .train import train
    config = _train_config(args)
    # Resuming without flags keeps the saved config; explicit ones are checked against it.
    explicit = args.config or args.set or any(getattr(args, f) is not None for f in
                                              ("epochs", "minutes", "seed", "jit_compile"))
    if RunFolder(args.out).exists() and not explicit and not args.strict:
        config = None
    if args.train_weights is not None and len(args.train_weights) != len(args.train):
        raise SystemExit("speech-rnn train: --train-weights needs one weight per --train manifest")
    metrics = train(args.train, args.dev, args.out, config, verbose=0 if args.quiet else 1,
                    train_weights=args.train_weights)
    if metrics.get("signal"):
        print(f"speech-rnn train: {metrics['stop_reason']}; checkpoint saved at step "
              f"{metrics['steps']}; run the same command to resume", file=sys.stderr)
        return 128 + int(metrics["signal"])
    if metrics.get("failed"):
        print(f"speech-rnn train: error: {metrics['stop_reason']}", file=sys.stderr)
        return 1
    best = metrics.get("best_dev_wer")
    if best is not None:
        print(f"best dev WER {100 * best:.2f}%")
    print(f"monitor: tensorboard --logdir {Path(args.out).parent} --host 127.0.0.1")
    return 0


# -- evaluate -------------------------------------------------------------------------------
def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="score a trained run on a manifest (WER/CER)")
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run folder")
    p.add_argument("--manifest", required=True, help="manifest to score (JSONL or CSV)")
    p.add_argument("--beam", type=int, default=0, metavar="N",
                   help="beam width (0 or 1: greedy decoding)")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="model of the run to use: best dev WER or last epoch")
    p.add_argument("--batch-size", type=int, default=16, help="utterances per batch")
    p.add_argument("--out", metavar="JSON", help="report path (default: in the run folder)")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    from .evaluate import evaluate_run
    if args.beam < 0 or args.batch_size < 1:
        raise SystemExit("speech-rnn evaluate: --beam must be >= 0 and --batch-size >= 1")
    evaluate_run(args.model, args.manifest, beam_width=args.beam, which=args.which,
                 batch_size=args.batch_size, out=args.out)
    return 0


# -- transcribe -----------------------------------------------------------------------------
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aiff", ".aif")


def _add_transcribe(sub):
    p = sub.add_parser("transcribe", help="transcribe audio files or folders")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files and/or folders")
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run folder")
    p.add_argument("--beam", type=int, default=0, metavar="N",
                   help="beam width (0 or 1: greedy decoding)")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="model of the run to use")
    p.set_defaults(func=_run_transcribe)


def _expand_inputs(inputs):
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            yield path


def _run_transcribe(args) -> int:
    from .errors import SpeechRnnError
    from .transcribe import load_model
    if args.beam < 0:
        raise SystemExit("speech-rnn transcribe: --beam must be >= 0")
    recognizer = load_model(args.model, which=args.which)
    failed = 0
    for path in _expand_inputs(args.inputs):
        try:
            result = recognizer.transcribe(path, beam_width=args.beam)
        except SpeechRnnError as e:
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}\t{result.text}", flush=True)
    if failed:
        print(f"{failed} file(s) failed", file=sys.stderr)
    return 1 if failed else 0


# -- prepare --------------------------------------------------------------------------------
def _add_prepare(sub):
    from . import prepare
    p = sub.add_parser("prepare", help="import a corpus layout into JSONL manifests with splits")
    prepare.add_arguments(p)
    p.set_defaults(func=prepare.run)


def _add_synth(sub):
    from . import synth
    p = sub.add_parser("synth", help="synthesize an offline English speech corpus (espeak-ng)")
    synth.add_arguments(p)
    p.set_defaults(func=synth.run)


def _add_demo(sub):
    from . import demo
    p = sub.add_parser("demo", help="build the synthetic corpus, train, evaluate, transcribe",
                       description=demo.__doc__.splitlines()[0])
    demo.add_arguments(p)
    p.set_defaults(func=demo.run)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(prog="speech-rnn", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"speech-rnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(sub)
    _add_synth(sub)
    _add_prepare(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_transcribe(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command not in ("prepare", "synth"):
        _quiet_tensorflow()
    from .errors import SpeechRnnError
    try:
        return int(args.func(args) or 0)
    except SpeechRnnError as e:
        print(f"speech-rnn {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"speech-rnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
