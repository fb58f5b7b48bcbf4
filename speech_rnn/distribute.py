"""Distribution: pick a ``tf.distribute`` strategy and know this process's role.

``auto`` takes MultiWorkerMirroredStrategy when ``TF_CONFIG`` describes a cluster of several
workers, MirroredStrategy when several GPUs are visible, else the default strategy. Under
several workers only the chief writes the run folder; the others write to a temporary
folder that is removed at the end, and read the chief's checkpoints to resume.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .errors import ConfigError

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


@dataclass(frozen=True)
class Cluster:
    workers: int  # processes taking part (1 without TF_CONFIG)
    task_type: str
    task_index: int
    has_chief: bool = False

    @property
    def is_chief(self) -> bool:
        """The chief writes the run folder: task "chief", or worker 0 when there is none."""
        if self.has_chief:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


def cluster_from_env() -> Cluster:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return Cluster(1, "worker", 0)
    try:
        spec = json.loads(raw)
        cluster = spec.get("cluster", {})
        task = spec.get("task", {})
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        task_type, index = task.get("type", "worker"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError) as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON describing a cluster ({e})") from None
    return Cluster(max(workers, 1), task_type, index, has_chief="chief" in cluster)


def make_strategy(name: str):
    """(strategy, kind actually used)."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ConfigError(f"strategy {name!r} is not one of {', '.join(STRATEGIES)}")
    cluster = cluster_from_env()
    # Listing logical devices starts TensorFlow's runtime, after which a multi-worker
    # strategy can no longer be set up: decide that case from TF_CONFIG alone.
    if name == "multiworker" or (name == "auto" and cluster.workers > 1):
        return tf.distribute.MultiWorkerMirroredStrategy(), "multiworker"
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy(), "default"
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=[d.name for d in gpus] or cpus), "mirrored"


def agree(strategy, flag: bool) -> bool:
    """True when any worker says True (a stop decision every worker must share)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return flag
    votes = strategy.run(lambda: tf.constant(1 if flag else 0, tf.int32))
    return bool(strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None).numpy() > 0)
