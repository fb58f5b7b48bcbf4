"""What happens around the optimizer step, in parts with one job each, driven by one Keras
callback (:class:`TrainingHooks`):

* :class:`TensorBoardLog`: every ``LOG_EVERY`` steps train loss, learning rate and
  throughput (audio-seconds per second); after every evaluation dev loss, WER, CER and a
  table of sample transcripts; a few clips as audio once per run; the run's settings and
  results for the HParams dashboard, and a text summary at the end.
* :class:`~speech_rnn.monitor.ClipPictures`: spectrograms and CTC posteriorgrams of the same
  dev clips at every evaluation, one SpecAugment-ed example per epoch, drawn in a
  background thread.
* :class:`Checkpointer`: a full checkpoint every ``checkpoint_every_steps`` steps and at
  every stop, including the position in the epoch, so an interrupted run loses at most one
  interval.
* :class:`DevEvaluation`: after every epoch (and every ``eval_every_steps`` if set) dev
  loss, WER and CER (jiwer), ``best.keras`` by dev WER, ``history.jsonl``.
* :class:`LearningRateAnnealer`: newbob annealing when the dev loss stops improving.
* :class:`EarlyStopping`: stop when neither dev WER nor dev loss improves for a while.
* :class:`StopConditions`: the time budget, ``max_steps``, signals, and too many non-finite
  losses in a row (the skipped batch's files go to ``nonfinite_batches.log``).
"""

from __future__ import annotations

import math
import shlex
import sys
import time

import keras
import numpy as np

from .audio import load_audio
from .distribute import agree
from .errors import AudioError
from .evaluate import decode_dataset
from .fileio import atomic_write_json
from .log import logger
from .monitor import ClipPictures, flat_hparams, run_summary, write_hparam_metrics, write_hparams
from .runfolder import append_history, guarded_save, load_history, save_keras_atomic
from .scoring import utterance_report
from .trainer import ctc_loss_graph

LOG_EVERY = 10


def weights_digest(model) -> str:
    """SHA-256 of the model's weights: equal digests mean bit-identical models (workers of
    one multi-worker run must agree)."""
    import hashlib

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


class TensorBoardLog:
    """The run's ``tensorboard/train`` and ``tensorboard/dev`` event files, and
    ``tensorboard/`` itself for the HParams dashboard and the closing summary."""

    def __init__(self, folder, log_samples: int):
        import tensorflow as tf

        self.train = tf.summary.create_file_writer(str(folder / "train"))
        self.dev = tf.summary.create_file_writer(str(folder / "dev"))
        self.root = tf.summary.create_file_writer(str(folder))
        self.log_samples = log_samples

    def train_scalars(
        self, step: int, loss: float, learning_rate: float, audio_rate: float, epoch: int
    ) -> None:
        import tensorflow as tf

        with self.train.as_default(step=step):
            tf.summary.scalar("loss", loss)
            tf.summary.scalar("learning_rate", learning_rate)
            tf.summary.scalar("audio_seconds_per_second", audio_rate)
            tf.summary.scalar("epoch", epoch)

    def epoch_loss(self, step: int, loss: float) -> None:
        import tensorflow as tf

        with self.train.as_default(step=step):
            tf.summary.scalar("epoch_loss", loss)

    def dev_results(self, step: int, decoded, samples) -> None:
        """Dev loss, WER, CER and the sample transcripts (rows of ``utterance_report``)."""
        import tensorflow as tf

        with self.dev.as_default(step=step):
            tf.summary.scalar("loss", decoded.loss)
            tf.summary.scalar("wer", decoded.scores.wer)
            tf.summary.scalar("cer", decoded.scores.cer)
            table = ["| id | reference | hypothesis | WER |", "|---|---|---|---|"]
            table += [
                f"| {r['id']} | {r['reference']} | {r['hypothesis']} | {r['wer']:.2f} |"
                for r in samples
            ]
            tf.summary.text("transcripts", "\n".join(table))
        self.flush()

    def clips(self, examples, sample_rate: int) -> None:
        """A few clips as audio, once per run (their pictures: :class:`ClipPictures`)."""
        import tensorflow as tf

        with self.dev.as_default(step=0):
            for i, example in enumerate(examples[: self.log_samples]):
                try:
                    waveform = load_audio(example.utterance.audio_filepath, sample_rate)
                except AudioError:  # broke after the pre-flight check: nothing to show
                    continue
                tf.summary.audio(
                    f"clip_{i}",
                    waveform[np.newaxis, :, np.newaxis],
                    sample_rate,
                    description=example.text,
                )
        self.flush()

    def summary(self, step: int, markdown: str) -> None:
        import tensorflow as tf

        with self.root.as_default(step=step):
            tf.summary.text("run_summary", markdown)
        self.root.flush()

    def flush(self) -> None:
        self.train.flush()
        self.dev.flush()
        self.root.flush()


