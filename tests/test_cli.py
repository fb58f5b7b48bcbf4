"""End to end through the command line: prepare -> train (tiny) -> evaluate (greedy,
beam, with an LM) -> transcribe (files, a folder, a bad file). The console script itself
(start-up, one-line errors, crashes, the scripts/ wrappers) runs in subprocesses; the
commands that train and decode run in this process through ``main()`` (conftest.cli),
which spares a TensorFlow import per command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, cli, short_kathleen_clips
from conftest import run_cli as speech_rnn

TINY = [
    "--set",
    "model.lstm_layers=1",
    "--set",
    "model.lstm_units=16",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.pictures_every=0",
    "--no-jit-compile",
    "--quiet",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    folder = root / "corpus"
    folder.mkdir()
    for clip in short_kathleen_clips(6, max_seconds=3.0):
        src = Path(clip.audio_filepath)
        shutil.copy(src, folder)
        shutil.copy(src.with_suffix(".txt"), folder)
    return root


def test_command_line_end_to_end(corpus):
    root = corpus
    prepared = speech_rnn(
        "prepare", root / "corpus", "--out", root / "manifests", "--split", "train=1"
    )
    assert prepared.returncode == 0, prepared.stderr
    manifest = root / "manifests" / "train.jsonl"
    assert len(manifest.read_text().splitlines()) == 6

    trained = cli(
        "train",
        "--train",
        manifest,
        "--dev",
        manifest,
        "--out",
        root / "runs" / "tiny",
        "--epochs",
        2,
        *TINY,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "tensorboard --logdir" in trained.stdout and "127.0.0.1" in trained.stdout
    # (a resumed run: test_demo.py through the console script, test_training.py in depth)
    metrics = json.loads((root / "runs" / "tiny" / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 2 and metrics["steps"] > 0

    evaluated = cli(
        "evaluate",
        "--model",
        root / "runs" / "tiny",
        "--manifest",
        manifest,
        "--out",
        root / "report.json",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "WER" in evaluated.stdout and "worst:" in evaluated.stdout
    report = json.loads((root / "report.json").read_text())
    assert report["utterances"] == 6 and 0.0 <= report["cer"]
    assert {"best", "median", "worst"} <= set(report)

    beam = cli(
        "evaluate",
        "--model",
        root / "runs" / "tiny",
        "--manifest",
        manifest,
        "--beam",
        8,
        "--out",
        root / "beam.json",
    )
    assert beam.returncode == 0, beam.stderr[-3000:]
    assert json.loads((root / "beam.json").read_text())["decoding"] == "beam"

    (root / "lm.txt").write_text(
        "\n".join(json.loads(line)["text"] for line in manifest.read_text().splitlines())
    )
    built = cli("lm", "build", "--text", root / "lm.txt", "--order", 2, "--out", root / "lm.arpa")
    assert built.returncode == 0, built.stderr[-3000:]
    with_lm = cli(
        "evaluate",
        "--model",
        root / "runs" / "tiny",
        "--manifest",
        manifest,
        "--lm",
        root / "lm.arpa",
        "--alpha",
        0.5,
        "--out",
        root / "lm.json",
    )
    assert with_lm.returncode == 0, with_lm.stderr[-3000:]
    lm_report = json.loads((root / "lm.json").read_text())
    assert lm_report["decoding"] == "beam+lm" and lm_report["alpha"] == 0.5
    assert lm_report["model_and_decoding_rtf"] > 0

    (root / "bad.wav").write_text("this is not audio")
    one = next((root / "corpus").glob("*.flac"))
    transcribed = cli(
        "transcribe", "--model", root / "runs" / "tiny", one, root / "bad.wav", root / "corpus"
    )
    assert transcribed.returncode == 1
    lines = transcribed.stdout.strip().splitlines()
    assert len(lines) == 1 + 6 and lines[0].startswith(str(one))
    assert "bad.wav" in transcribed.stderr and "Traceback" not in transcribed.stderr


def test_errors_are_one_line_without_traceback(tmp_path):
    missing = speech_rnn(
        "evaluate", "--model", tmp_path / "nothing", "--manifest", tmp_path / "m.jsonl"
    )
    assert missing.returncode == 2
    # exactly one line on stderr, the whole message: no traceback, no second line
    assert missing.stderr.splitlines() == [
        f"speech-rnn evaluate: error: {tmp_path / 'nothing'}: run folder not found"
    ], missing.stderr
    assert missing.stdout == ""
    # the same one-line form for an error the command finds in its flags (in this process:
    # the console script's own stderr is the check above)
    bad_set = cli(
        "train",
        "--train",
        tmp_path / "m.jsonl",
        "--out",
        tmp_path / "r",
        "--set",
        "train.bach_size=3",
    )
    assert bad_set.returncode == 2, bad_set.stderr
    [line] = bad_set.stderr.splitlines()
    assert line.startswith("speech-rnn train: error: --set.train: unknown key(s) bach_size; ")
    assert "valid keys: batch_size, " in line


def test_a_native_crash_still_names_the_python_line(tmp_path):
    """A segfault inside native code (TensorFlow's, once, near the end of a long run) kills
    the process without a Python traceback; the CLI turns on faulthandler so that stderr
    still shows which Python frame was running."""
    crash = (
        "import ctypes, sys\n"
        "from speech_rnn import cli\n"
        "cli.runs_table = lambda folder: ctypes.string_at(0)  # reads address 0: SIGSEGV\n"
        "sys.exit(cli.main(['runs', sys.argv[1]]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", crash, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == -11, result.stderr  # killed by SIGSEGV, as a real crash is
    assert "Fatal Python error: Segmentation fault" in result.stderr
    assert "speech_rnn/cli.py" in result.stderr  # the frames that were running


def test_main_runs_in_process_when_stderr_is_not_a_file(tmp_path, monkeypatch):
    """Called from Python with a stderr that has no file descriptor (a notebook, a captured
    stream), the CLI still runs: the crash traceback has nowhere to go and is skipped."""
    import io

    from speech_rnn.cli import main

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert main(["runs", str(tmp_path)]) == 0


def test_commands_that_run_no_model_start_without_tensorflow(tmp_path):
    """`lm build`, `prepare` and `runs` never import TensorFlow (5 s of CPU per start on these
    machines); `evaluate` does, before its first op, to silence TensorFlow's start-up lines."""
    (tmp_path / "lm.txt").write_text("the cat sat\nthe dog ran\n")
    commands = {
        "lm": ["lm", "build", "--text", tmp_path / "lm.txt", "--out", tmp_path / "lm.arpa"],
        "prepare": ["prepare", tmp_path / "none", "--out", tmp_path / "p"],
        "runs": ["runs", tmp_path],
        "evaluate": ["evaluate", "--model", tmp_path / "none", "--manifest", tmp_path / "m"],
    }
    code = (
        "import sys; from speech_rnn.cli import main; status = main(sys.argv[1:]); "
        "print(status, 'tensorflow' in sys.modules)"
    )
    loaded = {}
    for name, argv in commands.items():
        proc = subprocess.run(
            [sys.executable, "-c", code, *map(str, argv)],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
        loaded[name] = proc.stdout.split()[-2:]
    assert loaded == {
        "lm": ["0", "False"], "prepare": ["2", "False"], "runs": ["0", "False"],
        "evaluate": ["2", "True"],
    }  # fmt: skip
    assert (tmp_path / "lm.arpa").read_text().startswith("\\data\\")


def test_scripts_are_thin_wrappers(tmp_path):
    """Each script is the same command: its --help is the subcommand's, exit 0; an error the
    command returns (not argparse's own exit) comes out of the script with the same status
    and message."""
    nothing = tmp_path / "nothing"
    # SPEECH_RNN_TF_LOGS=1 skips the up-front TensorFlow import that only silences its
    # start-up chatter (tested in test_errors_are_one_line_without_traceback): these errors
    # come before any TensorFlow work, so each process takes 0.5 s instead of 5 s. The script
    # and the command run with the same environment, which is what the comparison needs.
    env = dict(os.environ, SPEECH_RNN_TF_LOGS="1")
    for name, flag, failing in (
        ("train", "--train", ["--train", nothing, "--out", tmp_path / "r", "--set", "x.y=1"]),
        ("transcribe", "--model", ["--model", nothing, nothing]),
        ("evaluate", "--manifest", ["--model", nothing, "--manifest", nothing]),
        ("prepare", "--layout", [nothing, "--out", tmp_path / "p"]),
        ("bench", "--only", ["--only", "nonsense"]),
    ):
        proc = subprocess.run(
            [sys.executable, str(REPO / "scripts" / f"{name}.py"), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout.startswith(f"usage: speech-rnn {name}") and flag in proc.stdout, name
        script = subprocess.run(
            [sys.executable, str(REPO / "scripts" / f"{name}.py"), *map(str, failing)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        command = speech_rnn(name, *failing, timeout=60, env=env)
        assert command.returncode == 2, (name, command.stderr)
        assert command.stderr.startswith(f"speech-rnn {name}: error: "), command.stderr
        assert (script.returncode, script.stderr) == (command.returncode, command.stderr), name


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    """One training run from the command line for two flags: two manifests of two clips
    each mixed 3:1 (``--train-weights``), stopped by a budget of a few milliseconds
    (``--minutes``)."""
    from speech_rnn.manifest import write_manifest

    root = tmp_path_factory.mktemp("budget")
    clips = short_kathleen_clips(4, max_seconds=3.0)
    manifests = [root / "a.jsonl", root / "b.jsonl"]
    write_manifest(clips[:2], manifests[0])
    write_manifest(clips[2:], manifests[1])
    trained = cli(
        "train", "--train", *manifests, "--train-weights", 3, 1, "--dev", manifests[0],
        "--out", root / "run", "--epochs", 50, "--minutes", 0.0001, *TINY,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    return trained, manifests, root / "run"


def test_minutes_flag_is_the_time_budget(budget_run):
    """``train --minutes M`` sets ``train.max_minutes``: with a budget of a few milliseconds
    the command stops after the first batch, says why, and records it."""
    trained, _, run = budget_run
    assert "time budget of 0.0001 min reached" in trained.stdout
    assert json.loads((run / "config.json").read_text())["train"]["max_minutes"] == 0.0001
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["stop_reason"] == "time budget of 0.0001 min reached"
    assert metrics["steps"] == 1 and metrics["epochs_completed"] == 0


def test_train_weights_mix_the_train_manifests(budget_run):
    """``train --train A B --train-weights 3 1`` trains on both manifests, mixed 3:1: the
    run records the manifests and their weights (metrics.json's data section, env.json)."""
    _, manifests, run = budget_run
    data = json.loads((run / "metrics.json").read_text())["data"]
    assert data["train_manifests"] == ",".join(str(m) for m in manifests)
    assert data["train_weights"] == "3,1"
    assert (data["train_utterances"], data["dev_utterances"]) == (4, 2)
    env = json.loads((run / "env.json").read_text())
    assert env["train_manifests"] == [str(m) for m in manifests]
    assert env["train_weights"] == [3.0, 1.0]
