"""``speech-rnn demo`` end to end on a tiny budget: it builds the synthetic corpus, trains,
scores the held-out split and transcribes samples. The first run goes through ``main()`` in
this process; the second, which resumes it, through the console script, as a user runs it
again."""

from __future__ import annotations

import re

import pytest
from conftest import cli, run_cli

pytest.importorskip("espeakng_loader")


def demo(tmp_path, run=run_cli):
    return run(
        "demo",
        "--hours",
        0.02,
        "--minutes",
        0.1,
        "--corpus",
        tmp_path / "corpus",
        "--out",
        tmp_path / "run",
        "--set",
        "model.lstm_units=16",
        "--set",
        "model.lstm_layers=1",
        "--set",
        "train.jit_compile=false",
        "--quiet",
        "--samples",
        2,
    )


@pytest.fixture(scope="module")
def first_demo(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("demo")
    return tmp_path, demo(tmp_path, run=cli)


def test_demo_end_to_end_on_a_tiny_budget(first_demo):
    tmp_path, proc = first_demo
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Traceback" not in proc.stderr
    assert "synth:" not in proc.stderr  # --quiet: no progress bar, the corpus's included
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


def test_the_demo_trains_with_its_preset_and_set_overrides_it(first_demo):
    """The run folder's config is the demo preset plus the command's --set values, which
    win where both give a key."""
    import json

    from speech_rnn.config import Config
    from speech_rnn.synth.demo import DEMO_PRESET

    tmp_path, proc = first_demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = Config.from_dict(json.loads((tmp_path / "run" / "config.json").read_text()))
    preset = Config().with_overrides(list(DEMO_PRESET))
    assert preset != Config()
    assert saved.train.batch_size == preset.train.batch_size
    assert saved.train.lr_schedule == preset.train.lr_schedule
    assert saved.model.layer_norm == preset.model.layer_norm
    assert saved.features.normalization == preset.features.normalization == "utterance"
    assert (saved.model.lstm_units, saved.model.lstm_layers) == (16, 1)  # --set wins
    assert saved.train.max_minutes == 0.1


def test_running_the_demo_again_resumes_the_run(first_demo):
    """README: "Run it again to reuse the corpus and resume the run": the second run reuses
    the corpus as it is, says it resumes, restores the step where the first stopped, and
    its step count continues from there."""
    import json

    from speech_rnn.runfolder import load_history

    tmp_path, proc = first_demo
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "run"
    first = json.loads((run / "metrics.json").read_text())
    first_evals = len(load_history(run))
    files = [p for p in (tmp_path / "corpus").rglob("*") if p.is_file()]
    audio = {p: p.stat().st_mtime_ns for p in files if p.suffix != ".jsonl"}
    manifests = {p: p.read_bytes() for p in files if p.suffix == ".jsonl"}
    assert len(audio) > 10 and len(manifests) == 3
    again = demo(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming run: {run}" in again.stdout
    restored = rf"restored \S+: epoch \d+, batch \d+, step {first['steps']}\n"
    assert first["steps"] >= 1 and re.search(restored, again.stdout), again.stdout[-3000:]
    second = json.loads((run / "metrics.json").read_text())
    assert second["steps"] > first["steps"]
    steps = [h["step"] for h in load_history(run)]
    resumed = steps[first_evals:]
    assert all(s > first["steps"] for s in resumed) and steps == sorted(steps), steps
    # the corpus is reused: no audio file written again, the same manifests
    assert {p: p.stat().st_mtime_ns for p in audio} == audio
    assert {p: p.read_bytes() for p in manifests} == manifests
