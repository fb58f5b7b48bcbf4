"""Runs side by side: ``speech-rnn runs [DIR]`` prints one row per run folder under DIR,
its key settings and results, from ``config.json`` and ``metrics.json`` (no TensorFlow).
TensorBoard's HParams dashboard shows the same comparison (``tensorboard --logdir DIR``).
"""

from __future__ import annotations

import json
from pathlib import Path

from .runfolder import load_history

COLUMNS = (
    "run",
    "layers x units",
    "lr",
    "batch",
    "specaug",
    "features",
    "train h",
    "best WER",
    "best CER",
    "steps",
    "audio-s/s",
    "stop reason",
)


def find_runs(root, max_depth: int = 4) -> list:
    """Run folders (holding ``config.json``) at or below ``root``, sorted by path."""
    root = Path(root)
    found = []
    for config in root.rglob("config.json"):
        folder = config.parent
        depth = len(folder.relative_to(root).parts)
        if depth <= max_depth and (folder / "vocab.json").is_file():
            found.append(folder)
    return sorted(found)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def run_row(folder, root=None) -> dict:
    """One run's comparison row (strings), from its folder."""
    folder = Path(folder)
    config, metrics = _read(folder / "config.json"), _read(folder / "metrics.json")
    model, feats = config.get("model", {}), config.get("features", {})
    train, aug = config.get("train", {}), config.get("specaugment", {})
    history = load_history(folder)
    best_wer = metrics.get("best_dev_wer")
    best_cer = metrics.get("best_dev_cer")
    if history:  # also for a run still going, or stopped before metrics.json
        best_wer = min(r["dev_wer"] for r in history)
        best_cer = min(r["dev_cer"] for r in history)
    rate = metrics.get("audio_seconds_per_second")
    if rate is None and metrics.get("train_seconds_this_invocation"):
        rate = metrics["audio_seconds_seen"] / metrics["train_seconds_this_invocation"]
    hours = metrics.get("data", {}).get("train_hours")
    name = str(folder.relative_to(root)) if root and folder != Path(root) else folder.name
    return {
        "run": name,
        "layers x units": f"{model.get('lstm_layers', '?')} x {model.get('lstm_units', '?')}",
        "lr": f"{train.get('learning_rate', float('nan')):g}",
        "batch": str(train.get("batch_size", "?")),
        "specaug": "on" if aug.get("enabled") else "off",
        "features": f"{feats.get('num_mfcc', '?')} mfcc x{feats.get('stack', '?')}"
        f"/{feats.get('stride', '?')}",
        "train h": "-" if hours is None else f"{hours:.2f}",
        "best WER": _percent(best_wer),
        "best CER": _percent(best_cer),
        "steps": str(metrics.get("steps", history[-1]["step"] if history else "-")),
        "audio-s/s": "-" if rate is None else f"{rate:.1f}",
        "stop reason": metrics.get("stop_reason", "(running or interrupted)"),
    }


def runs_table(root) -> str:
    """A plain-text table of every run under ``root``, best dev WER first."""
    rows = [run_row(folder, root) for folder in find_runs(root)]
    if not rows:
        return f"no run folders (with config.json and vocab.json) under {root}"

    def key(row):
        wer = row["best WER"]
        return (wer == "-", float(wer.rstrip("%")) if wer != "-" else 0.0, row["run"])

    rows.sort(key=key)
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines.append("  ".join("-" * widths[c] for c in COLUMNS))
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    return "\n".join(lines)
