"""A sharded feature store: log-mel features computed once, read in parts by each worker.

``speech-rnn cache`` decodes every utterance of a manifest once and writes its log-mel
spectrogram (float16) into TFRecord shards of ``shard_utterances`` consecutive manifest
lines. Layout under the store folder::

    shards/<name>.tfrecord   records {key, frames, log_mel}; <name> hashes the feature key
                             and the shard's manifest lines (key, audio path, duration)
    shards/<name>.json       the shard's completion marker: bytes, records, MFCC moments
    index-<set>.json         the completion marker of one manifest: shards, one row per
                             utterance (id, duration, text, shard), written last

Shards are content-addressed, so changing a feature setting (anything before the
normalization: framing, FFT, mel bins, MFCC count, deltas, sample rate) gives every shard a
new name, appending lines to a manifest adds shards and keeps the old ones, and an
interrupted build resumes at the first shard without a marker. Training refuses a store
without the manifest's index or with a missing or truncated shard (one-line error).

Training reads the store in ``train.input_partitions`` partitions (default: one per
worker); partition p holds shards p, p + P, ... and worker w reads partitions w, w + N, ...
only, so each worker reads 1/N of the corpus. Every step's global batch is the union of one
batch from each partition, so the batches depend on P, not on how many workers read them:
one worker with P partitions trains exactly as P workers do. SpecAugment, MFCC,
normalization and stacking run after the read, per step.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .errors import SpeechRnnError
from .fileio import atomic_write_json
from .log import logger

FORMAT = 1
SHARD_UTTERANCES = 256
# Feature settings the stored log-mel (and the MFCC moments kept with it) depend on; the
# normalization, stacking and stride are applied after the read.
STORED_SETTINGS = (
    "frame_length_ms",
    "frame_step_ms",
    "fft_length",
    "num_mel_bins",
    "lower_hz",
    "upper_hz",
    "num_mfcc",
    "deltas",
)


class FeatureStoreError(SpeechRnnError):
    """A feature store is missing, incomplete or does not match the manifest or config."""


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def feature_key(config: Config) -> str:
    fc = asdict(config.features)
    return _sha(
        {
            "format": FORMAT,
            "sample_rate": config.audio.sample_rate,
            **{k: fc[k] for k in STORED_SETTINGS},
        }
    )


def plan_shards(utterances, config: Config, shard_utterances: int = SHARD_UTTERANCES):
    """[(shard name, utterances)] in manifest order; a name hashes the feature key and the
    manifest lines it holds, so it changes exactly when its content would."""
    keys = [u.key for u in utterances]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise FeatureStoreError(
            f"{dup}: listed twice in the manifest; give each line a distinct id to store it"
        )
    fkey = feature_key(config)
    plan = []
    for start in range(0, len(utterances), shard_utterances):
        chunk = utterances[start : start + shard_utterances]
        lines = [[u.key, u.audio_filepath, round(u.duration, 4)] for u in chunk]
        plan.append((_sha([fkey, lines])[:24], chunk))
    return plan


def shard_size(root, requested: int | None = None) -> int:
    """Utterances per shard of the store at ``root``: fixed by its first build (store.json),
    so that training plans the same shards as the build did."""
    path = Path(root) / "store.json"
    try:
        recorded = int(json.loads(path.read_text(encoding="utf-8"))["shard_utterances"])
    except FileNotFoundError:
        recorded = None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FeatureStoreError(f"{path}: not a valid store description ({e})") from None
    if recorded is None:
        return requested or SHARD_UTTERANCES
    if requested and requested != recorded:
        raise FeatureStoreError(
            f"{path}: the store holds shards of {recorded} utterances, not {requested}"
        )
    return recorded


def _index_path(root: Path, names) -> Path:
    return root / f"index-{_sha(list(names))[:24]}.json"


def _shard_ok(root: Path, name: str) -> dict | None:
    """The shard's marker when the shard is complete (marker present, size as recorded)."""
    marker = root / "shards" / f"{name}.json"
    try:
        meta = json.loads(marker.read_text(encoding="utf-8"))
        return (
            meta if (root / "shards" / f"{name}.tfrecord").stat().st_size == meta["bytes"] else None
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- writing ---------------------------------------------------------------------------------
def build_store(
    utterances,
    config: Config,
    root,
    shard_utterances: int | None = None,
    part: tuple = (0, 1),
) -> dict:
    """Write the shards of ``utterances`` that are missing (of part ``part[0]`` of
    ``part[1]``: shards i with i % part[1] == part[0]); write the index when every shard is
    complete. Returns counts: shards written, kept, pending (other parts), and the index."""
    from .features import FeatureExtractor

    root = Path(root)
    shard_utterances = shard_size(root, shard_utterances)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    if not (root / "store.json").is_file():
        atomic_write_json(
            root / "store.json", {"format": FORMAT, "shard_utterances": shard_utterances}
        )
    plan = plan_shards(utterances, config, shard_utterances)
    extractor = FeatureExtractor(config.features, config.audio.sample_rate)
    written = kept = 0
    for i, (name, chunk) in enumerate(plan):
        if _shard_ok(root, name):
            kept += 1
        elif i % part[1] == part[0]:
            _write_shard(root, name, chunk, config, extractor)
            written += 1
            logger.info(f"feature store: shard {i + 1}/{len(plan)} written ({name})")
    markers = [_shard_ok(root, name) for name, _ in plan]
    pending = sum(m is None for m in markers)
    index = None
    if not pending:
        index = _index_path(root, [n for n, _ in plan])
        _write_index(index, config, plan, markers)
    return {
        "shards": len(plan),
        "written": written,
        "kept": kept,
        "pending": pending,
        "index": index,
    }


def _log_mel_items(chunk, config: Config, extractor):
    """(key, float16 log-mel, MFCC sum, sum of squares) per utterance of ``chunk``; the
    moments are of the float16-rounded log-mel, i.e. of what training will read."""
    import tensorflow as tf

    from .pipeline import decoder_for

    decode = decoder_for(config.audio.sample_rate)

    def featurize(path):
        waveform = tf.numpy_function(decode, [path], tf.float32, stateful=False)
        waveform.set_shape([None])
        log_mel = tf.cast(extractor.log_mel(waveform), tf.float16)
        mfcc = tf.cast(extractor.mfcc(tf.cast(log_mel, tf.float32)), tf.float64)
        return log_mel, tf.reduce_sum(mfcc, 0), tf.reduce_sum(tf.square(mfcc), 0)

    paths = tf.constant([u.audio_filepath for u in chunk])
    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        featurize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    for u, (log_mel, s, sq) in zip(chunk, ds.prefetch(4).as_numpy_iterator(), strict=True):
        yield u.key, log_mel, s, sq


def _write_shard(root: Path, name: str, chunk, config: Config, extractor) -> None:
    import tensorflow as tf

    final = root / "shards" / f"{name}.tfrecord"
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    total = total_sq = 0.0
    frames = records = 0
    skipped = []
    try:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for key, log_mel, s, sq in _log_mel_items(chunk, config, extractor):
                if log_mel.shape[0] == 0:  # unreadable audio: warned about by the decoder
                    skipped.append(key)
                    continue
                writer.write(_record(key, log_mel))
                total, total_sq = total + s, total_sq + sq
                frames, records = frames + int(log_mel.shape[0]), records + 1
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    atomic_write_json(
        final.with_suffix(".json"),
        {
            "name": name,
            "bytes": final.stat().st_size,
            "records": records,
            "frames": frames,
            "skipped": skipped,
            "sum": np.asarray(total, np.float64).tolist() if records else None,
            "sum_sq": np.asarray(total_sq, np.float64).tolist() if records else None,
        },
    )


def _record(key: str, log_mel: np.ndarray) -> bytes:
    import tensorflow as tf

    feature = {
        "key": tf.train.Feature(bytes_list=tf.train.BytesList(value=[key.encode("utf-8")])),
        "frames": tf.train.Feature(int64_list=tf.train.Int64List(value=[log_mel.shape[0]])),
        "log_mel": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[log_mel.astype("<f2").tobytes()])
        ),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_index(path: Path, config: Config, plan, markers) -> None:
    rows = [
        [u.key, u.duration, u.text, shard]
        for shard, (_, chunk) in enumerate(plan)
        for u in chunk
        if u.key not in set(markers[shard]["skipped"])
    ]
    atomic_write_json(
        path,
        {
            "format": FORMAT,
            "feature_key": feature_key(config),
            "features": {k: asdict(config.features)[k] for k in STORED_SETTINGS},
            "sample_rate": config.audio.sample_rate,
            "shards": [
                {"name": n, "bytes": m["bytes"], "records": m["records"]}
                for (n, _), m in zip(plan, markers, strict=True)
            ],
            "moments": _moments(markers),
            "rows": rows,
        },
    )


