#!/usr/bin/env python
"""Dev CER against training wall time for several run folders: a PNG and a table.

    python scripts/plot_accuracy.py runs/old=old_default runs/new="new default" \
        --out docs/images/demo_dev_cer.png --at 5 10

Each RUN=LABEL is a run folder with ``history.jsonl`` (train with
``--set train.eval_every_steps=N`` to get more than one point per epoch). The table gives
each run's dev CER at the last evaluation at or before each ``--at`` minute.
"""

import argparse
import sys
from pathlib import Path

from speech_rnn.bench.curves import cer_at, dev_curve, plot_curves


def _run_and_label(text: str) -> tuple[str, Path]:
    path, _, label = text.partition("=")
    return (label or Path(path).name), Path(path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", metavar="RUN[=LABEL]", help="run folder and its label")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--title", default="dev CER vs training time", help="plot title")
    p.add_argument("--at", type=float, nargs="*", default=[5.0, 10.0], help="minutes to tabulate")
    args = p.parse_args()
    runs = dict(_run_and_label(r) for r in args.runs)
    for run in runs.values():
        if not (run / "history.jsonl").is_file():
            p.error(f"{run}: no history.jsonl (not a run folder, or never evaluated)")
    plot_curves(runs, args.out, args.title)
    print("run".ljust(24) + "".join(f"CER@{m:g}min".rjust(12) for m in args.at))
    for label, run in runs.items():
        points = dev_curve(run)
        cells = [cer_at(points, m) for m in args.at]
        print(
            label[:24].ljust(24)
            + "".join(("-" if c is None else f"{100 * c:.2f}%").rjust(12) for c in cells)
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
