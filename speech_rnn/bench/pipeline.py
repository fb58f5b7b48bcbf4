"""Benchmark 1, the input pipeline: audio-seconds per second of the full training input
pipeline (decode, resample, log-mel, disk cache, shuffle, SpecAugment, MFCC, normalization,
windows, bucketing, padding, prefetch), cold (first epoch, writing the cache) and warm (the
next epoch, reading it), against a plain librosa loop computing the same features from the
same files, file after file. Runs inside a worker (:mod:`speech_rnn.bench.worker`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..audio import load_audio
from ..config import Config
from ..features import FeatureExtractor
from ..pipeline import compute_feature_stats, make_dataset
from .common import build_examples, clock, from_dicts, median


def librosa_features(path: str, config: Config, mean: np.ndarray, inv_std: np.ndarray):
    """The pipeline's features with librosa and numpy: load + resample (soxr), 25 ms Hann
    STFT every 10 ms with the end padded, HTK mel power, natural log, orthonormal DCT-II,
    global normalization, and windows of ``stack`` frames every ``stride`` frames."""
    import librosa
    import scipy.fft

    fc, sr = config.features, config.audio.sample_rate
    length = int(round(fc.frame_length_ms * sr / 1000))
    step = int(round(fc.frame_step_ms * sr / 1000))
    y, _ = librosa.load(path, sr=sr, res_type="soxr_hq")
    frames = -(-len(y) // step)
    # librosa centres a short window inside n_fft: shift by that much so frame t starts at
    # sample t * step as in tf.signal.stft, and pad the end as pad_end does.
    shift = (fc.fft_length - length) // 2
    y = np.pad(y, (shift, max(0, (frames - 1) * step + fc.fft_length - shift - len(y))))
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=sr,
        n_fft=fc.fft_length,
        hop_length=step,
        win_length=length,
        window="hann",
        center=False,
        power=2.0,
        n_mels=fc.num_mel_bins,
        fmin=fc.lower_hz,
        fmax=min(fc.upper_hz, sr / 2),
        htk=True,
        norm=None,
    )
    log_mel = np.log(mel.T + 1e-6)
    mfcc = scipy.fft.dct(log_mel, type=2, norm="ortho", axis=-1)[:, : fc.num_mfcc]
    feats = (mfcc - mean) * inv_std
    windows = -(-len(feats) // fc.stride)
    padded = np.zeros(((windows - 1) * fc.stride + fc.stack, feats.shape[1]), np.float32)
    padded[: len(feats)] = feats
    index = np.arange(windows)[:, None] * fc.stride + np.arange(fc.stack)[None, :]
    return padded[index].reshape(windows, -1)


def _one_blas_thread():
    """The librosa loop's small matmuls run fastest on one BLAS thread (OpenBLAS threads
    spin-wait, which costs several times over on a busy machine): give the baseline its
    best setting."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _iterate(make) -> dict:
    """Build the dataset with ``make()`` (training builds one per epoch: that is part of an
    epoch's cost) and consume every batch; count true audio seconds and true vs padded
    windows."""
    audio, true_windows, padded_windows, batches = 0.0, 0, 0, 0
    start = clock()
    dataset = make()
    built = clock()
    for batch in dataset:
        lengths = batch["feature_lengths"].numpy()
        audio += float(batch["audio_seconds"].numpy().sum())
        true_windows += int(lengths.sum())
        padded_windows += int(lengths.size * batch["features"].shape[1])
        batches += 1
    return {
        "seconds": clock() - start,
        "build_seconds": built - start,
        "audio_seconds": audio,
        "batches": batches,
        "true_windows": true_windows,
        "padded_windows": padded_windows,
    }


def run(spec: dict) -> dict:

    config = Config.from_dict(spec["config"])
    _, examples = build_examples(from_dicts(spec["utterances"]), config)
    repeats = int(spec["repeats"])
    work = Path(spec["work_dir"]) / "pipeline"
    audio_seconds = sum(e.utterance.duration for e in examples)
    paths = [e.utterance.audio_filepath for e in examples]
    for path in paths:  # the OS file cache: both sides read the files from memory
        Path(path).read_bytes()

    raw = FeatureExtractor(config.features, config.audio.sample_rate)
    stats = compute_feature_stats(examples, config, raw)
    extractor = FeatureExtractor(config.features, config.audio.sample_rate, stats)
    mean = np.asarray(stats.mean, np.float32)
    inv_std = 1.0 / np.maximum(np.asarray(stats.std, np.float32), 1e-3)

    # Same features? Compare one file's windows (TF vs librosa) before timing anything.
    import tensorflow as tf

    tf_windows = extractor(tf.constant(load_audio(paths[0], config.audio.sample_rate))).numpy()
    lr_windows = librosa_features(paths[0], config, mean, inv_std)
    rows = min(len(tf_windows), len(lr_windows))
    diff = np.abs(tf_windows[:rows] - lr_windows[:rows])  # normalized units (std = 1)
    agreement = {
        "windows": [len(tf_windows), len(lr_windows)],
        "median_abs_diff": float(np.median(diff)),
        "share_within_0.1": float(np.mean(diff < 0.1)),
    }

    cold, warm, warm_build, plain, decode_only = [], [], [], [], []
    efficiency = None
    for r in range(repeats):
        with _one_blas_thread():
            start = clock()
            for path in paths:
                librosa_features(path, config, mean, inv_std)
            plain.append(clock() - start)

        start = clock()
        for path in paths:
            load_audio(path, config.audio.sample_rate)
        decode_only.append(clock() - start)

        cache = work / f"repeat{r}" / "train_logmel"
        first = _iterate(
            lambda cache=cache: make_dataset(
                examples, config, extractor, training=True, epoch=0, cache_path=cache
            )
        )
        cold.append(first["seconds"])
        for epoch in (1, 2):
            again = _iterate(
                lambda epoch=epoch, cache=cache: make_dataset(
                    examples, config, extractor, training=True, epoch=epoch, cache_path=cache
                )
            )
            warm.append(again["seconds"])
            warm_build.append(again["build_seconds"])
        efficiency = again["true_windows"] / max(1, again["padded_windows"])

    def rate(times):
        return audio_seconds / median(times)

    return {
        "files": len(paths),
        "audio_seconds": round(audio_seconds, 2),
        "repeats": repeats,
        "cold_times_s": cold,
        "warm_times_s": warm,
        "librosa_times_s": plain,
        "decode_only_times_s": decode_only,
        "cold_audio_s_per_s": rate(cold),
        "warm_audio_s_per_s": rate(warm),
        "librosa_audio_s_per_s": rate(plain),
        "decode_only_audio_s_per_s": rate(decode_only),
        "warm_build_times_s": warm_build,
        "warm_iterate_only_audio_s_per_s": audio_seconds / (median(warm) - median(warm_build)),
        "cold_vs_librosa": median(plain) / median(cold),
        "warm_vs_librosa": median(plain) / median(warm),
        "decode_share_of_cold": median(decode_only) / median(cold),
        "padding_efficiency": efficiency,
        "tf_vs_librosa_features": agreement,
        "batches_per_epoch": again["batches"],
    }
