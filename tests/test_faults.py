"""Faults: kill -9 and resume to the same weights, SIGTERM/SIGINT, a corrupt latest
checkpoint, a full disk while saving, non-finite losses, and tampered run folders."""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, TINY_TRAIN, cli, short_kathleen_clips

from speech_rnn.config import Config
from speech_rnn.manifest import write_manifest

# Small and deterministic: dropout on (so the RNG state must survive the resume), SpecAugment
# on (seeded per epoch and example), one checkpoint per step.
RESUMABLE = [
    "model.lstm_layers=1",
    "model.lstm_units=16",
    "model.dropout=0.2",
    "train.batch_size=2",
    "train.jit_compile=false",
    "train.deterministic=true",
    "train.checkpoint_every_steps=1",
    "train.epochs=3",
    "train.log_samples=1",
    "train.warmup_steps=5",
]


def train_command(manifest, run):
    sets = [a for item in RESUMABLE for a in ("--set", item)]
    exe = shutil.which("speech-rnn")
    head = [exe] if exe else [sys.executable, "-m", "speech_rnn.cli"]
    return head + [
        "train",
        "--train",
        str(manifest),
        "--dev",
        str(manifest),
        "--out",
        str(run),
        "--quiet",
        *sets,
    ]


def final_weights(run):
    from speech_rnn.runfolder import load_keras_safe

    return [
        w.numpy() if hasattr(w, "numpy") else np.asarray(w)
        for w in load_keras_safe(Path(run) / "last.keras").weights
    ]


def checkpoint_steps(run):
    folder = Path(run) / "checkpoints"
    return sorted(int(p.name.split("-")[1].split(".")[0]) for p in folder.glob("ckpt-*.index"))


def recorded_checkpoint_steps(run):
    """The checkpoints the state file lists: what a resume restores from. A kill between a
    checkpoint's files and the state file's update leaves one unlisted, which is redone."""
    state = Path(run) / "checkpoints" / "checkpoint"
    return sorted(
        int(m)
        for m in re.findall(
            r'^all_model_checkpoint_paths: ".*ckpt-(\d+)"$', state.read_text(), re.MULTILINE
        )
    )


@pytest.fixture(scope="module")
def clips_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    write_manifest(short_kathleen_clips(6, max_seconds=3.0), root / "clips.jsonl")
    return root / "clips.jsonl"


@pytest.fixture(scope="module")
def reference_run(clips_manifest):
    """The uninterrupted run, in this process: the killed and resumed console-script runs
    must end bit-identical to it."""
    run = clips_manifest.parent / "reference"
    result = cli(*train_command(clips_manifest, run)[1:])
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def test_kill_9_then_the_same_command_resumes_to_the_same_weights(clips_manifest, reference_run):
    total = json.loads((reference_run / "metrics.json").read_text())["steps"]
    kill_after = random.Random().randint(2, total - 2)  # a random point, reported on failure
    run = clips_manifest.parent / "killed"
    command = train_command(clips_manifest, run)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if run.joinpath("checkpoints").is_dir() and any(
            s >= kill_after for s in checkpoint_steps(run)
        ):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(recorded_checkpoint_steps(run))
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # "step 3" must not match "step 30": the whole line, anchored
    assert re.search(
        rf"^restored \S+/ckpt-\d+: epoch \d+, batch \d+, step {killed_at}$",
        resumed.stdout,
        re.MULTILINE,
    ), (kill_after, resumed.stdout[-2000:])
    metrics = json.loads((run / "metrics.json").read_text())
    reference = json.loads((reference_run / "metrics.json").read_text())
    assert metrics["steps"] == total
    # Bit-exact with train.deterministic=true (README): the in-memory weights' digests at the
    # end of training, and every array of the saved last.keras, equal to the last bit.
    assert metrics["weights_sha256"] == reference["weights_sha256"], f"killed after {killed_at}"
    got, want = final_weights(run), final_weights(reference_run)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape and a.dtype == b.dtype, i
        np.testing.assert_array_equal(a, b, err_msg=f"weight {i}, killed after step {killed_at}")
    # The dev history continues where it stopped: one evaluation per epoch, no repeats.
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2, 3]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_checkpoint_and_exit_cleanly(clips_manifest, signum, tmp_path):
    run = tmp_path / "run"
    command = train_command(clips_manifest, run)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (run / "checkpoints").is_dir():
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, err[-2000:]
    name = signal.Signals(signum).name
    assert f"stopped by {name}" in err and "run the same command to resume" in err
    assert "Traceback" not in err
    step = json.loads((run / "metrics.json").read_text())["steps"]
    assert step in checkpoint_steps(run)  # checkpoint at the stop
    assert list((run / "tensorboard" / "train").glob("events.out.tfevents.*"))


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(reference_run, tmp_path, capsys):
    from speech_rnn.log import configure_console
    from speech_rnn.train import train

    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    steps = checkpoint_steps(run)
    latest = run / "checkpoints" / f"ckpt-{steps[-1]}.data-00000-of-00001"
    latest.write_bytes(latest.read_bytes()[:100])  # truncated
    config = Config.load(run / "config.json").with_overrides(["train.epochs=4"])
    manifest = reference_run.parent / "clips.jsonl"
    configure_console()  # the library logs; print its lines as the CLI does
    metrics = train(manifest, manifest, run, config, verbose=0)
    captured = capsys.readouterr()
    out = captured.out + captured.err
    # anchored: "ckpt-9" must not match "ckpt-19", nor "ckpt-8" match "ckpt-80"
    assert re.search(rf"/ckpt-{steps[-1]} is unreadable", out) and "trying the previous" in out
    assert re.search(rf"restored {re.escape(str(run / 'checkpoints'))}/ckpt-{steps[-2]}:", out)
    assert metrics["epochs_completed"] == 4


