"""Export a trained run as a SavedModel and LiteRT (TFLite) files that transcribe on their own.

    speech-rnn export --model RUN --out DIR [--format savedmodel|tflite|all]
                      [--quantize none|dynamic|float16] [--eval-manifest M]

The whole chain is in the graph: 16 kHz waveform -> features (``tf.signal``, the run's
normalization statistics) -> acoustic model -> greedy CTC -> characters. ``DIR`` gets
``saved_model/`` (signatures ``serving_default`` and ``transcribe_batch``), ``model.tflite``
(float32) and, with ``--quantize``, ``model_dynamic.tflite`` or ``model_float16.tflite``,
plus ``model.json`` (rate, vocabulary, features, version, commit, source run, files, and
the WER/CER each artefact scored on ``--eval-manifest``). See docs/deploy.md.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from .. import load_model
from ..audio import load_audio
from ..errors import ConfigError, SpeechRnnError
from ..fileio import atomic_write_bytes, atomic_write_json
from ..log import logger as log
from ..manifest import read_manifest
from ..runtime import git_commit
from ..scoring import score
from ..text import normalize_text
from .graph import serving_module, tflite_function

FORMATS = ("savedmodel", "tflite", "all")
QUANTIZE = ("none", "dynamic", "float16")
SAVED_MODEL_DIR = "saved_model"
TFLITE_FILES = {
    "none": "model.tflite",
    "dynamic": "model_dynamic.tflite",
    "float16": "model_float16.tflite",
}


SIGNATURES = {
    "savedmodel": {
        "serving_default": {
            "inputs": {"waveform": "float32 [N]"},
            "outputs": {
                "text": "string []",
                "logits": "float32 [T, C]",
                "logits_length": "int32 []",
            },
        },
        "transcribe_batch": {
            "inputs": {
                "waveforms": "float32 [B, N] (zero-padded)",
                "lengths": "int32 [B] (samples)",
            },
            "outputs": {
                "text": "string [B]",
                "logits": "float32 [B, T, C]",
                "logits_length": "int32 [B]",
            },
        },
    },
    "tflite": {
        "serving_default": {
            "inputs": {"waveform": "float32 [N]"},
            "outputs": {
                "labels": "int32 [L] (vocabulary indices)",
                "logits": "float32 [T, C]",
                "logits_length": "int32 []",
            },
        }
    },
}


class ExportError(SpeechRnnError):
    """The export could not be written or converted."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        metavar="RUN",
        help="trained run folder (config.json, vocab.json, best.keras ...)",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="export folder to create (must be empty or absent)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="all", help="savedmodel, tflite, or all (default: all)"
    )
    parser.add_argument(
        "--quantize",
        choices=QUANTIZE,
        default="none",
        help="TFLite only: also write a quantized model: dynamic (int8 "
        "weights) or float16 (default: none, float32 only)",
    )
    parser.add_argument(
        "--eval-manifest",
        type=Path,
        default=None,
        metavar="M",
        help="held-out manifest: score each artefact (WER/CER, greedy) and "
        "record it in model.json (default: not scored)",
    )
    parser.add_argument(
        "--which",
        choices=("best", "last"),
        default="best",
        help="model of the run to export (default: best)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace the export files in a non-empty --out"
    )


