"""The training step: CTC loss with true lengths, clipping, and no non-finite update.

:class:`CTCTrainer` wraps the acoustic model for ``Model.fit``. Its ``train_step`` computes
the CTC loss (:func:`ctc_neg_log_likelihood`, linear in the lattice) with the real (unpadded) window counts and label lengths; the optimizer
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
    ``scale`` when the dev loss stops improving (newbob annealing). ``scale`` is a variable,
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


_NEG = -1e30  # log(0) that stays finite: no inf - inf, no NaN gradients


def ctc_neg_log_likelihood(labels, logits, label_lengths, logit_lengths, blank_id: int):
    """Per-utterance CTC loss in O(T x S) time and memory (S = 2 x labels + 1 states).

    ``tf.nn.ctc_loss`` with dense labels (the only kind XLA compiles) runs a ``[B, S, S]``
    state-transition matrix through every time step: O(T x S^2) work, and since S grows
    with the utterance, a training step on 30 s utterances cost 38x that on 2 s ones for
    16x the audio. Here each state takes the log-sum-exp of its three possible
    predecessors (itself, the previous state, and the one before when the label differs
    and is not blank): the same loss and gradient (tests/test_reliability.py), linear in the
    lattice. ``labels`` [B, L] (entries past ``label_lengths`` ignored), ``logits``
    [B, T, C] (log-softmax applied here)."""
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
    labels = tf.cast(labels, tf.int32)
    label_lengths = tf.cast(label_lengths, tf.int32)
    logit_lengths = tf.cast(logit_lengths, tf.int32)
    batch, max_labels = tf.shape(labels)[0], tf.shape(labels)[1]
    blanks = tf.fill([batch, max_labels], blank_id)
    extended = tf.reshape(tf.stack([blanks, labels], axis=2), [batch, 2 * max_labels])
    extended = tf.concat([extended, tf.fill([batch, 1], blank_id)], axis=1)  # [B, S]
    states = 2 * max_labels + 1
    # a state may be entered from two back: a label that differs from the one before
    skip = tf.logical_and(extended[:, 2:] != blank_id, extended[:, 2:] != extended[:, :-2])
    skip = tf.concat([tf.zeros([batch, 2], tf.bool), skip], axis=1)
    emit = tf.gather(log_probs, extended, axis=2, batch_dims=1)  # [B, T, S]
    emit = tf.transpose(emit, [1, 0, 2])  # [T, B, S]
    position = tf.range(states)[tf.newaxis, :]
    alpha0 = tf.where(position < 2, emit[0], _NEG)
    neg1 = tf.fill([batch, 1], _NEG)
    neg2 = tf.fill([batch, 2], _NEG)

    def step(alpha, inputs):
        emit_t, t = inputs
        from_prev = tf.concat([neg1, alpha[:, :-1]], axis=1)
        from_skip = tf.where(skip, tf.concat([neg2, alpha[:, :-2]], axis=1), _NEG)
        new = tf.reduce_logsumexp(tf.stack([alpha, from_prev, from_skip]), axis=0) + emit_t
        return tf.where((t < logit_lengths)[:, tf.newaxis], new, alpha)

    times = tf.range(1, tf.shape(emit)[0])
    alpha = tf.foldl(step, (emit[1:], times), initializer=alpha0)
    last = 2 * label_lengths  # the final blank; the last label is one before it
    end_blank = tf.gather(alpha, last, axis=1, batch_dims=1)
    end_label = tf.gather(alpha, tf.maximum(last - 1, 0), axis=1, batch_dims=1)
    end_label = tf.where(label_lengths > 0, end_label, _NEG)
    loss = -tf.reduce_logsumexp(tf.stack([end_blank, end_label]), axis=0)
    # no path (labels too long for the frames): infinite, as tf.nn.ctc_loss has it, so the
    # step is skipped as non-finite
    return tf.where(loss > 1e29, tf.constant(float("inf"), tf.float32), loss)


def ctc_loss(batch, logits, blank_id: int):
    """Per-utterance CTC negative log-likelihood, using the true lengths."""
    labels = tf.where(batch["labels"] < 0, tf.zeros_like(batch["labels"]), batch["labels"])

    # Works on an empty batch too (a replica's share of a short batch can be empty), so no
    # tf.cond: the gradient of a cond around a while loop does not compile under XLA.
    return ctc_neg_log_likelihood(
        labels, logits, batch["label_lengths"], batch["feature_lengths"], blank_id
    )


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