def test_full_disk_while_saving_is_a_clear_error_and_keeps_the_previous_model(
    reference_run, tmp_path, monkeypatch
):
    import keras

    from speech_rnn.runfolder import SaveError, load_keras_safe, save_keras_atomic

    run = tmp_path / "run"
    shutil.copytree(reference_run, run)
    model = load_keras_safe(run / "best.keras")
    before = (run / "best.keras").read_bytes()

    def full_disk(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")  # half-written, then ENOSPC
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(keras.Model, "save", full_disk)
    with pytest.raises(SaveError, match="No space left on device.*previous model is intact"):
        save_keras_atomic(model, run / "best.keras")
    assert (run / "best.keras").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp.keras")]


def test_non_finite_losses_skip_updates_log_files_and_stop(clips_manifest, tmp_path):
    from speech_rnn.train import train

    # A learning rate this large makes the weights blow up within a few steps; every later
    # loss is non-finite, and those updates must be skipped rather than applied.
    config = Config().with_overrides(
        TINY_TRAIN
        + [
            "train.learning_rate=1e38",
            "train.warmup_steps=1",
            "train.clipnorm=0",
            "train.max_nonfinite_in_row=3",
            "train.epochs=50",
            "train.batch_size=2",
        ]
    )
    metrics = train(clips_manifest, None, tmp_path / "run", config, verbose=0)
    assert metrics["failed"] and "non-finite losses in a row" in metrics["stop_reason"]
    assert metrics["nonfinite_steps"] >= 3
    log = (tmp_path / "run" / "nonfinite_batches.log").read_text().splitlines()
    assert len(log) == metrics["nonfinite_steps"]
    assert all(".flac" in line for line in log)
    weights = final_weights(tmp_path / "run")
    assert all(np.isfinite(w).all() for w in weights)  # never applied


# -- safety -----------------------------------------------------------------------------------
def test_tampered_model_file_never_executes_code(tiny_run, tmp_path):
    import keras

    from speech_rnn import load_model
    from speech_rnn.errors import RunFolderError

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    marker = tmp_path / "pwned"
    inputs = keras.Input((3,))
    # The payload writes a marker file if it ever runs (no closure, so Keras can save it).
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').write('x'), x)[1]")
    evil = keras.layers.Lambda(payload)(inputs)
    keras.Model(inputs, evil).save(tmp_path / "evil.keras")
    marker.unlink()  # building the model above ran it once, symbolically
    for name in ("best.keras", "last.keras"):
        shutil.copy(tmp_path / "evil.keras", run / name)
    with pytest.raises(RunFolderError, match="cannot load model safely"):
        load_model(run)
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage", ["garbage_model", "config_unknown_key", "vocab_garbage", "stats_wrong_size"]
)
def test_damaged_run_folders_fail_with_one_clear_error(tiny_run, tmp_path, damage):
    from speech_rnn import load_model
    from speech_rnn.errors import SpeechRnnError

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    if damage == "garbage_model":
        for name in ("best.keras", "last.keras"):
            (run / name).write_bytes(b"PK\x03\x04 not really a zip")
    elif damage == "config_unknown_key":
        config = json.loads((run / "config.json").read_text())
        config["model"]["__class__"] = "os.system"
        (run / "config.json").write_text(json.dumps(config))
    elif damage == "vocab_garbage":
        (run / "vocab.json").write_text('{"chars": [1, 2]}')
    else:
        (run / "feature_stats.json").write_text('{"mean": [0], "std": [1]}')
    with pytest.raises(SpeechRnnError) as info:
        load_model(run)
    assert "\n" not in str(info.value) and str(run) in str(info.value)


