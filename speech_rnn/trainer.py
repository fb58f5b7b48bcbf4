"""The training step: CTC loss with true lengths, clipping, and no non-finite update.

:class:`CTCTrainer` wraps the acoustic model for ``Model.fit``. Its ``train_step`` computes
``tf.nn.ctc_loss`` with the real (unpadded) window counts and label lengths, clips the
gradients by global norm, and applies them only when the loss and every gradient are finite.
A skipped step leaves the weights, the optimizer's moments and its step counter unchanged;
the batch's example indices are kept in ``last_nonfinite_index`` for the logs.
"""
from __future__ import annotations

import keras
import tensorflow as tf


class WarmupAnnealSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``base_lr``, then ``base_lr * scale``; the training hooks lower
    ``scale`` when the dev WER stops improving (newbob annealing). ``scale`` is a variable,
    saved in the checkpoint, so a resumed run continues at the same rate."""

    def __init__(self, base_lr: float, warmup_steps: int):
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.scale = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="lr_scale")

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.minimum(1.0, (step + 1.0) / max(1, self.warmup_steps))
        return self.base_lr * warmup * self.scale

    def get_config(self):
        return {"base_lr": self.base_lr, "warmup_steps": self.warmup_steps}


def ctc_loss(batch, logits, blank_id: int):
    """Per-utterance CTC negative log-likelihood, using the true lengths."""
    labels = tf.where(batch["labels"] < 0, tf.zeros_like(batch["labels"]), batch["labels"])
    return tf.nn.ctc_loss(labels=labels, logits=tf.cast(logits, tf.float32),
                          label_length=batch["label_lengths"],
                          logit_length=batch["feature_lengths"],
                          logits_time_major=False, blank_index=blank_id)


class CTCTrainer(keras.Model):
    """Training wrapper around the acoustic model; only the inner model is exported."""

    def __init__(self, acoustic_model: keras.Model, blank_id: int, batch_size: int,
                 clipnorm: float, **kwargs):
        super().__init__(**kwargs)
        self.acoustic_model = acoustic_model
        self.blank_id = blank_id
        self.clipnorm = clipnorm
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.nonfinite_steps = tf.Variable(0, trainable=False, dtype=tf.int64, name="nonfinite")
        self.nonfinite_in_row = tf.Variable(0, trainable=False, dtype=tf.int64)
        self.audio_seconds = tf.Variable(0.0, trainable=False, dtype=tf.float64)
        self.last_nonfinite_index = tf.Variable(tf.fill([batch_size], -1), trainable=False)

    def call(self, inputs, training=False):
        return self.acoustic_model([inputs["features"], inputs["feature_lengths"]],
                                   training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, batch):
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            logits = self(batch, training=True)
            loss = tf.reduce_mean(ctc_loss(batch, logits, self.blank_id))
        grads = tape.gradient(loss, variables)
        finite = tf.math.is_finite(loss)
        for g in grads:
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
        if self.clipnorm:
            grads, _ = tf.clip_by_global_norm(grads, self.clipnorm)

        def apply():
            self.optimizer.apply(grads, variables)
            self.loss_tracker.update_state(loss)
            self.nonfinite_in_row.assign(0)
            return tf.constant(True)

        def skip():
            self.nonfinite_steps.assign_add(1)
            self.nonfinite_in_row.assign_add(1)
            index = batch["index"]
            pad = tf.shape(self.last_nonfinite_index)[0] - tf.shape(index)[0]
            self.last_nonfinite_index.assign(tf.pad(index, [[0, pad]], constant_values=-1))
            return tf.constant(False)

        tf.cond(finite, apply, skip)
        self.audio_seconds.assign_add(tf.reduce_sum(tf.cast(batch["audio_seconds"], tf.float64)))
        return {"loss": self.loss_tracker.result()}

    def test_step(self, batch):
        logits = self(batch, training=False)
        loss = tf.reduce_mean(ctc_loss(batch, logits, self.blank_id))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}
