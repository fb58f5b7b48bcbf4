"""One benchmark measurement in its own process:
``python -m speech_rnn.bench_worker TASK SPEC.json OUT.json``.

The spec's ``threads`` is applied before TensorFlow runs anything; the result gets the
thread settings in force and the process' peak resident memory.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import warnings


def _tasks():
    from . import bench_infer, bench_pipeline, bench_train
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
    from .bench_common import peak_rss_mb, thread_settings
    result = _tasks()[task](spec)
    result["threads"] = thread_settings()
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return result


def main(argv=None) -> int:
    task, spec_path, out_path = (argv or sys.argv[1:])[:3]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore")
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    from .bench_common import apply_threads
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
