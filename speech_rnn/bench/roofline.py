"""Roofline arithmetic: the model's FLOPs per audio-second, counted from the layer shapes,
and the machine's measured dense matmul rate (TensorFlow, in the same run).

Counting: one multiply-add is 2 FLOPs. An LSTM direction does, per step, the four gates'
matmuls over the concatenated input and recurrent state: ``4 * (input + units) * units * 2``
(the element-wise gate math is a few percent more and not counted). A bidirectional layer
is two directions; the projection and output layers are ``input * units * 2`` per step.
Training is the forward pass plus about twice that for the backward pass (3x forward).
FLOPs are per *true* audio second: padding the batch to bucket boundaries costs work that
is not counted, so it shows up as a lower fraction of the limit.
"""

from __future__ import annotations

from ..config import Config
from ..features import window_dim
from .common import clock, median


def model_flops(config: Config, num_classes: int) -> dict:
    fc, mc = config.features, config.model
    windows_per_second = 1000.0 / (fc.frame_step_ms * fc.stride)
    layers = []
    width = window_dim(fc)
    if mc.projection_units:
        layers.append(("projection", 2 * width * mc.projection_units))
        width = mc.projection_units
    for i in range(mc.lstm_layers):
        per_direction = 4 * (width + mc.lstm_units) * mc.lstm_units * 2
        layers.append((f"bilstm_{i}", 2 * per_direction))
        width = 2 * mc.lstm_units
    layers.append(("logits", 2 * width * num_classes))
    per_window = sum(f for _, f in layers)
    forward = per_window * windows_per_second
    return {
        "windows_per_audio_second": windows_per_second,
        "per_window_by_layer": dict(layers),
        "forward_per_window": per_window,
        "inference_flops_per_audio_second": forward,
        "training_flops_per_audio_second": 3 * forward,
    }


def measure_matmul(size: int = 1024, repeats: int = 7, calls: int = 8) -> dict:
    """Dense float32 matmul rate in FLOP/s under the current thread settings: the median of
    ``repeats`` timings of ``calls`` chained ``size``-square matmuls (after a warm-up)."""
    import tensorflow as tf

    a = tf.random.normal([size, size], seed=1)
    b = tf.random.normal([size, size], seed=2) / float(size) ** 0.5

    @tf.function
    def chain(x):
        for _ in range(calls):
            x = tf.matmul(x, b)
        return tf.reduce_sum(x)

    chain(a).numpy()
    times = []
    for _ in range(repeats):
        start = clock()
        chain(a).numpy()
        times.append(clock() - start)
    flops = 2.0 * size**3 * calls
    best = min(times)
    return {"size": size, "flops_per_s": flops / median(times), "best_flops_per_s": flops / best}


def fraction_of_limit(
    flops_per_audio_second: float, audio_seconds_per_second: float, matmul_flops_per_s: float
) -> float:
    """Achieved model FLOP/s over the measured matmul rate."""
    return flops_per_audio_second * audio_seconds_per_second / matmul_flops_per_s
