"""The benchmark suite runs on tiny inputs and writes the fields it promises. Benchmarks are
not tests: nothing here checks how fast anything is."""

from __future__ import annotations

import json

import pytest
from conftest import shared_data

TINY = [
    "--set",
    "model.lstm_layers=1",
    "--set",
    "model.lstm_units=16",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.jit_compile=false",
]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    from speech_rnn.cli import main

    root = tmp_path_factory.mktemp("bench")
    out = root / "bench.json"
    code = main(
        [
            "bench",
            "--quick",
            "--in-process",
            "--data",
            str(shared_data()),
            "--out",
            str(out),
            "--work-dir",
            str(root / "work"),
            *TINY,
        ]
    )
    assert code == 0
    return json.loads(out.read_text())


def test_quick_run_writes_every_section(quick_report, capsys):
    report = quick_report
    machine = report["machine"]
    for key in ("cpu", "cores", "tensorflow", "keras", "thread_env", "load_average_at_start"):
        assert key in machine
    sections = report["sections"]
    assert not [name for name, s in sections.items() if "error" in s]

    p = sections["pipeline"]
    for key in (
        "cold_audio_s_per_s",
        "warm_audio_s_per_s",
        "librosa_audio_s_per_s",
        "cold_vs_librosa",
        "warm_vs_librosa",
        "padding_efficiency",
        "threads",
    ):
        assert p[key] is not None
    # The librosa loop computes the same features as the pipeline.
    assert p["tf_vs_librosa_features"]["median_abs_diff"] < 0.05

    t = sections["train"]["configs"]
    assert set(t) == {"default", "reference"}
    assert t["reference"]["stack"] == 1 and t["reference"]["stride"] == 1
    assert t["reference"]["jit_compile"] is False
    assert t["default"]["audio_s_per_s"] > 0 and t["reference"]["audio_s_per_s"] > 0
    assert t["default"]["input_bound_ratio"] > 0
    assert sections["train"]["matmul"]["flops_per_s"] > 0

    i = sections["inference"]
    for variant in ("one_thread", "all_threads"):
        assert i[variant]["rtf_greedy"] > 0 and i[variant]["rtf_beam"] > 0
        assert i[variant]["matmul"]["flops_per_s"] > 0
    assert i["all_threads"]["batch"]["x_realtime"] > 0
    assert i["all_threads"]["batch"]["failures"] == 0
    assert abs(sum(i["one_thread"]["breakdown_share"].values()) - 1) < 1e-6
    assert ("pocketsphinx_vs_ours_1_thread" in i) or ("pocketsphinx" in i)
    assert report["model"]["random_weights"] is True

    s = sections["scaling"]
    assert [r["seconds"] for r in s["train_step"]] == [1, 2]
    assert all(r["step_s"] > 0 and r["peak_rss_mb"] > 0 for r in s["train_step"])
    # the first step of a shape compiles it: slower than the warm steps after it
    assert all(r["first_step_s"] > r["step_s"] for r in s["train_step"])
    assert all(r["transcribe_s"] > 0 for r in s["transcribe"])

    r = sections["roofline"]
    for key in (
        "train_default_fraction",
        "train_reference_fraction",
        "inference_1_thread_per_file_fraction",
        "inference_batch_all_threads_fraction",
    ):
        assert r[key] > 0

    names = {row["name"] for row in report["targets"]}
    assert {
        "pipeline_cold_vs_librosa",
        "pipeline_warm_x_realtime",
        "input_bound_ratio",
        "train_default_audio_s_per_s",
        "train_default_vs_reference",
        "rtf_per_file_1_thread",
        "batch_x_realtime",
    } <= names
    assert all(
        row["met"] in (True, False)
        for row in report["targets"]
        if row["name"] != "pocketsphinx_vs_ours_1_thread"
    )


def test_table_lists_the_comparisons(quick_report):
    from speech_rnn.bench.suite import format_table

    table = format_table(quick_report)
    for text in (
        "librosa loop",
        "reference",
        "input-bound ratio",
        "RTF per file, 1 thread",
        "batch transcription",
        "roofline",
        "first step of that shape (trace + XLA compile)",
        "targets:",
    ):
        assert text in table


def test_worker_subprocess_applies_threads(tmp_path):
    """Workers are separate processes: the thread cap is in force, memory is their own."""
    from speech_rnn.bench.common import kathleen_utterances, to_dicts
    from speech_rnn.bench.launch import run_worker
    from speech_rnn.config import Config

    config = Config().with_overrides(["model.lstm_layers=1", "model.lstm_units=8"])
    utterances = to_dicts(kathleen_utterances(shared_data(), 3))
    result = run_worker(
        "make_model",
        {"config": config.to_dict(), "utterances": utterances, "run_dir": str(tmp_path / "model")},
        tmp_path,
        threads=1,
    )
    assert result["threads"]["intra_op"] == 1 and result["threads"]["inter_op"] == 1
    assert result["peak_rss_mb"] > 0
    assert (tmp_path / "model" / "last.keras").is_file()


def test_flop_count_of_the_default_model():
    from speech_rnn.bench.roofline import fraction_of_limit, model_flops
    from speech_rnn.config import Config

    flops = model_flops(Config(), num_classes=29)
    by_layer = flops["per_window_by_layer"]
    assert by_layer["bilstm_0"] == 2 * 4 * (104 + 256) * 256 * 2
    assert by_layer["bilstm_1"] == by_layer["bilstm_2"] == 2 * 4 * (512 + 256) * 256 * 2
    assert by_layer["logits"] == 2 * 512 * 29
    assert flops["training_flops_per_audio_second"] == 3 * flops["inference_flops_per_audio_second"]
    assert abs(flops["windows_per_audio_second"] - 1000 / 30) < 1e-9
    assert fraction_of_limit(1e9, 10.0, 2e10) == pytest.approx(0.5)


def test_bad_arguments_are_one_line_errors(capsys):
    from speech_rnn.cli import main

    assert main(["bench", "--only", "nonsense"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "speech-rnn bench: error: --only: unknown section(s) nonsense; "
        "valid: pipeline, train, inference, scaling"
    ], captured.err
    assert captured.out == ""
