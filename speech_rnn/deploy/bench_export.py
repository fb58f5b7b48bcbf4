"""Benchmark the exported artefacts beside the Keras model: size, WER/CER, RTF at 1 thread.

    python -m speech_rnn.deploy.bench_export --model RUN --manifest HELD_OUT.jsonl
        [--out DIR] [--json FILE]

Exports RUN (SavedModel, TFLite float32, dynamic-range int8 and float16), then transcribes
every utterance of the manifest with each artefact, greedy: the Keras model through
``load_model(RUN).transcribe(waveform)`` (what ``speech-rnn transcribe`` runs for one
short file), the SavedModel's ``serving_default``, and each TFLite file through
``tf.lite.Interpreter(num_threads=1)``'s signature runner. TensorFlow runs with one
intra-op and one inter-op thread. Audio is decoded and resampled once, before timing; each
artefact makes one untimed warm-up pass over the set (tracing, XLA shapes, allocation),
then ``--repeats`` timed passes, of which the fastest is reported (the machine may be
shared: the minimum is the least disturbed). RTF = seconds of compute / seconds of audio
(lower is faster).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .. import load_model
from ..audio import load_audio
from ..errors import SpeechRnnError
from ..fileio import atomic_write_json
from ..log import configure_console
from ..log import logger as log
from ..manifest import read_manifest
from ..scoring import score
from ..text import normalize_text
from .export import (
    TFLITE_FILES,
    artefact_size,
    convert_tflite,
    export,
    load_artefact,
    write_bytes,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m speech_rnn.deploy.bench_export", description=__doc__.splitlines()[0]
    )
    p.add_argument("--model", required=True, type=Path, metavar="RUN", help="run folder")
    p.add_argument(
        "--manifest",
        required=True,
        type=Path,
        metavar="M",
        help="held-out manifest (jsonl/csv) to score and time on",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="export folder (default: a temporary one, removed afterwards)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        metavar="N",
        help="timed passes per artefact; the fastest is reported (default 3)",
    )
    p.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="also write the results as JSON"
    )
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    configure_console()

    try:
        if args.out is None:
            with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp:
                rows = bench(args.model, args.manifest, Path(tmp) / "export", args.repeats)
        else:
            rows = bench(args.model, args.manifest, args.out, args.repeats)
    except SpeechRnnError as e:
        print(f"bench_export: error: {e}", file=sys.stderr)
        return 2
    print(table(rows))
    if args.json:
        atomic_write_json(args.json, rows)
    return 0


def bench(model_dir, manifest, out_dir, repeats: int = 3) -> dict:
    import numpy as np

    out_dir = Path(out_dir)
    meta = export(model_dir, out_dir, fmt="all", quantize="dynamic")
    recognizer = load_model(model_dir)
    data, _ = convert_tflite(recognizer, "float16")
    write_bytes(out_dir / TFLITE_FILES["float16"], data)

    utterances = read_manifest(manifest)
    rate = recognizer.sample_rate
    waves = [load_audio(u.audio_filepath, rate) for u in utterances]
    references = [normalize_text(u.text, recognizer.config.text) for u in utterances]
    audio_s = sum(len(w) for w in waves) / rate

    chars = recognizer.vocab.chars
    runners = {
        "keras (speech-rnn transcribe)": (
            lambda w: recognizer.transcribe(w).text,
            recognizer.model_path,
        ),
        "savedmodel": (
            load_artefact(out_dir / "saved_model", "savedmodel", chars),
            out_dir / "saved_model",
        ),
    }
    for q in ("none", "dynamic", "float16"):
        path = out_dir / TFLITE_FILES[q]
        runners[f"tflite {'float32' if q == 'none' else q}"] = (
            load_artefact(path, "tflite", chars, num_threads=1),
            path,
        )

    rows = {
        "manifest": str(Path(manifest).resolve()),
        "utterances": len(waves),
        "audio_seconds": round(audio_s, 2),
        "threads": 1,
        "repeats": max(1, repeats),
        "git_commit": meta["git_commit"],
        "artefacts": {},
    }
    keras_texts = None
    for name, (transcribe, path) in runners.items():
        for w in waves:  # warm-up pass, untimed
            transcribe(w)
        passes = []
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            texts = [transcribe(w) for w in waves]
            passes.append(time.perf_counter() - started)
        seconds = min(passes)
        keras_texts = texts if keras_texts is None else keras_texts
        scores = score(references, texts)
        rows["artefacts"][name] = {
            "path": str(path),
            "bytes": artefact_size(Path(path)),
            "wer": scores.wer,
            "cer": scores.cer,
            "same_text_as_keras": int(
                np.sum([a == b for a, b in zip(texts, keras_texts, strict=True)])
            ),
            "rtf": seconds / audio_s,
            "rtf_passes": [t / audio_s for t in passes],
        }
        log.info("%s: WER %.2f%%, RTF %.4f", name, 100 * scores.wer, seconds / audio_s)
    return rows


def table(rows: dict) -> str:
    n = rows["utterances"]
    lines = [
        (
            f"{n} utterances, {rows['audio_seconds']:.1f} s of audio, "
            f"{rows['threads']} thread, greedy decoding, RTF: fastest of {rows['repeats']} "
            "timed passes"
        ),
        "| artefact | size (MB) | WER % | CER % | same text as Keras | RTF (1 thread) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows["artefacts"].items():
        lines.append(
            f"| {name} | {r['bytes'] / 1e6:.3f} | {100 * r['wer']:.2f} | "
            f"{100 * r['cer']:.2f} | {r['same_text_as_keras']}/{n} | "
            f"{r['rtf']:.4f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
