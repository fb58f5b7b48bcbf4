"""``speech-rnn lm``: build a word n-gram LM, tune its decoding weights, attach it to a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import ConfigError
from .fileio import atomic_write_json
from .lm import build_arpa, build_arpa_from_sentences, manifest_sentences, tune
from .log import add_log_flags
from .recognizer import load_model
from .runfolder import RunFolder
from .runlm import DEFAULT_ALPHAS, DEFAULT_BETAS, attach_lm


def _log_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    add_log_flags(parent)
    return parent


def add_lm(sub) -> None:
    """The ``lm`` command group: build, tune, attach."""
    p = sub.add_parser(
        "lm",
        help="word n-gram language models: build an ARPA file, tune its weights",
        description="Build a word n-gram language model (interpolated modified "
        "Kneser-Ney, ARPA format) and tune its decoding weights.",
    )
    lm_sub = p.add_subparsers(dest="lm_command", required=True, metavar="ACTION")
    b = lm_sub.add_parser(
        "build",
        parents=[_log_flags()],
        help="count a text corpus into an ARPA model",
        description="Count sentences (one per line, normalized like "
        "transcripts) into an interpolated modified Kneser-Ney "
        "n-gram model in ARPA format.",
    )
    source = b.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--text",
        nargs="+",
        metavar="FILE",
        help="UTF-8 text file(s), one sentence per line",
    )
    source.add_argument(
        "--manifest",
        nargs="+",
        metavar="MANIFEST",
        help="count the transcripts of training manifest(s) (JSONL or CSV) instead",
    )
    b.add_argument("--order", type=int, default=3, metavar="N", help="n-gram order (default 3)")
    b.add_argument("--out", required=True, metavar="ARPA", help="ARPA file to write")
    b.add_argument(
        "--no-normalize",
        dest="normalize",
        action="store_false",
        help="use the text as it is (default: lowercase, spell numbers, drop "
        "punctuation, as transcripts are)",
    )
    b.set_defaults(func=_run_lm_build, tensorflow=False)  # pure Python: no model
    t = lm_sub.add_parser(
        "tune",
        parents=[_log_flags()],
        help="grid-search --alpha/--beta on a dev manifest",
        description="Decode a manifest with every (alpha, beta) pair of the "
        "grid and report the pair with the lowest WER; the "
        "model runs once, only decoding is repeated.",
    )
    t.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run folder")
    t.add_argument("--manifest", required=True, help="dev manifest (JSONL or CSV) to tune on")
    t.add_argument("--lm", required=True, metavar="ARPA", help="language model to tune")
    t.add_argument(
        "--which", choices=("best", "last"), default="best", help="model of the run to use"
    )
    t.add_argument(
        "--alphas",
        default="0,0.25,0.5,0.75,1,1.5",
        metavar="LIST",
        help="comma-separated LM weights to try (default 0,0.25,0.5,0.75,1,1.5)",
    )
    t.add_argument(
        "--betas",
        default="0,0.5,1,2,3",
        metavar="LIST",
        help="comma-separated word bonuses to try (default 0,0.5,1,2,3)",
    )
    t.add_argument("--beam", type=int, default=16, metavar="N", help="beam width (default 16)")
    t.add_argument(
        "--out",
        metavar="JSON",
        help="where to save the result (default: RUN_DIR/lm_tune_MANIFEST.json)",
    )
    t.set_defaults(func=_run_lm_tune)
    a = lm_sub.add_parser(
        "attach",
        parents=[_log_flags()],
        help="give a run folder its own LM: count training transcripts, tune on dev",
        description="Count the transcripts of the training manifest(s) (never dev or "
        "test) into RUN_DIR/lm.arpa, tune --alpha/--beta on --dev, and save them in "
        "RUN_DIR/lm.json; transcribe and evaluate then decode with this LM unless "
        "given --no-lm. Prints how many dev/--check sentences the LM text holds.",
    )
    a.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run folder")
    a.add_argument(
        "--train",
        nargs="+",
        required=True,
        metavar="MANIFEST",
        help="manifest(s) whose transcripts the LM counts (the training set)",
    )
    a.add_argument(
        "--dev",
        metavar="MANIFEST",
        help="tune alpha/beta on this manifest (default: keep alpha 0.5, beta 1.0)",
    )
    a.add_argument(
        "--check",
        nargs="+",
        default=[],
        metavar="MANIFEST",
        help="held-out manifest(s) (test) whose sentence overlap with the LM text is "
        "reported and saved",
    )
    a.add_argument("--order", type=int, default=3, metavar="N", help="n-gram order (default 3)")
    a.add_argument("--which", choices=("best", "last"), default="best", help="model to tune with")
    a.add_argument(
        "--alphas",
        metavar="LIST",
        help="comma-separated LM weights searched on --dev, in turn with --betas (default "
        + ",".join(f"{v:g}" for v in DEFAULT_ALPHAS)
        + ")",
    )
    a.add_argument(
        "--betas",
        metavar="LIST",
        help="comma-separated word bonuses searched on --dev (default "
        + ",".join(f"{v:g}" for v in DEFAULT_BETAS)
        + ")",
    )
    a.add_argument("--beam", type=int, default=16, metavar="N", help="beam width (default 16)")
    a.set_defaults(func=_run_lm_attach)


def _run_lm_build(args) -> int:
    if args.order < 1:
        raise ConfigError("--order must be at least 1")
    if args.manifest:
        if not args.normalize:
            raise ConfigError("--no-normalize applies to --text; transcripts are always normalized")
        report = build_arpa_from_sentences(manifest_sentences(args.manifest), args.out, args.order)
    else:
        report = build_arpa(args.text, args.out, order=args.order, normalize=args.normalize)
    counts = ", ".join(f"{n} {k + 1}-grams" for k, n in enumerate(report.ngrams))
    print(
        f"{report.path}: order {report.order}, {report.sentences} sentences, "
        f"{report.words} words; {counts}"
    )
    return 0


def _float_list(text: str, flag: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated numbers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"{flag}: expected non-negative numbers, got {text!r}")
    return values


def _run_lm_tune(args) -> int:
    from dataclasses import asdict

    alphas, betas = _float_list(args.alphas, "--alphas"), _float_list(args.betas, "--betas")
    if args.beam < 2:  # tuning compares LM weights, which only a beam search uses
        raise ConfigError("--beam must be >= 2")
    recognizer = load_model(args.model, which=args.which)
    result = tune(recognizer, args.manifest, args.lm, alphas, betas, args.beam)
    out = (
        Path(args.out)
        if args.out
        else Path(args.model) / f"lm_tune_{Path(args.manifest).stem}.json"
    )
    atomic_write_json(
        out,
        {
            **asdict(result),
            "lm": str(args.lm),
            "manifest": str(args.manifest),
            "model": str(recognizer.model_path),
        },
    )
    print(
        f"best: --alpha {result.alpha:g} --beta {result.beta:g}: WER {100 * result.wer:.2f}% "
        f"(greedy {100 * result.greedy_wer:.2f}%)"
    )
    print(f"saved: {out}")
    return 0


def _run_lm_attach(args) -> int:
    if args.order < 1:
        raise ConfigError("--order must be at least 1")
    if args.beam < 2:
        raise ConfigError("--beam must be >= 2 (a language model needs beam search)")
    if (args.alphas or args.betas) and not args.dev:
        raise ConfigError("--alphas/--betas are tried on --dev: give --dev too")
    alphas = _float_list(args.alphas, "--alphas") if args.alphas else DEFAULT_ALPHAS
    betas = _float_list(args.betas, "--betas") if args.betas else DEFAULT_BETAS
    settings = attach_lm(
        args.model,
        args.train,
        args.dev,
        args.check,
        order=args.order,
        alphas=alphas,
        betas=betas,
        beam_width=args.beam,
        which=args.which,
    )
    for path, o in settings["overlap"].items():
        print(f"{path}: {o['in_lm_text']} of {o['sentences']} sentences are in the LM text")
    line = f"alpha {settings['alpha']:g} beta {settings['beta']:g} beam {settings['beam_width']}"
    if settings["tuned_on"]:
        line += (
            f": dev WER {100 * settings['dev_wer']:.2f}% "
            f"(greedy {100 * settings['dev_greedy_wer']:.2f}%)"
        )
    print(f"{RunFolder(args.model).lm}: {line}")
    return 0