class Checkpointer:
    """Saves the full training state: the checkpoint's variables (weights, optimizer,
    schedule, dropout RNG) and the progress counters mirrored from :class:`TrainState`."""

    def __init__(self, manager, progress: dict, state, optimizer):
        self.manager, self.progress, self.state, self.optimizer = (
            manager,
            progress,
            state,
            optimizer,
        )

    def save(self) -> None:
        for name in (
            "epoch",
            "batch_in_epoch",
            "best_wer",
            "best_loss",
            "evals_since_best",
            "evals_since_anneal",
        ):
            self.progress[name].assign(getattr(self.state, name))
        step = int(self.optimizer.iterations.numpy())
        guarded_save(
            "checkpoint", self.manager.directory, lambda: self.manager.save(checkpoint_number=step)
        )


class DevEvaluation:
    """Dev loss, WER and CER of the current weights; ``best.keras`` when the WER is strictly
    lower than the best so far; one line of ``history.jsonl`` per evaluation, with the
    SHA-256 of the evaluated weights (:func:`weights_digest`)."""

    def __init__(self, run, forward, vocab, examples, dataset, acoustic_model, state):
        self.run, self.forward, self.vocab = run, forward, vocab
        self.examples, self.dataset = examples, dataset
        self.acoustic_model, self.state = acoustic_model, state
        self.loss_fn = ctc_loss_graph(vocab.blank_id)  # traced once, not per evaluation

    def __call__(self):
        decoded = decode_dataset(
            self.forward, self.dataset, self.examples, self.vocab, loss_fn=self.loss_fn
        )
        if decoded.scores.wer < self.state.best_wer - 1e-9:
            self.state.best_wer = decoded.scores.wer
            save_keras_atomic(self.acoustic_model, self.run.best_model)
        return decoded

    def record(self, step: int, decoded, learning_rate: float, elapsed_s: float) -> dict:
        record = {
            "step": step,
            "epoch": self.state.epoch,
            "dev_loss": decoded.loss,
            "dev_wer": decoded.scores.wer,
            "dev_cer": decoded.scores.cer,
            "learning_rate": learning_rate,
            "elapsed_s": round(elapsed_s, 1),
            "best_wer": self.state.best_wer,
            "best_loss": self.state.best_loss,
            # the evaluated weights: best.keras holds those of the first evaluation with
            # the lowest dev WER, and its digest is this one
            "weights_sha256": weights_digest(self.acoustic_model),
        }
        append_history(self.run, record)
        return record


