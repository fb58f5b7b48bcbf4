"""The run folder: everything needed to resume training or to transcribe.

config.json          resolved configuration (the one object that defines features/model)
vocab.json           characters; the CTC blank is the last class
feature_stats.json   global feature mean / std from the training set
checkpoints/         full training state (weights, optimizer, schedule, epoch, position)
last.keras           acoustic model after the latest epoch or stop
best.keras           acoustic model with the best dev WER so far
tensorboard/         train/ and dev/ event files
env.json             versions, device, git hash, seed, command line
metrics.json         final metrics; history.jsonl: one line per evaluation
cache/               cached training features (safe to delete)
lm.arpa, lm.json     optional: the run's word n-gram LM and its tuned decoding weights
                     (alpha, beta, beam width); transcribe/evaluate use it unless --no-lm
train.lock           held (flock) by the one process training into the folder: pid, host,
                     start time; the kernel releases it when that process ends, even by
                     kill -9, so a stale file never blocks a resume
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import RunFolderError
from .fileio import atomic_write_json
from .runtime import cpu_model, git_commit


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    config = property(lambda self: self.root / "config.json")
    vocab = property(lambda self: self.root / "vocab.json")
    feature_stats = property(lambda self: self.root / "feature_stats.json")
    checkpoints = property(lambda self: self.root / "checkpoints")
    last_model = property(lambda self: self.root / "last.keras")
    best_model = property(lambda self: self.root / "best.keras")
    tensorboard = property(lambda self: self.root / "tensorboard")
    env = property(lambda self: self.root / "env.json")
    metrics = property(lambda self: self.root / "metrics.json")
    history = property(lambda self: self.root / "history.jsonl")
    nonfinite_log = property(lambda self: self.root / "nonfinite_batches.log")
    cache = property(lambda self: self.root / "cache")
    lock = property(lambda self: self.root / "train.lock")
    lm = property(lambda self: self.root / "lm.arpa")
    lm_settings = property(lambda self: self.root / "lm.json")

    def exists(self) -> bool:
        return self.config.is_file()

    def model_path(self, which: str = "best") -> Path:
        """The exported model to load: ``best`` (falls back to ``last``) or ``last``."""
        if which == "best" and self.best_model.is_file():
            return self.best_model
        if self.last_model.is_file():
            return self.last_model
        raise RunFolderError(
            f"{self.root}: no trained model (best.keras / last.keras) found; "
            "is this a run folder that has finished at least one epoch?"
        )


def read_lm_settings(run: RunFolder) -> dict | None:
    """The run's own LM settings (``lm.json`` beside ``lm.arpa``), or None if it carries no
    LM. A half-present or unreadable pair is a RunFolderError, never a silent fallback."""
    if not run.lm_settings.is_file() and not run.lm.is_file():
        return None
    if not (run.lm_settings.is_file() and run.lm.is_file()):
        raise RunFolderError(
            f"{run.root}: lm.arpa and lm.json go together and one is missing; "
            "rebuild it with 'speech-rnn lm attach', or delete the other"
        )
    try:
        settings = json.loads(run.lm_settings.read_text(encoding="utf-8"))
        alpha, beta = float(settings["alpha"]), float(settings["beta"])
        beam = int(settings["beam_width"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunFolderError(f"{run.lm_settings}: not readable LM settings ({e})") from None
    if beam < 2 or alpha < 0 or beta < 0:
        raise RunFolderError(f"{run.lm_settings}: needs alpha, beta >= 0 and beam_width >= 2")
    return {**settings, "alpha": alpha, "beta": beta, "beam_width": beam}


class RunLockedError(RunFolderError):
    """Another process is training into the run folder."""


@contextlib.contextmanager
def run_lock(run: RunFolder):
    """Hold the run folder's ``train.lock`` (an exclusive ``flock``) for the ``with`` block;
    a second writer gets a :class:`RunLockedError` naming the holder (pid, host, start
    time). The kernel drops the lock when its holder dies (kill -9 included), so the file a
    killed run leaves behind never blocks a resume."""
    run.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(run.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
                who = f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
            except (ValueError, KeyError, TypeError):
                who = "holder unknown"
            raise RunLockedError(
                f"{run.root}: another training process is writing this run folder ({who}); "
                "wait for it to end, or train into a new --out folder"
            ) from None
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": started}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


class SaveError(RunFolderError):
    """Writing a checkpoint or model failed (a full disk, say); the previous one is intact."""


def guarded_save(what: str, path, save) -> None:
    """Run ``save()``; turn an OS or TensorFlow I/O failure into one clear SaveError."""
    try:
        save()
    except OSError as e:
        raise SaveError(
            f"{path}: cannot write the {what} ({e.strerror or e}); the previous {what} is intact"
        ) from None
    except Exception as e:  # tf.errors.OpError from the checkpoint writer
        if type(e).__module__.startswith("tensorflow"):
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise SaveError(
                f"{path}: cannot write the {what} ({first}); the previous {what} is intact"
            ) from None
        raise


def save_keras_atomic(model, path: Path) -> None:
    """``model.save`` to a temporary ``.keras`` file beside ``path``, then rename it over, so
    an interruption or a full disk never leaves a half-written model in place."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")

    def save():
        try:
            model.save(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    guarded_save("model", path, save)


def load_keras_safe(path: Path):
    """Load a ``.keras`` model with ``safe_mode=True``: no Lambda layers, no pickled code.
    Anything wrong with the file is a RunFolderError, never code execution."""
    import keras

    from . import model as _model  # registers LengthMask for deserialization

    del _model
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001 - whatever a crafted file raises, it is not a model
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunFolderError(f"{path}: cannot load model safely ({first[:300]})") from None


def describe_environment(seed: int) -> dict:
    import keras
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "devices": gpus or ["CPU"],
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "git_commit": git_commit(),
        "seed": seed,
        "command": sys.argv,
    }


def write_env(run: RunFolder, seed: int, extra: dict | None = None) -> None:
    env = describe_environment(seed)
    env.update(extra or {})
    atomic_write_json(run.env, env)


def append_history(run: RunFolder, record: dict) -> None:
    with open(run.history, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def load_history(run_dir) -> list:
    """The run's ``history.jsonl``: one dict per evaluation (empty if none yet)."""
    path = RunFolder(run_dir).history if not isinstance(run_dir, RunFolder) else run_dir.history
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
