"""The training hooks: TensorBoard, dev WER/CER, annealing, best model, checkpoints, budget.

One Keras callback drives everything that happens around the optimizer step:

* every ``LOG_EVERY`` steps: train loss, learning rate, throughput (audio-seconds per
  second) to TensorBoard;
* every ``checkpoint_every_steps`` steps and at every stop: a full checkpoint including the
  position in the epoch, so an interrupted run loses at most one interval;
* after every epoch (and every ``eval_every_steps`` if set): dev loss, WER and CER (jiwer),
  sample transcripts as a text table; newbob annealing of the learning rate, ``best.keras``
  by dev WER, early stopping;
* non-finite losses: the skipped batch's files go to ``nonfinite_batches.log``; too many
  in a row stop the run with a clear message.
"""
from __future__ import annotations

import math
import time

import keras
import numpy as np

from .fileio import atomic_write_json
from .runfolder import append_history, guarded_save, save_keras_atomic

LOG_EVERY = 10


def weights_digest(model) -> str:
    """SHA-256 of the model's weights: equal digests mean bit-identical models (workers of
    one multi-worker run must agree)."""
    import hashlib
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


class TrainingHooks(keras.callbacks.Callback):
    def __init__(self, *, run, config, trainer, optimizer, schedule, manager, progress, state,
                 forward, vocab, extractor, dev_examples, dev_dataset, train_examples, log,
                 strategy=None):
        super().__init__()
        import tensorflow as tf
        self.run, self.config, self.trainer = run, config, trainer
        self.optimizer, self.schedule, self.manager = optimizer, schedule, manager
        self.progress, self.state, self.forward = progress, state, forward
        self.vocab, self.extractor = vocab, extractor
        self.dev_examples, self.dev_dataset = dev_examples, dev_dataset
        self.train_examples, self.log = train_examples, log
        self.strategy = strategy
        # Several workers must stop at the same step, or the others wait forever in an
        # all-reduce: wall-clock and signal stops are agreed on at epoch ends.
        self.multiworker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        self._pending_stop = ""
        self._agreed_stop = ""
        self.train_writer = tf.summary.create_file_writer(str(run.tensorboard / "train"))
        self.dev_writer = tf.summary.create_file_writer(str(run.tensorboard / "dev"))
        self.started = time.monotonic()
        self.stop_requested = ""
        self.signal = None
        self.failed = False
        self.last_dev = {}
        self.best_loss = state.best_loss
        self._seen_nonfinite = int(trainer.nonfinite_steps.numpy())
        self._rate_mark = None
        self._epoch_complete = False
        tc = config.train
        self.deadline = self.started + 60 * tc.max_minutes if tc.max_minutes else math.inf

    # -- helpers ----------------------------------------------------------------------
    @property
    def step(self) -> int:
        return int(self.optimizer.iterations.numpy())

    def request_stop(self, reason: str, signum: int | None = None) -> None:
        self.stop_requested = reason
        self.signal = signum

    def _stop(self, reason: str) -> None:
        if not self.state.stop_reason:
            self.state.stop_reason = reason
        self.trainer.stop_training = True

    def save_checkpoint(self) -> None:
        p = self.progress
        p["epoch"].assign(self.state.epoch)
        p["batch_in_epoch"].assign(self.state.batch_in_epoch)
        p["best_wer"].assign(self.state.best_wer)
        p["best_loss"].assign(self.best_loss)
        p["evals_since_best"].assign(self.state.evals_since_best)
        p["evals_since_anneal"].assign(self.state.evals_since_anneal)
        guarded_save("checkpoint", self.manager.directory,
                     lambda: self.manager.save(checkpoint_number=self.step))

    # -- epoch bracketing (called by train()) -----------------------------------------
    def begin_epoch(self) -> None:
        self._epoch_complete = True  # cleared when a stop interrupts the epoch

    def end_epoch(self) -> None:
        if self.multiworker and not self.state.stop_reason:
            from .distribute import agree
            if agree(self.strategy, bool(self._pending_stop)):
                self._agreed_stop = self._pending_stop or "stopped by another worker"
        if self._epoch_complete and not self.state.stop_reason:
            self.state.epoch += 1
            self.state.batch_in_epoch = 0
            if self.dev_examples:
                self.evaluate()
            save_keras_atomic(self.trainer.acoustic_model, self.run.last_model)
        self.save_checkpoint()
        if self._agreed_stop:
            self._stop(self._agreed_stop)

    # -- Keras hooks -----------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if self.step == 0 and not self.run.last_model.exists():
            self._log_samples()
        self._rate_mark = (time.monotonic(), float(self.trainer.audio_seconds.numpy()))

    def on_train_batch_end(self, batch, logs=None):
        import tensorflow as tf
        self.state.batch_in_epoch += 1
        step = self.step
        tc = self.config.train
        nonfinite = int(self.trainer.nonfinite_steps.numpy())
        if nonfinite != self._seen_nonfinite:
            self._seen_nonfinite = nonfinite
            self._log_nonfinite_batch(step)
            in_row = int(self.trainer.nonfinite_in_row.numpy())
            if in_row >= tc.max_nonfinite_in_row:
                self.failed = True
                self._interrupt(f"stopped: {in_row} non-finite losses in a row (see "
                                f"{self.run.nonfinite_log}); lower train.learning_rate or "
                                "check the listed files")
                return
        if step % LOG_EVERY == 0 and logs and "loss" in logs:
            now, seconds = time.monotonic(), float(self.trainer.audio_seconds.numpy())
            rate = (seconds - self._rate_mark[1]) / max(1e-9, now - self._rate_mark[0])
            self._rate_mark = (now, seconds)
            with self.train_writer.as_default(step=step):
                tf.summary.scalar("loss", float(np.mean(logs["loss"])))
                tf.summary.scalar("learning_rate", float(self.schedule(step)))
                tf.summary.scalar("audio_seconds_per_second", rate)
                tf.summary.scalar("epoch", self.state.epoch)
        if tc.checkpoint_every_steps and step % tc.checkpoint_every_steps == 0:
            self.save_checkpoint()
        if tc.eval_every_steps and step % tc.eval_every_steps == 0 and self.dev_examples:
            self.evaluate()
        wanted = self.stop_requested or (f"time budget of {tc.max_minutes:g} min reached"
                                         if time.monotonic() >= self.deadline else "")
        if wanted and self.multiworker:
            self._pending_stop = wanted
        elif wanted:
            self._interrupt(wanted)
        elif tc.max_steps and step >= tc.max_steps:
            self._interrupt(f"reached train.max_steps={tc.max_steps}")

    def on_epoch_end(self, epoch, logs=None):
        import tensorflow as tf
        if logs and "loss" in logs:
            with self.train_writer.as_default(step=self.step):
                tf.summary.scalar("epoch_loss", float(np.mean(logs["loss"])))

    def _interrupt(self, reason: str) -> None:
        """Stop inside an epoch: the checkpoint keeps the position for the resume."""
        self._epoch_complete = False
        self._stop(reason)

    # -- evaluation ------------------------------------------------------------------
    def evaluate(self) -> dict:
        import tensorflow as tf

        from .evaluate import decode_dataset
        from .scoring import utterance_report
        decoded = decode_dataset(self.forward, self.dev_dataset, self.dev_examples, self.vocab,
                                 with_loss=True)
        step = self.step
        wer, cer = decoded.scores.wer, decoded.scores.cer
        lr = float(self.schedule(step))
        with self.dev_writer.as_default(step=step):
            tf.summary.scalar("loss", decoded.loss)
            tf.summary.scalar("wer", wer)
            tf.summary.scalar("cer", cer)
            samples = utterance_report(decoded.ids[:self.config.train.log_samples],
                                       decoded.references, decoded.hypotheses)["per_utterance"]
            table = ["| id | reference | hypothesis | WER |", "|---|---|---|---|"]
            table += [f"| {r['id']} | {r['reference']} | {r['hypothesis']} | {r['wer']:.2f} |"
                      for r in samples]
            tf.summary.text("transcripts", "\n".join(table))
        self.dev_writer.flush()
        self.train_writer.flush()
        tc = self.config.train
        if wer < self.state.best_wer - 1e-9:
            self.state.best_wer = wer
            save_keras_atomic(self.trainer.acoustic_model, self.run.best_model)
        # Progress is a lower WER or a lower dev loss: early in training the WER sits at
        # 100% for a while although the model is learning, and that must not anneal it.
        if wer <= self.state.best_wer or decoded.loss < self.best_loss - 1e-6:
            self.state.evals_since_best = 0
        else:
            self.state.evals_since_best += 1
        if decoded.loss < self.best_loss - 1e-6:
            self.best_loss = decoded.loss
            self.state.evals_since_anneal = 0
        else:
            self.state.evals_since_anneal += 1
            if self.state.evals_since_anneal >= tc.anneal_patience:
                scale = float(self.schedule.scale.numpy())
                new = max(tc.min_lr_scale, scale * tc.anneal_factor)
                if new < scale:
                    self.schedule.scale.assign(new)
                    self.log(f"dev loss did not improve: learning rate x{tc.anneal_factor:g} "
                             f"-> {tc.learning_rate * new:.2e}")
                self.state.evals_since_anneal = 0
        if self.state.evals_since_best >= tc.early_stop_patience:
            self._stop(f"early stopping: dev WER and loss did not improve in "
                       f"{tc.early_stop_patience} evaluations")
        record = {"step": step, "epoch": self.state.epoch, "dev_loss": decoded.loss,
                  "dev_wer": wer, "dev_cer": cer, "learning_rate": lr,
                  "elapsed_s": round(time.monotonic() - self.started, 1),
                  "best_wer": self.state.best_wer, "best_loss": self.best_loss}
        append_history(self.run, record)
        self.last_dev = record
        self.log(f"\nstep {step} epoch {self.state.epoch}: dev loss {decoded.loss:.3f} "
                 f"WER {100 * wer:.2f}% CER {100 * cer:.2f}% (best WER "
                 f"{100 * self.state.best_wer:.2f}%)")
        for r in samples[:2]:
            self.log(f"  ref: {r['reference']}\n  hyp: {r['hypothesis']}")
        return record

    # -- logging -----------------------------------------------------------------------
    def _log_samples(self) -> None:
        """A few clips as audio, and their MFCC windows as images, once per run."""
        import tensorflow as tf

        from .audio import load_audio
        examples = (list(self.dev_examples) or list(self.train_examples))
        sr = self.config.audio.sample_rate
        with self.dev_writer.as_default(step=0):
            for i, example in enumerate(examples[:self.config.train.log_samples]):
                try:
                    waveform = load_audio(example.utterance.audio_filepath, sr)
                except Exception:
                    continue
                tf.summary.audio(f"clip_{i}", waveform[np.newaxis, :, np.newaxis], sr,
                                 description=example.text)
                windows = self.extractor(tf.constant(waveform)).numpy()
                lo, hi = np.percentile(windows, [1, 99])
                image = np.clip((windows.T - lo) / max(hi - lo, 1e-6), 0, 1)
                tf.summary.image(f"mfcc_windows_{i}", image[np.newaxis, ::-1, :, np.newaxis],
                                 description=example.text)
        self.dev_writer.flush()

    def _log_nonfinite_batch(self, step: int) -> None:
        index = [int(i) for i in self.trainer.last_nonfinite_index.numpy() if i >= 0]
        files = [self.train_examples[i].utterance.audio_filepath for i in index]
        with open(self.run.nonfinite_log, "a", encoding="utf-8") as f:
            f.write(f"step {step}: non-finite loss, update skipped; files: {' '.join(files)}\n")
        self.log(f"warning: non-finite loss at step {step}; update skipped "
                 f"(files in {self.run.nonfinite_log.name})")

    # -- end ---------------------------------------------------------------------------
    def close(self) -> None:
        self.train_writer.flush()
        self.dev_writer.flush()

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
            "signal": self.signal,
            "failed": self.failed,
        }
        metrics["weights_sha256"] = weights_digest(self.trainer.acoustic_model)
        atomic_write_json(self.run.metrics, metrics)
        self.close()
        self.log(f"final weights sha256 {metrics['weights_sha256']}")
        self.log(f"{self.state.stop_reason}; run folder: {self.run.root}")
        return metrics