def check_arguments(args) -> None:
    """Flag combinations, before anything heavy runs (one-line ConfigErrors)."""
    if args.quantize != "none" and args.format == "savedmodel":
        raise ConfigError("--quantize applies to TFLite files; use --format tflite or all")
    if not Path(args.model).is_dir():
        raise ConfigError(f"{args.model}: run folder not found")
    if not (Path(args.model) / "config.json").is_file():
        raise ConfigError(f"{args.model}: not a run folder (no config.json)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"{out}: folder is not empty (use --force to replace the export)")
    if args.eval_manifest is not None and not Path(args.eval_manifest).is_file():
        raise ConfigError(f"{args.eval_manifest}: manifest not found")


def run(args) -> int:
    check_arguments(args)
    result = export(
        args.model,
        args.out,
        fmt=args.format,
        quantize=args.quantize,
        eval_manifest=args.eval_manifest,
        which=args.which,
    )
    for name, info in result["artefacts"].items():
        line = f"{name:16s} {info['path']:28s} {info['bytes'] / 1e6:8.2f} MB"
        if "wer" in info:
            line += f"  WER {100 * info['wer']:.2f}%  CER {100 * info['cer']:.2f}%"
        print(line)
    print(f"wrote {Path(args.out) / 'model.json'}")
    return 0


# -- the export ------------------------------------------------------------------------------
def export(
    model_dir,
    out_dir,
    fmt: str = "all",
    quantize: str = "none",
    eval_manifest=None,
    which: str = "best",
) -> dict:
    """Write the artefacts and ``model.json`` into ``out_dir``; returns model.json's dict."""

    if fmt not in FORMATS or quantize not in QUANTIZE:
        raise ConfigError(f"format must be one of {FORMATS}, quantize one of {QUANTIZE}")
    if quantize != "none" and fmt == "savedmodel":
        raise ConfigError("--quantize applies to TFLite files; use --format tflite or all")
    recognizer = load_model(model_dir, which=which)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"{out}: cannot create the export folder ({e.strerror or e})") from None
    artefacts = {}
    if fmt in ("savedmodel", "all"):
        started = time.perf_counter()
        write_saved_model(recognizer, out / SAVED_MODEL_DIR)
        log.info("SavedModel written in %.1f s", time.perf_counter() - started)
        artefacts["savedmodel"] = {
            "path": SAVED_MODEL_DIR,
            "bytes": artefact_size(out / SAVED_MODEL_DIR),
        }
    if fmt in ("tflite", "all"):
        for q in ("none",) + ((quantize,) if quantize != "none" else ()):
            started = time.perf_counter()
            data, select_ops = convert_tflite(recognizer, q)
            write_bytes(out / TFLITE_FILES[q], data)
            log.info("%s written in %.1f s", TFLITE_FILES[q], time.perf_counter() - started)
            artefacts["tflite" if q == "none" else f"tflite_{q}"] = {
                "path": TFLITE_FILES[q],
                "bytes": len(data),
                "quantize": q,
                "select_tf_ops": select_ops,
            }
    meta = describe(recognizer, model_dir, artefacts)
    if eval_manifest is not None:
        meta["evaluation"] = {"manifest": str(Path(eval_manifest).resolve()), "decoding": "greedy"}
        for name, info in artefacts.items():
            scores = evaluate_artefact(out / info["path"], name, eval_manifest, recognizer)
            info.update(wer=scores.wer, cer=scores.cer, utterances=scores.utterances)
    else:
        meta["evaluation"] = None
        meta["evaluation_note"] = "not scored: export with --eval-manifest to record WER/CER"
    atomic_write_json(out / "model.json", meta)
    return meta


def describe(recognizer, model_dir, artefacts: dict) -> dict:
    import dataclasses

    import speech_rnn

    vocab = recognizer.vocab
    return {
        "format_version": 1,
        "sample_rate": recognizer.sample_rate,
        "input": "mono float32 waveform in [-1, 1] at sample_rate, any length >= 1 sample",
        "vocabulary": {"chars": list(vocab.chars), "blank_index": vocab.blank_id},
        "features": dataclasses.asdict(recognizer.config.features),
        "decoding": "greedy CTC (argmax, repeats collapsed, blank dropped, spaces trimmed)",
        "project_version": speech_rnn.__version__,
        "git_commit": git_commit(),
        "source_run": str(Path(model_dir).resolve()),
        "source_model": recognizer.model_path.name,
        "signatures": SIGNATURES,
        "artefacts": artefacts,
    }


def artefact_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_bytes(path: Path, data: bytes) -> None:

    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise ExportError(f"{path}: cannot write ({e.strerror or e})") from None


def write_saved_model(recognizer, path: Path) -> None:
    """Save the serving module; written beside ``path`` and renamed over it."""
    import tensorflow as tf

    module = serving_module(recognizer)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        tf.saved_model.save(
            module,
            str(tmp),
            signatures={
                "serving_default": module.serving_default.get_concrete_function(),
                "transcribe_batch": module.transcribe_batch.get_concrete_function(),
            },
        )
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except OSError as e:
        raise ExportError(f"{path}: cannot write the SavedModel ({e.strerror or e})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def convert_tflite(recognizer, quantize: str = "none"):
    """(flatbuffer bytes, names of select-TF ops used: empty when all builtin)."""
    import tensorflow as tf

    function, module = tflite_function(recognizer)

    def plain(select: bool):
        # The trackable object keeps the LSTM functions' attributes: without it the
        # converter inlines them and the LSTMs become WHILE loops.
        c = tf.lite.TFLiteConverter.from_concrete_functions([function], module)
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
            [tf.lite.OpsSet.SELECT_TF_OPS] if select else []
        )
        return c

    def converter(select: bool):
        c = plain(select)
        if quantize == "dynamic":
            c.optimizations = [tf.lite.Optimize.DEFAULT]
        elif quantize == "float16":
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.target_spec.supported_types = [tf.float16]
        return c

    def convert(select: bool) -> bytes:
        data = unclip_lstm_cells(converter(select).convert())
        if quantize == "dynamic":
            # The float32 model of the same graph supplies the front end's weights.
            data = float_front_end(data, unclip_lstm_cells(plain(select).convert()))
        return data

    try:
        return convert(False), []
    except Exception as e:  # noqa: BLE001 -- the converter raises ConverterError and others
        log.warning(
            "builtin-only TFLite conversion failed (%s); retrying with select TF ops",
            str(e).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__,
        )
    try:
        data = convert(True)
    except Exception as e:  # noqa: BLE001 -- reported as one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"TFLite conversion failed: {first[:300]}") from None
    return data, sorted(o for o in model_ops(data) if o.startswith("Flex") or o == "CUSTOM")


