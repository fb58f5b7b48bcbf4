"""Features, in-graph with ``tf.signal``: one implementation for training, evaluation,
transcription and export.

waveform (16 kHz float32) -> log-mel -> [SpecAugment, training only] -> MFCC [+ deltas]
-> normalization -> stacked windows (the time reduction in front of the BiLSTM).

SpecAugment masks the log-mel spectrogram, before the DCT, so that a frequency mask removes
a band of the spectrum rather than a cepstral coefficient. Frame counts use ``pad_end``
everywhere, so every clip of at least one sample yields at least one window, and the
arithmetic in :func:`num_windows` is exact: the pre-flight check uses it to decide CTC
feasibility without decoding audio.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import FeatureConfig, SpecAugmentConfig
from .errors import RunFolderError
from .fileio import atomic_write_json

LOG_FLOOR = 1e-6


def frame_params(config: FeatureConfig, sample_rate: int):
    """(frame_length, frame_step) in samples."""
    return (
        int(round(config.frame_length_ms * sample_rate / 1000)),
        int(round(config.frame_step_ms * sample_rate / 1000)),
    )


def num_frames(num_samples: int, config: FeatureConfig, sample_rate: int) -> int:
    _, step = frame_params(config, sample_rate)
    return -(-num_samples // step)


def num_windows(num_samples: int, config: FeatureConfig, sample_rate: int) -> int:
    """Output frames of the model for a clip of ``num_samples`` (after time reduction)."""
    return -(-num_frames(num_samples, config, sample_rate) // config.stride)


def feature_dim(config: FeatureConfig) -> int:
    """Size of one frame's feature vector (before stacking)."""
    return config.num_mfcc * (3 if config.deltas else 1)


def window_dim(config: FeatureConfig) -> int:
    """Size of one stacked window: the model's input dimension."""
    return feature_dim(config) * config.stack


