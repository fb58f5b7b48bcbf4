"""Reliability, part 2 (issue 14): one-line errors naming the file, a run that goes on with
its other inputs, or a refusal before any work starts; never a traceback or a silently
wrong result. Uses the checked-in digits model, so every test here is quick."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile

from speech_rnn.cli import main
from speech_rnn.config import Config
from speech_rnn.errors import AudioError, ConfigError, RunFolderError
from speech_rnn.recognizer import SpeechRecognizer
from speech_rnn.runfolder import RunFolder

# New in issue 14; imported inside the tests that use them, so that each behavioural test
# fails on its own (not as one import error) on the code before the fix.

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURE_MODEL = HERE / "fixtures" / "digits_model"
SR = 8000


def speech(seconds=1.0, rate=SR):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


def with_rate(path: Path, out: Path, rate: int) -> Path:
    """A copy of a WAV file whose header claims ``rate`` Hz."""
    data = bytearray(path.read_bytes())
    fmt = data.find(b"fmt ")
    data[fmt + 12 : fmt + 16] = struct.pack("<I", rate)
    out.write_bytes(bytes(data))
    return out


def one_line(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    for line in stderr.strip().splitlines():
        assert line.startswith(("speech-rnn", "error:", "wrote", "1 of", "2 of", "3 of")), line


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def recognizer():
    return SpeechRecognizer(FIXTURE_MODEL)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    good = d / "good.wav"
    soundfile.write(good, speech(), SR, subtype="PCM_16")
    files = {"good": good}
    files["one_sample_48k"] = d / "one48k.wav"
    soundfile.write(files["one_sample_48k"], np.array([0.1], np.float32), 48000)
    files["absurd_rate"] = with_rate(good, d / "absurd.wav", 2**31 - 1)
    files["rate_0"] = with_rate(good, d / "rate0.wav", 0)
    truncated = d / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["truncated"] = truncated
    return files


# -- bad audio: one line, and the other files still transcribed ------------------------------
@pytest.mark.parametrize("bad", ["one_sample_48k", "absurd_rate", "rate_0"])
def test_bad_audio_is_one_line_and_the_good_file_is_still_transcribed(inputs, capsys, bad):
    code, stdout, stderr = cli(
        capsys,
        "transcribe",
        "--model",
        FIXTURE_MODEL,
        "--batch-size",
        "1",
        inputs[bad],
        inputs["good"],
    )
    assert code == 1
    assert stdout.startswith(str(inputs["good"]) + "\t")
    assert str(inputs[bad]) in stderr and "1 of 2 input(s) failed" in stderr
    one_line(stderr)


def test_unreadable_file_is_one_line_and_the_run_goes_on(inputs, capsys, monkeypatch):
    """A file the process may not read (simulated: tests may run as root)."""
    import builtins

    real_open = builtins.open
    denied = str(inputs["truncated"].with_name("denied.wav"))
    shutil.copy(inputs["good"], denied)

    def fake_open(file, *args, **kwargs):
        if str(file) == denied:
            raise PermissionError(13, "Permission denied", denied)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    code, stdout, stderr = cli(
        capsys, "transcribe", "--model", FIXTURE_MODEL, denied, inputs["good"]
    )
    assert code == 1 and stdout.startswith(str(inputs["good"]))
    assert f"{denied}: cannot read the file (Permission denied)" in stderr
    one_line(stderr)


# -- the Python API: arrays -------------------------------------------------------------------
def test_int_pcm_arrays_are_scaled_like_floats(recognizer):
    from speech_rnn.recognizer import waveform_from_array

    audio = speech(1.5)
    pcm16 = np.round(audio * 32767).astype(np.int16)
    assert np.allclose(waveform_from_array(pcm16), audio, atol=1e-4)
    pcm32 = np.round(audio * (2**31 - 1)).astype(np.int32)
    assert np.allclose(waveform_from_array(pcm32), audio, atol=1e-6)
    u8 = np.round(audio * 127 + 128).astype(np.uint8)
    assert np.allclose(waveform_from_array(u8), audio, atol=1e-2)
    expected = recognizer.transcribe(audio, sample_rate=SR).text
    assert recognizer.transcribe(pcm16, sample_rate=SR).text == expected
    with pytest.raises(AudioError, match="unsupported sample type int64"):
        recognizer.transcribe(np.array([1, 2, 3] * 1000), sample_rate=SR)


def test_channels_first_arrays_are_averaged_like_channels_last(recognizer):
    audio = speech(1.5)
    stereo_last = np.stack([audio, audio], axis=1)
    stereo_first = stereo_last.T.copy()
    expected = recognizer.transcribe(audio, sample_rate=SR).text
    assert expected
    assert recognizer.transcribe(stereo_first, sample_rate=SR).text == expected
    assert recognizer.transcribe(stereo_last, sample_rate=SR).text == expected
    with pytest.raises(AudioError, match="ambiguous shape"):
        recognizer.transcribe(np.zeros((100, 200), np.float32), sample_rate=SR)


def test_arrays_that_resample_to_nothing_or_have_a_bad_rate_are_audio_errors(recognizer):
    with pytest.raises(AudioError, match="too short"):
        recognizer.transcribe(np.array([0.1], np.float32), sample_rate=48000)
    with pytest.raises(AudioError, match="sample_rate must be a positive integer"):
        recognizer.transcribe(speech(), sample_rate=0)


# -- model folders ----------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["binary", "rate_0", "lower_above_nyquist"])
def test_bad_model_config_is_one_clear_error(tmp_path, capsys, inputs, damage):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE_MODEL, run)
    if damage == "binary":
        (run / "config.json").write_bytes(b"\xff\xfe\x00\x81garbage\x9c" * 20)
    else:
        data = json.loads((run / "config.json").read_text())
        if damage == "rate_0":
            data["audio"]["sample_rate"] = 0
        else:
            data["features"]["lower_hz"] = 9000.0
        (run / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="config.json"):
        SpeechRecognizer(run)
    code, _, stderr = cli(capsys, "transcribe", "--model", run, inputs["good"])
    assert code == 2 and "config.json" in stderr
    one_line(stderr)


# -- output folders: checked before any work --------------------------------------------------
def unusable_dirs(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {"existing file": a_file, "under a file": a_file / "sub", "under /proc": "/proc/x/y"}


def test_prepare_output_dir_refuses_unusable_folders(tmp_path):
    from speech_rnn.errors import OutputError
    from speech_rnn.fileio import prepare_output_dir

    for what, path in unusable_dirs(tmp_path).items():
        with pytest.raises(OutputError, match=str(path)):
            prepare_output_dir(path)
        assert what
    assert prepare_output_dir(tmp_path / "new" / "deep").is_dir()
    assert list((tmp_path / "new" / "deep").iterdir()) == []


def test_transcribe_output_dir_is_checked_before_transcribing(
    tmp_path, capsys, inputs, monkeypatch
):
    import speech_rnn.cli as cli_module

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output folder was checked")

    monkeypatch.setattr(cli_module, "load_model", no_model)
    for path in unusable_dirs(tmp_path).values():
        code, _, stderr = cli(
            capsys, "transcribe", "--model", FIXTURE_MODEL, inputs["good"], "-o", path
        )
        assert code == 2 and str(path) in stderr
        one_line(stderr)


def test_train_out_is_checked_before_any_work(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")  # never read: the --out check comes first
    for path in unusable_dirs(tmp_path).values():
        code, _, stderr = cli(
            capsys, "train", "--train", manifest, "--dev", manifest, "--out", path
        )
        assert code == 2 and str(path) in stderr, stderr
        one_line(stderr)


# -- transcribe -o: one output per input ------------------------------------------------------
def test_output_names_are_unique_per_input():
    from speech_rnn.writers import output_names

    names = output_names(
        [("a/x.wav", None), ("a/x.flac", None), ("b/x.wav", None), ("c/y.wav", None)]
    )
    assert names == ["a/x.wav", "x.flac", "b/x.wav", "y"]
    assert output_names([("d/a/x.wav", "d"), ("d/a/x.flac", "d")]) == ["a/x.wav", "a/x.flac"]
    with pytest.raises(ConfigError, match="same output file"):
        output_names([("a/x.wav", None), ("a/x.wav", None)])


def test_transcribe_inputs_sharing_a_stem_each_get_their_own_output(tmp_path, capsys, inputs):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    audio = speech()
    soundfile.write(tmp_path / "a" / "x.wav", audio, SR)
    soundfile.write(tmp_path / "a" / "x.flac", audio[::-1].copy(), SR)
    soundfile.write(tmp_path / "b" / "x.wav", audio[: SR // 2], SR)
    out = tmp_path / "out"
    sources = [tmp_path / "a" / "x.wav", tmp_path / "a" / "x.flac", tmp_path / "b" / "x.wav"]
    code, _, stderr = cli(
        capsys, "transcribe", "--model", FIXTURE_MODEL, *sources, "-f", "json", "-o", out
    )
    assert code == 0, stderr
    assert "wrote 3 file(s)" in stderr
    written = sorted(out.rglob("*.json"))
    assert len(written) == 3, written
    durations = sorted(json.loads(p.read_text())["duration"] for p in written)
    assert durations == [0.5, 1.0, 1.0]


# -- evaluate: a file that fails at run time is skipped, not scored ---------------------------
def test_evaluate_skips_audio_that_fails_to_decode_and_counts_it(tmp_path, inputs, fsdd_dir):
    from speech_rnn.evaluate import evaluate_run

    clips = sorted(fsdd_dir.glob("*_jackson_0.wav"))[:4]
    assert len(clips) == 4
    words = "zero one two three four five six seven eight nine".split()
    lines = [
        {
            "audio_filepath": str(c),
            "duration": soundfile.info(str(c)).duration,
            "text": words[int(c.name[0])],
        }
        for c in clips
    ]
    # The header promises more data than the file holds: the header check passes, the
    # decode in the pipeline fails.
    lines.append({"audio_filepath": str(inputs["truncated"]), "duration": 1.0, "text": "one"})
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = evaluate_run(FIXTURE_MODEL, manifest, out=tmp_path / "report.json")
    assert report["utterances"] == 4
    assert report["skipped"] == 1
    assert str(inputs["truncated"]) not in [row["id"] for row in report["worst"]]


# -- --threads --------------------------------------------------------------------------------
def test_absurd_thread_counts_are_refused(capsys, inputs):
    for bad in ("0", "100000"):
        code, _, stderr = cli(
            capsys, "transcribe", "--model", FIXTURE_MODEL, inputs["good"], "--threads", bad
        )
        assert code == 2 and "--threads must be >= 1 and <=" in stderr
        one_line(stderr)


# -- one writer per run folder ----------------------------------------------------------------
HOLDER = textwrap.dedent(
    """
    import sys, time
    from speech_rnn.runfolder import RunFolder, run_lock
    with run_lock(RunFolder(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def hold_lock(run_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_kill_9_frees_the_lock(tmp_path, capsys):
    from speech_rnn.train import train

    RunLockedError = getattr(sys.modules["speech_rnn.runfolder"], "RunLockedError", RunFolderError)
    run_dir = tmp_path / "run"
    holder = hold_lock(run_dir)
    try:
        with pytest.raises(RunLockedError, match=f"pid {holder.pid} on .*, started 20"):
            train(tmp_path / "none.jsonl", tmp_path / "none.jsonl", run_dir, Config())
        assert not RunFolder(run_dir).exists()  # refused before writing anything
        manifest = tmp_path / "m.jsonl"
        manifest.write_text("")
        code, _, stderr = cli(
            capsys, "train", "--train", manifest, "--dev", manifest, "--out", run_dir
        )
        assert code == 2 and re.search(rf"\bpid {holder.pid}\b", stderr), (
            stderr
        )  # not pid 12 in 123
        one_line(stderr)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The killed holder's lock file is still there, but the lock went with the process.
    from speech_rnn.runfolder import run_lock

    assert (run_dir / "train.lock").is_file()
    with run_lock(RunFolder(run_dir)):
        record = json.loads((run_dir / "train.lock").read_text())
        assert record["pid"] == os.getpid()


def test_the_lock_is_per_process_and_released_on_exit(tmp_path):
    from speech_rnn.runfolder import run_lock

    run = RunFolder(tmp_path / "run")
    with run_lock(run):
        with pytest.raises(RunFolderError, match="another training process"):
            with run_lock(run):
                pass
    with run_lock(run):
        pass


# -- training cost per audio-second -----------------------------------------------------------
def test_linear_ctc_matches_tensorflow_loss_and_gradient():
    import tensorflow as tf

    from speech_rnn.trainer import ctc_neg_log_likelihood

    rng = np.random.default_rng(0)
    b, t, c, n = 4, 50, 7, 14
    logits = tf.constant(rng.standard_normal((b, t, c)).astype(np.float32))
    labels = rng.integers(0, c - 1, (b, n)).astype(np.int32)
    labels[0, 3] = labels[0, 2]  # a repeat needs a blank between
    label_lengths = np.array([14, 5, 1, 0], np.int32)
    logit_lengths = np.array([50, 17, 3, 9], np.int32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ours = ctc_neg_log_likelihood(labels, logits, label_lengths, logit_lengths, c - 1)
        ref = tf.nn.ctc_loss(
            labels, logits, label_lengths, logit_lengths, logits_time_major=False, blank_index=c - 1
        )
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5)
    np.testing.assert_allclose(
        tape.gradient(ours, logits).numpy(), tape.gradient(ref, logits).numpy(), atol=1e-5
    )
    impossible = ctc_neg_log_likelihood(labels[:1], logits[:1, :4], [14], [4], c - 1)
    assert np.isinf(impossible.numpy()).all()


def test_dev_loss_graph_is_the_ctc_loss_for_every_batch_shape():
    """Dev evaluation's compiled loss (one graph for any shape) gives tf.nn.ctc_loss's
    values with the true lengths, for batches of different sizes and lengths, labels padded
    with -1 as the pipeline pads them."""
    import tensorflow as tf

    from speech_rnn.trainer import ctc_loss_graph

    rng = np.random.default_rng(1)
    c = 6
    loss = ctc_loss_graph(blank_id=c - 1)
    for b, t, n in ((3, 40, 9), (2, 23, 5), (5, 61, 12)):
        logits = tf.constant(rng.standard_normal((b, t, c)).astype(np.float32))
        label_lengths = rng.integers(1, n + 1, b).astype(np.int32)
        feature_lengths = rng.integers(2 * n + 1, t + 1, b).astype(np.int32)
        labels = rng.integers(0, c - 1, (b, n)).astype(np.int32)
        padded = np.where(np.arange(n) < label_lengths[:, None], labels, -1)
        batch = {
            "labels": tf.constant(padded),
            "label_lengths": tf.constant(label_lengths),
            "feature_lengths": tf.constant(feature_lengths),
        }
        want = tf.nn.ctc_loss(
            np.where(padded < 0, 0, padded), logits, label_lengths, feature_lengths,
            logits_time_major=False, blank_index=c - 1,
        )  # fmt: skip
        np.testing.assert_allclose(loss(batch, logits).numpy(), want.numpy(), rtol=1e-5)


def test_ctc_is_linear_in_the_lattice_not_quadratic_in_the_states():
    """Loss + gradient on 16 s utterances (30 ms windows, 14 characters a second), both
    under XLA: ``tf.nn.ctc_loss`` (dense labels) runs an S x S transition matrix through
    every step, O(T x S^2); ours is O(T x S), at least 5x faster here (about 100x at 30 s,
    where it made the whole training step 3x slower)."""
    import time

    import tensorflow as tf

    from speech_rnn.trainer import ctc_neg_log_likelihood

    rng = np.random.default_rng(0)
    batch, classes, seconds = 4, 29, 16.0
    t, n = int(seconds / 0.03), int(14 * seconds)
    logits = tf.constant(rng.standard_normal((batch, t, classes)).astype(np.float32))
    labels = rng.integers(0, classes - 1, (batch, n)).astype(np.int32)
    label_lengths, logit_lengths = np.full([batch], n, np.int32), np.full([batch], t, np.int32)

    def timed(loss_fn):
        @tf.function(jit_compile=True)
        def loss_and_grad(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(loss_fn(x))
            return loss, tape.gradient(loss, x)

        loss_and_grad(logits)  # compile
        times = []
        for _ in range(2):
            start = time.perf_counter()
            loss_and_grad(logits)[1].numpy()
            times.append(time.perf_counter() - start)
        return min(times)

    ours = timed(
        lambda x: ctc_neg_log_likelihood(labels, x, label_lengths, logit_lengths, classes - 1)
    )
    dense = timed(
        lambda x: tf.nn.ctc_loss(
            labels,
            x,
            label_lengths,
            logit_lengths,
            logits_time_major=False,
            blank_index=classes - 1,
        )
    )
    print(
        f"\nCTC loss+gradient, 4 x {seconds:g} s: ours {ours:.3f} s, tf.nn.ctc_loss {dense:.3f} s"
    )
    assert ours * 5 < dense, (ours, dense)


def test_batches_are_sized_by_audio():
    from speech_rnn.pipeline import bucket_batch_sizes

    config = Config().with_overrides(["train.batch_size=16", "train.max_batch_seconds=120"])
    boundaries = list(range(33, 1034, 33))  # a bucket per second (30 ms windows), to 31 s
    sizes = bucket_batch_sizes(boundaries, config, 16)
    padded = [size * upper * 0.03 for size, upper in zip(sizes, boundaries + [1066])]
    assert sizes[0] == 16 and sizes[-1] == 3 and sizes == sorted(sizes, reverse=True)
    assert max(padded) <= 120.0 + 1e-6
    assert bucket_batch_sizes(boundaries, config, 32, replicas=2) == [2 * s for s in sizes]
    off = Config().with_overrides(["train.max_batch_seconds=0"])
    assert bucket_batch_sizes(boundaries, off, 16) == [16] * (len(boundaries) + 1)