class LearningRateAnnealer:
    """Newbob: after ``anneal_patience`` evaluations without a lower dev loss, multiply the
    learning rate by ``anneal_factor`` (not below ``min_lr_scale``). Never during the
    warm-up: the dev loss of a model still leaving the all-blank plateau goes up and down,
    and halving the rate there only lengthens the plateau."""

    def __init__(self, schedule, train_config, state):
        self.schedule, self.tc, self.state = schedule, train_config, state

    def update(self, dev_loss: float, *, step: int | None = None) -> None:
        if dev_loss < self.state.best_loss - 1e-6:
            self.state.best_loss = dev_loss
            self.state.evals_since_anneal = 0
            return
        self.state.evals_since_anneal += 1
        if not getattr(self.schedule, "anneals", True):  # the schedule decays by itself
            return
        if self.state.evals_since_anneal < self.tc.anneal_patience:
            return
        if step is not None and step < self.tc.warmup_steps:
            return
        scale = float(self.schedule.scale.numpy())
        new = max(self.tc.min_lr_scale, scale * self.tc.anneal_factor)
        if new < scale:
            self.schedule.scale.assign(new)
            logger.info(
                f"dev loss did not improve: learning rate x{self.tc.anneal_factor:g} "
                f"-> {self.tc.learning_rate * new:.2e}"
            )
        self.state.evals_since_anneal = 0


class EarlyStopping:
    """A stop reason after ``early_stop_patience`` evaluations in which neither the dev WER
    nor the dev loss improved. Early in training the WER sits at 100% for a while although
    the model is learning, so a lower dev loss counts as progress too."""

    def __init__(self, patience: int, state):
        self.patience, self.state = patience, state

    def update(self, wer: float, dev_loss: float) -> str:
        """Call before the annealer updates ``best_loss``."""
        if wer <= self.state.best_wer or dev_loss < self.state.best_loss - 1e-6:
            self.state.evals_since_best = 0
        else:
            self.state.evals_since_best += 1
        if self.state.evals_since_best >= self.patience:
            return (
                f"early stopping: dev WER and loss did not improve in {self.patience} evaluations"
            )
        return ""


class StopConditions:
    """Why training should stop after this batch, if it should: a signal, the time budget,
    ``max_steps``, or too many non-finite losses in a row."""

    def __init__(self, train_config, started: float):
        self.tc = train_config
        self.deadline = (
            started + 60 * train_config.max_minutes if train_config.max_minutes else math.inf
        )
        self.signal_reason, self.signum = "", None

    def request(self, reason: str, signum: int | None = None) -> None:
        self.signal_reason, self.signum = reason, signum

    def wall_clock(self) -> str:
        """A stop every worker must agree on (a signal or the budget): "" if none."""
        if self.signal_reason:
            return self.signal_reason
        if time.monotonic() >= self.deadline:
            return f"time budget of {self.tc.max_minutes:g} min reached"
        return ""

    def steps(self, step: int) -> str:
        if self.tc.max_steps and step >= self.tc.max_steps:
            return f"reached train.max_steps={self.tc.max_steps}"
        return ""

    def nonfinite(self, in_row: int, log_path) -> str:
        if in_row >= self.tc.max_nonfinite_in_row:
            return (
                f"stopped: {in_row} non-finite losses in a row (see {log_path}); lower "
                "train.learning_rate or check the listed files"
            )
        return ""


