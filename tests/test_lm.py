"""Word n-gram LMs: Kneser-Ney counting and smoothing checked by hand and by normalization,
the ARPA round trip, CTC prefix beam search against brute force, and a decode the LM
provably changes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from speech_rnn.decoding import greedy_decode, prefix_beam_search
from speech_rnn.lm import (
    BOS,
    EOS,
    FALLBACK_DISCOUNTS,
    UNK,
    LanguageModelError,
    NgramLM,
    adjusted_counts,
    build_arpa,
    kneser_ney,
    modified_kn_discounts,
    read_arpa,
    write_arpa,
)
from speech_rnn.text import DIGIT_WORDS

CHARS = tuple("abcdefghijklmnopqrstuvwxyz' ")
BLANK = len(CHARS)


def digit_corpus(count=300, seed=0):
    rng = np.random.default_rng(seed)
    return [[DIGIT_WORDS[d] for d in rng.integers(0, 10, rng.integers(1, 7))] for _ in range(count)]


def zipf_corpus(count=400, seed=0):
    """Sentences of 64 made-up words drawn with Zipf frequencies: count-of-counts like
    real text's, so modified Kneser-Ney estimates its discounts."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "ti", "so", "pa"]
    vocab = [a + b for a in syllables for b in syllables]
    p = 1 / np.arange(1, len(vocab) + 1)
    return [
        [vocab[i] for i in rng.choice(len(vocab), rng.integers(2, 9), p=p / p.sum())]
        for _ in range(count)
    ]


def all_contexts(model, order):
    return {g for g in model if len(g) < order and g[-1] != EOS} | {()}


def assert_normalized(lm, contexts, tolerance=1e-5):
    words = sorted(lm.vocabulary - {BOS})
    for context in contexts:
        total = sum(10 ** lm.log10_prob(w, context) for w in words)
        assert abs(total - 1) < tolerance, (context, total)


def test_hand_computed_interpolated_kneser_ney(tmp_path):
    """Order 2, one discount D = 0.5, corpus "a b / a c / b c" (worked out on paper):
    unigram continuation counts a 1, b 2, c 2, </s> 2 (total 7), 5 words with <unk>,
    gamma() = 0.5 * 4 / 7; gamma(a) = 0.5 * 2 / 2; gamma(<s>) = 0.5 * 2 / 3."""
    text = tmp_path / "tiny.txt"
    text.write_text("A b.\na, c\n\nb C\n")
    report = build_arpa(text, tmp_path / "tiny.arpa", order=2, discounts=(0.5, 0.5, 0.5))
    assert (report.sentences, report.words, report.ngrams) == (3, 6, (6, 7))
    lm = NgramLM.load(tmp_path / "tiny.arpa")

    def p(w, *h):
        return 10 ** lm.log10_prob(w, h)

    assert p("a") == pytest.approx(4.5 / 35, rel=1e-6)
    assert p("b") == pytest.approx(9.5 / 35, rel=1e-6)
    assert p(UNK) == pytest.approx(2 / 35, rel=1e-6)
    assert p("zebra") == pytest.approx(2 / 35, rel=1e-6)  # unknown -> <unk>
    assert p("b", "a") == pytest.approx(0.25 + 0.5 * 9.5 / 35, rel=1e-6)
    assert p("a", "a") == pytest.approx(0.5 * 4.5 / 35, rel=1e-6)  # backs off: gamma(a)
    assert p("a", BOS) == pytest.approx(0.5 + (1 / 3) * 4.5 / 35, rel=1e-6)
    assert p("c", "zebra") == pytest.approx(p("c"), rel=1e-6)  # unseen context
    model = read_arpa(tmp_path / "tiny.arpa")
    assert model[("a",)][1] == pytest.approx(math.log10(0.5), abs=1e-6)
    assert model[(BOS,)] == (-99.0, pytest.approx(math.log10(1 / 3), abs=1e-6))
    assert ("b", EOS) in model and (EOS,) in model and ("c", "a") not in model


def test_continuation_counts():
    counts = adjusted_counts([["a", "b"], ["a", "c"], ["b", "c"]], order=3)
    assert counts[0] == {("a",): 1, ("b",): 2, ("c",): 2, (EOS,): 2}
    assert counts[1][(BOS, "a")] == 2  # starts with <s>: raw count
    assert counts[1][("a", "b")] == 1  # continuation count
    assert counts[2][(BOS, "a", "b")] == 1  # highest order: raw counts


def test_modified_discounts_from_count_of_counts():
    d1, d2, d3 = modified_kn_discounts({1: 10, 2: 5, 3: 3, 4: 2})
    assert (d1, d2, d3) == pytest.approx((0.5, 1.1, 3 - 4 * 0.5 * 2 / 3))
    assert modified_kn_discounts({1: 4, 2: 0, 3: 1, 4: 1}) == FALLBACK_DISCOUNTS
    assert modified_kn_discounts({1: 1, 2: 1, 3: 9, 4: 1}) == FALLBACK_DISCOUNTS  # D2 < 0


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_sums_to_one(tmp_path, order):
    sentences = zipf_corpus()
    if order > 1:  # the corpus is rich enough for estimated (not fallback) discounts
        counts = adjusted_counts(sentences, order)
        for n in range(2, order + 1):
            coc = {k: sum(1 for c in counts[n - 1].values() if c == k) for k in (1, 2, 3, 4)}
            assert modified_kn_discounts(coc) != FALLBACK_DISCOUNTS
    model = kneser_ney(sentences, order)
    write_arpa(model, tmp_path / "lm.arpa")
    lm = NgramLM.load(tmp_path / "lm.arpa")
    contexts = all_contexts(model, order)
    assert len(contexts) > (0 if order == 1 else 50)
    unseen = [("kaka", "kaka", "kaka")[: order - 1], ("zebra",) * (order - 1)]
    assert_normalized(lm, sorted(contexts) + unseen)


