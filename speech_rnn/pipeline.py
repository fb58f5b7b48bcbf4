"""The tf.data input pipeline.

examples -> decode (soundfile/soxr in a py function, parallel) -> log-mel -> cache ->
[shuffle, seeded per epoch] -> [SpecAugment] -> MFCC -> normalize -> stack windows ->
bucket by length (padded to fixed bucket boundaries, labels to one fixed length, so XLA
compiles a handful of shapes, not one per batch) -> [in training: a bucket's last, partial
batch filled to the bucket's size with copies of its rows, so one shape per bucket] ->
prefetch.

Every batch is a dict: ``features`` [B, T, D], ``feature_lengths`` [B] (true, unpadded
window counts), ``labels`` [B, L] (padded with -1), ``label_lengths`` [B], ``index`` [B]
(position in the example list, for logs and decoding; -1 for a copy that fills a batch) and
``audio_seconds`` [B] (0 for a copy).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .audio import load_audio
from .config import Config
from .errors import AudioError
from .features import (
    FeatureExtractor,
    FeatureStats,
    add_noise,
    change_speed,
    spec_augment,
    warp_frequency,
    window_dim,
)
from .log import logger

LABEL_PAD = -1


def label_pad_length(examples) -> int:
    """One fixed label length for all batches: the longest label, rounded up to 16."""
    longest = max(len(e.labels) for e in examples)
    return int(16 * math.ceil(longest / 16))


def bucket_boundaries(examples, config: Config):
    """Window-count boundaries every ``bucket_width_s`` seconds, past the longest example."""
    fc = config.features
    windows_per_second = 1000.0 / (fc.frame_step_ms * fc.stride)
    width = max(1, int(round(config.train.bucket_width_s * windows_per_second)))
    # speed perturbation below 1 stretches an utterance: the last boundary must still hold it
    stretch = 1.0 / min(config.augment.speed_perturb, default=1.0)
    longest = int(math.ceil(max(e.num_windows for e in examples) * max(1.0, stretch))) + 2
    return list(range(width, longest + width, width))


def batches_per_epoch(examples, boundaries, batch_size, sources=None) -> tuple:
    """(batches, exact) of one training epoch of :func:`make_dataset` over ``examples``:
    each length bucket yields ``ceil(count / size)`` batches (``batch_size``: one size, or
    one per bucket as :func:`bucket_batch_sizes` gives). Exact for one source; for a
    weighted mix of several (a random draw) the expected counts give an estimate (``exact``
    False)."""
    edges = np.asarray(boundaries)
    buckets = np.searchsorted(edges, [e.num_windows for e in examples], side="right")
    slots = len(edges) + 1
    sizes = [batch_size] * slots if isinstance(batch_size, int) else list(batch_size)
    if not sources or len(sources) == 1:
        counts = np.bincount(buckets, minlength=slots)
        batches = sum(-(-int(c) // size) for c, size in zip(counts, sizes, strict=True))
        return int(batches), True
    total_weight = sum(w for _, _, w in sources)
    expected = np.zeros(slots)
    for start, stop, weight in sources:
        share = np.bincount(buckets[start:stop], minlength=slots) / max(1, stop - start)
        expected += len(examples) * (weight / total_weight) * share
    batches = sum(
        math.ceil(c / size - 1e-9) for c, size in zip(expected, sizes, strict=True) if c > 0
    )
    return int(batches), False


def bucket_batch_sizes(boundaries, config: Config, batch_size: int, replicas: int = 1) -> list:
    """Batch size per bucket (``len(boundaries) + 1`` buckets): ``batch_size`` (global,
    ``replicas`` x the per-replica size), lowered for long buckets so that no batch holds
    more than ``train.max_batch_seconds`` of padded audio per replica."""
    limit = config.train.max_batch_seconds
    sizes = [batch_size] * (len(boundaries) + 1)
    if not limit or not boundaries:
        return sizes
    fc = config.features
    seconds_per_window = fc.frame_step_ms * fc.stride / 1000.0
    width = boundaries[0] if len(boundaries) == 1 else boundaries[-1] - boundaries[-2]
    uppers = list(boundaries) + [boundaries[-1] + width]  # padded length of each bucket
    per_replica = max(1, batch_size // max(1, replicas))
    return [
        max(1, min(per_replica, int(limit // (upper * seconds_per_window)))) * replicas
        for upper in uppers
    ]


def decoder_for(sample_rate: int, skipped: list | None = None):
    """A decoder for the pipeline: a file that fails now, though it passed the pre-flight
    check (it changed under us), comes back empty, is logged with its name and added to
    ``skipped``; the pipeline then drops it before any feature is computed from it."""

    def decode(path: bytes) -> np.ndarray:
        name = path.decode("utf-8")
        try:
            return load_audio(name, sample_rate)
        except AudioError as e:  # checked in pre-flight, but files can change under us
            logger.warning("skipping %s: it failed to decode after the pre-flight check", e)
            if skipped is not None:
                skipped.append(name)
            return np.zeros([0], np.float32)

    return decode


def log_mel_dataset(
    examples,
    config: Config,
    extractor: FeatureExtractor,
    cache_path=None,
    index_offset: int = 0,
    *,
    order=None,
    skipped: list | None = None,
):
    """Decoded, featurized (log-mel) examples in order, cached on disk or in memory. Each
    item's ``index`` is its position in ``examples`` plus ``index_offset``. ``order``: a
    permutation of the positions to read the examples in, uncached (one pass). An example
    whose file no longer decodes is left out (never fed as empty audio) and its path
    appended to ``skipped``."""
    import tensorflow as tf

    positions = np.arange(len(examples)) if order is None else np.asarray(order, np.int64)
    examples = [examples[i] for i in positions]
    paths = [e.utterance.audio_filepath for e in examples]
    # One concatenated array: tf.ragged.constant on Python lists is 20x slower.
    labels = tf.RaggedTensor.from_row_lengths(
        np.concatenate(
            [np.asarray(e.labels, np.int32) for e in examples] + [np.zeros(0, np.int32)]
        ),
        np.array([len(e.labels) for e in examples], np.int32),
    )
    source = tf.data.Dataset.from_tensor_slices(
        {
            "path": tf.constant(paths),
            "labels": labels,
            "index": tf.constant(positions + index_offset, tf.int32),
            "audio_seconds": tf.constant([e.utterance.duration for e in examples], tf.float32),
        }
    )
    decode = decoder_for(config.audio.sample_rate, skipped)

    def to_waveform(item):
        waveform = tf.numpy_function(decode, [item["path"]], tf.float32, stateful=False)
        waveform.set_shape([None])
        out = {k: v for k, v in item.items() if k != "path"}
        out["waveform"] = waveform
        return out

    def to_log_mel(item):
        out = {k: v for k, v in item.items() if k != "waveform"}
        out["log_mel"] = extractor.log_mel(item["waveform"])
        return out

    ds = source.map(to_waveform, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # before any feature op: an empty waveform would fail the STFT, or be fed as silence
    ds = ds.filter(lambda item: tf.size(item["waveform"]) > 0)
    ds = ds.map(to_log_mel, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if order is not None:
        return ds
    if cache_path is not None:
        Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_cache_lock(cache_path)
        return ds.cache(str(cache_path))
    return ds.cache() if config.train.cache else ds


def _remove_stale_cache_lock(cache_path) -> None:
    """An interrupted first pass leaves a lock file that makes the next run fail; the cache
    itself is only complete once its index file exists, so a lone lock is stale."""
    for lock in Path(cache_path).parent.glob(Path(cache_path).name + "*.lockfile"):
        lock.unlink(missing_ok=True)


def source_datasets(
    examples, sources, config: Config, extractor: FeatureExtractor, cache_path=None, skipped=None
):
    """One cached log-mel dataset per source, a ``(start, stop, weight)`` range of
    ``examples`` (a training manifest of a weighted mix)."""
    return [
        log_mel_dataset(
            examples[start:stop],
            config,
            extractor,
            None if cache_path is None else f"{cache_path}_{i}",
            start,
            skipped=skipped,
        )
        for i, (start, stop, _) in enumerate(sources)
    ]


def make_dataset(
    examples,
    config: Config,
    extractor: FeatureExtractor,
    *,
    training: bool,
    epoch: int = 0,
    cache_path=None,
    skip_batches: int = 0,
    label_length: int | None = None,
    batch_size: int | None = None,
    boundaries=None,
    sources=None,
    replicas: int = 1,
    skipped: list | None = None,
):
    """Batches of model inputs over ``examples`` (pre-flight :class:`Example` objects).

    ``sources``: ``(start, stop, weight)`` ranges of ``examples`` to mix by weight in
    training (an epoch is then ``len(examples)`` draws, each source reshuffled and repeated
    as needed); by default every example is used once per epoch. In training, long
    buckets get smaller batches (:func:`bucket_batch_sizes`; ``batch_size`` is the global
    batch of ``replicas`` replicas). ``skipped`` collects the paths of files that passed
    the pre-flight check but no longer decode (left out, never fed).
    """
    import tensorflow as tf

    tc = config.train
    batch_size = batch_size or tc.batch_size
    label_length = label_length or label_pad_length(examples)
    boundaries = boundaries or bucket_boundaries(examples, config)
    sources = sources or [(0, len(examples), 1.0)]

    if training and len(sources) > 1:
        parts = []
        for i, part in enumerate(
            source_datasets(examples, sources, config, extractor, cache_path, skipped)
        ):
            size = sources[i][1] - sources[i][0]
            parts.append(
                part.shuffle(
                    min(tc.shuffle_buffer, size),
                    seed=tc.seed + 1009 * i + epoch,
                    reshuffle_each_iteration=True,
                ).repeat()
            )
        ds = tf.data.Dataset.sample_from_datasets(
            parts, weights=[w for _, _, w in sources], seed=tc.seed + epoch
        ).take(len(examples))
    elif training and tc.sortagrad and epoch == 0:
        # SortaGrad: the first epoch from short to long (read once more from the audio, as
        # the cache holds manifest order); bucketing keeps it sorted within each length
        # bucket, and a bucket's last partial batch comes out at the end of the epoch
        durations = [e.utterance.duration for e in examples]
        ds = log_mel_dataset(
            examples, config, extractor, order=np.argsort(durations, kind="stable"), skipped=skipped
        )
    else:
        ds = source_datasets(examples, sources[:1], config, extractor, cache_path, skipped)[0]
        if training:
            ds = ds.shuffle(
                min(tc.shuffle_buffer, len(examples)),
                seed=tc.seed + epoch,
                reshuffle_each_iteration=False,
            )
    sizes = (
        bucket_batch_sizes(boundaries, config, batch_size, replicas)
        if training
        else [batch_size] * (len(boundaries) + 1)
    )
    ds = windows_in_buckets(
        ds,
        config,
        extractor,
        training=training,
        epoch=epoch,
        label_length=label_length,
        boundaries=boundaries,
        sizes=sizes,
    )
    if skip_batches:
        ds = ds.skip(skip_batches)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def windows_in_buckets(
    ds,
    config: Config,
    extractor,
    *,
    training: bool,
    epoch: int,
    label_length: int,
    boundaries,
    sizes,
):
    """Log-mel items -> [in training: speed perturbation, frequency warp, noise,
    SpecAugment] -> model input windows -> batches padded to their length bucket
    (``sizes``: one batch size per bucket); in training, each bucket's last batch filled to
    its full size (:func:`_fill_last_batch`). Shared by the on-the-fly pipeline and the
    feature store reader, so both augment and batch the same way."""
    import tensorflow as tf

    tc = config.train
    augment = training and config.specaugment.enabled
    speeds = np.asarray(config.augment.speed_perturb, np.float32) if training else None
    warp = config.augment.freq_warp if training else 0.0
    snr_db = config.augment.noise_snr_db if training else ()

    def perturb_if_it_fits(log_mel, factor, labels):
        # The pre-flight check proved CTC fits each utterance at its own speed; a faster
        # copy of a fast sentence may not (its batch's loss would be infinite): keep those
        # at their own speed.
        faster = change_speed(log_mel, factor)
        windows = (tf.shape(faster)[0] + config.features.stride - 1) // config.features.stride
        repeats = tf.reduce_sum(tf.cast(tf.equal(labels[1:], labels[:-1]), tf.int32))
        fits = windows >= tf.size(labels) + repeats
        return tf.cond(fits, lambda: faster, lambda: log_mel)

    def to_windows(item):
        log_mel = item["log_mel"]
        if speeds is not None and len(speeds):
            seed = tf.stack([tc.seed + 104729 * epoch, item["index"] + 1])
            pick = tf.random.stateless_uniform([], seed, 0, len(speeds), dtype=tf.int32)
            log_mel = perturb_if_it_fits(log_mel, tf.gather(speeds, pick), item["labels"])
        if warp:
            seed = tf.stack([tc.seed + 15485863 * epoch, item["index"] + 2])
            factor = tf.random.stateless_uniform([], seed, 1.0 - warp, 1.0 + warp)
            log_mel = warp_frequency(log_mel, factor)
        if snr_db:
            seed = tf.stack([tc.seed + 1299709 * epoch, item["index"] + 3])
            coin, where = tf.unstack(tf.random.stateless_uniform([2], seed))
            snr = snr_db[0] + where * (snr_db[1] - snr_db[0])
            log_mel = tf.cond(
                coin < config.augment.noise_fraction,
                lambda: add_noise(log_mel, snr, seed[::-1]),
                lambda: log_mel,
            )
        if augment:
            seed = tf.stack([tc.seed + 7919 * epoch, item["index"]])
            log_mel = spec_augment(log_mel, config.specaugment, seed)
        windows = extractor.windows_from_log_mel(log_mel)
        label = item["labels"]
        return {
            "features": windows,
            "feature_lengths": tf.shape(windows)[0],
            "labels": label,
            "label_lengths": tf.shape(label)[0],
            "index": item["index"],
            "audio_seconds": item["audio_seconds"],
        }

    ds = ds.map(to_windows, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dim = window_dim(config.features)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda item: item["feature_lengths"],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=list(sizes),
        padded_shapes={
            "features": [None, dim],
            "feature_lengths": [],
            "labels": [label_length],
            "label_lengths": [],
            "index": [],
            "audio_seconds": [],
        },
        padding_values={
            "features": 0.0,
            "feature_lengths": 0,
            "labels": LABEL_PAD,
            "label_lengths": 0,
            "index": -1,
            "audio_seconds": 0.0,
        },
        pad_to_bucket_boundary=True,
        drop_remainder=False,
    )
    return ds.map(_fill_last_batch(boundaries, sizes)) if training else ds


def _fill_last_batch(boundaries, sizes):
    """A ``map`` function: a bucket's last, partial batch filled to the bucket's batch size
    with copies of its own rows, marked as padding (``index`` -1, no audio seconds; the
    train step leaves them out of the loss). XLA compiles the training step once per batch
    shape: a last batch of its own size would be one more compilation per bucket, and one
    per epoch where the count changes (speed perturbation moves utterances between buckets,
    a weighted mix draws anew). The copies cost computation, not a compilation; a full batch
    passes unchanged."""
    import tensorflow as tf

    edges = tf.constant(boundaries, tf.int32)
    full_sizes = tf.constant(sizes, tf.int32)

    def fill(batch):
        shape = tf.shape(batch["features"])
        n = shape[0]
        # padded to its bucket's boundary: boundaries[i] - 1 windows in bucket i
        full = tf.gather(full_sizes, tf.searchsorted(edges, shape[1:2], side="right")[0])
        slots = tf.range(tf.maximum(n, full))
        filled = {k: tf.gather(v, slots % n) for k, v in batch.items()}
        copy = slots >= n
        index, seconds = filled["index"], filled["audio_seconds"]
        filled["index"] = tf.where(copy, -tf.ones_like(index), index)
        filled["audio_seconds"] = tf.where(copy, tf.zeros_like(seconds), seconds)
        return filled

    return fill


def compute_feature_stats(
    examples, config: Config, extractor: FeatureExtractor, cache_path=None, sources=None
):
    """Per-dimension mean and standard deviation of the unnormalized, unaugmented features
    over ``examples``. Fills the feature caches on the way when ``cache_path`` is given."""
    import functools

    import tensorflow as tf
    from tqdm import tqdm

    sources = sources or [(0, len(examples), 1.0)]
    ds = functools.reduce(
        lambda a, b: a.concatenate(b),
        source_datasets(examples, sources, config, extractor, cache_path),
    )

    def moments(item):
        feats = tf.cast(extractor.mfcc(item["log_mel"]), tf.float64)
        return tf.reduce_sum(feats, 0), tf.reduce_sum(tf.square(feats), 0), tf.shape(feats)[0]

    ds = ds.map(moments, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    total, total_sq, count = 0.0, 0.0, 0
    for s, sq, n in tqdm(
        ds.as_numpy_iterator(),
        desc="feature statistics",
        unit="utt",
        total=len(examples),
        disable=None,
    ):
        total, total_sq, count = total + s, total_sq + sq, count + int(n)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-10))
    return FeatureStats(tuple(map(float, mean)), tuple(map(float, std)))
