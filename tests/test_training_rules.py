"""The training rules the README promises, each on its own with the real classes: newbob
annealing on dev loss (factor, patience, floor), early stopping when neither dev WER nor
dev loss improves."""

from __future__ import annotations

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
