"""The exported chain as TensorFlow graphs: waveform -> features -> model -> greedy CTC.

Two builds of the same chain:

* :class:`ServingModule` (SavedModel) runs the run's own Keras model, masked, so that its
  logits are the ones ``speech-rnn transcribe`` computes, for one waveform and for padded
  batches.
* :func:`tflite_function` (LiteRT/TFLite) runs one unpadded waveform through the same
  weights, each LSTM direction as a composite function that the converter fuses into one
  builtin ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op. Padding and masks are not needed with one
  waveform, and the fused op takes no mask.

Features always come from :class:`speech_rnn.features.FeatureExtractor`; the TFLite build
only evaluates its (linear) DCT stage as a matrix product, because TFLite's builtin FFT
needs a power-of-two length and the DCT of 40 mel bands is an FFT of 80
(:class:`MatmulDctExtractor`).

TensorFlow is imported inside functions only, so that ``speech-rnn --help`` stays fast.
"""

from __future__ import annotations

import uuid

import numpy as np

from ..errors import RunFolderError
from ..features import FeatureExtractor, frame_params

BATCH_MESSAGE = (
    "transcribe_batch takes waveforms [batch, samples] (float32, zero-padded) "
    "and lengths [batch] (int32, samples)"
)


def greedy_labels(logits, blank_id: int, space_id: int):
    """[T, C] logits -> the greedy CTC label sequence, int32 [N]: argmax per window,
    repeats collapsed, blanks dropped; spaces at either end and runs of spaces are dropped
    too, so that the characters equal ``speech-rnn transcribe``'s text (words joined by
    one space). Builtin TFLite ops only (ARG_MAX, WHERE, GATHER, CUMSUM, ...)."""
    import tensorflow as tf

    ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
    previous = tf.concat([tf.constant([-1], tf.int32), ids[:-1]], axis=0)
    labels = tf.boolean_mask(
        ids, tf.logical_and(tf.not_equal(ids, previous), tf.not_equal(ids, blank_id))
    )
    if space_id < 0:
        return labels
    is_space = tf.equal(labels, space_id)
    letters = tf.cast(tf.logical_not(is_space), tf.int32)
    letters_up_to = tf.cumsum(letters)  # inclusive
    before = letters_up_to - letters  # letters strictly before
    after = tf.reduce_sum(letters) - letters_up_to  # letters strictly after
    previous_space = tf.concat([tf.constant([False]), is_space[:-1]], axis=0)
    keep_space = tf.logical_and(
        tf.logical_and(before > 0, after > 0), tf.logical_not(previous_space)
    )
    return tf.boolean_mask(labels, tf.logical_or(tf.logical_not(is_space), keep_space))


def labels_to_text(labels, chars):
    """int32 label ids -> one tf.string (needs ``ReduceJoin``: SavedModel only)."""
    import tensorflow as tf

    table = tf.constant(list(chars), tf.string)
    return tf.strings.reduce_join(tf.gather(table, labels))


