"""The training step: CTC loss with true lengths, clipping, and no non-finite update.

:class:`CTCTrainer` wraps the acoustic model for ``Model.fit``. Its ``train_step`` computes
the CTC loss (:func:`ctc_neg_log_likelihood`, linear in the lattice) with the real (unpadded) window counts and label lengths; the optimizer
(see :func:`make_optimizer`) clips the gradients by global norm and applies them only when
the loss and every gradient are finite. A skipped step leaves the weights, the optimizer's
moments and its step counter unchanged; the batch's example indices are kept in
``last_nonfinite_index`` for the logs. The step is written for ``tf.distribute``: each
replica packs its gradients, its utterance count and a non-finite flag into one vector and
the replicas exchange that with a single all-reduce per step (:func:`reduce_step`); the
optimizer then applies the reduced gradient without reducing it again
(:class:`ReducedAdam`).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from .compat import BuiltBeforeFit


class WarmupAnnealSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate at a step, times ``scale``, a variable saved in the checkpoint.

    * ``warmup_newbob`` (the default): linear warm-up to ``base_lr``, then constant; the
      training hooks lower ``scale`` when the dev loss stops improving (newbob annealing),
      so a resumed run continues at the same rate.
    * ``warmup_cosine``: the same warm-up, then a cosine from ``base_lr`` down to
      ``base_lr * min_scale`` at ``total_steps``.
    * ``one_cycle``: a cosine from ``base_lr / 25`` up to ``base_lr`` over the first
      ``ONE_CYCLE_RISE`` of ``total_steps``, then a cosine down to ``base_lr * min_scale``.

    ``total_steps`` is a variable (not saved): the training hooks set it from the budget
    and, under a time budget, re-estimate it from the pace so far."""

    KINDS = ("warmup_newbob", "warmup_cosine", "one_cycle")
    ONE_CYCLE_RISE = 0.3
    ONE_CYCLE_START = 1 / 25

    def __init__(
        self,
        base_lr: float,
        warmup_steps: int,
        kind: str = "warmup_newbob",
        total_steps: int = 0,
        min_scale: float = 0.01,
    ):
        if kind not in self.KINDS:
            raise ValueError(f"unknown learning-rate schedule {kind!r}")
        self.base_lr = float(base_lr)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.min_scale = float(min_scale)
        self.scale = tf.Variable(1.0, trainable=False, dtype=tf.float32, name="lr_scale")
        self.total_steps = tf.Variable(
            float(max(1, total_steps)), trainable=False, dtype=tf.float32, name="lr_total_steps"
        )

    @property
    def anneals(self) -> bool:
        """Whether newbob annealing applies (the other schedules decay by themselves)."""
        return self.kind == "warmup_newbob"

    def _cosine(self, fraction, high, low):
        fraction = tf.clip_by_value(fraction, 0.0, 1.0)
        return low + (high - low) * 0.5 * (1.0 + tf.cos(math.pi * fraction))

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        total = tf.maximum(self.total_steps, 1.0)
        if self.kind == "one_cycle":
            rise = tf.maximum(1.0, self.ONE_CYCLE_RISE * total)
            up = self._cosine(step / rise, 1.0, self.ONE_CYCLE_START)  # cos from start to 1
            up = 1.0 + self.ONE_CYCLE_START - up
            down = self._cosine((step - rise) / tf.maximum(1.0, total - rise), 1.0, self.min_scale)
            shape = tf.where(step < rise, up, down)
        else:
            shape = tf.minimum(1.0, (step + 1.0) / max(1, self.warmup_steps))
            if self.kind == "warmup_cosine":
                decay_steps = tf.maximum(1.0, total - self.warmup_steps)
                shape *= self._cosine((step - self.warmup_steps) / decay_steps, 1.0, self.min_scale)
        return self.base_lr * shape * self.scale

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "warmup_steps": self.warmup_steps,
            "kind": self.kind,
            "min_scale": self.min_scale,
        }


class ReducedAdam(keras.optimizers.Adam):
    """Adam for gradients that are already the same global gradient on every replica.

    Keras' TensorFlow optimizer sums the gradients over the replicas inside ``apply``
    (``_all_reduce_sum_gradients``, with no switch to turn it off); the train step has done
    that already, in the one all-reduce it makes, so here the sum is the identity and each
    replica applies the (identical) reduced gradient to its copy of the weights."""

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


