"""Word timing rules on their own, from hand-made inputs: speech regions from frame energy,
words snapped onto them (lag, shared regions, order), and a recognizer's word times from
hand-made posteriors and audio (no model output involved)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from speech_rnn.timing import snap_to_speech, speech_activity, word_items

FIXTURE_MODEL = Path(__file__).resolve().parent / "fixtures" / "digits_model"
SPF = 160  # samples per frame


def frames_audio(loud_frames, frames, seed=0):
    """Faint noise, loud noise on the given frames (whole frames of SPF samples)."""
    rng = np.random.default_rng(seed)
    audio = 0.001 * rng.standard_normal(frames * SPF)
    for k in loud_frames:
        audio[k * SPF : (k + 1) * SPF] = 0.3 * rng.standard_normal(SPF)
    return audio.astype(np.float32)


def test_speech_regions_are_the_loud_frames_with_short_dips_bridged():
    loud = [*range(10, 20), *range(23, 30), *range(40, 45)]  # a 3-frame dip, then a 10-frame gap
    regions = speech_activity(frames_audio(loud, 60), SPF, 60, gap_frames=3)
    assert regions == [(10, 30), (40, 45)]
    # a dip one frame longer than gap_frames is a pause
    assert speech_activity(frames_audio(loud, 60), SPF, 60, gap_frames=2) == [
        (10, 20),
        (23, 30),
        (40, 45),
    ]


def test_a_word_spans_the_region_holding_its_first_emission():
    assert snap_to_speech([(12, 13)], [(10, 20)]) == [(10, 20)]
    assert snap_to_speech([(42, 43)], [(10, 20), (40, 50)]) == [(40, 50)]


def test_a_lagging_emission_snaps_back_only_within_max_lag():
    regions = [(10, 20)]
    assert snap_to_speech([(25, 26)], regions, max_lag=10) == [(10, 20)]  # 5 frames late
    assert snap_to_speech([(30, 31)], regions, max_lag=10) == [(10, 20)]  # exactly max_lag
    assert snap_to_speech([(31, 32)], regions, max_lag=10) == [(31, 33)]  # too late: its frames
    # of several regions that ended within the lag, the latest one
    assert snap_to_speech([(25, 25)], [(2, 18), (19, 22)], max_lag=10) == [(19, 22)]


def test_a_word_with_no_region_keeps_its_emission_frames():
    assert snap_to_speech([(5, 7), (30, 30)], []) == [(5, 8), (30, 31)]
    # no region holds its first frame nor ended just before it: the one holding its last
    assert snap_to_speech([(5, 12)], [(11, 20)], max_lag=3) == [(11, 20)]


def test_words_sharing_a_region_split_it_between_their_emissions():
    # emissions at 12 and 17-18 in one region 10-20: the cut is halfway, (12 + 1 + 17) // 2
    assert snap_to_speech([(12, 12), (17, 18)], [(10, 20)]) == [(10, 15), (15, 20)]
    three = snap_to_speech([(11, 11), (14, 14), (18, 18)], [(10, 20)])
    assert three == [(10, 13), (13, 16), (16, 20)]


def test_snapped_words_keep_their_order_and_never_overlap():
    # region 10-20 ended within max_lag of both words, but each lies in region 40-50
    out = snap_to_speech([(41, 41), (44, 45)], [(10, 20), (40, 50)], max_lag=30)
    assert out == [(40, 43), (43, 50)]
    spans = [(3, 4), (8, 9), (15, 16), (16, 18), (30, 31), (52, 53)]
    out = snap_to_speech(spans, [(0, 6), (7, 12), (14, 20), (45, 50)], max_lag=5)
    assert all(a[1] <= b[0] for a, b in zip(out, out[1:])), out
    assert all(s < e for s, e in out), out


def test_word_items_split_at_spaces_and_drop_empty_words():
    space = 0
    ids, starts = [0, 1, 2, 0, 0, 3, 0], [0, 1, 2, 3, 4, 5, 6]
    assert word_items(ids, starts, starts, space) == [[(1, 1, 1), (2, 2, 2)], [(3, 5, 5)]]


def test_recognizer_word_times_from_hand_made_posteriors():
    """Posteriors emitting "one" at frames 20-22 and "two" at 60 (late: the loud audio is
    frames 50-58), on audio loud at frames 10-25 and 50-58: the words span those regions,
    in seconds of the model's window step."""
    if not (FIXTURE_MODEL / "best.keras").is_file():
        pytest.skip("fixture model missing: run tests/fixtures/make_digits_model.py")
    from speech_rnn import load_model
    from speech_rnn.decoding import DecodingOptions

    r = load_model(FIXTURE_MODEL)
    chars, blank = r.vocab.chars, r.vocab.blank_id
    frames = 80
    emit = {20: "o", 21: "n", 22: "e", 30: " ", 60: "t", 61: "w", 62: "o"}
    logits = np.full((frames, r.vocab.num_classes), -10.0, np.float32)
    logits[:, blank] = 10.0
    for k, c in emit.items():
        logits[k, chars.index(c)], logits[k, blank] = 10.0, -10.0
    logits[21, chars.index("n")] = 1.0  # a less sure letter: the word's confidence
    logits[21, blank] = 0.0
    samples = int(round(r.seconds_per_window * r.sample_rate))
    rng = np.random.default_rng(1)
    audio = 0.001 * rng.standard_normal(frames * samples)
    for lo, hi in ((10, 25), (50, 58)):
        audio[lo * samples : hi * samples] = 0.3 * rng.standard_normal((hi - lo) * samples)
    hyp = r.decode(logits, DecodingOptions())
    words = r.words(hyp, logits, offset=1.0, audio=audio.astype(np.float32))
    step = r.seconds_per_window
    assert [w.word for w in words] == ["one", "two"]
    assert [(w.start, w.end) for w in words] == [
        (round(1.0 + 10 * step, 3), round(1.0 + 25 * step, 3)),
        (round(1.0 + 50 * step, 3), round(1.0 + 58 * step, 3)),
    ]
    p_n = np.exp(1.0) / (np.exp(1.0) + 1 + (r.vocab.num_classes - 2) * np.exp(-10.0))
    assert words[0].confidence == pytest.approx(p_n, abs=1e-4)
    # without the audio, the words keep their emission frames
    plain = r.words(hyp, logits, offset=1.0)
    assert [(w.start, w.end) for w in plain] == [
        (round(1.0 + 20 * step, 3), round(1.0 + 23 * step, 3)),
        (round(1.0 + 60 * step, 3), round(1.0 + 63 * step, 3)),
    ]