class _FullDiskFile:
    """A real file whose write stores half the data, then fails as a full disk does."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def __getattr__(self, name):
        return getattr(self.f, name)


def test_full_disk_while_writing_a_json_file_keeps_the_previous_one(tmp_path, monkeypatch):
    """metrics.json, config.json, env.json ... go through fileio's atomic write: a full disk
    mid-write raises ENOSPC, the previous file is intact and no temporary file is left."""
    import builtins

    import speech_rnn.fileio as fileio

    path = tmp_path / "metrics.json"
    fileio.atomic_write_json(path, {"steps": 1})
    before = path.read_bytes()
    real_open = builtins.open
    monkeypatch.setattr(
        fileio, "open", lambda *a, **k: _FullDiskFile(real_open(*a, **k)), raising=False
    )
    with pytest.raises(OSError) as info:
        fileio.atomic_write_json(path, {"steps": 2, "pad": "x" * 4096})
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    """The Checkpointer of a run: a checkpoint write that fails half-way (a partial data
    file, then an out-of-space error from TensorFlow) is one SaveError; the checkpoint
    state still names the previous checkpoint, whose files are unchanged and restore."""
    import tensorflow as tf

    from speech_rnn.callbacks import Checkpointer
    from speech_rnn.runfolder import SaveError
    from speech_rnn.train import TrainState, progress_variables

    weights = tf.Variable([1.0, 2.0, 3.0])
    progress = progress_variables()
    checkpoint = tf.train.Checkpoint(weights=weights, **progress)
    folder = tmp_path / "checkpoints"
    manager = tf.train.CheckpointManager(checkpoint, folder, max_to_keep=3)
    optimizer = tf.Module()
    optimizer.iterations = tf.Variable(1, dtype=tf.int64)
    state = TrainState(epoch=1, batch_in_epoch=4)
    saver = Checkpointer(manager, progress, state, optimizer)
    saver.save()
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert "ckpt-1.index" in files

    real_write = tf.train.Checkpoint._write

    def full_disk(self, prefix, *args, **kwargs):
        # TensorFlow had written part of the data when the device filled up
        with open(f"{prefix}_temp.data-00000-of-00001", "wb") as f:
            f.write(b"\0" * 100)
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    monkeypatch.setattr(tf.train.Checkpoint, "_write", full_disk)
    weights.assign([9.0, 9.0, 9.0])
    optimizer.iterations.assign(2)
    state.epoch = 2
    with pytest.raises(SaveError, match="No space left on device.*previous checkpoint is intact"):
        saver.save()
    monkeypatch.setattr(tf.train.Checkpoint, "_write", real_write)
    assert tf.train.latest_checkpoint(folder) == str(folder / "ckpt-1")
    for name, data in files.items():
        assert (folder / name).read_bytes() == data, name
    checkpoint.restore(tf.train.latest_checkpoint(folder)).assert_consumed()
    assert weights.numpy().tolist() == [1.0, 2.0, 3.0] and int(progress["epoch"].numpy()) == 1
