"""Running one benchmark measurement in a fresh worker process (:mod:`.worker`), so that
thread settings apply before TensorFlow starts and peak memory belongs to one job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import BenchError, clock
from .worker import run_task

# -- workers ------------------------------------------------------------------------------------
_IN_PROCESS = {"on": False}


def set_in_process(flag: bool) -> None:
    """Run the measurements in this process instead of worker subprocesses: faster (one
    TensorFlow start), for checking that the code runs; thread settings are then not
    applied and peak memory is this process'."""
    _IN_PROCESS["on"] = bool(flag)


def run_worker(
    task: str, spec: dict, work_dir, threads: int | None = None, timeout: float = 1800
) -> dict:
    """Run one measurement in a fresh Python process; returns its result dict. ``threads``
    caps TensorFlow's intra/inter-op pools (and OpenMP's) before TensorFlow initializes."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = dict(spec, threads=threads, work_dir=str(work_dir))
    spec.setdefault("max_rss_gib", memory_limit_gib())
    if _IN_PROCESS["on"]:
        started = clock()
        result = run_task(task, spec)
        result["threads"] = dict(
            result["threads"], requested=threads, note="in-process run: thread settings not applied"
        )
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
        proc = subprocess.run(
            [sys.executable, "-m", "speech_rnn.bench.worker", task, str(spec_path), str(out_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
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
        return 0.5 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 8.0
