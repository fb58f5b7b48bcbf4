"""The acoustic model: stacked windows -> N x BiLSTM -> per-window character logits.

A Keras 3 functional model with two inputs, ``features`` [B, T, D] and ``feature_lengths``
[B]. Padded windows are masked from the true lengths (no ``Masking`` layer scanning for
zeros). It contains only built-in layers and :class:`LengthMask`, registered under the
``speech_rnn`` package, so ``.keras`` files load with ``safe_mode=True``. The LSTMs keep
the default arguments (tanh/sigmoid, no recurrent dropout, right-padded mask) under which
Keras uses the cuDNN kernel on a GPU.
"""
from __future__ import annotations

import keras
from keras import layers, ops

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


def build_model(config: ModelConfig, input_dim: int, num_classes: int,
                name: str = "speech_rnn") -> keras.Model:
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
            layers.LSTM(config.lstm_units, return_sequences=True, name=f"lstm_{i}"),
            name=f"bilstm_{i}")(x)
        if config.dropout:
            x = layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs=[features, lengths], outputs=logits, name=name)


def count_parameters(model: keras.Model) -> int:
    return int(sum(ops.size(w) for w in model.trainable_weights))
