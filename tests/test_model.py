"""The acoustic model: ProjectedLSTM computes exactly what keras.layers.LSTM computes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from speech_rnn.config import ModelConfig
from speech_rnn.model import ProjectedLSTM, build_model


@pytest.mark.parametrize("go_backwards", [False, True])
def test_projected_lstm_matches_keras_lstm_outputs_and_gradients(go_backwards):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, 5)).astype("float32")
    # right-padded sequences of 7, 4 and 2 steps, as the pipeline makes them
    mask = np.arange(7)[None, :] < np.array([7, 4, 2])[:, None]
    reference = keras.layers.LSTM(8, return_sequences=True, go_backwards=go_backwards)
    projected = ProjectedLSTM(8, return_sequences=True, go_backwards=go_backwards)
    reference(x)
    projected(x)
    projected.set_weights(reference.get_weights())

    def outputs_and_gradients(layer):
        with tf.GradientTape() as tape:
            y = layer(x, mask=mask)
            loss = tf.reduce_sum(tf.square(y))
        return y.numpy(), [g.numpy() for g in tape.gradient(loss, layer.trainable_weights)]

    y_ref, g_ref = outputs_and_gradients(reference)
    y_new, g_new = outputs_and_gradients(projected)
    np.testing.assert_allclose(y_new, y_ref, atol=1e-5)
    for a, b in zip(g_new, g_ref):
        np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.abs(y_ref).max() > 0.01  # not trivially zero


def test_saved_model_keeps_the_projected_layers_and_loads_safely(tmp_path):
    model = build_model(ModelConfig(lstm_layers=1, lstm_units=8), input_dim=6, num_classes=5)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    bilstm = loaded.get_layer("bilstm_0")
    assert type(bilstm.forward_layer) is ProjectedLSTM
    assert type(bilstm.backward_layer) is ProjectedLSTM
    x = np.random.default_rng(1).normal(size=(2, 9, 6)).astype("float32")
    lengths = np.array([9, 5], np.int32)
    np.testing.assert_allclose(loaded([x, lengths]), model([x, lengths]), atol=1e-6)


def test_xla_forward_matches_the_graph_for_any_batch_and_length():
    from speech_rnn.inference import XLA_MAX_BATCH, make_forward, padded_length

    model = build_model(ModelConfig(lstm_layers=2, lstm_units=8), input_dim=6, num_classes=5)
    graph, xla = make_forward(model, jit_compile=False), make_forward(model, jit_compile=True)
    rng = np.random.default_rng(1)
    for batch, steps in ((1, 1), (1, 37), (3, 70), (XLA_MAX_BATCH + 2, 21)):
        features = rng.normal(size=(batch, steps, 6)).astype("float32")
        lengths = rng.integers(1, steps + 1, size=batch).astype("int32")
        lengths[0] = steps
        features[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
        expected = graph(features, lengths).numpy()
        got = xla(features, lengths).numpy()
        assert got.shape[1] == (padded_length(steps) if batch <= XLA_MAX_BATCH else steps)
        for row, n in enumerate(lengths):
            np.testing.assert_allclose(got[row, :n], expected[row, :n], atol=1e-5)
        assert np.abs(expected).max() > 0.01


def test_padded_lengths_are_few_and_close():
    from speech_rnn.inference import padded_length

    lengths = [padded_length(t) for t in range(1, 1025)]
    assert all(p >= t for t, p in zip(range(1, 1025), lengths))
    assert all((p - t) / t < 0.125 for t, p in zip(range(64, 1025), lengths[63:]))
    assert len(set(lengths)) <= 48  # shapes XLA compiles for up to ~30 s of speech


def _while_bodies(graph_def):
    """The function definitions of every while-loop body in a graph's library."""
    return [f for f in graph_def.library.function if "while_body" in f.signature.name]


def test_the_time_loop_reads_no_weights_so_memory_does_not_grow_with_length():
    """A variable read inside the loop is repeated at every step, and under XLA the backward
    pass keeps every step's copy: 1 MB a step for a 256-unit layer. The weights must be read
    once, before the loop."""
    layer = ProjectedLSTM(8, return_sequences=True)
    x = tf.random.normal([2, 5, 3])
    layer(x)

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True))
        return tape.gradient(loss, layer.trainable_weights)

    graph_def = gradients.get_concrete_function(x).graph.as_graph_def()
    bodies = _while_bodies(graph_def)
    assert bodies, "no time loop found in the traced gradient"
    reads = [n.name for f in bodies for n in f.node_def if n.op == "ReadVariableOp"]
    assert reads == []