@dataclass(frozen=True)
class FeatureStats:
    """Per-dimension mean and standard deviation of the training features."""

    mean: tuple
    std: tuple

    def save(self, path) -> None:
        atomic_write_json(path, {"mean": list(self.mean), "std": list(self.std)})

    @classmethod
    def load(cls, path, dim: int) -> FeatureStats:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            mean = tuple(float(x) for x in data["mean"])
            std = tuple(float(x) for x in data["std"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RunFolderError(f"{path}: not a valid feature statistics file ({e})") from None
        if len(mean) != dim or len(std) != dim or not all(map(math.isfinite, mean + std)):
            raise RunFolderError(f"{path}: expected {dim} finite means and deviations")
        return cls(mean, std)


class FeatureExtractor:
    """The feature function. Its constants are built eagerly here, once: a constant created
    while tracing one ``Dataset.map`` function cannot be used by another."""

    def __init__(self, config: FeatureConfig, sample_rate: int, stats: FeatureStats | None = None):
        import tensorflow as tf

        self.config = config
        self.sample_rate = sample_rate
        self.frame_length, self.frame_step = frame_params(config, sample_rate)
        num_bins = config.fft_length // 2 + 1
        self._mel_matrix = tf.constant(
            tf.signal.linear_to_mel_weight_matrix(
                config.num_mel_bins,
                num_bins,
                sample_rate,
                config.lower_hz,
                min(config.upper_hz, sample_rate / 2),
            )
        )
        self.stats = stats
        if stats is not None:
            self._mean = tf.constant(np.asarray(stats.mean, np.float32))
            self._inv_std = tf.constant(1.0 / np.maximum(np.asarray(stats.std, np.float32), 1e-3))

    # -- stages -------------------------------------------------------------------------
    def log_mel(self, waveform):
        """[samples] float32 -> [frames, num_mel_bins] natural-log mel power."""
        import tensorflow as tf

        spectrum = tf.signal.stft(
            waveform,
            self.frame_length,
            self.frame_step,
            self.config.fft_length,
            window_fn=tf.signal.hann_window,
            pad_end=True,
        )
        power = tf.math.square(tf.abs(spectrum))
        return tf.math.log(tf.matmul(power, self._mel_matrix) + LOG_FLOOR)

    def mfcc(self, log_mel):
        """[frames, mel] -> [frames, feature_dim] MFCC (+ deltas)."""
        import tensorflow as tf

        coeffs = tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[:, : self.config.num_mfcc]
        if not self.config.deltas:
            return coeffs
        delta1 = _delta(coeffs)
        return tf.concat([coeffs, delta1, _delta(delta1)], axis=-1)

    def normalize(self, features):
        import tensorflow as tf

        mode = self.config.normalization
        if mode == "global":
            if self.stats is None:
                raise RunFolderError("global normalization needs feature statistics")
            return (features - self._mean) * self._inv_std
        if mode == "utterance":
            mean, var = tf.nn.moments(features, axes=[0], keepdims=True)
            return (features - mean) * tf.math.rsqrt(var + 1e-6)
        return features

    def stack(self, features):
        """[frames, d] -> [ceil(frames / stride), stack * d]: each window holds ``stack``
        consecutive frames, windows start every ``stride`` frames, zeros past the end."""
        import tensorflow as tf

        cfg = self.config
        windows = tf.signal.frame(features, cfg.stack, cfg.stride, pad_end=True, axis=0)
        return tf.reshape(windows, [-1, cfg.stack * feature_dim(cfg)])

    def windows_from_log_mel(self, log_mel):
        return self.stack(self.normalize(self.mfcc(log_mel)))

    def __call__(self, waveform):
        """waveform -> model input windows (no augmentation)."""
        return self.windows_from_log_mel(self.log_mel(waveform))


def _delta(x):
    """First-order regression delta over +-2 frames, edges repeated (as librosa's
    ``delta(width=5, mode='nearest')``)."""
    import tensorflow as tf

    padded = tf.concat([x[:1], x[:1], x, x[-1:], x[-1:]], axis=0)
    n = tf.shape(x)[0]
    return (
        2.0 * (padded[4 : 4 + n] - padded[0:n]) + (padded[3 : 3 + n] - padded[1 : 1 + n])
    ) / 10.0


def _read_at(x, position, axis: int):
    """``x`` read at fractional ``position``s (each within [0, size - 1]) along ``axis``, by
    linear interpolation between the two nearest entries."""
    import tensorflow as tf

    low = tf.cast(tf.floor(position), tf.int32)
    high = tf.minimum(low + 1, tf.shape(x)[axis] - 1)
    weight = position - tf.cast(low, tf.float32)
    if axis == 0:
        weight = weight[:, tf.newaxis]
    return (1.0 - weight) * tf.gather(x, low, axis=axis) + weight * tf.gather(x, high, axis=axis)


def change_speed(frames, factor):
    """``frames`` [T, D] resampled along time by linear interpolation to
    ``max(1, round(T / factor))`` frames: the features of the same audio played ``factor``
    times as fast (tempo only; the spectrum is not shifted)."""
    import tensorflow as tf

    old = tf.cast(tf.shape(frames)[0], tf.float32)
    new = tf.maximum(1, tf.cast(tf.round(old / factor), tf.int32))
    position = tf.minimum(tf.cast(tf.range(new), tf.float32) * factor, old - 1.0)
    return _read_at(frames, position, axis=0)


def warp_frequency(log_mel, factor):
    """``log_mel`` [T, M] with its mel axis stretched by ``factor`` (vocal tract length
    perturbation): output bin m reads bin ``m / factor`` by linear interpolation, so a
    formant at bin k moves to about ``k * factor``; bins read from past the top repeat the
    top bin."""
    import tensorflow as tf

    bins = tf.shape(log_mel)[1]
    top = tf.cast(bins - 1, tf.float32)
    position = tf.minimum(tf.cast(tf.range(bins), tf.float32) / factor, top)
    return _read_at(log_mel, position, axis=1)


def add_noise(log_mel, snr_db, seed):
    """``log_mel`` [T, M] natural-log mel power with noise added at ``snr_db`` (the mean mel
    power of the utterance over that of the noise). The noise has the same mean power in
    every mel bin and frame; each bin and frame draws its own power from a gamma
    distribution of shape 4 (mean 1), the spread of a noise periodogram summed over a
    filter's few FFT bins. ``seed``: a shape-[2] int tensor."""
    import tensorflow as tf

    power = tf.exp(log_mel)
    level = tf.reduce_mean(power) * tf.pow(10.0, -snr_db / 10.0)
    shape = 4.0
    spread = tf.random.stateless_gamma(tf.shape(log_mel), seed, shape) / shape
    return tf.math.log(power + level * spread)


def spec_augment(log_mel, config: SpecAugmentConfig, seed):
    """Time and frequency masks on a [frames, mel] log-mel spectrogram; ``seed`` is a
    shape-[2] int tensor, so the masks are reproducible for a (run seed, epoch, example)."""
    import tensorflow as tf

    if not config.enabled:
        return log_mel
    frames = tf.shape(log_mel)[0]
    bins = tf.shape(log_mel)[1]
    fill = tf.reduce_mean(log_mel)
    seeds = tf.random.experimental.stateless_split(
        tf.cast(seed, tf.int64), num=2 * (config.freq_masks + config.time_masks)
    )
    keep = tf.ones_like(log_mel, dtype=tf.bool)
    k = 0
    for _ in range(config.freq_masks):
        width = tf.random.stateless_uniform([], seeds[k], 0, config.freq_mask_width + 1, tf.int32)
        start = tf.random.stateless_uniform(
            [], seeds[k + 1], 0, tf.maximum(bins - width, 1), tf.int32
        )
        k += 2
        band = tf.logical_and(tf.range(bins) >= start, tf.range(bins) < start + width)
        keep = tf.logical_and(keep, tf.logical_not(band)[tf.newaxis, :])
    max_time = tf.minimum(
        config.time_mask_width,
        tf.cast(tf.cast(frames, tf.float32) * config.time_mask_max_fraction, tf.int32),
    )
    for _ in range(config.time_masks):
        width = tf.random.stateless_uniform([], seeds[k], 0, max_time + 1, tf.int32)
        start = tf.random.stateless_uniform(
            [], seeds[k + 1], 0, tf.maximum(frames - width, 1), tf.int32
        )
        k += 2
        span = tf.logical_and(tf.range(frames) >= start, tf.range(frames) < start + width)
        keep = tf.logical_and(keep, tf.logical_not(span)[:, tf.newaxis])
    return tf.where(keep, log_mel, fill)
