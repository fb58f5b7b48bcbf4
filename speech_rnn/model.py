"""The acoustic model: stacked windows -> N x BiLSTM -> per-window character logits.

A Keras 3 functional model with two inputs, ``features`` [B, T, D] and ``feature_lengths``
[B]. Padded windows are masked from the true lengths (no ``Masking`` layer scanning for
zeros). It contains only built-in layers, :class:`LengthMask` and :class:`ProjectedLSTM`,
registered under the ``speech_rnn`` package, so ``.keras`` files load with ``safe_mode=True``.
The LSTMs keep the default arguments (tanh/sigmoid, no recurrent dropout, right-padded mask)
under which Keras uses the cuDNN kernel on a GPU.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

# Keras 3 has no public time-loop primitive; its own LSTM runs on this one.
from .compat import rnn_loop
from .config import ModelConfig


@keras.saving.register_keras_serializable(package="speech_rnn")
class LengthMask(layers.Layer):
    """Passes ``features`` through and masks every step at or beyond ``lengths``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs):
        features, _ = inputs
        return features

    def compute_mask(self, inputs, mask=None):
        features, lengths = inputs
        # 1..T along time, built from the input so it works on symbolic shapes too.
        steps = ops.cumsum(ops.ones_like(features[:, :, 0], dtype="int32"), axis=1)
        return steps <= ops.expand_dims(ops.cast(lengths, "int32"), 1)

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="speech_rnn")
class ProjectedLSTM(layers.LSTM):
    """``keras.layers.LSTM`` whose CPU loop projects the inputs for all steps at once.

    Keras' generic loop computes ``x_t @ W`` inside every time step: T small matmuls whose
    weight reads and gradients dominate a CPU training step. Here ``X @ W + b`` is one large
    matmul before the loop and each step only adds ``h @ U``, the same arithmetic, about
    2.6x faster per training step on 2 cores (docs/performance.md). On a GPU the layer
    defers to Keras, which picks cuDNN. Weights and config are those of ``LSTM``.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if (
            self.dropout
            or self.recurrent_dropout
            or self.unroll
            or not self.use_bias
            or tf.config.list_logical_devices("GPU")
        ):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        cell = self.cell
        # Read the weights once, here: a Keras variable used inside the loop is read at every
        # step, and XLA keeps each step's copy for the backward pass (1 MB a step at 256 units).
        recurrent_kernel = ops.cast(cell.recurrent_kernel, self.compute_dtype)
        projected = ops.matmul(sequences, cell.kernel) + cell.bias

        def step(projected_t, states):
            h, c = states
            z = projected_t + ops.matmul(h, recurrent_kernel)
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
            c = cell.recurrent_activation(z_f) * c + cell.recurrent_activation(
                z_i
            ) * cell.activation(z_c)
            h = cell.recurrent_activation(z_o) * cell.activation(c)
            return h, [h, c]

        return rnn_loop(
            step,
            projected,
            list(initial_state),
            go_backwards=self.go_backwards,
            mask=mask,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )


def build_model(
    config: ModelConfig, input_dim: int, num_classes: int, name: str = "speech_rnn"
) -> keras.Model:
    """Inputs (features, feature_lengths) -> logits [B, T, num_classes] (blank last).

    The output is logits, not probabilities: CTC loss normalizes them itself.
    """
    features = keras.Input(shape=(None, input_dim), name="features")
    lengths = keras.Input(shape=(), dtype="int32", name="feature_lengths")
    x = LengthMask(name="length_mask")([features, lengths])
    if config.input_dropout:
        x = layers.Dropout(config.input_dropout, name="input_dropout")(x)
    if config.projection_units:
        x = layers.Dense(config.projection_units, activation="relu", name="projection")(x)
    for i in range(config.lstm_layers):
        x = layers.Bidirectional(
            ProjectedLSTM(config.lstm_units, return_sequences=True, name=f"lstm_{i}"),
            name=f"bilstm_{i}",
        )(x)
        if config.layer_norm and i < config.lstm_layers - 1:
            x = layers.LayerNormalization(name=f"layer_norm_{i}")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    # blank is the last class; a constant bias vector is a built-in, safe_mode-loadable init
    bias = [0.0] * (num_classes - 1) + [config.blank_bias_init]
    logits = layers.Dense(
        num_classes,
        name="logits",
        dtype="float32",
        bias_initializer=keras.initializers.Constant(bias) if config.blank_bias_init else "zeros",
    )(x)
    return keras.Model(inputs=[features, lengths], outputs=logits, name=name)


def count_parameters(model: keras.Model) -> int:
    return int(sum(ops.size(w) for w in model.trainable_weights))
