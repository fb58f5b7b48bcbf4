"""Shared pieces of the benchmark suite (:mod:`speech_rnn.bench`): the data it runs on, the
worker subprocesses, timing helpers and the machine description.

Every measurement runs in a worker subprocess (``python -m speech_rnn.bench_worker``), so
that thread settings are applied before TensorFlow initializes and each worker's peak
resident memory (``resource.getrusage``) belongs to one job.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .config import Config
from .errors import SpeechRnnError
from .manifest import Utterance

DIGITS = "zero one two three four five six seven eight nine".split()


class BenchError(SpeechRnnError):
    """A benchmark could not run (no data, a worker failed)."""


# -- timing -------------------------------------------------------------------------------------
def median(values) -> float:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else float("nan")


def clock() -> float:
    return time.perf_counter()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- data ---------------------------------------------------------------------------------------
def kathleen_utterances(data_dir, limit: int | None = None) -> list:
    """Kathleen clips (16 kHz FLAC + transcript) in file-name order."""
    import soundfile
    folder = Path(data_dir) / "kathleen"
    out = []
    for flac in sorted(folder.glob("*.flac")):
        text_file = flac.with_suffix(".txt")
        if not text_file.is_file():
            continue
        out.append(Utterance(str(flac), soundfile.info(str(flac)).duration,
                             text_file.read_text(encoding="utf-8").strip(), id=flac.stem))
        if limit is not None and len(out) >= limit:
            break
    return out


def fsdd_utterances(data_dir, limit: int | None = None) -> list:
    """FSDD digits (8 kHz WAV, so the pipeline resamples them), spread over speakers."""
    import soundfile
    files = sorted((Path(data_dir) / "fsdd").glob("*.wav"))
    if limit is not None and files:
        step = max(1, len(files) // max(limit, 1))
        files = files[::step][:limit]
    return [Utterance(str(f), soundfile.info(str(f)).duration, DIGITS[int(f.name[0])], id=f.stem)
            for f in files if f.name[0].isdigit()]


def manifest_utterances(path, limit: int | None = None) -> list:
    from .manifest import read_manifest
    utterances = read_manifest(path)
    return utterances[:limit] if limit is not None else utterances


def to_dicts(utterances) -> list:
    return [{"audio_filepath": u.audio_filepath, "duration": u.duration, "text": u.text,
             "id": u.id} for u in utterances]


def from_dicts(items) -> list:
    return [Utterance(d["audio_filepath"], float(d["duration"]), d["text"], id=d.get("id"))
            for d in items]


def build_examples(utterances, config: Config, vocab=None):
    """(vocabulary, usable pre-flight examples); headers only, durations trusted."""
    from .preflight import check_utterances
    from .text import Vocabulary, normalize_text
    if vocab is None:
        texts = []
        for u in utterances:
            try:
                texts.append(normalize_text(u.text, config.text))
            except SpeechRnnError:
                pass
        vocab = Vocabulary.from_transcripts(texts)
    result = check_utterances(utterances, vocab, config, check_audio=False)
    if not result.examples:
        raise BenchError("no usable utterances to benchmark")
    return vocab, list(result.examples)


# -- workers ------------------------------------------------------------------------------------
_IN_PROCESS = {"on": False}


def set_in_process(flag: bool) -> None:
    """Run the measurements in this process instead of worker subprocesses: faster (one
    TensorFlow start), for checking that the code runs; thread settings are then not
    applied and peak memory is this process'."""
    _IN_PROCESS["on"] = bool(flag)


def run_worker(task: str, spec: dict, work_dir, threads: int | None = None,
               timeout: float = 1800) -> dict:
    """Run one measurement in a fresh Python process; returns its result dict. ``threads``
    caps TensorFlow's intra/inter-op pools (and OpenMP's) before TensorFlow initializes."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = dict(spec, threads=threads, work_dir=str(work_dir))
    spec.setdefault("max_rss_gib", memory_limit_gib())
    if _IN_PROCESS["on"]:
        from .bench_worker import run_task
        started = clock()
        result = run_task(task, spec)
        result["threads"] = dict(result["threads"], requested=threads,
                                 note="in-process run: thread settings not applied")
        result["worker_wall_s"] = round(clock() - started, 2)
        return result
    stamp = f"{task}_{time.monotonic_ns()}"
    spec_path, out_path = work_dir / f"{stamp}.spec.json", work_dir / f"{stamp}.out.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
        env["TF_NUM_INTRAOP_THREADS"] = str(threads)
        env["TF_NUM_INTEROP_THREADS"] = str(threads)
    started = clock()
    try:
        proc = subprocess.run([sys.executable, "-m", "speech_rnn.bench_worker", task,
                               str(spec_path), str(out_path)], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{task}: worker ran past {timeout:.0f} s") from None
    memory = Path(str(out_path) + ".memory")
    if memory.is_file():
        raise BenchError(f"{task}: {memory.read_text(encoding='utf-8')}")
    if proc.returncode != 0 or not out_path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise BenchError(f"{task}: worker failed (exit {proc.returncode}): " + " | ".join(tail))
    result = json.loads(out_path.read_text(encoding="utf-8"))
    result["worker_wall_s"] = round(clock() - started, 2)
    return result


def memory_limit_gib() -> float:
    """Half of the machine's memory: a worker that needs more is stopped (and reported)."""
    try:
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    except (ValueError, OSError, AttributeError):
        return 8.0


def apply_threads(threads: int | None) -> dict:
    """Inside a worker, before any TensorFlow op: cap the thread pools; return what is set."""
    import tensorflow as tf
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    return thread_settings()


def thread_settings() -> dict:
    import tensorflow as tf
    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return {"intra_op": intra or f"default (0: {os.cpu_count()} cores)",
            "inter_op": inter or f"default (0: {os.cpu_count()} cores)",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


# -- machine ------------------------------------------------------------------------------------
def _version(*names) -> str | None:
    from importlib import metadata
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def describe_machine() -> dict:
    from .runfolder import _cpu_model, _git_commit
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gib = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_gib": memory_gib,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "librosa": _version("librosa"),
        "pocketsphinx": _version("pocketsphinx"),
        "git_commit": _git_commit(),
        "thread_env": {k: os.environ.get(k) for k in
                       ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                        "OPENBLAS_CORETYPE", "TF_ENABLE_ONEDNN_OPTS")},
    }
