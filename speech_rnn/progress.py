"""Training progress that tells the truth: ``epoch k/N`` against ``train.epochs``, the
steps of an epoch known from the bucketed dataset, and the time budget when one is set.

On a terminal a tqdm bar per epoch (on stderr); elsewhere (a log file, CI) no carriage
returns: one log line every ``every`` steps and one at the end of each epoch.
"""

from __future__ import annotations

import sys
import time

import keras
import numpy as np

from .log import logger


def _minutes(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


class TrainingProgress(keras.callbacks.Callback):
    """Replaces Keras' progress bar; ``train()`` calls :meth:`begin_epoch` before each
    ``fit`` with the epoch's step count."""

    def __init__(self, epochs: int, max_minutes: float = 0.0, every: int = 50, tty=None):
        super().__init__()
        self.epochs, self.every = epochs, max(1, every)
        self.started = time.monotonic()
        self.deadline = self.started + 60 * max_minutes if max_minutes else None
        self.max_minutes = max_minutes
        self.tty = sys.stderr.isatty() if tty is None else tty
        self._bar = None
        self.lines: list = []  # what was logged, for tests

    def begin_epoch(self, epoch: int, steps: int, exact: bool, done: int = 0) -> None:
        """``epoch`` is 0-based; ``steps`` the epoch's batches (an estimate unless
        ``exact``); ``done`` the batches already done (a resumed epoch)."""
        self.epoch, self.steps, self.exact, self.done = epoch, steps, exact, done
        self.epoch_started, self.loss = time.monotonic(), float("nan")
        self._first_done = done
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=steps,
                initial=done,
                desc=self._label(),
                unit="step",
                leave=True,
                dynamic_ncols=True,
                file=sys.stderr,
            )
        else:
            self._log(
                f"{self._label()}: {'' if exact else '~'}{steps} steps"
                + (f", resuming at step {done}" if done else "")
                + self._budget()
            )

    def _label(self) -> str:
        return f"epoch {self.epoch + 1}/{self.epochs}"

    def _budget(self) -> str:
        if self.deadline is None:
            return ""
        used = time.monotonic() - self.started
        return f", budget {_minutes(used)} of {_minutes(60 * self.max_minutes)} min"

    def _eta(self) -> float:
        elapsed = time.monotonic() - self.epoch_started
        rate = (self.done - self._first_done) / max(elapsed, 1e-9)
        eta = max(0, self.steps - self.done) / max(rate, 1e-9)
        if self.deadline is not None:
            eta = min(eta, max(0.0, self.deadline - time.monotonic()))
        return eta

    def _log(self, line: str) -> None:
        self.lines.append(line)
        logger.info(line)

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if logs and "loss" in logs:
            self.loss = float(np.mean(logs["loss"]))
        if self._bar is not None:
            postfix = {"loss": f"{self.loss:.3f}"}
            if self.deadline is not None:
                postfix["budget left"] = _minutes(self.deadline - time.monotonic())
            self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(1)
        elif self.done % self.every == 0:
            self._log(
                f"{self._label()} step {self.done}/{'' if self.exact else '~'}{self.steps}: "
                f"loss {self.loss:.3f}, ETA {_minutes(self._eta())}{self._budget()}"
            )

    def on_epoch_end(self, epoch, logs=None):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elapsed = time.monotonic() - self.epoch_started
        stopped = self.model is not None and getattr(self.model, "stop_training", False)
        ended = (
            f"stopped at step {self.done}/{self.steps}" if stopped else f"done: {self.done} steps"
        )
        self._log(
            f"{self._label()} {ended} in {_minutes(elapsed)}, loss {self.loss:.3f}{self._budget()}"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
