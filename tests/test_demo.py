"""``speech-rnn demo`` end to end through the console script, on a tiny budget: it builds the
synthetic corpus, trains, scores the held-out split and transcribes samples."""

from __future__ import annotations

import re

import pytest
from test_cli import speech_rnn

pytest.importorskip("espeakng_loader")


def test_demo_end_to_end_on_a_tiny_budget(tmp_path):
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    proc = speech_rnn(
        "demo",
        "--hours",
        0.02,
        "--minutes",
        0.3,
        "--corpus",
        corpus,
        "--out",
        run,
        "--set",
        "model.lstm_units=16",
        "--set",
        "model.lstm_layers=1",
        "--set",
        "train.jit_compile=false",
        "--quiet",
        "--samples",
        2,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    assert f"tensorboard --logdir {tmp_path} --host 127.0.0.1" in out
    scored = re.search(r"test WER \d+\.\d\d%\s+CER \d+\.\d\d%\s+\((\d+) utterances\)", out)
    assert scored, out
    samples = out.split("[4/4]", 1)[1]  # training logs print dev samples of their own
    refs = re.findall(r"^\s+ref: (.+)$", samples, re.M)
    hyps = re.findall(r"^\s+hyp: ?(.*)$", samples, re.M)
    assert len(refs) == len(hyps) == min(2, int(scored.group(1))) >= 1 and all(refs)
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl"):
        assert (corpus / name).is_file()
    assert (run / "best.keras").is_file() and (run / "demo_test_report.json").is_file()