def num_windows_tensor(num_samples, frame_step: int, stride: int):
    """:func:`speech_rnn.features.num_windows` in-graph (int32)."""
    import tensorflow as tf

    frames = (num_samples + frame_step - 1) // frame_step
    return tf.cast((frames + stride - 1) // stride, tf.int32)


def at_least_one_sample(waveform):
    """An empty waveform becomes one zero sample, so the graph never sees zero windows."""
    import tensorflow as tf

    return tf.pad(waveform, [[0, tf.maximum(1 - tf.shape(waveform)[0], 0)]])


def _feature_parts(recognizer):

    fc = recognizer.config.features
    _, step = frame_params(fc, recognizer.sample_rate)
    return fc, step


def serving_module(recognizer):
    """A ``tf.Module`` with the ``serving_default`` and ``transcribe_batch`` functions."""
    import tensorflow as tf

    extractor = recognizer.extractor
    model = recognizer.acoustic_model
    chars = recognizer.vocab.chars
    blank = recognizer.vocab.blank_id
    space = chars.index(" ") if " " in chars else -1
    fc, step = _feature_parts(recognizer)
    dim = int(model.input[0].shape[-1])

    class ServingModule(tf.Module):
        def __init__(self):
            super().__init__(name="speech_rnn_export")
            self.model = model  # tracks the variables

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
        def serving_default(self, waveform):
            # A signature called by name (TF Serving, ``.signatures[...]``) does not check
            # shapes itself: without this, a [1, N] input fails deep inside the STFT. The
            # error reads "Shape of tensor waveform [1,N] is not compatible with expected
            # shape [?]". (tf.debugging.assert_rank would be decided at trace time.)
            waveform = tf.ensure_shape(waveform, [None])
            windows = extractor(at_least_one_sample(waveform))
            length = tf.shape(windows)[0]
            logits = self.model([windows[tf.newaxis], length[tf.newaxis]], training=False)[0]
            text = labels_to_text(greedy_labels(logits, blank, space), chars)
            return {"text": text, "logits": logits, "logits_length": length}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, None], tf.float32, name="waveforms"),
                tf.TensorSpec([None], tf.int32, name="lengths"),
            ]
        )
        def transcribe_batch(self, waveforms, lengths):
            waveforms = tf.ensure_shape(waveforms, [None, None])
            lengths = tf.ensure_shape(lengths, [None])
            tf.debugging.assert_equal(
                tf.shape(lengths)[0], tf.shape(waveforms)[0], message=BATCH_MESSAGE
            )
            lengths = tf.clip_by_value(lengths, 1, tf.maximum(tf.shape(waveforms)[1], 1))
            waveforms = tf.pad(waveforms, [[0, 0], [0, tf.maximum(1 - tf.shape(waveforms)[1], 0)]])
            window_lengths = num_windows_tensor(lengths, step, fc.stride)
            longest = tf.reduce_max(window_lengths)

            def one(args):
                waveform, n = args
                windows = extractor(waveform[:n])
                return tf.pad(windows, [[0, longest - tf.shape(windows)[0]], [0, 0]])

            batch = tf.map_fn(
                one,
                (waveforms, lengths),
                fn_output_signature=tf.TensorSpec([None, dim], tf.float32),
            )
            logits = self.model([batch, window_lengths], training=False)

            def decode(args):
                item_logits, n = args
                return labels_to_text(greedy_labels(item_logits[:n], blank, space), chars)

            texts = tf.map_fn(
                decode, (logits, window_lengths), fn_output_signature=tf.TensorSpec([], tf.string)
            )
            return {"text": texts, "logits": logits, "logits_length": window_lengths}

    return ServingModule()


# -- TFLite ------------------------------------------------------------------------------------
def matmul_dct_extractor(recognizer):
    """The run's FeatureExtractor with the DCT of its MFCC stage as ``log_mel @ M``, where
    M is ``tf.signal.mfccs_from_log_mel_spectrograms`` applied to the identity (the DCT is
    linear), so nothing is re-derived. Runs with deltas keep the extractor unchanged (the
    deltas live inside its MFCC stage); their DCT may then need a select-TF RFFT."""
    import tensorflow as tf

    base = recognizer.extractor
    fc = base.config
    if fc.deltas:
        return base
    identity = tf.eye(fc.num_mel_bins, dtype=tf.float32)
    matrix = tf.constant(
        tf.signal.mfccs_from_log_mel_spectrograms(identity).numpy()[:, : fc.num_mfcc]
    )

    class MatmulDctExtractor(FeatureExtractor):
        def mfcc(self, log_mel):
            return tf.matmul(log_mel, matrix)

    return MatmulDctExtractor(fc, base.sample_rate, base.stats)


def _lstm_weights(layer):
    """(kernel, recurrent_kernel, bias) of a Keras LSTM layer as float32 numpy arrays."""
    cell = layer.cell
    bias = (
        np.asarray(cell.bias.numpy(), np.float32)
        if cell.use_bias
        else np.zeros(4 * layer.units, np.float32)
    )
    return (
        np.asarray(cell.kernel.numpy(), np.float32),
        np.asarray(cell.recurrent_kernel.numpy(), np.float32),
        bias,
    )


def _check_lstm(layer):
    cfg = layer.get_config()
    if (
        cfg.get("activation") != "tanh"
        or cfg.get("recurrent_activation") != "sigmoid"
        or not cfg.get("return_sequences", False)
    ):
        raise RunFolderError(
            f"LSTM {layer.name}: only tanh/sigmoid LSTMs returning sequences "
            "can be exported to TFLite"
        )


def _keras_style_lstm(go_backwards: bool):
    """A time-major ``[T, 1, in]`` LSTM as a function with the attributes the TFLite
    converter recognizes as a Keras LSTM (``api_implements: lstm_*``, 6 inputs, 5 outputs,
    only the full sequence used): it becomes one fused UNIDIRECTIONAL_SEQUENCE_LSTM. Its
    body (the same arithmetic, Keras gate order i, f, c, o) runs in TensorFlow itself. With
    ``go_backwards`` the sequence is read from the end and the outputs come out reversed,
    as in Keras."""
    import tensorflow as tf

    def lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        if go_backwards:
            inputs = tf.reverse(inputs, axis=[0])
        projected = tf.einsum("tbi,ig->tbg", inputs, kernel) + bias

        def step(state, z_x):
            h, c = state
            z = z_x + tf.matmul(h, recurrent_kernel)
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_c)
            h = tf.sigmoid(z_o) * tf.tanh(c)
            return h, c

        hs, cs = tf.scan(step, projected, initializer=(init_h, init_c))
        return hs[-1], hs, hs[-1], cs[-1], tf.constant(0.0)

    return tf.function(
        lstm,
        autograph=False,
        experimental_attributes={
            "api_implements": f"lstm_{uuid.uuid4()}",
            "api_preferred_device": "CPU",
            "time_major": True,
            "go_backwards": go_backwards,
        },
    )


