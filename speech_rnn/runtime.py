"""The process TensorFlow runs in: thread pools, start-up chatter, what machine this is.

Thread settings must be applied before TensorFlow runs its first op, so commands call
:func:`apply_threads` first thing.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path


def quiet_tensorflow() -> None:
    """Import TensorFlow with its start-up chatter (C++ lines about CUDA drivers and oneDNN,
    printed before its logging is configured) sent to /dev/null, so that a CLI error is one
    line. Python exceptions are unaffected. SPEECH_RNN_TF_LOGS=1 keeps the chatter."""
    if os.environ.get("SPEECH_RNN_TF_LOGS"):
        return
    # Level 3: C++ error lines too (e.g. "oneDNN supports DT_BOOL only on ..."); real
    # failures still arrive as Python exceptions, which the CLI reports.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here, not at import
        except ImportError:
            pass  # reported properly when a command actually needs TensorFlow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def max_threads() -> int:
    """The most threads a pool may be given: 4 per core. More only adds stacks and
    contention (100000 threads grew a process to 7.8 GB and never finished)."""
    return 4 * (os.cpu_count() or 1)


def apply_threads(threads: int | None) -> dict:
    """Inside a worker, before any TensorFlow op: cap the thread pools; return what is set.
    A count outside 1..:func:`max_threads` is a ValueError."""
    import tensorflow as tf

    if threads and not 1 <= int(threads) <= max_threads():
        raise ValueError(f"threads must be between 1 and {max_threads()}, got {threads}")
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    return thread_settings()


def thread_settings() -> dict:
    import tensorflow as tf

    intra = tf.config.threading.get_intra_op_parallelism_threads()
    inter = tf.config.threading.get_inter_op_parallelism_threads()
    return {
        "intra_op": intra or f"default (0: {os.cpu_count()} cores)",
        "inter_op": inter or f"default (0: {os.cpu_count()} cores)",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if out.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain"],
                cwd=here,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def add_threads_flag(parser) -> None:
    """``--threads N`` on a command's argparse parser; the CLI applies it (bounded by
    :func:`max_threads`) before TensorFlow starts."""
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="TensorFlow threads (intra- and inter-op pools; default: all cores). "
        "1 is often faster per file on a busy machine, where idle threads "
        "spin waiting for descheduled ones",
    )