def float_front_end(quantized: bytes, float32: bytes) -> bytes:
    """Give the feature front end of a dynamic-range model back its float32 weights.

    Dynamic-range quantization turns the mel filterbank and DCT matrix products into
    hybrid FULLY_CONNECTED ops, which quantize their *input* to int8 per frame: a power
    spectrum spans far more than int8's 48 dB, so the quiet bins became zeros and the
    fixture model's WER doubled. Every int8 FULLY_CONNECTED weight before the first LSTM
    (the front end) is replaced by the same tensor of the float32 conversion (matched by
    name and shape), which makes those ops plain float ops again; the LSTMs and the output
    layer keep int8 weights."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(quantized))
    reference = flatbuffer_utils.read_model_from_bytearray(bytearray(float32))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    graph, ref_graph = model.subgraphs[0], reference.subgraphs[0]
    by_name = {
        (t.name, tuple(t.shape)): t
        for t in ref_graph.tensors
        if t.type == schema.TensorType.FLOAT32
    }
    restored = 0
    for op in graph.operators:
        code = codes[op.opcodeIndex]
        if code == schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM:
            break
        if code != schema.BuiltinOperator.FULLY_CONNECTED:
            continue
        weight = graph.tensors[op.inputs[1]]
        if weight.type != schema.TensorType.INT8:
            continue
        source = by_name.get((weight.name, tuple(weight.shape)))
        if source is None:
            log.warning(
                "front-end weight %s not found in the float32 model; left int8", weight.name
            )
            continue
        model.buffers[weight.buffer].data = reference.buffers[source.buffer].data
        weight.type = schema.TensorType.FLOAT32
        weight.quantization = None
        restored += 1
    log.info("dynamic-range model: %d front-end weight(s) kept in float32", restored)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def unclip_lstm_cells(data: bytes) -> bytes:
    """Set ``cell_clip`` to 0 (off) on every UNIDIRECTIONAL_SEQUENCE_LSTM op.

    The converter writes ``cell_clip=10`` into every LSTM it fuses from a Keras-style
    function; Keras never clips, and the fixture model's cell states reach |c| = 11.6, which
    moved logits by up to 0.08. The float is patched in place in the flatbuffer (its field is
    present because 10 is not the default), so nothing else in the file changes."""
    import struct

    from tensorflow.lite.python import schema_py_generated as schema

    buf = bytearray(data)
    model = schema.Model.GetRootAsModel(buf, 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    lstm = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    for g in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(g)
        for k in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(k)
            code = codes[op.OpcodeIndex()]
            if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != lstm:
                continue
            table = op.BuiltinOptions()
            options = schema.UnidirectionalSequenceLSTMOptions()
            options.Init(table.Bytes, table.Pos)
            field = options._tab.Offset(6)  # cell_clip: the schema's second field
            if field:
                struct.pack_into("<f", buf, options._tab.Pos + field, 0.0)
    return bytes(buf)


def model_ops(data: bytes) -> list:
    """Operator names used in a TFLite flatbuffer (from the converter's analyzer)."""
    import contextlib
    import io
    import re

    import tensorflow as tf

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        tf.lite.experimental.Analyzer.analyze(model_content=data)
    return sorted(set(re.findall(r"Op#\d+ (\w+)", buf.getvalue())))


# -- scoring the artefacts -------------------------------------------------------------------
def evaluate_artefact(path: Path, kind: str, manifest, recognizer):
    """WER/CER (greedy) of one exported artefact on a manifest, in this process."""

    transcribe = load_artefact(path, kind, recognizer.vocab.chars)
    references, hypotheses = [], []
    for utt in read_manifest(manifest):
        references.append(normalize_text(utt.text, recognizer.config.text))
        hypotheses.append(transcribe(load_audio(utt.audio_filepath, recognizer.sample_rate)))
    return score(references, hypotheses)


def load_artefact(path: Path, kind: str, chars, num_threads: int | None = None):
    """A ``transcribe(waveform float32 [N]) -> str`` over an exported artefact."""
    import numpy as np
    import tensorflow as tf

    if kind == "savedmodel":
        loaded = tf.saved_model.load(str(path))  # referenced below: it owns the variables

        def transcribe_saved(waveform):
            served = loaded.signatures["serving_default"](
                waveform=tf.constant(waveform, tf.float32)
            )
            return served["text"].numpy().decode("utf-8")

        return transcribe_saved
    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner("serving_default")

    def transcribe(waveform):
        labels = runner(waveform=np.asarray(waveform, np.float32))["labels"]
        return "".join(chars[i] for i in labels)

    return transcribe