def test_arpa_round_trip_and_errors(tmp_path):
    model = kneser_ney(digit_corpus(50), 3)
    write_arpa(model, tmp_path / "lm.arpa")
    back = read_arpa(tmp_path / "lm.arpa")
    assert set(back) == set(model)
    for gram, (logp, bow) in model.items():
        assert back[gram][0] == pytest.approx(logp, abs=1e-6)
        assert back[gram][1] == pytest.approx(bow, abs=1e-6)
    text = (tmp_path / "lm.arpa").read_text()
    (tmp_path / "bad.arpa").write_text(text.replace("ngram 1=", "ngram 1=1", 1))
    with pytest.raises(LanguageModelError, match="header promises"):
        NgramLM.load(tmp_path / "bad.arpa")
    (tmp_path / "junk.arpa").write_text("hello\n")
    with pytest.raises(LanguageModelError):
        NgramLM.load(tmp_path / "junk.arpa")
    with pytest.raises(LanguageModelError, match="cannot read"):
        NgramLM.load(tmp_path / "missing.arpa")
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(LanguageModelError, match="no text"):
        build_arpa(tmp_path / "empty.txt", tmp_path / "x.arpa")


def test_sentence_scores_prefer_seen_orderings():
    lm = NgramLM(kneser_ney([["one", "two", "three"]] * 5 + [["four", "five"]] * 5, 3))
    assert lm.sentence_log10_prob(["one", "two", "three"]) > lm.sentence_log10_prob(
        ["three", "two", "one"]
    )
    assert lm.is_prefix("thr") and not lm.is_prefix("thx") and not lm.is_prefix("")


def _collapse(path):
    out = []
    for prev, label in zip((None,) + path, path):
        if label != BLANK_SMALL and label != prev:
            out.append(label)
    return tuple(out)


BLANK_SMALL = 2


def test_prefix_beam_search_finds_the_most_probable_labelling():
    """Exhaustive check on 6 frames of 2 labels + blank: the exact best labelling (summed
    over all its CTC paths) and its probability."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        logits = rng.normal(size=(6, 3)) * 2
        log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        totals = {}
        for path in itertools.product(range(3), repeat=6):
            p = math.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
            totals[_collapse(path)] = totals.get(_collapse(path), 0.0) + p
        best = max(totals, key=totals.get)
        hyp = prefix_beam_search(
            logits, BLANK_SMALL, ("a", "b"), beam_width=64, beta=0.0, prune_log_prob=-math.inf
        )
        assert hyp.ids == best
        assert hyp.log_prob == pytest.approx(math.log(totals[best]), abs=1e-9)
        assert len(hyp.frames) == len(hyp.ends) == len(best)
        assert all(s <= e for s, e in zip(hyp.frames, hyp.ends))


def frames(*spec):
    """Hand-made logits: one dict per frame of char -> probability ("_": blank)."""
    rows = []
    for probs in spec:
        row = np.full(len(CHARS) + 1, 1e-4)
        for char, p in probs.items():
            row[BLANK if char == "_" else CHARS.index(char)] = p
        rows.append(np.log(row / row.sum()))
    return np.array(rows)


def spell(text, confident=0.9):
    """One confident frame per character, a blank frame between doubled letters."""
    out = []
    for prev, char in zip(" " + text, text):
        if char == prev:
            out.append({"_": confident, char: 1 - confident})
        out.append({char: confident, "_": 1 - confident})
    return out


def test_language_model_picks_the_in_vocabulary_word(tmp_path):
    """The acoustics favour "to" (the w frame is 40% w, 60% blank); a digits LM knows only
    "two", and turns "one to three" into "one two three"."""
    corpus = tmp_path / "digits.txt"
    corpus.write_text("\n".join(" ".join(s) for s in digit_corpus(200)) + "\n")
    build_arpa(corpus, tmp_path / "digits.arpa", order=3)
    lm = NgramLM.load(tmp_path / "digits.arpa")
    logits = frames(*spell("one t"), {"w": 0.4, "_": 0.6}, *spell("o three"))

    def text(hyp):
        return "".join(CHARS[i] for i in hyp.ids)

    assert text(greedy_decode(logits, len(logits), BLANK)) == "one to three"
    assert text(prefix_beam_search(logits, BLANK, CHARS, 16)) == "one to three"
    with_lm = prefix_beam_search(logits, BLANK, CHARS, 16, lm, alpha=0.5, beta=1.0)
    assert text(with_lm) == "one two three"
    assert with_lm.frames[with_lm.ids.index(CHARS.index("w"))] == 5
    # with the LM's weight at zero, the acoustics decide again
    assert (
        text(prefix_beam_search(logits, BLANK, CHARS, 16, lm, alpha=0.0, beta=0.0, unk_penalty=0.0))
        == "one to three"
    )


def test_word_insertion_bonus_and_lm_context(tmp_path):
    """A context-dependent choice: after "seven" the LM expects "eight" so a weak "ate"
    reading loses; beta rewards words, so a weak space between two words survives."""
    lm = NgramLM(kneser_ney([["seven", "eight", "nine"]] * 20 + [["ate"]] * 1, 3))
    logits = frames(*spell("seven "), {"e": 0.3, "a": 0.7}, *spell("ight"))
    plain = "".join(CHARS[i] for i in prefix_beam_search(logits, BLANK, CHARS, 16).ids)
    assert plain == "seven aight"
    hyp = prefix_beam_search(logits, BLANK, CHARS, 16, lm, alpha=1.0, beta=0.5)
    assert "".join(CHARS[i] for i in hyp.ids) == "seven eight"