class TrainingHooks(keras.callbacks.Callback):
    """The Keras callback that calls the parts above at the right moments; ``train()``
    brackets every epoch with :meth:`begin_epoch` / :meth:`end_epoch`."""

    def __init__(
        self,
        *,
        run,
        config,
        trainer,
        optimizer,
        schedule,
        manager,
        progress,
        state,
        forward,
        vocab,
        extractor,
        dev_examples,
        dev_dataset,
        train_examples,
        strategy=None,
        data_info=None,
        last_eval_step=-1,
    ):
        super().__init__()
        import tensorflow as tf

        self.run, self.config, self.trainer, self.state = run, config, trainer, state
        self.optimizer, self.schedule = optimizer, schedule
        self.extractor, self.dev_examples, self.train_examples = (
            extractor,
            dev_examples,
            train_examples,
        )
        self.strategy = strategy
        self.data_info = dict(data_info or {})
        tc = config.train
        self.started = time.monotonic()
        self.tensorboard = TensorBoardLog(run.tensorboard, tc.log_samples)
        self.pictures = ClipPictures(
            self.tensorboard.dev, self.tensorboard.train, config, extractor, vocab, forward
        )
        self.picture_examples = list(dev_examples[: tc.log_samples])
        self._evaluations = 0  # in this invocation: pictures every train.pictures_every
        self.checkpointer = Checkpointer(manager, progress, state, optimizer)
        self.dev = DevEvaluation(
            run, forward, vocab, dev_examples, dev_dataset, trainer.acoustic_model, state
        )
        self.annealer = LearningRateAnnealer(schedule, tc, state)
        self.early_stopping = EarlyStopping(tc.early_stop_patience, state)
        self.stops = StopConditions(tc, self.started)
        # Several workers must stop at the same step, or the others wait forever in an
        # all-reduce: wall-clock and signal stops are agreed on at epoch ends.
        self.multiworker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self._pending_stop = ""
        self.failed = False
        self.last_dev = {}
        self._seen_nonfinite = int(trainer.nonfinite_steps.numpy())
        self._rate_mark = None
        self._epoch_complete = False
        self._hparams_written = False
        self._budget_stop = False  # stopped mid-epoch by the time budget or max_steps
        # A resumed run may start where the last one evaluated (a stop on an epoch's last
        # batch): those weights are not evaluated twice.
        self._last_eval_step = last_eval_step
        self._first_step = (
            None  # (step, time, planned total) at the first paced step: see _pace_total_steps
        )
        self.skipped_files = []  # files that failed to decode after the pre-flight check

    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    @property
    def stop_requested(self) -> str:
        return self.stops.signal_reason

    def request_stop(self, reason: str, signum: int | None = None) -> None:
        """From a signal handler: checkpoint and stop after the current batch."""
        self.stops.request(reason, signum)

    def _stop(self, reason: str) -> None:
        if not self.state.stop_reason:
            self.state.stop_reason = reason
        self.trainer.stop_training = True

    def _interrupt(self, reason: str) -> None:
        """Stop inside an epoch: the checkpoint keeps the position for the resume."""
        self._epoch_complete = False
        self._stop(reason)

    # -- epoch bracketing (called by train()) -----------------------------------------
    def begin_epoch(self) -> None:
        self._epoch_complete = True  # cleared when a stop interrupts the epoch
        pictures = self.config.train.pictures_every
        if self.train_examples and self.config.specaugment.enabled and pictures:
            self.pictures.specaugment(self.step, self.state.epoch, self.train_examples[0], 0)

    def end_epoch(self) -> None:
        agreed = ""
        if self.multiworker and not self.state.stop_reason:
            if agree(self.strategy, bool(self._pending_stop)):
                agreed = self._pending_stop or "stopped by another worker"
        if self._epoch_complete and not self.state.stop_reason:
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
            if self.dev_examples and self.step != self._last_eval_step:
                self.evaluate()
            save_keras_atomic(self.trainer.acoustic_model, self.run.last_model)
        elif self._budget_stop and self.dev_examples and self.step != self._last_eval_step:
            if self.config.train.eval_at_stop:  # the last steps may hold the best weights
                logger.info(f"budget reached mid-epoch: evaluating the step-{self.step} weights")
                self.evaluate()
        self.checkpointer.save()
        if agreed:
            self._stop(agreed)

    # -- Keras hooks -----------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self.step == 0 and not self.run.last_model.exists():
            shown = list(self.dev_examples) or list(self.train_examples)
            self.tensorboard.clips(shown, self.config.audio.sample_rate)
            self.pictures.spectrograms(shown[: self.config.train.log_samples])
        if not self._hparams_written:  # once per invocation (every epoch is one fit)
            self._hparams_written = True
            write_hparams(
                self.tensorboard.root,
                self.run.root.name,
                flat_hparams(self.config, self.data_info),
            )
        self._rate_mark = (time.monotonic(), float(self.trainer.audio_seconds.numpy()))

    def on_train_batch_end(self, batch, logs=None):
        self.state.batch_in_epoch += 1
        step = self.step
        tc = self.config.train
        if self._check_nonfinite(step):
            return
        if step % LOG_EVERY == 0 and logs and "loss" in logs:
            now, seconds = time.monotonic(), float(self.trainer.audio_seconds.numpy())
            rate = (seconds - self._rate_mark[1]) / max(1e-9, now - self._rate_mark[0])
            self._rate_mark = (now, seconds)
            self.tensorboard.train_scalars(
                step,
                float(np.mean(logs["loss"])),
                float(self.schedule(step)),
                rate,
                self.state.epoch,
            )
        if step % LOG_EVERY == 0:
            self._pace_total_steps(step)
        if tc.checkpoint_every_steps and step % tc.checkpoint_every_steps == 0:
            self.checkpointer.save()
        if tc.eval_every_steps and step % tc.eval_every_steps == 0 and self.dev_examples:
            self.evaluate()
        wanted = self.stops.wall_clock()
        if wanted and self.multiworker:
            self._pending_stop = wanted
        elif wanted or self.stops.steps(step):
            self._budget_stop = not self.stops.signal_reason
            self._interrupt(wanted or self.stops.steps(step))

    def _pace_total_steps(self, step: int) -> None:
        """Under a time budget, a decaying schedule ends where the time runs out: the total
        steps become those the pace so far reaches by the deadline (never more than the
        budget's epochs or max_steps allow)."""
        tc = self.config.train
        if getattr(self.schedule, "anneals", True) or not tc.max_minutes:
            return
        if self._first_step is None:  # after the first steps (and their compilation)
            self._first_step = (step, time.monotonic(), float(self.schedule.total_steps.numpy()))
            return
        first, started, planned = self._first_step
        elapsed, left = time.monotonic() - started, self.stops.deadline - time.monotonic()
        if step <= first or elapsed <= 0:
            return
        reachable = step + max(0.0, left) * (step - first) / elapsed
        self.schedule.total_steps.assign(min(planned, max(float(step), reachable)))

    def on_epoch_end(self, epoch, logs=None):
        if logs and "loss" in logs:
            self.tensorboard.epoch_loss(self.step, float(np.mean(logs["loss"])))

    def _check_nonfinite(self, step: int) -> bool:
        """Log a skipped non-finite batch; True when too many in a row stop the run."""
        nonfinite = int(self.trainer.nonfinite_steps.numpy())
        if nonfinite == self._seen_nonfinite:
            return False
        self._seen_nonfinite = nonfinite
        index = [int(i) for i in self.trainer.last_nonfinite_index.numpy() if i >= 0]
        files = [self.train_examples[i].utterance.audio_filepath for i in index]
        with open(self.run.nonfinite_log, "a", encoding="utf-8") as f:
            f.write(f"step {step}: non-finite loss, update skipped; files: {' '.join(files)}\n")
        logger.warning(
            f"non-finite loss at step {step}; update skipped "
            f"(files in {self.run.nonfinite_log.name})"
        )
        reason = self.stops.nonfinite(
            int(self.trainer.nonfinite_in_row.numpy()), self.run.nonfinite_log
        )
        if reason:
            self.failed = True
            self._interrupt(reason)
        return bool(reason)

    # -- evaluation ------------------------------------------------------------------
    def evaluate(self) -> dict:
        decoded = self.dev()
        step = self.step
        self._last_eval_step = step
        samples = utterance_report(
            decoded.ids[: self.config.train.log_samples], decoded.references, decoded.hypotheses
        )["per_utterance"]
        self.tensorboard.dev_results(step, decoded, samples)
        every = self.config.train.pictures_every
        if every and self._evaluations % every == 0:
            self.pictures.evaluation(step, self.picture_examples)
        self._evaluations += 1
        early_stop = self.early_stopping.update(decoded.scores.wer, decoded.loss)
        self.annealer.update(decoded.loss, step=step)
        if early_stop:
            self._stop(early_stop)
        record = self.dev.record(
            step, decoded, float(self.schedule(step)), time.monotonic() - self.started
        )
        self.last_dev = record
        write_hparam_metrics(self.tensorboard.root, step, {"best_dev_wer": self.state.best_wer})
        logger.info(
            f"step {step} epoch {self.state.epoch}: dev loss {decoded.loss:.3f} "
            f"WER {100 * decoded.scores.wer:.2f}% CER {100 * decoded.scores.cer:.2f}% "
            f"(best WER {100 * self.state.best_wer:.2f}%)"
        )
        for r in samples[:2]:
            logger.info(f"  ref: {r['reference']}\n  hyp: {r['hypothesis']}")
        return record

    # -- end ---------------------------------------------------------------------------
    def close(self) -> None:
        self.pictures.close()
        self.tensorboard.flush()

    def finish(self) -> dict:
        """Final export and metrics, after the loop (also after an interruption)."""
        save_keras_atomic(self.trainer.acoustic_model, self.run.last_model)
        if self.dev_examples and not self.run.best_model.exists():
            save_keras_atomic(self.trainer.acoustic_model, self.run.best_model)
        metrics = {
            "stop_reason": self.state.stop_reason,
            "steps": self.step,
            "epochs_completed": self.state.epoch,
            "best_dev_wer": None if math.isinf(self.state.best_wer) else self.state.best_wer,
            "last_dev": self.last_dev,
            "train_seconds_this_invocation": round(time.monotonic() - self.started, 1),
            "audio_seconds_seen": float(self.trainer.audio_seconds.numpy()),
            "nonfinite_steps": int(self.trainer.nonfinite_steps.numpy()),
            "signal": self.stops.signum,
            "failed": self.failed,
        }
        history = load_history(self.run)
        best = min(history, key=lambda r: r["dev_wer"]) if history else None
        metrics["best_dev_cer"] = min(r["dev_cer"] for r in history) if history else None
        metrics["best_from"] = (
            {k: best[k] for k in ("step", "epoch", "dev_wer", "dev_cer")} if best else None
        )
        metrics["audio_seconds_per_second"] = round(
            metrics["audio_seconds_seen"] / max(1e-9, metrics["train_seconds_this_invocation"]), 2
        )
        metrics["data"] = self.data_info
        skipped = sorted(set(self.skipped_files))
        metrics["skipped_after_preflight"] = skipped
        if skipped:
            logger.warning(
                f"{len(skipped)} file(s) passed the pre-flight check but failed to decode "
                f"later and were left out: {', '.join(skipped[:5])}"
                + (" ..." if len(skipped) > 5 else "")
            )
        metrics["weights_sha256"] = weights_digest(self.trainer.acoustic_model)
        self.pictures.close()
        renders = self.pictures.render_seconds
        metrics["picture_seconds_per_evaluation"] = (
            round(float(np.median(renders)), 3) if renders else None
        )
        forwards = self.pictures.forward_seconds
        metrics["picture_model_seconds_per_evaluation"] = (
            round(float(np.median(forwards)), 3) if forwards else None
        )
        atomic_write_json(self.run.metrics, metrics)
        write_hparam_metrics(
            self.tensorboard.root,
            self.step,
            {
                k: metrics[k]
                for k in ("best_dev_wer", "best_dev_cer", "steps", "audio_seconds_per_second")
            },
        )
        command = shlex.join(["speech-rnn", *sys.argv[1:]]) if sys.argv else ""
        self.tensorboard.summary(
            self.step, run_summary(command, self.data_info, metrics, best, self.run.root)
        )
        self.close()
        logger.info(f"final weights sha256 {metrics['weights_sha256']}")
        logger.info(f"{self.state.stop_reason}; run folder: {self.run.root}")
        return metrics
