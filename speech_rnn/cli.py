"""The ``speech-rnn`` command: prepare, train, evaluate, transcribe.

Every project error (bad audio, bad manifest line, bad config) is printed as one line and
the command exits with status 2; no TensorFlow traceback reaches the user.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys
from pathlib import Path

from . import __version__, lm_cli
from .bench import suite as bench
from .config import Config
from .data import prepare, recipes
from .decoding import decoding_options
from .deploy import export, serve_cli
from .errors import AudioError, ConfigError, SpeechRnnError
from .evaluate import evaluate_run, format_report
from .featurestore import build_store
from .fileio import prepare_output_dir
from .finetune import source_config, source_run
from .log import add_log_flags, configure_console
from .recognizer import load_model
from .runfolder import RunFolder, read_lm_settings
from .runs import runs_table
from .runtime import add_threads_flag, apply_threads, max_threads, quiet_tensorflow
from .synth import corpus as synth
from .synth import demo
from .train import load_examples, train
from .writers import FORMATS, output_names, render, transcription_dict, write_outputs


def _log_flags() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    add_log_flags(parent)
    return parent


def _add_no_lm_flag(p) -> None:
    p.add_argument(
        "--no-lm",
        dest="use_lm",
        action="store_false",
        help="ignore the language model the run folder carries (lm.arpa, from "
        "'speech-rnn lm attach'): greedy, or plain beam search with --beam",
    )


def _check_decoding(args) -> None:
    """Decoding flags, checked before any model loads; the run's own LM counts as --lm."""
    if args.lm and not args.use_lm:
        raise ConfigError("--lm and --no-lm contradict each other: give one")
    run_lm = read_lm_settings(RunFolder(args.model)) if args.use_lm and not args.lm else None
    if run_lm and args.beam != 1:
        decoding_options(args.beam, RunFolder(args.model).lm, args.alpha, args.beta)
    else:
        decoding_options(args.beam, args.lm, args.alpha, args.beta)


# -- train ----------------------------------------------------------------------------------
def _add_train(sub):
    p = sub.add_parser(
        "train",
        parents=[_log_flags()],
        help="train a model (or resume the run in --out)",
        description="Train a BiLSTM-CTC model. Running it again on the same "
        "--out folder resumes the run.",
    )
    p.add_argument(
        "--train",
        nargs="+",
        required=True,
        metavar="MANIFEST",
        help="training manifest(s): JSONL (NeMo style) or DeepSpeech CSV",
    )
    p.add_argument(
        "--train-weights",
        nargs="+",
        type=float,
        metavar="W",
        help="mix the --train manifests in these proportions (one weight each); "
        "default: every utterance once per epoch",
    )
    p.add_argument(
        "--dev",
        metavar="MANIFEST",
        help="dev manifest scored (WER/CER) after every epoch; picks best.keras",
    )
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to create or resume")
    p.add_argument("--config", metavar="FILE", help="config file (YAML or JSON) to start from")
    p.add_argument(
        "--init-from",
        metavar="RUN_DIR",
        help="fine-tune: start a new run from this trained run's best.keras and vocabulary; "
        "its features, text rules and model shape are kept (and its config is the starting "
        "point unless --config is given)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.batch_size=32 (repeatable)",
    )
    p.add_argument("--epochs", type=int, help="shortcut for --set train.epochs=N")
    p.add_argument("--minutes", type=float, help="shortcut for --set train.max_minutes=M")
    p.add_argument("--seed", type=int, help="shortcut for --set train.seed=N")
    p.add_argument(
        "--jit-compile",
        dest="jit_compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the training step with XLA (default: on)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop on any unusable utterance instead of dropping it with a warning",
    )
    p.set_defaults(func=_run_train)


