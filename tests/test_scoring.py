"""Corpus WER/CER and the per-utterance report, on transcripts whose edit counts are worked
out by hand."""

from __future__ import annotations

import math

import pytest

from speech_rnn.scoring import Scores, score, utterance_report


def test_corpus_scores_are_edits_over_reference_length():
    # one substituted word of 3; one substituted character of 5 ("a b c" -> "a x c")
    assert score(["a b c"], ["a x c"]) == Scores(pytest.approx(1 / 3), pytest.approx(0.2), 1)
    # corpus level, not a mean of utterances: 1 deleted word of 2 + 4 words = 1/6 (not 1/4)
    s = score(iter(["a b", "c d e f"]), iter(["a", "c d e f"]))
    assert s.wer == pytest.approx(1 / 6)
    assert s.cer == pytest.approx(2 / 10)  # " b" deleted: 2 of 3 + 7 characters
    assert s.utterances == 2
    assert isinstance(s.wer, float) and isinstance(s.cer, float)


def test_no_references_score_nan():
    s = score([], [])
    assert math.isnan(s.wer) and math.isnan(s.cer) and s.utterances == 0


# id: (reference, hypothesis) -> WER, CER by hand
UTTERANCES = {
    "u1": ("a b", "a b"),  # 0, 0
    "u2": ("a b", "a c"),  # 1/2, 1/3
    "u3": ("a b", "c d"),  # 1, 2/3
    "u4": ("a b c d", "a b c x"),  # 1/4, 1/7
    "u5": ("a b c d", "a b c d e"),  # 1/4, 2/7 (an inserted word: " e")
}


def _report(top=3, ids=None):
    ids = list(UTTERANCES) if ids is None else ids
    refs = [r for r, _ in UTTERANCES.values()]
    hyps = [h for _, h in UTTERANCES.values()]
    return utterance_report(ids, refs, hyps, top=top)


def test_utterance_report_ranks_by_wer_then_cer():
    report = _report()
    rows = {r["id"]: r for r in report["per_utterance"]}
    assert [r["id"] for r in report["per_utterance"]] == ["u1", "u2", "u3", "u4", "u5"]
    expected = {"u1": (0, 0), "u2": (1 / 2, 1 / 3), "u3": (1, 2 / 3), "u4": (1 / 4, 1 / 7)}
    expected["u5"] = (1 / 4, 2 / 7)
    for utt_id, (wer, cer) in expected.items():
        assert rows[utt_id]["wer"] == pytest.approx(wer)
        assert rows[utt_id]["cer"] == pytest.approx(cer)
        assert (rows[utt_id]["reference"], rows[utt_id]["hypothesis"]) == UTTERANCES[utt_id]
    # ranked: u1 (0), u4 (1/4, 1/7), u5 (1/4, 2/7), u2 (1/2), u3 (1)
    assert [r["id"] for r in report["best"]] == ["u1", "u4", "u5"]
    assert [r["id"] for r in report["median"]] == ["u4", "u5", "u2"]  # ranked[1:4]
    assert [r["id"] for r in report["worst"]] == ["u3", "u2", "u5"]
    one = _report(top=1)
    assert [r["id"] for r in one["best"]] == ["u1"]
    assert [r["id"] for r in one["median"]] == ["u5"]  # ranked[2]
    assert [r["id"] for r in one["worst"]] == ["u3"]


def test_utterance_report_ties_go_by_id_and_ids_may_be_a_prefix():
    report = utterance_report(["b", "a"], ["x y", "x y"], ["x z", "x z"], top=2)
    assert [r["id"] for r in report["best"]] == ["a", "b"]
    assert [r["id"] for r in report["worst"]] == ["b", "a"]
    # two ids for five transcripts: only the first two are reported
    report = _report(ids=["u3", "u1"])
    assert [r["id"] for r in report["per_utterance"]] == ["u3", "u1"]
    rows = [(r["id"], r["reference"], r["hypothesis"]) for r in report["per_utterance"]]
    assert rows == [("u3", "a b", "a b"), ("u1", "a b", "a c")]
    assert [r["id"] for r in report["median"]] == ["u3", "u1"]  # ranked[0:3] of two


def test_the_default_report_shows_three_and_a_wider_median_is_centred():
    report = utterance_report(
        list(UTTERANCES), [r for r, _ in UTTERANCES.values()], [h for _, h in UTTERANCES.values()]
    )
    assert [r["id"] for r in report["best"]] == ["u1", "u4", "u5"]
    # top 4 of 5: mid = 2, ranked[max(0, 2 - 2) : 2 - 2 + 4]
    assert [r["id"] for r in _report(top=4)["median"]] == ["u1", "u4", "u5", "u2"]