def make_optimizer(schedule, clipnorm: float, float16: bool):
    """Adam inside Keras' loss-scale optimizer, which skips any step whose gradients are not
    finite. In float32 the scale starts at 1 and never grows (it only exists for the
    skipping); in float16 it is the usual dynamic loss scale. Every replica hands the
    optimizer the full global gradient (see :func:`reduce_step`), so the global-norm clip
    is the configured one and the skip decision is the same on every replica."""
    inner = ReducedAdam(learning_rate=schedule, global_clipnorm=clipnorm or None)
    if float16:
        return keras.optimizers.LossScaleOptimizer(inner)
    return keras.optimizers.LossScaleOptimizer(inner, initial_scale=1.0, dynamic_growth_steps=2**30)


def reduce_step(grads, count, finite, replicas: int, per_replica_batch: int):
    """(global gradient, global count, finite everywhere) from one replica's share, with one
    all-reduce: the flattened gradients, the count and a non-finite flag travel as one
    float32 vector. ``grads`` are the gradients of this replica's loss sum divided by
    ``per_replica_batch`` (a constant, so that the backward pass sees the magnitudes of a
    batch mean); rescaled here by ``per_replica_batch / global count`` they sum to the
    gradient of the global-batch mean. Every replica receives the same reduced vector, so
    every replica takes the same skip decision."""
    flag = 1.0 - tf.cast(finite, tf.float32)
    if replicas > 1:
        parts = [tf.reshape(tf.cast(g, tf.float32), [-1]) for g in grads]
        packed = tf.concat(parts + [tf.stack([count, flag])], axis=0)
        context = tf.distribute.get_replica_context()
        packed = context.all_reduce(tf.distribute.ReduceOp.SUM, packed)
        sizes = [tf.size(p) for p in parts] + [2]
        pieces = tf.split(packed, sizes)
        grads = [
            tf.cast(tf.reshape(p, tf.shape(g)), g.dtype)
            for p, g in zip(pieces[:-1], grads, strict=True)
        ]
        count, flag = pieces[-1][0], pieces[-1][1]
    scale = per_replica_batch / tf.maximum(count, 1.0)
    grads = [g * tf.cast(scale, g.dtype) for g in grads]
    # NaN or inf in any replica's gradient survives the sum; the flag carries a non-finite
    # loss whose gradient happened to be finite.
    finite = flag < 0.5
    for g in grads:
        finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(g)))
    # The loss-scale optimizer decides from the gradients alone: make a skipped step's
    # gradients non-finite so that its decision is this one.
    poison = tf.where(finite, 0.0, float("nan"))
    return [g + tf.cast(poison, g.dtype) for g in grads], count, finite


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


def ctc_loss_graph(blank_id: int):
    """:func:`ctc_loss` as one graph for any batch and length, for dev evaluation. Run
    eagerly, its scan over time dispatches every op of every frame from Python: on a
    two-clip dev set that was 0.14 s per batch, most of an evaluation."""

    traced = tf.function(
        lambda batch, logits: ctc_loss(batch, logits, blank_id), reduce_retracing=True
    )
    keys = ("labels", "label_lengths", "feature_lengths")  # what the loss reads
    return lambda batch, logits: traced({k: batch[k] for k in keys}, logits)


class CTCTrainer(BuiltBeforeFit, keras.Model):
    """Training wrapper around the acoustic model; only the inner model is exported.
    ``train()`` builds it and its optimizer before ``fit`` (see :mod:`speech_rnn.compat`)."""

    def __init__(self, acoustic_model: keras.Model, blank_id: int, batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self.acoustic_model = acoustic_model
        self.blank_id = blank_id
        self.batch_size = batch_size
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
        with tf.GradientTape() as tape:
            logits = self(batch, training=True)
            per_utterance = ctc_loss(batch, logits, self.blank_id)
            # rows with index -1 are copies that fill a bucket's last batch: not in the loss
            real = batch["index"] >= 0
            per_utterance = tf.where(real, per_utterance, tf.zeros_like(per_utterance))
            local_sum = tf.reduce_sum(per_utterance)
            count = tf.reduce_sum(tf.cast(real, tf.float32))
            # Each replica holds part of the global batch (only copies, or nothing from a
            # short feature-store partition, counts 0); the division by the global count
            # comes after the all-reduce.
            scaled = self.optimizer.scale_loss(local_sum / self.batch_size)
        grads = tape.gradient(scaled, variables)
        # A non-finite gradient stays non-finite through the sum; the loss needs the flag.
        local_finite = tf.math.is_finite(local_sum)
        grads, _, finite = reduce_step(grads, count, local_finite, replicas, self.batch_size)
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
