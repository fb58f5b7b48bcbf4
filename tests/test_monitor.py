"""Monitoring a run: readable TensorBoard pictures (spectrogram + CTC posteriorgram, a
SpecAugment-ed example), the HParams dashboard, the closing summary, ``speech-rnn runs``,
and progress that knows the epoch's length. Event files are read back with TensorBoard's
own loader; one test looks at the TensorBoard page in headless Chromium."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    CHROMIUM_ARGS,
    TINY_TRAIN,
    chromium_path,
    need_chromium,
    run_cli,
    short_kathleen_clips,
)

from speech_rnn.pictures import clip_figure, posteriorgram_image, softmax, spectrogram_figure

EPOCHS = 2


def _colourful(image: np.ndarray) -> bool:
    """Not grey: a good share of pixels whose channels differ."""
    rgb = image.astype(int)
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    return float(np.mean(spread > 30)) > 0.2


# -- pictures, pure functions ----------------------------------------------------------------
def test_pictures_are_colour_rgb_with_one_column_per_output_frame():
    rng = np.random.default_rng(0)
    log_mel = rng.normal(size=(200, 40))
    posteriors = softmax(rng.normal(size=(67, 29)) * 3)
    figure = clip_figure(log_mel, 0.01, posteriors, 0.03, list("abcdefghijklmnopqrstuvwxyz' _"))
    assert figure.dtype == np.uint8 and figure.ndim == 3 and figure.shape[2] == 3
    assert figure.shape[0] > 300 and figure.shape[1] == 800
    assert _colourful(figure)
    frames = posteriorgram_image(posteriors)
    assert frames.shape == (29 * 6, 67, 3) and frames.dtype == np.uint8
    # the greedy path is outlined in cyan in every column
    best = posteriors.argmax(axis=1)
    assert all(tuple(frames[c * 6, t]) == (0, 255, 255) for t, c in enumerate(best))
    spec = spectrogram_figure(log_mel, 0.01, "title")
    assert spec.shape[2] == 3 and _colourful(spec)


# -- a monitored run -------------------------------------------------------------------------
class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory):
    from speech_rnn.config import Config
    from speech_rnn.log import logger
    from speech_rnn.manifest import write_manifest
    from speech_rnn.train import train

    root = tmp_path_factory.mktemp("monitored")
    clips = short_kathleen_clips(4, max_seconds=3.0)
    write_manifest(clips, root / "train.jsonl")
    write_manifest(clips[:2], root / "dev.jsonl")
    config = Config().with_overrides(
        TINY_TRAIN
        + [f"train.epochs={EPOCHS}", "train.log_samples=2", "specaugment.enabled=true"]
        + ["train.pictures_every=1"]
    )
    handler = _Lines()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        metrics = train(
            root / "train.jsonl", root / "dev.jsonl", root / "runs" / "tiny", config, verbose=1
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return root, clips, config, metrics, handler.lines


def _load(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def _image(event) -> np.ndarray:
    import tensorflow as tf
    from tensorboard.util import tensor_util

    value = tensor_util.make_ndarray(event.tensor_proto)  # [width, height, png...]
    return tf.io.decode_png(value[2]).numpy()


def test_posteriorgrams_per_evaluation_and_a_specaugment_picture_per_epoch(monitored_run):
    from speech_rnn.features import num_windows

    root, clips, config, metrics, _ = monitored_run
    tb = root / "runs" / "tiny" / "tensorboard"
    dev, train = _load(tb / "dev"), _load(tb / "train")
    tags = dev.Tags()["tensors"]
    for i in range(2):
        assert f"clip_{i}/audio_summary" in tags or any(t.startswith(f"clip_{i}") for t in tags)
        figures = dev.Tensors(f"posteriorgram_{i}")
        assert len(figures) == EPOCHS  # one per evaluation, the same clip each time
        image = _image(figures[-1])
        assert image.ndim == 3 and image.shape[2] == 3 and image.shape[1] == 800
        assert _colourful(image)
        frames = _image(dev.Tensors(f"posteriorgram_frames_{i}")[-1])
        samples = round(clips[i].duration * config.audio.sample_rate)
        assert frames.shape[1] == num_windows(samples, config.features, 16000)
        classes = len(json.loads((tb.parent / "vocab.json").read_text())["chars"]) + 1
        assert frames.shape[0] == 6 * classes and frames.shape[2] == 3
        spectrogram = _image(dev.Tensors(f"spectrogram_{i}")[0])
        assert spectrogram.shape[2] == 3 and _colourful(spectrogram)
    masked = train.Tensors("specaugment")
    assert len(masked) == EPOCHS and _colourful(_image(masked[0]))
    assert metrics["picture_seconds_per_evaluation"] > 0
    assert metrics["picture_model_seconds_per_evaluation"] > 0


def test_hparams_plugin_data_and_closing_summary(monitored_run):
    from tensorboard.plugins.hparams import metadata
    from tensorboard.util import tensor_util

    root, _, _, metrics, _ = monitored_run
    acc = _load(root / "runs" / "tiny" / "tensorboard")
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    metric_tags = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert {("", "best_dev_wer"), ("", "best_dev_cer"), ("dev", "wer")} <= metric_tags
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    hparams = start.hparams
    assert hparams["model.lstm_units"].number_value == 16
    assert hparams["train.batch_size"].number_value == 4
    assert hparams["specaugment.enabled"].bool_value is True
    assert hparams["data.train_hours"].number_value > 0
    assert "train.jsonl" in hparams["data.train_manifests"].string_value
    for tag in ("best_dev_wer", "best_dev_cer", "steps", "audio_seconds_per_second"):
        value = float(tensor_util.make_ndarray(acc.Tensors(tag)[-1].tensor_proto))
        assert value == pytest.approx(metrics[tag], rel=1e-5), tag
    summary = tensor_util.make_ndarray(acc.Tensors("run_summary")[-1].tensor_proto).item()
    summary = summary.decode()
    assert metrics["stop_reason"] in summary and "best.keras" in summary
    assert "h training" in summary


def test_progress_counts_epochs_and_steps_against_the_known_totals(monitored_run):
    _, _, _, metrics, lines = monitored_run
    # 4 clips in two length buckets, batch 4: two steps per epoch, known before it starts
    per_epoch = metrics["steps"] // EPOCHS
    assert per_epoch == 2 and metrics["steps"] == EPOCHS * per_epoch
    assert f"epoch 1/2: {per_epoch} steps" in lines and f"epoch 2/2: {per_epoch} steps" in lines
    assert any(line.startswith(f"epoch 2/2 done: {per_epoch} steps") for line in lines)
    assert not any("\r" in line or "Unknown" in line for line in lines)
    assert any("posteriorgram picture(s) drawn in" in line for line in lines)


def test_batches_per_epoch_match_the_dataset(tmp_path):
    from speech_rnn.config import Config
    from speech_rnn.features import FeatureExtractor
    from speech_rnn.pipeline import batches_per_epoch, bucket_boundaries, make_dataset
    from speech_rnn.preflight import preflight
    from speech_rnn.text import Vocabulary, normalize_text

    clips = short_kathleen_clips(7, max_seconds=4.0)
    config = Config().with_overrides(
        ["train.batch_size=2", "train.bucket_width_s=0.5", "features.normalization=utterance"]
    )
    vocab = Vocabulary.from_transcripts([normalize_text(c.text) for c in clips])
    examples = preflight(clips, vocab, config, "test", False)
    extractor = FeatureExtractor(config.features, 16000)
    boundaries = bucket_boundaries(examples, config)
    steps, exact = batches_per_epoch(examples, boundaries, 2)
    ds = make_dataset(examples, config, extractor, training=False, boundaries=boundaries)
    assert exact and steps == sum(1 for _ in ds) and steps >= 4
    halves = [(0, 3, 1.0), (3, len(examples), 2.0)]
    estimate, exact = batches_per_epoch(examples, boundaries, 2, halves)
    assert not exact and 4 <= estimate <= len(examples)


def test_runs_command_prints_the_comparison_table(monitored_run):
    root, _, _, metrics, _ = monitored_run
    shutil.copytree(root / "runs" / "tiny", root / "runs" / "tiny_copy", dirs_exist_ok=True)
    result = run_cli("runs", root / "runs", "-q")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run ") and "best WER" in lines[0] and "audio-s/s" in lines[0]
    rows = [line for line in lines[2:] if line.split()[0] in ("tiny", "tiny_copy")]
    assert len(rows) == 2
    assert f"{100 * metrics['best_dev_wer']:.2f}%" in rows[0]
    assert "1 x 16" in rows[0] and f" {metrics['steps']} " in rows[0]


# -- TensorBoard in a browser ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot_tensorboard(logdir, out_dir, expect: dict, width=1400, height=1000, actions=None):
    """Start ``tensorboard`` on a free localhost port and screenshot each tab of ``expect``
    ({tab: [texts to wait for]}) in headless Chromium once those texts show (Playwright's
    text locators see into TensorBoard's shadow DOM); ``actions`` ({tab: fn(page)}) run
    before the screenshot; returns {tab: png path}."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    exe = shutil.which("tensorboard")
    command = [exe] if exe else [sys.executable, "-m", "tensorboard.main"]
    server = subprocess.Popen(
        command + ["--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shots = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("tensorboard did not start") from None
                time.sleep(0.5)
        profile = Path(out_dir) / "chromium-profile"
        with sync_playwright() as p:
            browser = p.chromium.launch_persistent_context(
                str(profile),
                executable_path=chromium_path(),
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": width, "height": height},
            )
            try:
                page = browser.new_page()
                for tab, texts in expect.items():
                    page.goto(f"http://127.0.0.1:{port}/#{tab}", timeout=60000)
                    page.wait_for_load_state("networkidle", timeout=60000)
                    for text in texts:
                        page.get_by_text(text).first.wait_for(timeout=60000)
                    if actions and tab in actions:
                        actions[tab](page)
                    page.wait_for_timeout(2000)  # images finish decoding
                    path = Path(out_dir) / f"tensorboard_{tab}.png"
                    page.screenshot(path=str(path))
                    shots[tab] = path
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return shots


def test_tensorboard_page_shows_the_run_in_headless_chromium(monitored_run, tmp_path):
    need_chromium()
    root, _, _, _, _ = monitored_run
    # waits (up to a minute each) for the run and its posteriorgram to be on the page
    shots = screenshot_tensorboard(
        root / "runs", tmp_path, {"images": ["tiny/tensorboard/dev", "posteriorgram_0"]}
    )
    assert shots["images"].stat().st_size > 10_000


def test_metrics_json_records_the_run(monitored_run):
    root, _, _, _, _ = monitored_run
    saved = json.loads((root / "runs" / "tiny" / "metrics.json").read_text())
    assert saved["best_from"]["step"] >= 1 and saved["data"]["train_utterances"] == 4
    assert saved["best_dev_cer"] is not None and saved["audio_seconds_per_second"] > 0
