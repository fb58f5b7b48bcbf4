"""Features: frame and window arithmetic, stacking, masking, MFCC against a reference
computed with numpy/scipy/librosa, and resampling of 8 kHz audio."""

import numpy as np
import pytest
import scipy.fft
import scipy.signal

from speech_rnn.audio import load_audio
from speech_rnn.config import FeatureConfig, ModelConfig, SpecAugmentConfig
from speech_rnn.features import (
    FeatureExtractor,
    FeatureStats,
    num_frames,
    num_windows,
    spec_augment,
    window_dim,
)

tf = pytest.importorskip("tensorflow")


@pytest.mark.parametrize("samples", [1, 159, 160, 161, 16000, 52743])
@pytest.mark.parametrize("stack, stride", [(1, 1), (4, 3), (3, 3), (5, 2)])
def test_window_count_formula_matches_the_graph(samples, stack, stride):
    config = FeatureConfig(stack=stack, stride=stride, normalization="utterance")
    extractor = FeatureExtractor(config, 16000)
    waveform = np.random.default_rng(samples).normal(size=samples).astype(np.float32)
    log_mel = extractor.log_mel(tf.constant(waveform))
    assert log_mel.shape == (num_frames(samples, config, 16000), config.num_mel_bins)
    windows = extractor(tf.constant(waveform))
    assert windows.shape == (num_windows(samples, config, 16000), window_dim(config))


def test_stacking_lays_consecutive_frames_side_by_side():
    config = FeatureConfig(stack=4, stride=3, num_mfcc=2, num_mel_bins=4)
    extractor = FeatureExtractor(config, 16000)
    frames = tf.reshape(tf.range(14, dtype=tf.float32), [7, 2])  # 7 frames of dim 2
    stacked = extractor.stack(frames).numpy()
    assert stacked.shape == (3, 8)  # ceil(7 / 3) windows
    np.testing.assert_array_equal(stacked[0], np.arange(0, 8))  # frames 0..3
    np.testing.assert_array_equal(stacked[1], np.arange(6, 14))  # frames 3..6
    np.testing.assert_array_equal(stacked[2], [12, 13, 0, 0, 0, 0, 0, 0])  # frame 6 + zeros


def test_global_normalization_uses_the_stored_statistics():
    config = FeatureConfig(stack=1, stride=1, num_mfcc=2, num_mel_bins=4)
    stats = FeatureStats(mean=(1.0, -2.0), std=(2.0, 0.5))
    extractor = FeatureExtractor(config, 16000, stats)
    out = extractor.normalize(tf.constant([[3.0, -1.0]])).numpy()
    np.testing.assert_allclose(out, [[1.0, 2.0]])