def _moments(markers) -> dict | None:
    used = [m for m in markers if m["records"]]
    if not used:
        return None
    return {
        "sum": np.sum([m["sum"] for m in used], axis=0).tolist(),
        "sum_sq": np.sum([m["sum_sq"] for m in used], axis=0).tolist(),
        "frames": int(sum(m["frames"] for m in used)),
    }


# -- opening ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Store:
    """A complete store for one manifest and feature config."""

    root: Path
    index: Path
    feature_key: str
    shards: tuple  # shard file paths, in manifest order
    shard_of: dict  # utterance key -> shard number
    moments: dict | None
    bytes: int

    def describe(self) -> dict:
        """What a run records in its env.json."""
        return {
            "path": str(self.root),
            "index": self.index.name,
            "feature_key": self.feature_key[:24],
            "shards": len(self.shards),
            "bytes": self.bytes,
        }

    def feature_stats(self):
        from .features import FeatureStats

        if not self.moments:
            raise FeatureStoreError(f"{self.index}: the store holds no frames")
        n = self.moments["frames"]
        mean = np.asarray(self.moments["sum"]) / n
        std = np.sqrt(np.maximum(np.asarray(self.moments["sum_sq"]) / n - mean**2, 1e-10))
        return FeatureStats(tuple(map(float, mean)), tuple(map(float, std)))


