"""Benchmarks 4 and 5 (inference side), run inside workers whose thread settings were
fixed before TensorFlow started:

* ``run``: real-time factor of :meth:`SpeechRecognizer.transcribe` file by file (decode,
  features, model, decoding, word times: everything a caller waits for), greedy and beam,
  interleaved with pocketsphinx on the same files when it is installed; where the time of
  one file goes; batch transcription of many files (:meth:`transcribe_many`); and the dense
  matmul rate under the same thread settings.
* ``run_scaling``: transcription time of 2, 8 and 32 s of audio.
* ``make_model``: a run folder with randomly initialized weights (for speed only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio import audio_duration, load_audio
from ..config import Config
from ..decoding import DecodingOptions
from ..features import FeatureStats, feature_dim, num_windows, window_dim
from ..inference import padded_length
from ..recognizer import load_model
from ..runfolder import RunFolder, save_keras_atomic
from .common import build_examples, clock, from_dicts, median
from .roofline import measure_matmul


def make_model(spec: dict) -> dict:
    """A loadable run folder with random weights, vocabulary from the data's transcripts,
    and unit feature statistics: the speed of a trained model, none of its accuracy."""
    import keras

    from ..model import build_model

    keras.utils.set_random_seed(1234)
    config = Config.from_dict(spec["config"])
    vocab, _ = build_examples(from_dicts(spec["utterances"]), config)
    run = RunFolder(spec["run_dir"])
    run.root.mkdir(parents=True, exist_ok=True)
    config.save(run.config)
    vocab.save(run.vocab)
    dim = feature_dim(config.features)
    FeatureStats((0.0,) * dim, (1.0,) * dim).save(run.feature_stats)
    model = build_model(config.model, window_dim(config.features), vocab.num_classes)
    save_keras_atomic(model, run.last_model)
    return {
        "run_dir": str(run.root),
        "num_classes": vocab.num_classes,
        "parameters": int(model.count_params()),
    }


def _pocketsphinx():
    """A pocketsphinx decoder with its bundled US English model and default settings, or
    None when the package is not installed."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        return None
    return Decoder()


def pocketsphinx_transcribe(decoder, path: str, sample_rate: int = 16000) -> str:
    audio = load_audio(path, sample_rate)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def _time_files(fn, files) -> float:
    start = clock()
    for path in files:
        fn(path)
    return clock() - start


def breakdown(recognizer, files) -> dict:
    """Seconds per stage over ``files``, one at a time: decode+resample, features, model,
    decoding + word times."""
    totals = dict.fromkeys(("audio", "features", "model", "decoding"), 0.0)
    options = DecodingOptions()
    for path in files:
        t0 = clock()
        waveform = load_audio(path, recognizer.sample_rate)
        t1 = clock()
        windows = recognizer.features(waveform)
        t2 = clock()
        logits = recognizer.forward(windows[np.newaxis], [len(windows)]).numpy()[0, : len(windows)]
        t3 = clock()
        hyp = recognizer.decode(logits, options)
        recognizer.words(hyp, logits, 0.0, len(waveform) / recognizer.sample_rate)
        t4 = clock()
        for key, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            totals[key] += seconds
    return totals


def run(spec: dict) -> dict:

    recognizer = load_model(spec["run_dir"])
    files = spec["files"]
    audio = sum(audio_duration(f) for f in files)
    beam = int(spec["beam_width"])
    # Warm-up: the first pass traces the model and, on a CPU, XLA-compiles one shape per
    # padded length (inference.padded_length); reported on its own.
    first_pass = _time_files(recognizer.transcribe, files)
    recognizer.transcribe(files[0], beam_width=beam)
    decoder = _pocketsphinx() if spec.get("pocketsphinx") else None
    if decoder is not None:
        pocketsphinx_transcribe(decoder, files[0])
    times = {"greedy": [], "beam": [], "pocketsphinx": []}
    for _ in range(int(spec["repeats"])):
        times["greedy"].append(_time_files(recognizer.transcribe, files))
        times["beam"].append(
            _time_files(lambda f: recognizer.transcribe(f, beam_width=beam), files)
        )
        if decoder is not None:
            times["pocketsphinx"].append(
                _time_files(lambda f: pocketsphinx_transcribe(decoder, f), files)
            )
    out = {
        "files": len(files),
        "audio_seconds": round(audio, 2),
        "beam_width": beam,
        "times_s": times,
        "first_pass_s": first_pass,
        "rtf_first_pass": first_pass / audio,
        "padded_lengths": len(
            {
                padded_length(
                    num_windows(
                        int(round(audio_duration(f) * recognizer.sample_rate)),
                        recognizer.config.features,
                        recognizer.sample_rate,
                    )
                )
                for f in files
            }
        ),
        "rtf_greedy": median(times["greedy"]) / audio,
        "rtf_beam": median(times["beam"]) / audio,
    }
    if decoder is not None:
        out["rtf_pocketsphinx"] = median(times["pocketsphinx"]) / audio
        out["pocketsphinx_example"] = pocketsphinx_transcribe(decoder, files[0])
    parts = breakdown(recognizer, files)
    total = sum(parts.values())
    out["breakdown_share"] = {k: v / total for k, v in parts.items()}

    many = spec.get("many_files") or []
    if many:
        many_audio = sum(audio_duration(f) for f in many)
        batch_size = int(spec["batch_size"])
        list(recognizer.transcribe_many(many[:batch_size], batch_size=batch_size))
        batch_times = []
        for _ in range(int(spec.get("many_repeats", 1))):
            start = clock()
            results = list(recognizer.transcribe_many(many, batch_size=batch_size))
            batch_times.append(clock() - start)
        failures = sum(1 for _, _, r in results if isinstance(r, Exception))
        out["batch"] = {
            "files": len(many),
            "audio_seconds": round(many_audio, 2),
            "batch_size": batch_size,
            "times_s": batch_times,
            "failures": failures,
            "x_realtime": many_audio / median(batch_times),
        }
    out["matmul"] = measure_matmul()
    return out


def run_scaling(spec: dict) -> dict:
    """Transcription time (waveform in memory: features, model, decoding) of one stretch of
    real speech cut to each length in ``spec["seconds"]``."""

    recognizer = load_model(spec["run_dir"])
    sr = recognizer.sample_rate
    longest = max(spec["seconds"])
    pieces, have = [], 0
    for path in spec["source_files"]:
        pieces.append(load_audio(path, sr))
        have += len(pieces[-1])
        if have >= longest * sr:
            break
    speech = np.concatenate(pieces)
    speech = np.tile(speech, int(np.ceil(longest * sr / len(speech))))
    results = []
    for seconds in spec["seconds"]:
        waveform = speech[: int(round(seconds * sr))]
        recognizer.transcribe(waveform)  # warm-up
        times = []
        for _ in range(int(spec["repeats"])):
            start = clock()
            recognizer.transcribe(waveform)
            times.append(clock() - start)
        results.append(
            {
                "seconds": seconds,
                "times_s": times,
                "transcribe_s": median(times),
                "rtf": median(times) / seconds,
            }
        )
    return {"lengths": results, "source": str(Path(spec["source_files"][0]).parent)}
