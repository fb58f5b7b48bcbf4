"""Dev CER against training time, read from history.jsonl (docs/accuracy.md's plots)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from speech_rnn.bench.curves import cer_at, dev_curve, plot_curves

ROOT = Path(__file__).resolve().parents[1]


def write_history(run: Path, rows) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps({"step": step, "elapsed_s": t, "dev_cer": cer, "dev_wer": min(1.0, 2 * cer)})
        for step, t, cer in rows
    ]
    (run / "history.jsonl").write_text("\n".join(lines) + "\n")
    return run


def test_the_curve_keeps_the_first_invocation_and_cer_at_takes_the_last_point_before(tmp_path):
    # the fourth row comes from a resumed invocation: its clock starts again
    run = write_history(
        tmp_path / "r", [(100, 120.0, 0.9), (200, 300.0, 0.5), (300, 610.0, 0.3), (400, 30.0, 0.2)]
    )
    points = dev_curve(run)
    assert [p.step for p in points] == [100, 200, 300]
    assert cer_at(points, 1.9) is None
    assert cer_at(points, 5.0) == 0.5  # exactly at 300 s
    assert cer_at(points, 10.0) == 0.5  # 610 s is past 10 minutes
    assert cer_at(points, 10.5) == 0.3


def test_plot_script_writes_a_png_and_the_table(tmp_path):
    old = write_history(
        tmp_path / "old", [(150, 200.0, 0.99), (300, 290.0, 0.92), (450, 590.0, 0.5)]
    )
    new = write_history(tmp_path / "new", [(300, 240.0, 0.77), (600, 320.0, 0.56)])
    out = tmp_path / "plots" / "cer.png"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "plot_accuracy.py"),
            f"{old}=old default",
            f"{new}=new",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = {line.split()[0]: line.split()[-2:] for line in proc.stdout.splitlines()[1:3]}
    assert rows == {"old": ["92.00%", "50.00%"], "new": ["77.00%", "56.00%"]}
    assert plot_curves({"again": new}, tmp_path / "b.png").is_file()
    missing = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "plot_accuracy.py"),
            str(tmp_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no history.jsonl" in missing.stderr
