"""One benchmark measurement in its own process:
``python -m speech_rnn.bench.worker TASK SPEC.json OUT.json``.

The spec's ``threads`` is applied before TensorFlow runs anything; the result gets the
thread settings in force and the process' peak resident memory.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

from ..runtime import apply_threads, thread_settings
from . import infer as bench_infer
from . import pipeline as bench_pipeline
from . import train as bench_train
from .common import peak_rss_mb


def _tasks():
    return {
        "pipeline": bench_pipeline.run,
        "train": bench_train.run,
        "scale_train": bench_train.run_scaling,
        "cer_curve": bench_train.run_cer_curve,
        "make_model": bench_infer.make_model,
        "infer": bench_infer.run,
        "scale_infer": bench_infer.run_scaling,
    }


def run_task(task: str, spec: dict) -> dict:
    """Run ``task`` here; add the thread settings in force and the peak resident memory."""
    result = _tasks()[task](spec)
    result["threads"] = thread_settings()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def watch_memory(limit_gib: float, out_path: str) -> None:
    """Stop this process (exit 3, with the reason in ``out_path``) if its resident memory
    passes ``limit_gib``: a benchmark must not take a shared machine down."""
    import threading
    import time

    if not os.path.exists("/proc/self/statm"):
        return

    def watch():
        while True:
            rss = _rss_bytes()
            if rss > limit_gib * 2**30:
                with open(out_path + ".memory", "w", encoding="utf-8") as f:
                    f.write(
                        f"resident memory passed the {limit_gib:.1f} GiB limit "
                        f"({rss / 2**30:.1f} GiB); stopped"
                    )
                os._exit(3)
            time.sleep(0.1)

    threading.Thread(target=watch, daemon=True).start()


def main(argv=None) -> int:
    task, spec_path, out_path = (argv or sys.argv[1:])[:3]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore")
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    if spec.get("max_rss_gib"):
        watch_memory(float(spec["max_rss_gib"]), out_path)
    apply_threads(spec.get("threads"))
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    result = run_task(task, spec)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, default=float)
    os.replace(tmp, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
