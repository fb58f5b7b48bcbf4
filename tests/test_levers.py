"""The accuracy levers of issue 11, each off by default: what each one does (not whether it
helps, which needs long runs). Model: ``layer_norm``, ``blank_bias_init``; training:
``lr_schedule``, ``sortagrad``, ``eval_at_stop``; data: leave one fsdd speaker out;
features: speed perturbation, frequency warp, noise."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import TINY_TRAIN, short_kathleen_clips

from speech_rnn.config import Config
from speech_rnn.errors import ConfigError

tf = pytest.importorskip("tensorflow")


# -- model ----------------------------------------------------------------------------------
def test_layer_norm_sits_between_the_bilstm_layers():
    from speech_rnn.config import ModelConfig
    from speech_rnn.model import build_model, count_parameters

    units, dim, classes = 8, 12, 5
    plain = build_model(ModelConfig(lstm_layers=3, lstm_units=units), dim, classes)
    normed = build_model(
        ModelConfig(lstm_layers=3, lstm_units=units, layer_norm=True), dim, classes
    )
    names = [layer.name for layer in normed.layers]
    assert not any("layer_norm" in layer.name for layer in plain.layers)
    assert [n for n in names if n.startswith("layer_norm")] == ["layer_norm_0", "layer_norm_1"]
    assert names.index("bilstm_0") < names.index("layer_norm_0") < names.index("bilstm_1")
    # gamma and beta over the 2 x units BiLSTM outputs, after all but the last layer
    assert count_parameters(normed) - count_parameters(plain) == 2 * (2 * 2 * units)


def test_blank_bias_init_sets_only_the_blank_logit(tmp_path):
    from speech_rnn.config import ModelConfig
    from speech_rnn.model import build_model
    from speech_rnn.runfolder import load_keras_safe

    default = build_model(ModelConfig(lstm_layers=1, lstm_units=4), 6, 5)
    assert np.all(default.get_layer("logits").bias.numpy() == 0)
    model = build_model(ModelConfig(lstm_layers=1, lstm_units=4, blank_bias_init=-1.5), 6, 5)
    bias = model.get_layer("logits").bias.numpy()
    assert bias[-1] == -1.5 and np.all(bias[:-1] == 0)  # blank is the last class
    model.save(tmp_path / "m.keras")
    assert load_keras_safe(tmp_path / "m.keras").get_layer("logits").bias.numpy()[-1] == -1.5
    assert Config().with_overrides(["model.blank_bias_init=3"]).model.blank_bias_init == 3.0
    with pytest.raises(ConfigError, match="blank_bias_init"):
        Config().with_overrides(["model.blank_bias_init=nan"])
    with pytest.raises(ConfigError, match="must not be negative"):  # others stay checked
        Config().with_overrides(["model.dropout=-0.1"])


# -- learning rate --------------------------------------------------------------------------
def lr(schedule, step):
    return float(schedule(step))


def test_default_schedule_is_warmup_then_newbob_scale():
    from speech_rnn.trainer import WarmupAnnealSchedule

    s = WarmupAnnealSchedule(1e-3, 10)
    assert Config().train.lr_schedule == "warmup_newbob" and s.anneals
    assert lr(s, 0) == pytest.approx(1e-4) and lr(s, 4) == pytest.approx(5e-4)
    assert lr(s, 9) == lr(s, 10_000) == pytest.approx(1e-3)
    s.scale.assign(0.5)
    assert lr(s, 10_000) == pytest.approx(5e-4)


def test_warmup_cosine_decays_to_min_scale_at_the_last_step():
    from speech_rnn.trainer import WarmupAnnealSchedule

    s = WarmupAnnealSchedule(1.0, 10, "warmup_cosine", total_steps=110, min_scale=0.01)
    assert not s.anneals
    assert lr(s, 0) == pytest.approx(0.1) and lr(s, 10) == pytest.approx(1.0)
    assert lr(s, 60) == pytest.approx(0.01 + 0.99 * 0.5, abs=1e-6)  # halfway: the midpoint
    assert lr(s, 110) == pytest.approx(0.01) and lr(s, 500) == pytest.approx(0.01)
    s.total_steps.assign(210.0)  # a longer budget stretches the decay
    assert lr(s, 110) == pytest.approx(0.505, abs=1e-6)


def test_one_cycle_rises_over_30_percent_then_falls():
    from speech_rnn.trainer import WarmupAnnealSchedule

    s = WarmupAnnealSchedule(1.0, 300, "one_cycle", total_steps=100, min_scale=0.01)
    assert lr(s, 0) == pytest.approx(1 / 25)
    assert lr(s, 15) == pytest.approx((1 + 1 / 25) / 2, abs=1e-6)
    assert lr(s, 30) == pytest.approx(1.0)
    assert lr(s, 65) == pytest.approx((1 + 0.01) / 2, abs=1e-6)
    assert lr(s, 100) == pytest.approx(0.01)
    steps = [lr(s, i) for i in range(101)]
    assert steps.index(max(steps)) == 30


def test_decaying_schedules_turn_newbob_off_and_take_total_steps_from_the_budget():
    from speech_rnn.callbacks import LearningRateAnnealer
    from speech_rnn.train import TrainState, planned_steps
    from speech_rnn.trainer import WarmupAnnealSchedule

    tc = Config().with_overrides(["train.anneal_patience=1"]).train
    for kind, expected in (("warmup_newbob", 0.5), ("warmup_cosine", 1.0)):
        schedule = WarmupAnnealSchedule(1.0, 1, kind)
        state = TrainState(best_loss=1.0)
        LearningRateAnnealer(schedule, tc, state).update(2.0)  # no improvement
        assert float(schedule.scale.numpy()) == expected, kind
    assert planned_steps(Config().with_overrides(["train.max_steps=70"]).train, 40) == 70
    assert planned_steps(Config().with_overrides(["train.epochs=3"]).train, 40) == 120
    with pytest.raises(ConfigError, match="lr_schedule"):
        Config().with_overrides(["train.lr_schedule=linear"])


# -- SortaGrad ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kathleen_examples():
    from speech_rnn.features import FeatureExtractor, FeatureStats, feature_dim
    from speech_rnn.preflight import check_utterances
    from speech_rnn.text import Vocabulary

    clips = short_kathleen_clips(10, max_seconds=3.0)
    vocab = Vocabulary(tuple("abcdefghijklmnopqrstuvwxyz' "))
    config = Config().with_overrides(["train.batch_size=2", "train.bucket_width_s=100"])
    result = check_utterances(clips, vocab, config, decode_audio=False)
    dim = feature_dim(config.features)
    stats = FeatureStats((0.0,) * dim, (1.0,) * dim)
    return list(result.examples), FeatureExtractor(config.features, 16000, stats)


def epoch_order(examples, extractor, overrides, epoch):
    from speech_rnn.pipeline import make_dataset

    config = Config().with_overrides(["train.batch_size=2", "train.bucket_width_s=100", *overrides])
    ds = make_dataset(examples, config, extractor, training=True, epoch=epoch)
    return [int(i) for batch in ds for i in batch["index"].numpy() if i >= 0]  # -1: a copy


def test_sortagrad_reads_epoch_one_short_to_long_then_shuffles(kathleen_examples):
    examples, extractor = kathleen_examples
    durations = [e.utterance.duration for e in examples]
    assert len(set(durations)) == len(durations) > 5
    by_duration = sorted(range(len(examples)), key=durations.__getitem__)
    first = epoch_order(examples, extractor, ["train.sortagrad=true"], 0)
    assert first == by_duration  # one length bucket: exactly sorted
    second = epoch_order(examples, extractor, ["train.sortagrad=true"], 1)
    assert sorted(second) == sorted(by_duration) and second != by_duration
    assert second == epoch_order(examples, extractor, [], 1)  # later epochs: as without it
    assert epoch_order(examples, extractor, [], 0) != by_duration  # the default shuffles


def test_sortagrad_refuses_a_weighted_mix(tmp_path):
    from speech_rnn.manifest import write_manifest
    from speech_rnn.train import train

    write_manifest(short_kathleen_clips(2, max_seconds=3.0), tmp_path / "t.jsonl")
    config = Config().with_overrides(TINY_TRAIN + ["train.sortagrad=true"])
    with pytest.raises(ConfigError, match="sortagrad"):
        train([tmp_path / "t.jsonl"] * 2, None, tmp_path / "run", config, 0, [1.0, 2.0])


# -- evaluation at the end of the budget ----------------------------------------------------
def test_a_budget_that_ends_mid_epoch_is_evaluated_with_eval_at_stop(tmp_path):
    from speech_rnn.manifest import write_manifest
    from speech_rnn.runfolder import load_history
    from speech_rnn.train import train

    write_manifest(short_kathleen_clips(8, max_seconds=3.0), tmp_path / "train.jsonl")
    write_manifest(short_kathleen_clips(2, max_seconds=3.0), tmp_path / "dev.jsonl")
    base = TINY_TRAIN + ["train.batch_size=2", "train.max_steps=3", "train.epochs=1"]
    for flag, evaluated in (("false", False), ("true", True)):
        run = tmp_path / f"run_{flag}"
        config = Config().with_overrides(base + [f"train.eval_at_stop={flag}"])
        metrics = train(tmp_path / "train.jsonl", tmp_path / "dev.jsonl", run, config, 0)
        assert metrics["steps"] == 3 and metrics["epochs_completed"] == 0
        history = load_history(run)
        if not evaluated:  # today's behaviour: no evaluation, best.keras = the last weights
            assert history == [] and metrics["best_dev_wer"] is None
            continue
        assert [r["step"] for r in history] == [3]
        assert metrics["best_from"]["step"] == 3
        assert metrics["best_dev_wer"] == pytest.approx(history[0]["dev_wer"])
        assert (run / "best.keras").is_file()


def test_a_budget_that_ends_on_an_epochs_last_batch_is_not_evaluated_again_on_resume(tmp_path):
    """One clip: every epoch is one step, so the budget's stop at step 1 is also the end of
    epoch 1. Resumed, that epoch is closed without evaluating the same weights a second time
    (a duplicate step in ``history.jsonl``, and one more evaluation counted against the
    annealing and early-stopping patience); the epoch count goes on."""
    from speech_rnn.manifest import write_manifest
    from speech_rnn.runfolder import load_history
    from speech_rnn.train import train

    write_manifest(short_kathleen_clips(1, max_seconds=3.0), tmp_path / "one.jsonl")
    base = TINY_TRAIN + ["train.batch_size=2", "train.epochs=5", "train.eval_at_stop=true"]
    run, data = tmp_path / "run", (tmp_path / "one.jsonl", tmp_path / "one.jsonl")
    first = train(*data, run, Config().with_overrides(base + ["train.max_steps=1"]), 0)
    assert first["steps"] == 1 and [r["step"] for r in load_history(run)] == [1]
    again = train(*data, run, Config().with_overrides(base + ["train.max_steps=3"]), 0)
    assert again["steps"] == 3
    history = load_history(run)
    assert [(r["step"], r["epoch"]) for r in history] == [(1, 0), (2, 2), (3, 2)]


# -- leave one speaker out ------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_fsdd(fsdd_dir, tmp_path_factory):
    """Takes 0-12 of every digit of three speakers (those of them present: the committed
    fixtures hold takes 0, 4, 5 and 12): a small copy of the real recordings."""
    from speech_rnn.data.fsdd import recordings

    folder = tmp_path_factory.mktemp("fsdd")
    for r in recordings(fsdd_dir):
        if r.speaker in ("theo", "jackson", "nicolas") and r.take <= 12:
            shutil.copy(r.path, folder / r.path.name)
    return folder


def speakers_and_takes(path):
    from speech_rnn.data.fsdd import parse

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    names = [parse(row["audio_filepath"]) for row in rows]
    return {(n.speaker, n.take) for n in names}


def test_fsdd_holdout_speaker_puts_all_their_clips_in_test_and_no_others(small_fsdd, tmp_path):
    from speech_rnn.data.fsdd import recordings
    from speech_rnn.data.recipes import fsdd

    takes = {r.take for r in recordings(small_fsdd)}
    out = fsdd(small_fsdd, tmp_path / "loso", holdout_speaker="theo")
    test = speakers_and_takes(out["test"])
    assert test == {("theo", take) for take in takes}
    train, dev = speakers_and_takes(out["train"]), speakers_and_takes(out["dev"])
    assert not any(s == "theo" for s, _ in train | dev)
    assert {t for _, t in dev} == takes & set(range(5, 10))
    assert ("jackson", 0) in train and ("nicolas", 12) in train  # test takes join train
    rows = len(out["test"].read_text().splitlines())
    assert rows == 10 * len(takes)  # every digit
    official = fsdd(small_fsdd, tmp_path / "official")
    assert {s for s, _ in speakers_and_takes(official["test"])} == {"theo", "jackson", "nicolas"}
    with pytest.raises(ConfigError, match="speakers: jackson, nicolas, theo"):
        fsdd(small_fsdd, tmp_path / "bad", holdout_speaker="lucas")


def test_fsdd_connected_holdout_speaker(small_fsdd, tmp_path):
    from speech_rnn.data.recipes import fsdd_connected

    out = fsdd_connected(
        small_fsdd, tmp_path / "c", count=6, dev_count=3, test_count=4, holdout_speaker="theo",
        progress=False,
    )  # fmt: skip
    rows = {s: [json.loads(x) for x in out[s].read_text().splitlines()] for s in out}
    assert {r["speaker"] for r in rows["test"]} == {"theo"}
    assert all(r["speaker"] != "theo" for s in ("train", "dev") for r in rows[s])
    assert all("_theo_" in src for r in rows["test"] for src in r["sources"])
    with pytest.raises(ConfigError, match="other settings"):  # a folder keeps its split
        fsdd_connected(small_fsdd, tmp_path / "c", 6, 3, 4, progress=False)


def test_fsdd_dev_speaker_makes_dev_a_second_unseen_voice(small_fsdd, tmp_path):
    from speech_rnn.data.fsdd import recordings
    from speech_rnn.data.recipes import fsdd, fsdd_connected

    takes = {r.take for r in recordings(small_fsdd)}
    out = fsdd(small_fsdd, tmp_path / "d", holdout_speaker="theo", dev_speaker="jackson")
    train, dev, test = (speakers_and_takes(out[s]) for s in ("train", "dev", "test"))
    assert dev == {("jackson", take) for take in takes}
    assert test == {("theo", take) for take in takes}
    assert train == {("nicolas", take) for take in takes}  # its dev and test takes join
    dev_only = speakers_and_takes(fsdd(small_fsdd, tmp_path / "o", dev_speaker="jackson")["test"])
    assert dev_only == {(s, t) for s in ("nicolas", "theo") for t in takes if t < 5}
    with pytest.raises(ConfigError, match="both 'theo'"):
        fsdd(small_fsdd, tmp_path / "bad", holdout_speaker="theo", dev_speaker="theo")
    with pytest.raises(ConfigError, match="--dev-speaker 'lucas' is not a speaker"):
        fsdd(small_fsdd, tmp_path / "bad", dev_speaker="lucas")
    connected = fsdd_connected(
        small_fsdd, tmp_path / "c", count=4, dev_count=3, test_count=3, holdout_speaker="theo",
        dev_speaker="jackson", progress=False,
    )  # fmt: skip
    rows = {s: [json.loads(x) for x in connected[s].read_text().splitlines()] for s in connected}
    assert {r["speaker"] for r in rows["dev"]} == {"jackson"}
    assert {r["speaker"] for r in rows["train"]} == {"nicolas"}


def test_fsdd_speaker_flags_leave_someone_to_train_on(small_fsdd, tmp_path):
    from speech_rnn.data.recipes import fsdd

    two = tmp_path / "two"
    two.mkdir()
    for path in small_fsdd.glob("*.wav"):
        if "_nicolas_" not in path.name:
            shutil.copy(path, two / path.name)
    with pytest.raises(ConfigError, match="leave no speaker of .* to train on"):
        fsdd(two, tmp_path / "out", holdout_speaker="theo", dev_speaker="jackson")


# -- speed perturbation ---------------------------------------------------------------------
def test_change_speed_resamples_frames_by_the_factor():
    from speech_rnn.features import change_speed

    frames = np.stack([np.arange(100, dtype=np.float32), np.ones(100, np.float32)], axis=1)
    assert change_speed(frames, 1.0).numpy().tolist() == frames.tolist()
    slower, faster = change_speed(frames, 0.9).numpy(), change_speed(frames, 1.1).numpy()
    assert slower.shape == (111, 2) and faster.shape == (91, 2)
    assert faster[10, 0] == pytest.approx(11.0) and slower[10, 0] == pytest.approx(9.0)
    assert np.all(faster[:, 1] == 1)  # interpolation, not new values


def test_speed_perturb_changes_training_frames_only(kathleen_examples):
    from speech_rnn.pipeline import make_dataset

    examples, extractor = kathleen_examples

    def lengths(overrides, training):
        config = Config().with_overrides(["train.batch_size=2", *overrides])
        ds = make_dataset(examples, config, extractor, training=training, epoch=0)
        return {
            int(i): int(n)
            for b in ds
            for i, n in zip(b["index"].numpy(), b["feature_lengths"].numpy(), strict=True)
            if i >= 0  # -1: a copy that fills a bucket's last batch
        }

    plain = lengths([], True)
    for factor in ("0.8", "1.25"):
        perturbed = lengths([f"augment.speed_perturb={factor}", "specaugment.enabled=false"], True)
        for i, n in plain.items():  # frames scale by 1/factor; windows follow within one
            assert abs(perturbed[i] - n / float(factor)) <= 1.5, (factor, i, n, perturbed[i])
    mixed = lengths(["augment.speed_perturb=0.8,1.0,1.25"], True)
    assert len({round(mixed[i] / n, 1) for i, n in plain.items()}) > 1  # drawn per utterance
    assert lengths(["augment.speed_perturb=0.8"], False) == lengths([], False)  # not in eval
    assert Config().with_overrides(["augment.speed_perturb=0.9,1,1.1"]).augment.speed_perturb == (
        0.9, 1.0, 1.1,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="speed_perturb"):
        Config().with_overrides(["augment.speed_perturb=3"])


def test_a_last_batch_is_filled_to_its_bucket_size_with_copies_marked_as_padding(
    kathleen_examples,
):
    """Each new batch shape is one more XLA compilation of the training step, and speed
    perturbation changes a bucket's last batch size every epoch. In training that batch is
    filled to the bucket's size with copies of its own rows, marked as padding (index -1,
    no audio seconds): one shape per bucket, every utterance once per epoch, as many steps
    as batches_per_epoch says. Evaluation batches are not filled."""
    from speech_rnn.pipeline import batches_per_epoch, bucket_boundaries, make_dataset

    examples, extractor = kathleen_examples
    assert len(examples) == 10  # one bucket (all under 4 s) of 10 in batches of 7: 7 + 3
    config = Config().with_overrides(
        ["train.batch_size=7", "train.bucket_width_s=4", "train.max_batch_seconds=0"]
    )
    boundaries = bucket_boundaries(examples, config)
    for overrides in (["augment.speed_perturb=0.9,1.0"], []):
        batches = list(
            make_dataset(examples, config.with_overrides(overrides), extractor, training=True)
        )
        indices = [b["index"].numpy().tolist() for b in batches]
        assert [len(i) for i in indices] == [7, 7]
        assert sorted(i for b in indices for i in b if i >= 0) == list(range(10))
        last = batches[-1]
        assert indices[-1][3:] == [-1] * 4
        assert last["audio_seconds"].numpy()[3:].tolist() == [0.0] * 4
        assert last["audio_seconds"].numpy()[:3].min() > 0
        # the copies are rows of the same batch: the first real rows again
        for key in ("features", "feature_lengths", "labels", "label_lengths"):
            np.testing.assert_array_equal(last[key].numpy()[3:6], last[key].numpy()[:3])
    assert batches_per_epoch(examples, boundaries, 7) == (2, True)
    evaluation = make_dataset(examples, config, extractor, training=False)
    assert [len(b["index"]) for b in evaluation] == [7, 3]


def test_copies_that_fill_a_batch_leave_the_update_unchanged(kathleen_examples):
    """The train step leaves the copies out of the loss: one step on a last batch of 3 as it
    comes (filled to 7) and on the same 3 alone gives the same loss and the same weights."""
    import keras
    import tensorflow as tf

    from speech_rnn.model import build_model
    from speech_rnn.pipeline import make_dataset
    from speech_rnn.trainer import CTCTrainer, WarmupAnnealSchedule, make_optimizer

    examples, extractor = kathleen_examples
    config = Config().with_overrides(
        ["train.batch_size=7", "train.bucket_width_s=4", "train.max_batch_seconds=0"]
        + ["model.lstm_layers=1", "model.lstm_units=8", "model.dropout=0"]
        + ["model.input_dropout=0", "specaugment.enabled=false"]
    )
    filled = list(make_dataset(examples, config, extractor, training=True))[-1]
    assert filled["index"].numpy().tolist().count(-1) == 4
    alone = {k: v[:3] for k, v in filled.items()}

    def one_step(batch):
        keras.utils.set_random_seed(0)
        model = build_model(config.model, batch["features"].shape[-1], 29)
        trainer = CTCTrainer(model, blank_id=28, batch_size=7)
        schedule = WarmupAnnealSchedule(1e-2, 0)
        trainer.compile(optimizer=make_optimizer(schedule, 5.0, False), jit_compile=False)
        trainer(batch)
        trainer.optimizer.build(trainer.trainable_variables)
        loss = float(tf.function(trainer.train_step)(batch)["loss"])
        return loss, [w.numpy() for w in model.weights]

    (loss_filled, weights_filled), (loss_alone, weights_alone) = map(one_step, (filled, alone))
    assert np.isfinite(loss_filled) and loss_filled == pytest.approx(loss_alone, rel=1e-5)
    for a, b in zip(weights_filled, weights_alone, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # and the step did change the weights: the comparison is not of two untouched models
    keras.utils.set_random_seed(0)
    untouched = build_model(config.model, filled["features"].shape[-1], 29).weights
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(weights_alone, untouched))


# -- frequency warp (vocal tract length perturbation) -------------------------------------
def test_warp_frequency_moves_a_formant_by_the_factor():
    from speech_rnn.features import warp_frequency

    bins = np.arange(40, dtype=np.float32)
    peak = np.exp(-0.5 * (bins - 20.0) ** 2)  # one formant at bin 20, in every frame
    log_mel = np.tile(peak, (3, 1))
    assert np.allclose(warp_frequency(log_mel, 1.0).numpy(), log_mel)
    for factor, where in ((1.1, 22), (0.9, 18)):
        warped = warp_frequency(log_mel, factor).numpy()
        assert warped.shape == log_mel.shape
        assert np.argmax(warped, axis=1).tolist() == [where] * 3, factor
    ramp = np.tile(bins, (2, 1))  # bins read from past the top repeat the top bin
    assert warp_frequency(ramp, 0.8).numpy()[0, -1] == 39.0


def test_add_noise_adds_mel_flat_noise_at_the_snr_and_is_seeded():
    from speech_rnn.features import add_noise

    rng = np.random.default_rng(0)
    slope = np.linspace(10.0, 0.1, 40, dtype=np.float32)  # speech: most power in low bins
    log_mel = np.log(rng.gamma(1.0, 1.0, (400, 40)).astype(np.float32) * slope)
    power = np.exp(log_mel)
    seed = tf.constant([3, 4])
    for snr in (0.0, 10.0, 30.0):
        noisy = add_noise(log_mel, tf.constant(snr), seed).numpy()
        added = np.exp(noisy) - power
        assert added.min() > 0  # noise only adds power
        assert 10 * np.log10(power.mean() / added.mean()) == pytest.approx(snr, abs=0.2)
        per_bin = added.mean(axis=0)  # the same mean power in every bin, unlike the speech
        assert per_bin.max() / per_bin.min() < 1.3, snr
    again = add_noise(log_mel, tf.constant(10.0), seed).numpy()
    assert np.array_equal(again, add_noise(log_mel, tf.constant(10.0), seed).numpy())
    other = add_noise(log_mel, tf.constant(10.0), tf.constant([3, 5])).numpy()
    assert not np.allclose(again, other)
    for bad in (
        "augment.noise_fraction=1.5",
        "augment.noise_snr_db=10",
        "augment.noise_snr_db=0,99",
    ):
        with pytest.raises(ConfigError, match=bad.split("=")[0].split(".")[1]):
            Config().with_overrides([bad])


@pytest.mark.parametrize(
    "lever, changes_every_utterance, out_of_range",
    [
        (["augment.freq_warp=0.1"], True, "augment.freq_warp=0.5"),
        # the default noise_fraction, 0.5: some utterances stay clean
        (["augment.noise_snr_db=10,30"], False, "augment.noise_snr_db=30,10"),
    ],
)
def test_a_feature_lever_changes_training_features_only_and_is_seeded(
    kathleen_examples, lever, changes_every_utterance, out_of_range
):
    from speech_rnn.pipeline import make_dataset

    examples, extractor = kathleen_examples

    def features(overrides, training, epoch=0):
        config = Config().with_overrides(
            ["train.batch_size=2", "specaugment.enabled=false", *overrides]
        )
        ds = make_dataset(examples, config, extractor, training=training, epoch=epoch)
        out = {}
        for b in ds:
            for i, f, n in zip(b["index"].numpy(), b["features"].numpy(),
                               b["feature_lengths"].numpy(), strict=True):  # fmt: skip
                if i >= 0:  # -1: a copy that fills a bucket's last batch
                    out[int(i)] = f[:n]
        return out

    plain, changed = features([], True), features(lever, True)
    assert plain.keys() == changed.keys()
    different = [not np.allclose(plain[i], changed[i]) for i in plain]
    assert all(plain[i].shape == changed[i].shape for i in plain)  # the same frames ...
    if changes_every_utterance:
        assert all(different)  # ... other values
    else:
        assert any(different) and not all(different), different
    again = features(lever, True)
    assert all(np.array_equal(changed[i], again[i]) for i in changed)  # seeded per epoch
    other_epoch = features(lever, True, epoch=1)
    assert any(not np.array_equal(changed[i], other_epoch[i]) for i in changed)
    evaluated = features(lever, False)
    assert all(np.array_equal(evaluated[i], v) for i, v in features([], False).items())
    with pytest.raises(ConfigError, match=out_of_range.split("=")[0].split(".")[1]):
        Config().with_overrides([out_of_range])


def test_a_faster_copy_that_ctc_could_not_fit_keeps_its_own_speed(kathleen_examples):
    """Twice as fast, kathleen at stride 3 has fewer windows than some transcripts need
    under CTC: those utterances keep their own speed, the others are sped up, and every
    training example still fits (no infinite loss from a perturbed copy)."""
    from speech_rnn.pipeline import make_dataset
    from speech_rnn.text import ctc_min_frames

    examples, extractor = kathleen_examples  # "index" is the position in this list

    def lengths(overrides):
        config = Config().with_overrides(
            ["train.batch_size=2", "specaugment.enabled=false", *overrides]
        )
        ds = make_dataset(examples, config, extractor, training=True, epoch=0)
        return {
            int(i): int(n)
            for b in ds
            for i, n in zip(b["index"].numpy(), b["feature_lengths"].numpy(), strict=True)
            if i >= 0  # -1: a copy that fills a bucket's last batch
        }

    plain, doubled = lengths([]), lengths(["augment.speed_perturb=2.0"])
    kept, sped_up = [], []
    for i, n in plain.items():
        needed = ctc_min_frames(examples[i].labels)
        assert doubled[i] >= needed, (i, doubled[i], needed)
        if doubled[i] == n:
            kept.append(i)
            assert n / 2 < needed + 1.5, (i, n, needed)  # its faster copy would not fit
        else:
            sped_up.append(i)
            assert abs(doubled[i] - n / 2) <= 1.5, (i, n, doubled[i])
    assert kept and sped_up, (kept, sped_up)  # both cases occur in these clips


def test_every_lever_on_trains_and_reloads(tmp_path):
    from speech_rnn.manifest import write_manifest
    from speech_rnn.recognizer import load_model
    from speech_rnn.train import train

    clips = short_kathleen_clips(6, max_seconds=3.0)
    write_manifest(clips, tmp_path / "train.jsonl")
    levers = [
        "model.lstm_layers=2",
        "model.layer_norm=true",
        "model.blank_bias_init=2",
        "train.lr_schedule=warmup_cosine",
        "train.warmup_steps=2",
        "train.sortagrad=true",
        "train.eval_at_stop=true",
        "train.max_steps=2",
        "train.max_minutes=5",
        "augment.speed_perturb=0.9,1.0,1.1",
        "augment.freq_warp=0.1",
        "features.normalization=utterance",
    ]
    config = Config().with_overrides(TINY_TRAIN + ["train.batch_size=2"] + levers)
    run = tmp_path / "run"
    metrics = train(tmp_path / "train.jsonl", tmp_path / "train.jsonl", run, config, 0)
    assert metrics["steps"] == 2 and metrics["nonfinite_steps"] == 0
    assert Config.load(run / "config.json") == config
    assert metrics["best_from"]["step"] == 2  # evaluated where the budget ended
    recognizer = load_model(run)
    assert "layer_norm_0" in [layer.name for layer in recognizer.acoustic_model.layers]
    assert isinstance(recognizer.transcribe(clips[0].audio_filepath).text, str)
    # The TFLite export's graph (the demo preset's levers included) computes the model's
    # logits; gamma and beta set away from 1 and 0 so that each counts.
    import tensorflow as tf

    from speech_rnn.deploy.graph import tflite_function

    rng = np.random.default_rng(0)
    norm = recognizer.acoustic_model.get_layer("layer_norm_0")
    norm.gamma.assign(rng.uniform(0.5, 1.5, norm.gamma.shape).astype(np.float32))
    norm.beta.assign(rng.normal(0, 0.5, norm.beta.shape).astype(np.float32))
    graph, _module = tflite_function(recognizer)  # the module keeps the LSTM functions
    waveform = recognizer.load_waveform(clips[0].audio_filepath)
    got = graph(tf.constant(waveform))["logits"].numpy()
    np.testing.assert_allclose(got, recognizer.logits(waveform), atol=1e-4)


def test_the_kathleen_budget_config_loads_with_the_measured_settings():
    """data/recipes/kathleen.yaml (docs/accuracy.md) is a valid config file: the settings
    its measurement used, on top of the defaults (kathleen keeps stride 3: it speaks up
    to 22.5 characters a second)."""
    from pathlib import Path

    config = Config.load(Path(__file__).resolve().parents[1] / "data/recipes/kathleen.yaml")
    assert config.augment.speed_perturb == (0.9, 1.0)
    assert config.features.stride == Config().features.stride == 3
    assert config.train.lr_schedule == "warmup_cosine" and config.train.eval_at_stop
    assert config.model.dropout == Config().model.dropout  # regularization kept


def test_the_digits_config_is_the_documented_digit_settings():
    """data/recipes/digits.yaml is exactly the --set flags that docs/accuracy.md (section 3)
    measured the digit recipes with, so either way of writing them trains the same run."""
    from pathlib import Path

    measured = Config().with_overrides(
        [
            "model.lstm_layers=2",
            "model.lstm_units=128",
            "model.dropout=0.1",
            "train.learning_rate=0.002",
            "train.warmup_steps=100",
            "train.anneal_patience=3",
            "train.eval_every_steps=150",
            "train.eval_at_stop=true",
            "augment.speed_perturb=0.9,1.0,1.1",
            "augment.freq_warp=0.1",
        ]
    )
    config = Config.load(Path(__file__).resolve().parents[1] / "data/recipes/digits.yaml")
    assert config == measured
