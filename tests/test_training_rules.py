"""The training rules the README promises, each on its own with the real classes: newbob
annealing on dev loss (factor, patience, floor), early stopping when neither dev WER nor
dev loss improves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from speech_rnn.callbacks import EarlyStopping, LearningRateAnnealer
from speech_rnn.config import Config
from speech_rnn.train import TrainState

tf = pytest.importorskip("tensorflow")


def annealer(**overrides):
    from speech_rnn.trainer import WarmupAnnealSchedule

    tc = Config().with_overrides([f"train.{k}={v}" for k, v in overrides.items()]).train
    schedule = WarmupAnnealSchedule(tc.learning_rate, tc.warmup_steps)
    state = TrainState()
    return LearningRateAnnealer(schedule, tc, state), schedule, state


def scales(losses, **overrides):
    """The learning-rate scale after each dev loss."""
    rule, schedule, _ = annealer(**overrides)
    out = []
    for loss in losses:
        rule.update(loss)
        out.append(round(float(schedule.scale.numpy()), 6))
    return out


def test_newbob_halves_the_rate_after_patience_evaluations_without_a_lower_dev_loss():
    # patience 1: every evaluation that does not lower the best dev loss halves the rate
    assert scales([5, 4, 4.5, 3, 3, 3], anneal_factor=0.5, anneal_patience=1) == [
        1,
        1,
        0.5,
        0.5,
        0.25,
        0.125,
    ]
    # patience 2: two evaluations in a row without improvement; an improvement resets it
    assert scales([5, 6, 6, 6, 4, 6, 6], anneal_factor=0.5, anneal_patience=2) == [
        1,
        1,
        0.5,
        0.5,
        0.5,
        0.5,
        0.25,
    ]
    # a change smaller than 1e-6 is not an improvement
    assert scales([5, 5 - 1e-8], anneal_factor=0.5, anneal_patience=1) == [1, 0.5]


def test_annealing_stops_at_min_lr_scale_and_the_rate_follows_the_scale():
    losses = [1.0] + [2.0] * 10
    out = scales(losses, anneal_factor=0.5, anneal_patience=1, min_lr_scale=0.1)
    assert out == [1, 0.5, 0.25, 0.125, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    rule, schedule, _ = annealer(learning_rate=0.002, warmup_steps=10, anneal_patience=1)
    for loss in (3.0, 4.0):
        rule.update(loss)
    assert float(schedule(100)) == pytest.approx(0.002 * 0.5)
    assert float(schedule(4)) == pytest.approx(0.002 * 0.5 * 5 / 10)  # still warming up


def test_no_annealing_during_the_warm_up():
    """An evaluation inside the warm-up never lowers the rate; the first one after it
    does, when the dev loss has not improved."""
    rule, schedule, _ = annealer(warmup_steps=300, anneal_factor=0.5, anneal_patience=1)
    seen = []
    for step, loss in ((150, 5.0), (153, 6.0), (299, 6.0), (300, 6.0)):
        rule.update(loss, step=step)
        seen.append(float(schedule.scale.numpy()))
    assert seen == [1.0, 1.0, 1.0, 0.5]


def test_early_stopping_needs_patience_evaluations_without_a_better_wer_or_loss():
    state = TrainState()
    rule = EarlyStopping(3, state)

    def evaluate(wer, loss):
        reason = rule.update(wer, loss)  # before the bests are updated, as in training
        state.best_wer = min(state.best_wer, wer)
        state.best_loss = min(state.best_loss, loss)
        return reason

    assert evaluate(1.0, 10.0) == ""
    assert evaluate(1.0, 9.0) == ""  # the WER is stuck at 100% but the loss falls: progress
    assert evaluate(0.9, 9.5) == ""  # a better WER: progress
    assert (evaluate(0.95, 9.5), evaluate(0.95, 9.5)) == ("", "")  # 2 without progress
    assert evaluate(0.9, 9.0 + 1e-7) == ""  # the same best WER counts as progress (<=)
    message = "early stopping: dev WER and loss did not improve in 3 evaluations"
    assert [evaluate(0.95, 9.5) for _ in range(3)] == ["", "", message]
    assert evaluate(1.0, 10.0) == message  # and it stays stopped


# -- the step and time limits, end to end on a tiny model ---------------------------------------
def tiny_train(tmp_path, overrides, after_preflight=None):
    """Train a tiny model on four real clips (copied, so a test may break one); with
    ``after_preflight``, call it (with the copies) once the pre-flight check has passed."""
    import shutil

    from conftest import TINY_TRAIN, short_kathleen_clips

    import speech_rnn.train as training
    from speech_rnn.manifest import Utterance, write_manifest

    clips = []
    for clip in short_kathleen_clips(4, max_seconds=3.0):
        copy = tmp_path / "audio" / Path(clip.audio_filepath).name
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(clip.audio_filepath, copy)
        clips.append(Utterance(str(copy), clip.duration, clip.text, id=clip.id))
    write_manifest(clips, tmp_path / "clips.jsonl")
    config = Config().with_overrides(TINY_TRAIN + ["train.batch_size=2", *overrides])
    real_build = training.build_training

    def build(*args):
        if after_preflight:
            after_preflight(clips)
        return real_build(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "build_training", build)
        metrics = training.train(
            tmp_path / "clips.jsonl", tmp_path / "clips.jsonl", tmp_path / "run", config, verbose=0
        )
    return metrics, clips


def test_max_steps_and_eval_every_steps_and_a_file_broken_after_preflight(tmp_path):
    """``train.max_steps=5`` stops at step 5 exactly (mid-epoch, checkpointed there);
    ``train.eval_every_steps=2`` evaluates at steps 2 and 4 besides the epoch ends; a clip
    overwritten after the pre-flight check is left out and named in ``metrics.json``."""
    from speech_rnn.runfolder import load_history

    def break_one(clips):
        Path(clips[2].audio_filepath).write_bytes(b"RIFF\x24\x00\x00\x00WAVE" + bytes(32))

    metrics, clips = tiny_train(
        tmp_path,
        ["train.max_steps=5", "train.eval_every_steps=2", "train.epochs=50"],
        after_preflight=break_one,
    )
    run = tmp_path / "run"
    assert metrics["steps"] == 5
    assert metrics["stop_reason"] == "reached train.max_steps=5"
    assert json.loads((run / "metrics.json").read_text())["steps"] == 5
    assert (run / "checkpoints" / "ckpt-5.index").is_file()  # the stop is checkpointed
    steps = [h["step"] for h in load_history(run)]
    assert max(steps) <= 5 and {2, 4} <= set(steps), steps
    assert steps == sorted(set(steps)), steps  # an epoch end at step 2 or 4: scored once
    assert metrics["skipped_after_preflight"] == [clips[2].audio_filepath]


def test_a_time_budget_stops_after_the_batch_that_ran_out_and_checkpoints(tmp_path):
    """``--minutes`` is ``train.max_minutes``: a budget of a few milliseconds stops after
    the first batch, with the reason, and a checkpoint at that step."""
    metrics, _ = tiny_train(tmp_path, ["train.max_minutes=0.0001", "train.epochs=50"])
    assert metrics["stop_reason"] == "time budget of 0.0001 min reached"
    assert metrics["steps"] == 1 and not metrics["failed"]
    assert (tmp_path / "run" / "checkpoints" / "ckpt-1.index").is_file()