def open_store(root, utterances, config: Config):
    """The complete store of ``utterances`` under ``root``, checked: its index (the
    completion marker) and every shard at its recorded size; else a one-line error."""
    root = Path(root)
    if not root.is_dir():
        raise FeatureStoreError(f"{root}: no feature store here; build it with speech-rnn cache")
    plan = plan_shards(utterances, config, shard_size(root))
    index = _index_path(root, [n for n, _ in plan])
    hint = "run speech-rnn cache with the same manifest(s) and config to complete it"
    if not index.is_file():
        have = sum(_shard_ok(root, n) is not None for n, _ in plan)
        raise FeatureStoreError(
            f"{root}: no complete feature store for this manifest and feature config "
            f"({have} of {len(plan)} shards, no completion marker {index.name}); {hint}"
        )
    try:
        meta = json.loads(index.read_text(encoding="utf-8"))
        shards = meta["shards"]
        rows = meta["rows"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise FeatureStoreError(f"{index}: not a valid store index ({e}); {hint}") from None
    if meta.get("feature_key") != feature_key(config) or len(shards) != len(plan):
        raise FeatureStoreError(f"{index}: written for other features or lines; {hint}")
    paths = []
    for entry in shards:
        path = root / "shards" / f"{entry['name']}.tfrecord"
        try:
            size = path.stat().st_size
        except OSError:
            raise FeatureStoreError(f"{path}: shard missing; {hint}") from None
        if size != entry["bytes"]:
            raise FeatureStoreError(
                f"{path}: truncated or changed ({size} bytes, {entry['bytes']} recorded); {hint}"
            )
        paths.append(str(path))
    return Store(
        root,
        index,
        meta["feature_key"],
        tuple(paths),
        {row[0]: int(row[3]) for row in rows},
        meta.get("moments"),
        int(sum(e["bytes"] for e in shards)),
    )


# -- reading ---------------------------------------------------------------------------------
def parse_record(serialized, num_mel_bins: int):
    """A serialized record -> {"key", "log_mel" [frames, mel] float32}."""
    import tensorflow as tf

    spec = {
        "key": tf.io.FixedLenFeature([], tf.string),
        "frames": tf.io.FixedLenFeature([], tf.int64),
        "log_mel": tf.io.FixedLenFeature([], tf.string),
    }
    f = tf.io.parse_single_example(serialized, spec)
    log_mel = tf.reshape(tf.io.decode_raw(f["log_mel"], tf.float16), [-1, num_mel_bins])
    return {"key": f["key"], "log_mel": tf.cast(log_mel, tf.float32)}


def partition_shards(num_shards: int, partitions: int, partition: int) -> list:
    return list(range(partition, num_shards, partitions))


def worker_partitions(partitions: int, workers: int, worker: int) -> list:
    return list(range(worker, partitions, workers))


class StoreInput:
    """Training batches read from a :class:`Store`, by partition (see the module doc).

    ``examples``: the pre-flight examples (labels, durations); stored utterances that the
    pre-flight check dropped are read and filtered out. ``records_read`` counts the records
    this process read, for the logs and the tests."""

    def __init__(
        self,
        store: Store,
        examples,
        config: Config,
        extractor,
        *,
        label_length,
        boundaries,
        global_batch: int,
        replicas: int,
        partitions: int,
    ):
        import tensorflow as tf

        from .pipeline import batches_per_epoch, bucket_batch_sizes

        if partitions < 1 or global_batch % partitions:
            raise FeatureStoreError(
                f"{store.root}: the global batch ({global_batch}) must split evenly into "
                f"train.input_partitions ({partitions})"
            )
        self.store, self.examples, self.config, self.extractor = store, examples, config, extractor
        self.label_length, self.boundaries, self.partitions = label_length, boundaries, partitions
        per_replica = replicas // partitions if replicas % partitions == 0 else 1
        self.sizes = bucket_batch_sizes(boundaries, config, global_batch // partitions, per_replica)
        # Which partition each example is in, and the batches each partition makes.
        missing = [e.utterance.key for e in examples if e.utterance.key not in store.shard_of]
        if missing:
            raise FeatureStoreError(f"{store.index}: utterance {missing[0]} is not in the store")
        shard = np.array([store.shard_of[e.utterance.key] for e in examples])
        self.counts = []
        for p in range(partitions):
            mine = [e for e, s in zip(examples, shard, strict=True) if s % partitions == p]
            self.counts.append(batches_per_epoch(mine, boundaries, self.sizes)[0] if mine else 0)
        self.steps = max(self.counts)
        self.records_read = tf.Variable(0, dtype=tf.int64, trainable=False)
        keys = tf.constant([e.utterance.key for e in examples])
        self._table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(keys, tf.range(len(examples), dtype=tf.int32)),
            default_value=-1,
        )
        self._labels = tf.RaggedTensor.from_row_lengths(
            np.concatenate(
                [np.asarray(e.labels, np.int32) for e in examples] + [np.zeros(0, np.int32)]
            ),
            np.array([len(e.labels) for e in examples], np.int32),
        )
        self._seconds = tf.constant([e.utterance.duration for e in examples], tf.float32)

    def describe(self, workers: int) -> dict:
        """The store as the run records it (env.json), with what this worker reads."""
        from .distribute import cluster_from_env

        cluster = cluster_from_env()  # the input pipeline's id, as tf.distribute numbers it
        worker = cluster.task_index + (cluster.has_chief and cluster.task_type == "worker")
        worker = worker if workers > 1 else 0
        return {
            **self.store.describe(),
            "partitions": self.partitions,
            "worker_shards": self.shards_of_worker(worker, workers),
        }

    def read_count(self) -> int:
        return int(self.records_read.numpy())

    def shards_of_worker(self, worker: int, workers: int) -> list:
        return sorted(
            s
            for p in worker_partitions(self.partitions, workers, worker)
            for s in partition_shards(len(self.store.shards), self.partitions, p)
        )

    def _partition(self, p: int, training: bool, epoch: int):
        import tensorflow as tf

        from .pipeline import windows_in_buckets

        tc = self.config.train
        shards = partition_shards(len(self.store.shards), self.partitions, p)
        if training:
            rng = np.random.default_rng([tc.seed, epoch, p])
            shards = list(rng.permutation(shards))
        files = tf.data.Dataset.from_tensor_slices([self.store.shards[s] for s in shards])
        ds = files.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(4, len(shards)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        counter, mel = self.records_read, self.config.features.num_mel_bins

        def join(serialized):
            record = parse_record(serialized, mel)
            i = self._table.lookup(record["key"])
            safe = tf.maximum(i, 0)
            with tf.control_dependencies([counter.assign_add(1)]):
                index = tf.identity(i)
            return {
                "log_mel": record["log_mel"],
                "labels": self._labels[safe],
                "index": index,
                "audio_seconds": tf.gather(self._seconds, safe),
            }

        ds = ds.map(join, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.filter(lambda item: item["index"] >= 0)  # dropped by the pre-flight check
        if training:
            ds = ds.shuffle(
                min(tc.shuffle_buffer, len(self.examples)),
                seed=tc.seed + 1009 * p + epoch,
                reshuffle_each_iteration=False,
            )
        ds = windows_in_buckets(
            ds,
            self.config,
            self.extractor,
            training=training,
            epoch=epoch,
            label_length=self.label_length,
            boundaries=self.boundaries,
            sizes=self.sizes,
        )
        # Every partition yields the same number of batches: a short one ends with empty
        # batches, so that every worker takes the same number of steps.
        pad = self.steps - self.counts[p]
        return ds.concatenate(tf.data.Dataset.from_tensors(self._empty_batch()).repeat(pad))

    def _empty_batch(self) -> dict:
        import tensorflow as tf

        from .features import window_dim

        dim = window_dim(self.config.features)
        return {
            "features": tf.zeros([0, self.boundaries[0], dim], tf.float32),
            "feature_lengths": tf.zeros([0], tf.int32),
            "labels": tf.zeros([0, self.label_length], tf.int32),
            "label_lengths": tf.zeros([0], tf.int32),
            "index": tf.zeros([0], tf.int32),
            "audio_seconds": tf.zeros([0], tf.float32),
        }

    def worker_dataset(
        self, worker: int, workers: int, *, epoch: int, skip_batches: int = 0, training: bool = True
    ):
        """This worker's batches: one from each of its partitions per step, joined."""
        import tensorflow as tf

        mine = worker_partitions(self.partitions, workers, worker)
        if not mine:
            raise FeatureStoreError(
                f"{self.store.root}: train.input_partitions ({self.partitions}) is fewer "
                f"than the workers ({workers})"
            )
        parts = [self._partition(p, training, epoch) for p in mine]
        ds = parts[0] if len(parts) == 1 else tf.data.Dataset.zip(tuple(parts)).map(_join_batches)
        if skip_batches:
            ds = ds.skip(skip_batches)
        options = tf.data.Options()
        options.deterministic = True
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    def dataset(self, strategy, workers: int, *, epoch: int, skip_batches: int = 0):
        """The epoch's input for ``fit``: with several workers, each builds only its own
        part (``distribute_datasets_from_function``)."""
        if workers <= 1:
            return self.worker_dataset(0, 1, epoch=epoch, skip_batches=skip_batches)
        return strategy.distribute_datasets_from_function(
            lambda context: self.worker_dataset(
                context.input_pipeline_id,
                context.num_input_pipelines,
                epoch=epoch,
                skip_batches=skip_batches,
            )
        )


def _join_batches(*batches):
    """One batch from several partitions' batches, features padded to the longest."""
    import tensorflow as tf

    longest = tf.reduce_max([tf.shape(b["features"])[1] for b in batches])
    out = {}
    for name in batches[0]:
        parts = [b[name] for b in batches]
        if name == "features":
            parts = [tf.pad(x, [[0, 0], [0, longest - tf.shape(x)[1]], [0, 0]]) for x in parts]
        out[name] = tf.concat(parts, axis=0)
    return out
