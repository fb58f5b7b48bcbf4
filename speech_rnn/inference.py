"""Running the acoustic model for inference: one forward call for any batch and length.

On CPUs, small batches run through XLA with the time axis padded to one of about eight
lengths per octave (:func:`padded_length`), so each length compiles once; larger batches,
and GPUs (cuDNN), run as a TensorFlow graph. Used by transcription, evaluation and the
training-time dev evaluation alike.
"""

from __future__ import annotations

import numpy as np


def padded_length(windows: int) -> int:
    """The length an XLA-compiled forward pads ``windows`` to: a multiple of 1/8 of the
    largest power of two not above it (of 8 below 128), so that lengths compile about eight
    shapes per octave and padding costs less than 12.5% from 64 windows on."""
    quantum = max(8, 2 ** max(0, int(windows).bit_length() - 4))
    return -(-int(windows) // quantum) * quantum


# Batches up to this size run faster with XLA; from 16 on, the graph's oneDNN matmuls
# are as fast or faster (docs/performance.md).
XLA_MAX_BATCH = 8


def use_xla_for_inference() -> bool:
    """XLA on CPUs: the masked BiLSTM's time loop runs 1.2-1.9x faster compiled than as a
    TensorFlow graph for batches up to 8. Not on GPUs, where the graph gets cuDNN, nor with
    ``SPEECH_RNN_INFERENCE_XLA=0`` (each new padded length compiles once, about a second on
    a fast 2-core machine: a program that decodes a few short files of many lengths, such
    as the test suite, spends more time compiling than running)."""
    import os

    import tensorflow as tf

    if os.environ.get("SPEECH_RNN_INFERENCE_XLA", "1") == "0":
        return False
    return not tf.config.list_logical_devices("GPU")


def make_forward(acoustic_model, jit_compile: bool | None = None):
    """An inference call ``forward(features [B, T, D], lengths [B]) -> logits [B, T', C]``
    for any batch and length; frames past each length (and past T) are padding.

    As a graph it is traced once for all shapes, T' = T. With ``jit_compile`` (by default
    on CPUs), batches of up to :data:`XLA_MAX_BATCH` run through XLA instead: T is padded to
    T' = :func:`padded_length` (masked) and each padded shape compiles once, in about a
    second. Padding is done in numpy and the result left for the caller to slice, because
    eager TensorFlow ops cost more than a short file's model time."""
    import tensorflow as tf

    signature = [
        tf.TensorSpec([None, None, acoustic_model.input[0].shape[-1]], tf.float32),
        tf.TensorSpec([None], tf.int32),
    ]
    if jit_compile is None:
        jit_compile = use_xla_for_inference()

    def model_call(features, lengths):
        return acoustic_model([features, lengths], training=False)

    # Traced once: concrete functions skip tf.function's argument binding on every call.
    as_graph = tf.function(model_call, input_signature=signature).get_concrete_function()
    if not jit_compile:
        return as_graph
    # XLA compiles each concrete padded shape the first time it runs.
    as_xla = tf.function(
        model_call, input_signature=signature, jit_compile=True
    ).get_concrete_function()

    def forward(features, lengths):
        features = np.asarray(features, np.float32)
        lengths = tf.constant(np.asarray(lengths, np.int32))
        if len(features) > XLA_MAX_BATCH:
            return as_graph(tf.constant(features), lengths)
        pad = padded_length(features.shape[1]) - features.shape[1]
        if pad:
            features = np.pad(features, [(0, 0), (0, pad), (0, 0)])
        return as_xla(tf.constant(features), lengths)

    return forward
