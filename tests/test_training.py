"""The whole loop learns: a tiny model overfits real clips to their exact transcripts; the
run folder holds what it promises, reloads in a fresh process and transcribes the same, its
TensorBoard events read back with TensorBoard's own loader, and a resumed run continues."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from conftest import short_kathleen_clips

from speech_rnn.config import Config
from speech_rnn.manifest import write_manifest
from speech_rnn.text import normalize_text

OVERFIT = [
    "model.lstm_layers=2",
    "model.lstm_units=64",
    "model.dropout=0",
    "model.input_dropout=0",
    "specaugment.enabled=false",
    "train.batch_size=2",
    "train.learning_rate=0.003",
    "train.warmup_steps=10",
    "train.anneal_patience=1000",
    "train.early_stop_patience=1000",
    "train.checkpoint_every_steps=25",
    "train.pictures_every=10",
    "train.log_samples=2",
]
MAX_STEPS = 112  # measured: CER 0 from about step 70 on two clips
# Each clip eight times in the training manifest: the two clips fall in two length buckets,
# so an epoch is 8 steps of batch 2 (one clip twice, the same gradient as once), and the
# run's 112 steps take 14 epochs: 14 dataset builds and dev evaluations, where four copies
# took 28 (15% longer for this file on a slow machine) and the two clips alone 55. The
# 14 evaluations still give the WER-0 ties and two picture steps the tests below need.
COPIES = 8
EPOCHS = MAX_STEPS // COPIES


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    import speech_rnn.train as training
    from speech_rnn.train import train

    root = tmp_path_factory.mktemp("overfit")
    clips = short_kathleen_clips(2)
    copies = [replace(c, id=f"{c.key}~{k}") for c in clips for k in range(COPIES)]
    write_manifest(copies, root / "train.jsonl")
    write_manifest(clips, root / "dev.jsonl")
    config = Config().with_overrides(OVERFIT + [f"train.epochs={EPOCHS}"])
    # Keep the very model and feature extractor training ran with (a spy: the real
    # build_training runs unchanged), to compare the saved run with what was in memory.
    in_memory = {}
    real_build = training.build_training

    def keep(config, data, replicas):
        parts = real_build(config, data, replicas)
        in_memory.update(acoustic=parts.acoustic, extractor=data.extractor)
        return parts

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "build_training", keep)
        metrics = train(root / "train.jsonl", root / "dev.jsonl", root / "run", config, verbose=0)
    OVERFIT_IN_MEMORY.update(in_memory)
    return root, clips, metrics


OVERFIT_IN_MEMORY = {}  # the overfit run's trained Keras model and feature extractor


def test_tiny_model_overfits_real_clips_to_the_exact_transcripts(overfit_run):
    from speech_rnn import load_model

    root, clips, metrics = overfit_run
    assert metrics["steps"] == MAX_STEPS
    assert metrics["nonfinite_steps"] == 0
    assert metrics["last_dev"]["dev_cer"] == 0.0
    recognizer = load_model(root / "run")
    for clip in clips:
        assert recognizer.transcribe(clip.audio_filepath).text == normalize_text(clip.text)


def test_run_folder_holds_everything_promised(overfit_run):
    root, _, metrics = overfit_run
    run = root / "run"
    for name in (
        "config.json",
        "vocab.json",
        "feature_stats.json",
        "best.keras",
        "last.keras",
        "env.json",
        "metrics.json",
        "history.jsonl",
        "checkpoints/checkpoint",
    ):
        assert (run / name).is_file(), name
    env = json.loads((run / "env.json").read_text())
    assert env["tensorflow"] and env["keras"] and env["seed"] == 1234 and env["devices"]
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["steps"] == metrics["steps"]
    assert Config.load(run / "config.json") == Config().with_overrides(
        OVERFIT + [f"train.epochs={EPOCHS}"]
    )


def test_tensorboard_events_read_back(overfit_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    root, _, _ = overfit_run

    def load(split):
        acc = EventAccumulator(
            str(root / "run" / "tensorboard" / split), size_guidance={"tensors": 0}
        )
        acc.Reload()
        return acc

    train, dev = load("train"), load("dev")
    for acc, tags in (
        (train, ("loss", "learning_rate", "audio_seconds_per_second")),
        (dev, ("loss", "wer", "cer")),
    ):
        for tag in tags:
            events = acc.Tensors(tag)
            assert events, tag
            values = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in events]
            assert all(math.isfinite(v) for v in values), tag
    wers = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in dev.Tensors("wer")]
    assert wers[0] > 0.5 and wers[-1] == 0.0
    text = tensor_util.make_ndarray(dev.Tensors("transcripts")[-1].tensor_proto)
    assert "reference" in text.item().decode()
    tags = dev.Tags()["tensors"]
    assert any(t.startswith("clip_0") for t in tags) and "spectrogram_0" in tags
    # a spectrogram + posteriorgram picture every 10th evaluation (the first included), in colour
    pictures = dev.Tensors("posteriorgram_0")
    assert len(pictures) == -(-len(dev.Tensors("wer")) // 10) > 1
    png = tensor_util.make_ndarray(pictures[-1].tensor_proto)[2]
    import tensorflow as tf

    image = tf.io.decode_png(png).numpy()
    assert image.shape[2] == 3 and np.ptp(image.astype(int), axis=-1).max() > 30


def test_reloaded_run_transcribes_exactly_like_the_in_memory_model(overfit_run):
    """The model training left in memory (not a second load of the same file) against
    ``load_model(which="last")`` in a fresh process: the same weights to the bit, the same
    logits from the same audio, the same words."""
    from speech_rnn.audio import load_audio
    from speech_rnn.callbacks import weights_digest
    from speech_rnn.decoding import greedy_decode

    root, clips, metrics = overfit_run
    acoustic, extractor = OVERFIT_IN_MEMORY["acoustic"], OVERFIT_IN_MEMORY["extractor"]
    assert weights_digest(acoustic) == metrics["weights_sha256"]
    config = Config.load(root / "run" / "config.json")
    vocab = json.loads((root / "run" / "vocab.json").read_text())
    expected = {}
    for c in clips:
        windows = extractor(load_audio(c.audio_filepath, config.audio.sample_rate)).numpy()
        logits = acoustic([windows[np.newaxis], np.array([len(windows)])], training=False)
        expected[c.audio_filepath] = np.asarray(logits)[0]
    script = (
        "import json, sys\n"
        "from speech_rnn import load_model\n"
        "from speech_rnn.callbacks import weights_digest\n"
        "r = load_model(sys.argv[1], which='last')\n"
        "out = {p: [r.logits(r.load_waveform(p)).tolist(), r.transcribe(p).text]\n"
        "       for p in sys.argv[2:]}\n"
        "out['sha256'] = weights_digest(r.acoustic_model)\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(root / "run"), *[c.audio_filepath for c in clips]],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh = json.loads(proc.stdout.strip().splitlines()[-1])
    assert fresh.pop("sha256") == metrics["weights_sha256"]
    blank = len(vocab["chars"])  # the blank is the last class
    for path, logits in expected.items():
        fresh_logits, fresh_text = fresh[path]
        np.testing.assert_allclose(np.array(fresh_logits), logits, atol=1e-4)
        ids = greedy_decode(logits, len(logits), blank).ids
        assert fresh_text == " ".join("".join(vocab["chars"][i] for i in ids).split())


def test_resuming_continues_the_step_count(overfit_run, tmp_path):
    from speech_rnn.train import load_history, train

    root, _, metrics = overfit_run
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    # one epoch more: the steps go on from the checkpoint's count, not from 0
    config = Config.load(run / "config.json").with_overrides([f"train.epochs={EPOCHS + 1}"])
    resumed = train(root / "train.jsonl", root / "dev.jsonl", run, config, verbose=0)
    per_epoch = metrics["steps"] // metrics["epochs_completed"]
    assert per_epoch == COPIES
    assert resumed["steps"] == metrics["steps"] + per_epoch
    assert resumed["epochs_completed"] == EPOCHS + 1
    steps = [h["step"] for h in load_history(run)]
    assert steps[-3:] == [MAX_STEPS - per_epoch, MAX_STEPS, MAX_STEPS + per_epoch]


def test_resume_refuses_a_changed_model_config(overfit_run, tmp_path):
    from speech_rnn.errors import ConfigError
    from speech_rnn.train import train

    root, _, _ = overfit_run
    run = tmp_path / "run"
    shutil.copytree(root / "run", run, ignore=shutil.ignore_patterns("cache"))
    config = Config.load(run / "config.json").with_overrides(["model.lstm_units=32"])
    with pytest.raises(ConfigError, match="model.lstm_units"):
        train(root / "train.jsonl", None, run, config, verbose=0)


def test_best_keras_holds_the_weights_of_the_first_evaluation_with_the_lowest_wer(overfit_run):
    """``best.keras`` is chosen by dev WER and saved only on a strictly lower one: its
    weights are those of the first evaluation with the lowest WER in ``history.jsonl``
    (each line carries the evaluated weights' SHA-256), not those of a later evaluation
    with the same WER, nor the last weights; ``metrics.json`` names that evaluation."""
    from speech_rnn import load_model
    from speech_rnn.callbacks import weights_digest
    from speech_rnn.train import load_history

    root, _, metrics = overfit_run
    history = load_history(root / "run")
    wers = [h["dev_wer"] for h in history]
    first_best = wers.index(min(wers))
    ties = [h for h in history[first_best + 1 :] if h["dev_wer"] == min(wers)]
    # the run reaches WER 0 well before its end and stays there: the ties are the test
    assert min(wers) == 0.0 and len(ties) >= 3, wers
    assert wers[0] > min(wers)  # and the WER went down on the way: an earlier best replaced
    digest = weights_digest(load_model(root / "run").acoustic_model)
    assert digest == history[first_best]["weights_sha256"]
    assert all(h["weights_sha256"] != digest for h in ties)  # later ties did not overwrite it
    assert history[-1]["weights_sha256"] == metrics["weights_sha256"] != digest
    assert metrics["best_from"]["step"] == history[first_best]["step"]
    assert metrics["best_dev_wer"] == min(wers)


def test_export_which_last_exports_last_keras_not_best(overfit_run, tmp_path, capsys):
    """``speech-rnn export --which last``: the SavedModel holds last.keras' weights, not
    best.keras' (this run's two differ: the test above), and gives last.keras' logits;
    model.json, with no evaluation manifest given, says the export was not scored."""
    import hashlib

    import tensorflow as tf

    from speech_rnn import load_model
    from speech_rnn.cli import main

    root, clips, _ = overfit_run
    out = tmp_path / "export"
    args = ["export", "--model", root / "run", "--out", out, "--format", "savedmodel"]
    assert main([str(a) for a in args + ["--which", "last"]]) == 0, capsys.readouterr().err
    meta = json.loads((out / "model.json").read_text())
    assert meta["source_model"] == "last.keras"
    # exported without --eval-manifest: model.json says it was not scored
    assert meta["evaluation"] is None and "not scored" in meta["evaluation_note"]
    assert list(meta["artefacts"]) == ["savedmodel"]

    def digests(arrays):
        return sorted(hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() for a in arrays)

    reader = tf.train.load_checkpoint(str(out / "saved_model" / "variables" / "variables"))
    names = [n for n in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in n]
    exported = digests(reader.get_tensor(n) for n in names)
    last, best = (load_model(root / "run", which=w) for w in ("last", "best"))
    assert digests(w.numpy() for w in last.acoustic_model.weights) == exported
    assert digests(w.numpy() for w in best.acoustic_model.weights) != exported
    waveform = last.load_waveform(clips[0].audio_filepath)
    loaded = tf.saved_model.load(str(out / "saved_model"))  # kept: it owns the variables
    served = loaded.signatures["serving_default"](waveform=tf.constant(waveform, tf.float32))
    np.testing.assert_allclose(
        np.squeeze(served["logits"].numpy()), np.squeeze(last.logits(waveform)), atol=1e-4
    )