def reference_log_mel_and_mfcc(waveform, config: FeatureConfig, sample_rate=16000):
    """The same features with numpy framing, scipy's Hann window and DCT, librosa's HTK mel
    filterbank: an independent implementation of the definition."""
    import librosa

    length, step = 400, 160
    count = -(-len(waveform) // step)
    padded = np.concatenate([waveform, np.zeros(length, np.float32)])
    frames = np.stack([padded[i * step : i * step + length] for i in range(count)])
    window = scipy.signal.get_window("hann", length, fftbins=True)
    power = np.abs(np.fft.rfft(frames * window, n=config.fft_length)) ** 2
    mel = librosa.filters.mel(
        sr=sample_rate,
        n_fft=config.fft_length,
        n_mels=config.num_mel_bins,
        fmin=config.lower_hz,
        fmax=config.upper_hz,
        htk=True,
        norm=None,
    )
    log_mel = np.log(power @ mel.T + 1e-6)
    mfcc = scipy.fft.dct(log_mel, type=2, axis=-1)[:, : config.num_mfcc] / np.sqrt(
        2 * config.num_mel_bins
    )
    return log_mel, mfcc


def test_mfcc_agrees_with_a_reference_implementation(kathleen_dir):
    waveform = load_audio(kathleen_dir / "arctic_a0001_1592748574.flac")
    config = FeatureConfig(normalization="none")
    extractor = FeatureExtractor(config, 16000)
    log_mel = extractor.log_mel(tf.constant(waveform)).numpy()
    mfcc = extractor.mfcc(tf.constant(log_mel)).numpy()
    ref_log_mel, ref_mfcc = reference_log_mel_and_mfcc(waveform, config)
    # Tolerance: TF interpolates the mel triangles in mel space, librosa in Hz; measured
    # max difference 0.026 (natural-log units) on values of magnitude ~3.5.
    assert np.abs(log_mel - ref_log_mel).max() < 0.05
    assert np.abs(mfcc - ref_mfcc).max() < 0.05
    assert np.corrcoef(mfcc.ravel(), ref_mfcc.ravel())[0, 1] > 0.9999


def test_8khz_clip_is_resampled_to_16khz(fsdd_dir):
    import soundfile

    path = fsdd_dir / "7_jackson_0.wav"
    native, rate = soundfile.read(path, dtype="float32")
    assert rate == 8000
    waveform = load_audio(path, 16000)
    assert abs(len(waveform) - 2 * len(native)) <= 1
    # Same content: the 16 kHz signal decimated back matches the original closely ...
    back = waveform[::2][: len(native)]
    assert np.corrcoef(back, native)[0, 1] > 0.99
    # ... and a real (band-limited) resampler puts no energy above the old Nyquist.
    spectrum = np.abs(np.fft.rfft(waveform)) ** 2
    freqs = np.fft.rfftfreq(len(waveform), 1 / 16000)
    assert spectrum[freqs > 4200].sum() < 1e-3 * spectrum.sum()


def test_spec_augment_masks_bands_and_spans_reproducibly():
    log_mel = tf.random.stateless_normal([200, 40], seed=[1, 2])
    config = SpecAugmentConfig(
        freq_masks=1,
        freq_mask_width=8,
        time_masks=1,
        time_mask_width=30,
        time_mask_max_fraction=0.2,
    )
    a = spec_augment(log_mel, config, tf.constant([3, 4]))
    b = spec_augment(log_mel, config, tf.constant([3, 4]))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    original = log_mel.numpy()
    fill = original.mean()

    def runs(flags):
        """The (start, stop) of each run of True in a 1-D boolean array."""
        edges = np.flatnonzero(np.diff(np.concatenate([[0], flags.astype(int), [0]])))
        return list(zip(edges[::2], edges[1::2]))

    widths = []
    for seed in range(12):
        out = spec_augment(log_mel, config, tf.constant([seed, 4])).numpy()
        changed = out != original
        cols, rows = changed.all(axis=0), changed.all(axis=1)
        # exactly one band of whole mel columns (up to 8 wide) and one span of whole frames
        # (up to 30), nothing else touched, and the masked cells hold the mean
        assert len(runs(cols)) <= 1 and cols.sum() <= 8, runs(cols)
        assert len(runs(rows)) <= 1 and rows.sum() <= 30, runs(rows)
        np.testing.assert_array_equal(changed, cols[np.newaxis, :] | rows[:, np.newaxis])
        np.testing.assert_allclose(out[changed], fill, rtol=1e-6)
        widths.append((int(cols.sum()), int(rows.sum())))
    assert len(set(widths)) > 6 and min(c for c, _ in widths) < max(c for c, _ in widths)
    assert sum(c > 0 and r > 0 for c, r in widths) > 6  # both kinds of mask, most seeds
    disabled = spec_augment(log_mel, SpecAugmentConfig(enabled=False), tf.constant([3, 4]))
    np.testing.assert_array_equal(disabled.numpy(), log_mel.numpy())


def test_padded_windows_do_not_change_the_model_output():
    from speech_rnn.model import build_model

    model = build_model(ModelConfig(lstm_layers=2, lstm_units=8), 6, 5)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2, 9, 6)).astype(np.float32)
    lengths = np.array([9, 4], np.int32)
    out = model([features, lengths]).numpy()
    features[1, 4:] = 1e3  # garbage in the padding
    out_padded = model([features, lengths]).numpy()
    np.testing.assert_allclose(out[1, :4], out_padded[1, :4], atol=1e-5)
    alone = model([features[1:, :4], lengths[1:]]).numpy()
    np.testing.assert_allclose(out[1, :4], alone[0], atol=1e-5)


def test_deltas_are_the_two_frame_regression_of_the_mfcc_then_of_the_deltas():
    """``features.deltas=true`` appends the first and second order deltas: the regression
    over +-2 frames, (2 (x[t+2] - x[t-2]) + (x[t+1] - x[t-1])) / 10, edges repeated."""
    rng = np.random.default_rng(0)
    log_mel = tf.constant(rng.normal(size=(9, 40)).astype(np.float32))
    plain = FeatureExtractor(FeatureConfig(normalization="none"), 16000).mfcc(log_mel).numpy()
    config = FeatureConfig(normalization="none", deltas=True)
    both = FeatureExtractor(config, 16000).mfcc(log_mel).numpy()
    assert both.shape == (9, 3 * 26) == (9, window_dim(FeatureConfig(deltas=True, stack=1)))

    def delta(x):
        p = np.concatenate([x[:1], x[:1], x, x[-1:], x[-1:]])
        return np.array([(2 * (p[t + 4] - p[t]) + (p[t + 3] - p[t + 1])) / 10 for t in range(9)])

    np.testing.assert_array_equal(both[:, :26], plain)
    np.testing.assert_allclose(both[:, 26:52], delta(plain), atol=1e-5)
    np.testing.assert_allclose(both[:, 52:], delta(delta(plain)), atol=1e-5)
    # on a quadratic the interior delta is the exact derivative: x = t^2 -> 2 t
    from speech_rnn.features import _delta

    t = np.arange(9, dtype=np.float32)[:, None]
    assert _delta(tf.constant(t**2)).numpy()[2:-2, 0].tolist() == (2 * t[2:-2, 0]).tolist()
