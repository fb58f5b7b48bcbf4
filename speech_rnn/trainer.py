"""The training step: CTC loss with true lengths, clipping, and no non-finite update.

:class:`CTCTrainer` wraps the acoustic model for ``Model.fit``. Its ``train_step`` computes
``tf.nn.ctc_loss`` with the real (unpadded) window counts and label lengths; the optimizer
(see :func:`make_optimizer`) clips the gradients by global norm and applies them only when
the loss and every gradient are finite. A skipped step leaves the weights, the optimizer's
moments and its step counter unchanged; the batch's example indices are kept in
``last_nonfinite_index`` for the logs. The step is written for ``tf.distribute``: every
replica computes its share of the global-batch mean.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .compat import BuiltBeforeFit


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


def make_optimizer(schedule, clipnorm: float, replicas: int, float16: bool):
    """Adam inside Keras' loss-scale optimizer, which skips any step whose gradients are not
    finite, also across replicas. In float32 the scale starts at 1 and never grows (it only
    exists for the skipping); in float16 it is the usual dynamic loss scale. The clip norm
    is divided by the replicas because each replica hands the optimizer 1/replicas of the
    global gradient."""
    inner = keras.optimizers.Adam(
        learning_rate=schedule, global_clipnorm=(clipnorm / replicas) if clipnorm else None
    )
    if float16:
        return keras.optimizers.LossScaleOptimizer(inner)
    return keras.optimizers.LossScaleOptimizer(inner, initial_scale=1.0, dynamic_growth_steps=2**30)


def ctc_loss(batch, logits, blank_id: int):
    """Per-utterance CTC negative log-likelihood, using the true lengths."""
    labels = tf.where(batch["labels"] < 0, tf.zeros_like(batch["labels"]), batch["labels"])

    def loss():
        return tf.nn.ctc_loss(
            labels=labels,
            logits=tf.cast(logits, tf.float32),
            label_length=batch["label_lengths"],
            logit_length=batch["feature_lengths"],
            logits_time_major=False,
            blank_index=blank_id,
        )

    # A replica's share of a short batch can be empty (one utterance over two replicas),
    # and tf.nn.ctc_loss fails on an empty batch.
    return tf.cond(tf.shape(labels)[0] > 0, loss, lambda: tf.zeros([0], tf.float32))


class CTCTrainer(BuiltBeforeFit, keras.Model):
    """Training wrapper around the acoustic model; only the inner model is exported.
    ``train()`` builds it and its optimizer before ``fit`` (see :mod:`speech_rnn.compat`)."""

    def __init__(self, acoustic_model: keras.Model, blank_id: int, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.acoustic_model = acoustic_model
        self.blank_id = blank_id
        self.loss_tracker = keras.metrics.Mean(name="loss")
        # Per-replica counters (read from the first replica, or summed): updating them in a
        # replica context needs no cross-replica synchronization.
        local = {"synchronization": tf.VariableSynchronization.ON_READ, "trainable": False}
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.nonfinite_steps = tf.Variable(0, dtype=tf.int64, aggregation=first, **local)
        self.nonfinite_in_row = tf.Variable(0, dtype=tf.int64, aggregation=first, **local)
        self.audio_seconds = tf.Variable(
            0.0, dtype=tf.float64, aggregation=tf.VariableAggregation.SUM, **local
        )
        self.last_nonfinite_index = tf.Variable(
            tf.fill([batch_size], -1), aggregation=first, **local
        )

    def call(self, inputs, training=False):
        return self.acoustic_model(
            [inputs["features"], inputs["feature_lengths"]], training=training
        )

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, batch):
        variables = self.trainable_variables
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            logits = self(batch, training=True)
            per_utterance = ctc_loss(batch, logits, self.blank_id)
            local_sum = tf.reduce_sum(per_utterance)
            count = tf.cast(tf.size(per_utterance), tf.float32)
            # Each replica holds part of the global batch (a short last batch may leave one
            # empty): dividing by the global count makes the replicas' summed gradients the
            # gradient of the global-batch mean.
            total = context.all_reduce(tf.distribute.ReduceOp.SUM, count) if replicas > 1 else count
            objective = local_sum / tf.maximum(total, 1.0)
            scaled = self.optimizer.scale_loss(objective)
        grads = tape.gradient(scaled, variables)
        if replicas > 1:
            # Reduce here, so that the finite check sees the global gradient and every
            # replica agrees; the optimizer sums over replicas once more, hence the division.
            grads = context.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            grads = [g / replicas for g in grads]
        finite = tf.math.is_finite(objective)
        for g in grads:
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
        # The loss-scale optimizer applies the update only when every gradient is finite
        # (and unscales and clips it); a skipped step changes no weight, no moment, no
        # step counter. The same decision drives our counters, without a cond.
        self.optimizer.apply(grads, variables)
        bad = 1 - tf.cast(finite, tf.int64)
        self.nonfinite_steps.assign_add(bad)
        self.nonfinite_in_row.assign((self.nonfinite_in_row + 1) * bad)
        index = batch["index"]
        padded = tf.pad(
            index,
            [[0, tf.shape(self.last_nonfinite_index)[0] - tf.shape(index)[0]]],
            constant_values=-1,
        )
        self.last_nonfinite_index.assign(tf.where(finite, self.last_nonfinite_index, padded))
        self.loss_tracker.update_state(
            local_sum / tf.maximum(count, 1.0), sample_weight=tf.cast(finite, tf.float32)
        )
        self.audio_seconds.assign_add(tf.reduce_sum(tf.cast(batch["audio_seconds"], tf.float64)))
        return {"loss": self._log_value(self.loss_tracker.result())}

    def test_step(self, batch):
        logits = self(batch, training=False)
        loss = tf.reduce_mean(ctc_loss(batch, logits, self.blank_id))
        self.loss_tracker.update_state(loss)
        return {"loss": self._log_value(self.loss_tracker.result())}

    @staticmethod
    def _log_value(value):
        # Keras averages step outputs over a multi-worker strategy along axis 0, which a
        # scalar lacks; give it one there (the hooks read logs as plain floats).
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return tf.reshape(value, [1])
        return value