def _train_config(args):
    if args.config:
        config = Config.load(args.config)
    elif args.init_from:  # fine-tuning starts from the source run's settings
        config = source_config(source_run(args.init_from))
    else:
        config = Config()
    overrides = list(args.set)
    for flag, key in (
        ("epochs", "train.epochs"),
        ("minutes", "train.max_minutes"),
        ("seed", "train.seed"),
        ("jit_compile", "train.jit_compile"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.strict:
        overrides.append("train.strict=true")
    return config.with_overrides(overrides)


def _run_train(args) -> int:
    config = _train_config(args)
    # Resuming without flags keeps the saved config; explicit ones are checked against it.
    explicit = (
        args.config
        or args.set
        or any(getattr(args, f) is not None for f in ("epochs", "minutes", "seed", "jit_compile"))
    )
    if RunFolder(args.out).exists() and not explicit and not args.strict:
        config = None
    if args.train_weights is not None and len(args.train_weights) != len(args.train):
        raise ConfigError("--train-weights needs one weight per --train manifest")
    metrics = train(
        args.train,
        args.dev,
        args.out,
        config,
        verbose=0 if args.quiet else 1,
        train_weights=args.train_weights,
        init_from=args.init_from,
    )
    if metrics.get("signal"):
        print(
            f"speech-rnn train: {metrics['stop_reason']}; checkpoint saved at step "
            f"{metrics['steps']}; run the same command to resume",
            file=sys.stderr,
        )
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
    p = sub.add_parser(
        "evaluate", parents=[_log_flags()], help="score a trained run on a manifest (WER/CER)"
    )
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run folder")
    p.add_argument("--manifest", required=True, help="manifest to score (JSONL or CSV)")
    p.add_argument(
        "--beam",
        type=int,
        default=0,
        metavar="N",
        help="beam width (0: greedy, or the run's LM with its tuned beam if it carries "
        "one; 1: greedy)",
    )
    p.add_argument(
        "--lm",
        metavar="ARPA",
        help="word n-gram LM for beam search (speech-rnn lm build); implies --beam 16; "
        "replaces the run's own LM",
    )
    p.add_argument(
        "--alpha", type=float, help="LM weight (needs --lm or a run LM; speech-rnn lm tune)"
    )
    p.add_argument("--beta", type=float, help="word insertion bonus (needs --lm or a run LM)")
    _add_no_lm_flag(p)
    p.add_argument(
        "--which",
        choices=("best", "last"),
        default="best",
        help="model of the run to use: best dev WER or last epoch",
    )
    p.add_argument("--batch-size", type=int, default=16, help="utterances per batch")
    p.add_argument("--out", metavar="JSON", help="report path (default: in the run folder)")
    add_threads_flag(p)
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    _check_decoding(args)
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    report = evaluate_run(
        args.model,
        args.manifest,
        beam_width=args.beam,
        which=args.which,
        batch_size=args.batch_size,
        out=args.out,
        lm=args.lm,
        alpha=args.alpha,
        beta=args.beta,
        use_lm=args.use_lm,
        progress=not args.quiet,
    )
    print(format_report(report))
    return 0


# -- transcribe -----------------------------------------------------------------------------
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aiff", ".aif")
STDOUT_FORMATS = ("txt", "json")  # formats that can hold many inputs on standard output


def _add_transcribe(sub):
    p = sub.add_parser(
        "transcribe",
        parents=[_log_flags()],
        help="transcribe audio files, folders or a WAV stream on stdin",
        description="Transcribe audio with a trained run: text, segments, word timestamps "
        "and confidences. Audio of any length is cut on silence into chunks of "
        "at most 30 s. Without --output-dir, results go to stdout: one "
        "'FILE<TAB>TEXT' line (txt) or one JSON object (json) per input, in "
        "input order. A file that fails is reported on stderr and the others go "
        "on; the exit status is 1 if any failed.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files, folders (searched recursively), or - for a WAV stream on stdin",
    )
    p.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run folder")
    p.add_argument(
        "--which",
        choices=("best", "last"),
        default="best",
        help="model of the run to use: best dev WER or last epoch",
    )
    p.add_argument(
        "--glob",
        metavar="PATTERN",
        help="in folders, transcribe only files whose name matches PATTERN "
        "(e.g. '*.flac'); default: every audio file "
        f"({' '.join(AUDIO_SUFFIXES)})",
    )
    p.add_argument(
        "-f",
        "--format",
        default="txt",
        choices=FORMATS + ("all",),
        help="output format (default: txt); 'all' writes every format and needs "
        "--output-dir; srt, vtt and tsv on stdout need a single input",
    )
    p.add_argument(
        "-o",
        "--output-dir",
        metavar="DIR",
        help="write one file per input and format into DIR, named after the "
        "input (clip.wav -> DIR/clip.srt; folder inputs keep their "
        "subfolders; - is 'stdin')",
    )
    p.add_argument(
        "--beam",
        type=int,
        metavar="N",
        help="beam width (default 0: greedy; 16 with --lm; the tuned one with the run's "
        "own LM); 1: greedy even when the run carries an LM",
    )
    p.add_argument(
        "--lm",
        metavar="ARPA",
        help="word n-gram language model for beam search (see 'speech-rnn lm build')",
    )
    p.add_argument(
        "--alpha",
        type=float,
        metavar="A",
        help="language model weight (needs --lm or a run LM; default 0.5 or the run's tuned one)",
    )
    p.add_argument(
        "--beta",
        type=float,
        metavar="B",
        help="word insertion bonus (needs --lm or a run LM; default 1.0 or the run's tuned one)",
    )
    _add_no_lm_flag(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        metavar="N",
        help="short files run through the model at once (default 32); the "
        "chunks of a long file go at most 8 at a time, so memory stays flat",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal and "
        "there is more than one input)",
    )
    add_threads_flag(p)
    p.set_defaults(func=_run_transcribe)


def _expand_inputs(inputs, pattern=None):
    """Yield ``(source, root, problem)``: one per audio file (``root``: the folder it was
    found in, or None), ``"-"`` for stdin, and a problem line for a folder with no match."""
    for item in inputs:
        if item == "-":
            yield "-", None, None
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob(pattern or "*")
                if p.is_file() and (pattern or p.suffix.lower() in AUDIO_SUFFIXES)
            )
            if not found:
                yield (
                    str(path),
                    None,
                    (
                        f"no audio files matching {pattern!r}"
                        if pattern
                        else "folder holds no audio files"
                    ),
                )
            for p in found:
                yield str(p), path, None
        else:
            yield str(path), None, None


def _check_transcribe_args(args, count: int) -> tuple:
    _check_decoding(args)
    if args.batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    if args.glob and not any(Path(i).is_dir() for i in args.inputs if i != "-"):
        raise ConfigError("--glob selects files inside folders, and no INPUT is a folder")
    if args.inputs.count("-") > 1:
        raise ConfigError("- (stdin) can be given only once")
    formats = FORMATS if args.format == "all" else (args.format,)
    if not args.output_dir:
        if args.format == "all":
            raise ConfigError("--format all writes several files per input: add --output-dir")
        if args.format not in STDOUT_FORMATS and count > 1:
            raise ConfigError(
                f"--format {args.format} on stdout takes a single input; "
                f"add --output-dir for {count} inputs"
            )
    return formats


def _read_stdin_audio():
    """The WAV (or any libsndfile format) stream on stdin: (samples, sample rate)."""
    import io

    import soundfile

    data = sys.stdin.buffer.read()
    if not data:
        raise AudioError("-", "no data on stdin")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise AudioError("-", f"stdin is not a readable audio stream ({first})") from None
    if samples.size == 0:
        raise AudioError("-", "no audio samples")
    return samples, rate


def _run_transcribe(args) -> int:
    import json

    from tqdm import tqdm

    items = list(_expand_inputs(args.inputs, args.glob))
    formats = _check_transcribe_args(args, len(items))
    names = None
    if args.output_dir:  # before any work: unique output names and a writable folder
        names = output_names((source, root) for source, root, _ in items)
        prepare_output_dir(args.output_dir, "output folder (-o)")
    recognizer = load_model(args.model, which=args.which, use_lm=args.use_lm)
    decode = dict(lm=args.lm, alpha=args.alpha, beta=args.beta, batch_size=args.batch_size)
    recognizer.decoding_options(args.beam or 0, args.lm, args.alpha, args.beta)  # fail early
    # tqdm's disable=None: a bar only when stderr is a terminal
    disable = (
        (not args.progress) if args.progress is not None else (None if len(items) > 1 else True)
    )
    bar = tqdm(
        total=len(items),
        desc="transcribing",
        unit="file",
        file=sys.stderr,
        disable=disable,
        leave=False,
    )
    failed, written, done, next_out = 0, 0, {}, 0

    def emit(index, outcome):
        nonlocal failed, written, next_out
        done[index] = outcome
        bar.update(1)
        while next_out in done:  # stdout keeps input order
            source, _, _ = items[next_out]
            result = done.pop(next_out)
            next_out += 1
            if isinstance(result, BaseException):
                message = str(result)
                if not message.startswith(source):
                    message = f"{source}: {message}"
                bar.write(f"error: {message}", file=sys.stderr)
                failed += 1
            elif args.output_dir:
                try:
                    written += len(
                        write_outputs(result, names[next_out - 1], args.output_dir, formats)
                    )
                except SpeechRnnError as e:
                    bar.write(f"error: {e}", file=sys.stderr)
                    failed += 1
            elif args.format == "json":
                print(
                    json.dumps({"file": source, **transcription_dict(result)}, ensure_ascii=False),
                    flush=True,
                )
            elif args.format == "txt":
                print(f"{source}\t{result.text}", flush=True)
            else:
                sys.stdout.write(render(result, args.format))
                sys.stdout.flush()

    files = []
    for index, (source, _, problem) in enumerate(items):
        if problem:
            emit(index, SpeechRnnError(problem))
        elif source == "-":
            try:
                samples, rate = _read_stdin_audio()
                emit(index, recognizer.transcribe(samples, args.beam or 0, rate, **decode))
            except SpeechRnnError as e:
                emit(index, e)
        else:
            files.append((index, source))
    for k, _, outcome in recognizer.transcribe_many(
        [s for _, s in files], args.beam or 0, **decode
    ):
        emit(files[k][0], outcome)
    bar.close()
    if args.output_dir:
        print(f"wrote {written} file(s) to {args.output_dir}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(items)} input(s) failed", file=sys.stderr)
    return 1 if failed else 0


# -- lm -------------------------------------------------------------------------------------
# -- runs -----------------------------------------------------------------------------------
def _add_runs(sub):
    p = sub.add_parser(
        "runs",
        parents=[_log_flags()],
        help="compare run folders: key settings, best dev WER/CER, steps, speed",
        description="One row per run folder under DIR (best dev WER first), read from its "
        "config.json and metrics.json; `tensorboard --logdir DIR` shows the same in its "
        "HParams tab.",
    )
    p.add_argument("dir", nargs="?", default="runs", help="folder holding run folders")
    p.set_defaults(func=_run_runs, tensorflow=False)


def _run_runs(args) -> int:
    if not Path(args.dir).is_dir():
        raise SpeechRnnError(f"{args.dir}: no such folder")
    print(runs_table(args.dir))
    return 0


# -- cache ----------------------------------------------------------------------------------
def _add_cache(sub):
    p = sub.add_parser(
        "cache",
        parents=[_log_flags()],
        help="write a manifest's features once into a sharded feature store",
        description="Decode and featurize every utterance once into float16 log-mel TFRecord "
        "shards; train with --set train.feature_store=STORE. Rerunning resumes; shards "
        "of unchanged lines and settings are kept.",
    )
    p.add_argument("--train", nargs="+", required=True, metavar="MANIFEST")
    p.add_argument("--store", required=True, metavar="DIR", help="store folder (created)")
    p.add_argument("--config", metavar="FILE", help="config file (YAML or JSON)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    p.add_argument(
        "--shard-utterances", type=int, help="utterances per shard (fixed by the first build)"
    )
    p.add_argument(
        "--part",
        default="0/1",
        metavar="I/N",
        help="write only shards i with i %% N == I (N machines share the build)",
    )
    p.set_defaults(func=_run_cache)


def _run_cache(args) -> int:
    config = (Config.load(args.config) if args.config else Config()).with_overrides(args.set)
    try:
        part = tuple(int(x) for x in args.part.split("/"))
        assert len(part) == 2 and 0 <= part[0] < part[1]
    except (ValueError, AssertionError):
        raise ConfigError(f"--part: expected I/N with 0 <= I < N, got {args.part!r}") from None
    prepare_output_dir(args.store, "feature store")
    utterances = [u for m in args.train for u in load_examples([m], config, f"train[{m}]")]
    done = build_store(utterances, config, args.store, args.shard_utterances, part)
    print(
        f"{done['shards']} shards: {done['written']} written, {done['kept']} kept, "
        f"{done['pending']} left to other parts"
        + (f"; complete: {done['index']}" if done["index"] else "")
    )
    return 0


# -- prepare --------------------------------------------------------------------------------
def _add_prepare(sub):
    p = sub.add_parser("prepare", help="import a corpus layout into JSONL manifests with splits")
    prepare.add_arguments(p)
    p.set_defaults(func=prepare.run, tensorflow=False)


def _add_synth(sub):
    p = sub.add_parser("synth", help="synthesize an offline English speech corpus (espeak-ng)")
    synth.add_arguments(p)
    p.set_defaults(func=synth.run, tensorflow=False)


def _add_demo(sub):
    p = sub.add_parser(
        "demo",
        help="build the synthetic corpus, train, evaluate, transcribe",
        description=demo.__doc__.splitlines()[0],
    )
    demo.add_arguments(p)
    p.set_defaults(func=demo.run)


def _add_recipe(sub):
    p = sub.add_parser(
        "recipe",
        help="build train/dev/test manifests: fsdd, fsdd-connected, kathleen",
        description=recipes.__doc__.splitlines()[0],
    )
    recipes.add_arguments(p)
    p.set_defaults(func=recipes.run, tensorflow=False)


def _add_export(sub):

    p = sub.add_parser(
        "export",
        help="export a run as a SavedModel and LiteRT/TFLite files "
        "(features and decoding in the graph)",
        description=export.__doc__.splitlines()[0],
    )
    export.add_arguments(p)
    p.set_defaults(func=export.run)


def _add_bench(sub):
    p = sub.add_parser(
        "bench",
        help="speed benchmarks, side by side: pipeline, training, inference, scaling, roofline",
        description=bench.__doc__.splitlines()[0],
    )
    bench.add_arguments(p)


def _add_serve(sub):

    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP: JSON API, batching, web page",
        description=serve_cli.DESCRIPTION,
    )
    serve_cli.add_arguments(p)
    p.set_defaults(func=serve_cli.run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech-rnn", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"speech-rnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(sub)
    _add_synth(sub)
    _add_recipe(sub)
    _add_prepare(sub)
    _add_cache(sub)
    _add_train(sub)
    _add_evaluate(sub)
    _add_runs(sub)
    _add_transcribe(sub)
    lm_cli.add_lm(sub)
    _add_bench(sub)
    _add_export(sub)
    _add_serve(sub)
    return parser


def _print_python_frames_on_crash() -> None:
    """A crash inside TensorFlow's native code (seen once: a segfault in libgcc's unwinder
    near the end of a 60-minute run) then still names the Python line it came from."""
    try:
        faulthandler.enable()
    except (OSError, ValueError, RuntimeError):
        pass  # stderr is not a file (captured, a notebook's stream, None): nothing to write to


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_console(1 if getattr(args, "verbose", False) else 0)
    _print_python_frames_on_crash()
    if getattr(args, "tensorflow", True):  # commands that never run a model say False
        quiet_tensorflow()
    if getattr(args, "threads", None) is not None:
        limit = max_threads()
        if not 1 <= args.threads <= limit:
            print(
                f"speech-rnn {args.command}: error: --threads must be >= 1 and <= {limit} "
                f"(4 x the {os.cpu_count()} cores), got {args.threads}",
                file=sys.stderr,
            )
            return 2
        try:
            apply_threads(args.threads)  # before TensorFlow runs its first op
        except RuntimeError:  # main() called again in a process where TensorFlow already ran
            print(
                f"speech-rnn {args.command}: warning: --threads ignored, TensorFlow has "
                "already started in this process",
                file=sys.stderr,
            )
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
