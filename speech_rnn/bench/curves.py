"""Dev CER against training wall time, read from run folders' ``history.jsonl``.

Every evaluation line carries ``elapsed_s``: seconds since the training hooks started in
that invocation (compilation and dev scoring included, the same clock as
``train.max_minutes``). ``docs/accuracy.md`` compares recipes by the dev CER they reach at
fixed points of that clock, and draws the curves with :func:`plot_curves`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..runfolder import load_history


@dataclass(frozen=True)
class CurvePoint:
    minutes: float
    step: int
    dev_cer: float
    dev_wer: float


def dev_curve(run_dir) -> list[CurvePoint]:
    """The run's evaluations in time order. A resumed run restarts its clock, so only
    the first invocation's evaluations (clock still rising) are kept."""
    points: list[CurvePoint] = []
    for record in load_history(run_dir):
        minutes = record["elapsed_s"] / 60
        if points and minutes < points[-1].minutes:
            break
        points.append(CurvePoint(minutes, record["step"], record["dev_cer"], record["dev_wer"]))
    return points


def cer_at(points: list[CurvePoint], minutes: float) -> float | None:
    """Dev CER of the last evaluation at or before ``minutes`` (None if none yet)."""
    before = [p for p in points if p.minutes <= minutes + 1e-9]
    return before[-1].dev_cer if before else None


def plot_curves(runs: dict, out_png, title: str = "dev CER vs training time") -> Path:
    """One line per ``{label: run_dir}``; CER in percent against minutes; PNG written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, run_dir in runs.items():
        points = dev_curve(run_dir)
        if not points:
            raise ValueError(f"{run_dir}: no dev evaluations in history.jsonl")
        ax.plot(
            [p.minutes for p in points], [100 * p.dev_cer for p in points], marker="o", label=label
        )
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("dev CER (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
