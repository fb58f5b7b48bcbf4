"""CTC decoding without TensorFlow: the options check, greedy decoding and forced alignment
on hand-made frames, and the prefix beam search with a language model against a brute-force
sum over every CTC path. Expected values are worked out by hand (or by brute force), never
taken from the decoder's own output."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from speech_rnn.decoding import (
    DEFAULT_LM_BEAM,
    DecodingOptions,
    Hypothesis,
    _logaddexp,
    align_spans,
    decoding_options,
    greedy_decode,
    log_softmax,
    prefix_beam_search,
)
from speech_rnn.errors import ConfigError
from speech_rnn.lm import NgramLM, kneser_ney

A, B, BLANK = 0, 1, 2  # two labels and the blank (last)


def probs(*rows):
    """Logits whose log-softmax is log(row / sum(row)): frames given as probabilities."""
    rows = np.array(rows, dtype=np.float64)
    return np.log(rows / rows.sum(axis=1, keepdims=True))


# -- options -----------------------------------------------------------------------------------
def test_decoding_options_defaults_and_method():
    assert decoding_options() == DecodingOptions(0, None, 0.5, 1.0)
    assert decoding_options(None).beam_width == 0
    assert decoding_options().method == "greedy"
    assert decoding_options(1).method == "greedy"  # a beam of one is greedy
    assert decoding_options(2).method == "beam"
    assert decoding_options(0, "x.arpa").method == "beam+lm"


def test_decoding_options_with_a_language_model():
    opts = decoding_options(0, Path("lm/x.arpa"))
    assert opts == DecodingOptions(DEFAULT_LM_BEAM, "lm/x.arpa", 0.5, 1.0)
    assert isinstance(opts.lm, str)
    # zero weights are kept (not replaced by the defaults); strings become numbers
    assert decoding_options(8, "x.arpa", alpha=0, beta=0) == DecodingOptions(8, "x.arpa", 0.0, 0.0)
    opts = decoding_options(2, "x.arpa", alpha="0.25", beta="3")
    assert (opts.beam_width, opts.alpha, opts.beta) == (2, 0.25, 3.0)
    assert isinstance(opts.alpha, float) and isinstance(opts.beta, float)
    assert decoding_options(3, "x.arpa", beta=2).alpha == 0.5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beam_width": -1}, "--beam must be >= 0"),
        ({"alpha": 0.5}, "give lm too"),
        ({"beta": 0.0}, "give lm too"),
        ({"beam_width": 1, "lm": "x.arpa"}, "needs beam search"),
    ],
)
def test_decoding_options_refuse_contradictions(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        decoding_options(**kwargs)


# -- log-space helpers -------------------------------------------------------------------------
def test_logaddexp_and_log_softmax():
    assert _logaddexp(math.log(0.2), math.log(0.3)) == pytest.approx(math.log(0.5))
    assert _logaddexp(math.log(0.3), math.log(0.2)) == pytest.approx(math.log(0.5))
    assert _logaddexp(-math.inf, -1.5) == -1.5
    assert _logaddexp(-1.5, -math.inf) == -1.5
    assert _logaddexp(-math.inf, -math.inf) == -math.inf
    assert _logaddexp(-1.0, -1.0) == pytest.approx(-1.0 + math.log(2))
    out = log_softmax(np.array([[0.0, math.log(3.0)], [5.0, 5.0 + math.log(3.0)]]))
    np.testing.assert_allclose(out, np.log([[0.25, 0.75], [0.25, 0.75]]))


# -- greedy ------------------------------------------------------------------------------------
def test_greedy_merges_runs_drops_blanks_and_times_each_label():
    # best path a a _ b b a: labels a b a starting at frames 0 3 5, runs ending 1 4 5
    logits = probs(
        [0.6, 0.3, 0.1],
        [0.5, 0.1, 0.4],
        [0.2, 0.1, 0.7],
        [0.1, 0.8, 0.1],
        [0.3, 0.4, 0.3],
        [0.9, 0.05, 0.05],
    )
    hyp = greedy_decode(logits, 6, BLANK)
    assert hyp.ids == (A, B, A)
    assert hyp.frames == (0, 3, 5)
    assert hyp.ends == (1, 4, 5)
    assert hyp.log_prob == pytest.approx(math.log(0.6 * 0.5 * 0.7 * 0.8 * 0.4 * 0.9))
    assert all(isinstance(i, int) for i in hyp.ids + hyp.frames + hyp.ends)
    # only the first ``length`` frames count: the b run is cut at frame 3
    short = greedy_decode(logits, 4, BLANK)
    assert (short.ids, short.frames, short.ends) == ((A, B), (0, 3), (1, 3))
    assert short.log_prob == pytest.approx(math.log(0.6 * 0.5 * 0.7 * 0.8))


def test_greedy_repeats_need_a_blank_and_empty_input_is_empty():
    logits = probs([0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1])
    hyp = greedy_decode(logits, 4, BLANK)
    assert (hyp.ids, hyp.frames, hyp.ends) == ((A, A), (1, 3), (1, 3))
    assert greedy_decode(logits, 0, BLANK) == Hypothesis((), (), 0.0)
    only_blanks = greedy_decode(probs([0.1, 0.1, 0.8], [0.2, 0.1, 0.7]), 2, BLANK)
    assert (only_blanks.ids, only_blanks.frames, only_blanks.ends) == ((), (), ())


# -- forced alignment --------------------------------------------------------------------------
def test_align_spans_follows_the_clear_path():
    logits = probs(
        [0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.1, 0.1, 0.8], [0.1, 0.8, 0.1]
    )
    assert align_spans(logits, (A, B), BLANK) == ((1, 4), (2, 4))
    assert align_spans(logits, (), BLANK) == ((), ())
    # a label may start on the very first frame
    assert align_spans(probs([0.8, 0.1, 0.1], [0.1, 0.1, 0.8]), (A,), BLANK) == ((0,), (0,))


def test_align_spans_places_a_label_the_frames_do_not_favour():
    # blank wins every frame, but the label must go somewhere: where p(a)/p(blank) is
    # largest (frame 1: 0.3/0.6), for one frame only, since every ratio is below one
    logits = probs([0.1, 0.0001, 0.9], [0.3, 0.1, 0.6], [0.2, 0.1, 0.7], [0.1, 0.0001, 0.9])
    assert align_spans(logits, (A,), BLANK) == ((1,), (1,))


def test_align_spans_puts_a_blank_between_repeats_and_may_end_on_a_label():
    # three confident a frames spell "aa" only as a _ a
    logits = probs([0.9, 1e-6, 0.1], [0.9, 1e-6, 0.1], [0.9, 1e-6, 0.1])
    assert align_spans(logits, (A, A), BLANK) == ((0, 2), (0, 2))
    # "ab" over a b b ends on the label (b's run is frames 1-2); over a b _ on a blank
    ending_b = probs([0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1])
    assert align_spans(ending_b, (A, B), BLANK) == ((0, 1), (0, 2))
    ending_blank = probs([0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8])
    assert align_spans(ending_blank, (A, B), BLANK) == ((0, 1), (0, 1))


# -- prefix beam search with a language model, against brute force ------------------------------
CHARS = ("a", "b", " ")  # labels 0 1 2, blank 3


def _collapse(path, blank):
    out = []
    prev = None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return tuple(out)


def _brute_force_best(logits, lm, alpha, beta):
    """Every labelling's total acoustic probability (summed over all its CTC paths), plus
    alpha x ln(10) x the LM's log10 probability of its words and ``</s>``, plus beta per
    word; the best labelling and its score."""
    blank = len(CHARS)
    log_probs = log_softmax(logits)
    totals = {}
    for path in itertools.product(range(blank + 1), repeat=len(logits)):
        p = math.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
        labels = _collapse(path, blank)
        totals[labels] = totals.get(labels, 0.0) + p
    scores = {}
    for labels, total in totals.items():
        words = "".join(CHARS[i] for i in labels).split()
        lm_part = alpha * math.log(10) * lm.sentence_log10_prob(words) if lm is not None else 0
        scores[labels] = math.log(total) + lm_part + beta * len(words)
    best = max(scores, key=scores.get)
    return best, scores[best]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weights", [(0.0, 0.0), (0.8, 0.0), (0.5, 1.5), (1.0, -0.5)])
def test_prefix_beam_search_with_an_lm_matches_brute_force(seed, weights):
    alpha, beta = weights
    lm = NgramLM(kneser_ney([["ab"], ["ab", "ba"], ["b"], ["ab", "ab"]], order=2))
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(5, len(CHARS) + 1)) * 1.5
    best, best_score = _brute_force_best(logits, lm, alpha, beta)
    hyp = prefix_beam_search(
        logits, len(CHARS), CHARS, beam_width=1000, lm=lm, alpha=alpha, beta=beta,
        prune_log_prob=-math.inf,
    )  # fmt: skip
    assert hyp.ids == best
    assert hyp.log_prob == pytest.approx(best_score, abs=1e-9)
    assert len(hyp.frames) == len(hyp.ends) == len(best)


@pytest.mark.parametrize("seed", [3, 4])
def test_prefix_beam_search_word_bonus_without_an_lm_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(5, len(CHARS) + 1)) * 1.5
    best, best_score = _brute_force_best(logits, None, 0.0, 0.7)
    hyp = prefix_beam_search(
        logits, len(CHARS), CHARS, beam_width=1000, beta=0.7, prune_log_prob=-math.inf
    )
    assert hyp.ids == best
    assert hyp.log_prob == pytest.approx(best_score, abs=1e-9)


def test_unknown_spellings_are_penalised_while_searching():
    """With a beam of one, the search keeps only the best-ranked prefix per frame. The
    acoustics slightly favour "b" first; the LM knows only "ab", so a "b" prefix (which no
    word starts with) costs ``unk_penalty`` and "a" is kept instead."""
    lm = NgramLM(kneser_ney([["ab"]] * 3, order=1))
    logits = probs([0.4, 0.45, 0.0001, 0.1499], [0.1, 0.8, 0.0001, 0.0999])
    search = dict(beam_width=1, lm=lm, alpha=0.0, beta=0.0, prune_log_prob=-math.inf)
    assert prefix_beam_search(logits, 3, CHARS, unk_penalty=0.0, **search).ids[0] == B
    assert prefix_beam_search(logits, 3, CHARS, unk_penalty=-10.0, **search).ids == (A, B)


def test_pruned_labels_are_not_tried():
    """A label below ``prune_log_prob`` at a frame is never emitted there."""
    # "ab" (a b: 0.36) beats "a" (a _ or a a: 0.2397) and "b" (_ b: 0.2394)
    logits = probs([0.6, 0.0005, 0.0005, 0.399], [0.0005, 0.6, 0.0005, 0.399])
    assert prefix_beam_search(logits, 3, CHARS, 8, beta=0.0).ids == (A, B)
    # with a threshold above 0.6 nothing may be emitted: the empty labelling
    hyp = prefix_beam_search(logits, 3, CHARS, 8, beta=0.0, prune_log_prob=math.log(0.7))
    assert hyp.ids == ()
    assert hyp.log_prob == pytest.approx(math.log(0.399 * 0.399))
    assert prefix_beam_search(np.zeros((0, 4)), 3, CHARS, 8) == Hypothesis((), (), 0.0, ())


def test_log_softmax_is_stable_for_large_logits_and_greedy_decodes_one_frame():
    # exp(1000) overflows: the maximum must be subtracted, not added
    out = log_softmax(np.array([[1000.0, 1000.0 + math.log(3.0)]]))
    np.testing.assert_allclose(out, np.log([[0.25, 0.75]]))
    hyp = greedy_decode(probs([0.7, 0.2, 0.1]), 1, BLANK)
    assert (hyp.ids, hyp.frames, hyp.ends) == ((A,), (0,), (0,))
    assert hyp.log_prob == pytest.approx(math.log(0.7))


def test_two_completed_words_both_count_in_the_lm_score_and_the_word_bonus():
    """Six confident frames spell "ab ba ": both words are completed by a space, so the
    score holds the LM probability of both (and of </s>) and beta twice."""
    lm = NgramLM(kneser_ney([["ab", "ba"], ["ba"], ["ab", "ab"]], order=2))
    a, b, space = 0.85, 0.05, 0.05
    rows = {"a": [a, b, space, 0.05], "b": [b, a, space, 0.05], " ": [b, space, a, 0.05]}
    logits = probs(*(rows[c] for c in "ab ba "))
    best, best_score = _brute_force_best(logits, lm, 0.9, 0.4)
    assert "".join(CHARS[i] for i in best) == "ab ba "
    hyp = prefix_beam_search(
        logits, 3, CHARS, beam_width=1000, lm=lm, alpha=0.9, beta=0.4, prune_log_prob=-math.inf
    )
    assert hyp.ids == best
    assert hyp.log_prob == pytest.approx(best_score, abs=1e-9)