def _layer_norm_stage(layer):
    """("layer_norm", gamma, beta, epsilon) of a Keras LayerNormalization over the last axis."""
    cfg = layer.get_config()
    axis = cfg.get("axis", -1)
    if axis not in (-1, [-1], (-1,), 2, [2]) or cfg.get("rms_scaling", False):
        raise RunFolderError(f"{layer.name}: only layer normalization over features is exported")
    units = int(layer.input.shape[-1])
    gamma = layer.gamma.numpy() if layer.scale else np.ones(units)
    beta = layer.beta.numpy() if layer.center else np.zeros(units)
    return (
        "layer_norm",
        np.asarray(gamma, np.float32),
        np.asarray(beta, np.float32),
        float(cfg["epsilon"]),
    )


def tflite_function(recognizer):
    """(concrete function ``waveform [N] -> {labels [L], logits [T, C], logits_length}``,
    the ``tf.Module`` holding it) for the TFLite converter: the run's features and weights,
    no mask, batch of one."""
    import tensorflow as tf
    from keras import layers

    model = recognizer.acoustic_model
    extractor = matmul_dct_extractor(recognizer)
    chars = recognizer.vocab.chars
    blank = recognizer.vocab.blank_id
    space = chars.index(" ") if " " in chars else -1

    stages = []  # ("dense", w, b, activation) | ("bilstm", fw, bw, units) | ("layer_norm", ...)
    for layer in model.layers:
        if (
            isinstance(layer, (layers.InputLayer, layers.Dropout))
            or type(layer).__name__ == "LengthMask"
        ):
            continue
        if isinstance(layer, layers.Bidirectional):
            if layer.merge_mode != "concat":
                raise RunFolderError(
                    f"{layer.name}: merge mode {layer.merge_mode!r} is not exported (only concat)"
                )
            for direction in (layer.forward_layer, layer.backward_layer):
                _check_lstm(direction)
            stages.append(
                (
                    "bilstm",
                    _lstm_weights(layer.forward_layer),
                    _lstm_weights(layer.backward_layer),
                    layer.forward_layer.units,
                )
            )
        elif isinstance(layer, layers.Dense):
            activation = layer.get_config()["activation"]
            if activation not in ("linear", "relu"):
                raise RunFolderError(f"{layer.name}: activation {activation!r} not exported")
            stages.append(
                (
                    "dense",
                    np.asarray(layer.kernel.numpy(), np.float32),
                    np.asarray(layer.bias.numpy(), np.float32),
                    activation,
                )
            )
        elif isinstance(layer, layers.LayerNormalization):
            stages.append(_layer_norm_stage(layer))
        else:
            raise RunFolderError(
                f"layer {layer.name} ({type(layer).__name__}) has no TFLite export"
            )
    forward_lstm = _keras_style_lstm(False)
    backward_lstm = _keras_style_lstm(True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="waveform")])
    def transcribe(waveform):
        windows = extractor(at_least_one_sample(waveform))
        length = tf.shape(windows)[0]
        x = windows[:, tf.newaxis, :]  # time-major, batch of one
        for stage in stages:
            if stage[0] == "dense":
                _, w, b, activation = stage
                x = tf.einsum("tbi,io->tbo", x, w) + b
                if activation == "relu":
                    x = tf.nn.relu(x)
            elif stage[0] == "layer_norm":
                _, gamma, beta, epsilon = stage
                mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
                x = (x - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta
            else:
                _, fw, bw, units = stage
                zeros = tf.zeros([1, units], tf.float32)
                _, fw_out, _, _, _ = forward_lstm(x, zeros, zeros, *fw)
                _, bw_out, _, _, _ = backward_lstm(x, zeros, zeros, *bw)
                x = tf.concat([fw_out, tf.reverse(bw_out, axis=[0])], axis=-1)
        logits = x[:, 0, :]
        labels = greedy_labels(logits, blank, space)
        return {"labels": labels, "logits": logits, "logits_length": length}

    module = tf.Module()
    module.transcribe = transcribe
    module.lstms = [forward_lstm, backward_lstm]
    return transcribe.get_concrete_function(), module
