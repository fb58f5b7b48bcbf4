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


# -- hand-computed cases for each rule (issue 17: mutation survivors) ------------------------------
def test_reading_lm_text(tmp_path):
    from speech_rnn.lm import read_sentences

    path = tmp_path / "t.txt"
    path.write_bytes("\ufeffHello, World!\n\n  !!!  \n42 Ships\r\n".encode())
    assert read_sentences(path) == [["hello", "world"], ["forty", "two", "ships"]]
    assert read_sentences(path, normalize=False) == [
        ["Hello,", "World!"],
        ["!!!"],
        ["42", "Ships"],
    ]
    (tmp_path / "latin1.txt").write_bytes(b"ab caf\xe9\n")
    with pytest.raises(LanguageModelError, match=r"latin1.txt: not UTF-8 text \(byte 6\)$"):
        read_sentences(tmp_path / "latin1.txt")
    with pytest.raises(
        LanguageModelError, match=r"missing.txt: cannot read text \(No such file or directory\)$"
    ):
        read_sentences(tmp_path / "missing.txt")
    (tmp_path / "blank.txt").write_text("?\n")
    with pytest.raises(LanguageModelError, match=r"blank.txt: no text to count$"):
        read_sentences(tmp_path / "blank.txt")


def test_manifest_sentences_and_overlap(tmp_path):
    import json

    from speech_rnn.config import TextConfig
    from speech_rnn.lm import manifest_sentences, sentence_overlap

    rows = [
        {"audio_filepath": "a.wav", "duration": 1.0, "text": "Hello, World!"},
        {"audio_filepath": "b.wav", "duration": 1.0, "text": "  "},
        "not json",
        {"audio_filepath": "c.wav", "duration": 1.0, "text": "naïve 42"},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    assert manifest_sentences(path) == [["hello", "world"], ["naive", "forty", "two"]]
    assert manifest_sentences([path, str(path)]) == manifest_sentences(path) * 2
    strict = TextConfig(unknown="error", strip_accents=False)
    assert manifest_sentences(path, strict) == [["hello", "world"]]  # "ï" is an error: skipped
    empty = tmp_path / "e.jsonl"
    empty.write_text(json.dumps(rows[1]) + "\n")
    with pytest.raises(LanguageModelError, match=f"^{empty}, {empty}: no transcripts to count$"):
        manifest_sentences([empty, empty])
    lm_text = [["a", "b"], ["c"]]
    assert sentence_overlap(lm_text, [["a", "b"], ["b", "a"], ["c"], ["a"]]) == (2, 4)
    assert sentence_overlap(lm_text, []) == (0, 0)


def test_discounts_on_the_edge_of_their_range_fall_back():
    # n1 = n2 = 1: Y = 1/3, D2 = 2 - 3 Y n3 / n2 = 0 with n3 = 2, which is out of (0, 2)
    assert modified_kn_discounts({1: 1, 2: 1, 3: 2, 4: 1}) == FALLBACK_DISCOUNTS
    d = modified_kn_discounts({1: 1, 2: 1, 3: 1, 4: 1})
    assert d == pytest.approx((1 / 3, 1.0, 5 / 3))
    assert modified_kn_discounts({1: 1, 2: 1, 3: 1}) == FALLBACK_DISCOUNTS  # no n4


def test_unigram_model_by_hand_with_estimated_discounts():
    """Order 1 on "a a / b / c c c c": counts a 2, b 1, c 4, </s> 3 (total 10), so
    n1..n4 = 1, 1, 1, 1 and (D1, D2, D3+) = (1/3, 1, 5/3); 5 words with <unk>;
    gamma = (1/3 * 1 + 1 * 1 + 5/3 * 2) / 10 = 7/15, spread as 7/75 over each word."""
    sentences = [["a", "a"], ["b"], ["c", "c", "c", "c"]]
    assert adjusted_counts(sentences, 1) == [{("a",): 2, ("b",): 1, ("c",): 4, (EOS,): 3}]
    model = kneser_ney(sentences, 1)
    expected = {
        "a": 1 / 10 + 7 / 75,
        "b": (1 - 1 / 3) / 10 + 7 / 75,
        "c": (4 - 5 / 3) / 10 + 7 / 75,
        EOS: (3 - 5 / 3) / 10 + 7 / 75,
        UNK: 7 / 75,
    }
    assert set(model) == {(w,) for w in expected} | {(BOS,)}
    for word, p in expected.items():
        assert model[(word,)] == (pytest.approx(math.log10(p), abs=1e-12), 0.0), word
    assert model[(BOS,)] == (-99.0, 0.0)
    assert sum(expected.values()) == pytest.approx(1.0)
    # the fixed fallback discounts, one per count class: a (2) -> 1.0, b (1) -> 0.5, c -> 1.5
    fixed = kneser_ney(sentences, 1, discounts=FALLBACK_DISCOUNTS)
    gamma = (0.5 * 1 + 1.0 * 1 + 1.5 * 2) / 10
    assert 10 ** fixed[("c",)][0] == pytest.approx((4 - 1.5) / 10 + gamma / 5)
    assert 10 ** fixed[("a",)][0] == pytest.approx((2 - 1.0) / 10 + gamma / 5)
    with pytest.raises(LanguageModelError, match="^the order must be at least 1$"):
        kneser_ney(sentences, 0)


def test_write_arpa_exact_text(tmp_path):
    model = {
        ("a",): (-0.123456789, -0.25),
        ("b",): (-1.0, 0.0),
        (UNK,): (-2.0, 0.0),
        ("a", "b"): (-0.1, -0.5),  # the highest order never has a back-off weight
    }
    write_arpa(model, tmp_path / "m.arpa")
    assert (tmp_path / "m.arpa").read_text() == (
        "\\data\\\nngram 1=3\nngram 2=1\n\n"
        "\\1-grams:\n-2\t<unk>\n-0.1234568\ta\t-0.25\n-1\tb\n\n"
        "\\2-grams:\n-0.1\ta b\n\n\\end\\\n"
    )


def arpa_error(tmp_path, text):
    path = tmp_path / "x.arpa"
    path.write_text(text)
    with pytest.raises(LanguageModelError) as raised:
        read_arpa(path)
    message = str(raised.value)
    assert message.startswith(f"{path}")
    return message[len(str(path)) :]


def test_read_arpa_reads_and_refuses_exactly(tmp_path):
    good = "\\data\\\nngram 1=2\n\n\\1-grams:\n -1.5\t<unk> \n-0.5\ta\t-0.25\n\\end\\\ngarbage\n"
    (tmp_path / "g.arpa").write_text(good)
    assert read_arpa(tmp_path / "g.arpa") == {(UNK,): (-1.5, 0.0), ("a",): (-0.5, -0.25)}
    head = "\\data\\\nngram 1=1\n\\1-grams:\n"
    assert arpa_error(tmp_path, head + "-1 a b c\n") == ":4: expected 1 words"
    assert arpa_error(tmp_path, head + "-x a\n") == ":4: bad number"
    assert arpa_error(tmp_path, head + "-1 a zz\n") == ":4: bad number"
    assert arpa_error(tmp_path, "\\data\\\n\\x-grams:\n") == ":2: bad section '\\\\x-grams:'"
    assert arpa_error(tmp_path, "hello\n") == ":1: not ARPA format"
    no_data = ": not an ARPA file (no \\data\\ section or n-grams)"
    assert arpa_error(tmp_path, "\\1-grams:\n-1 a\n") == no_data
    assert arpa_error(tmp_path, "\\data\\\nngram 1=1\n") == no_data
    assert arpa_error(tmp_path, head.replace("1=1", "1=2") + "-1 a\n") == (
        ": header promises 2 1-grams, file holds 1"
    )
    (tmp_path / "b.arpa").write_bytes(b"\\data\\\n\xff\n")
    with pytest.raises(LanguageModelError, match=r"b.arpa: not UTF-8 text \(byte 7\)$"):
        read_arpa(tmp_path / "b.arpa")


def test_back_off_scoring_by_hand():
    model = {
        (UNK,): (-2.0, 0.0),
        ("a",): (-1.0, -0.3),
        ("b",): (-0.5, 0.0),
        ("ab",): (-3.0, 0.0),
        ("a", "b"): (-0.2, 0.0),
    }
    lm = NgramLM(model)
    assert lm.order == 2 and lm.path == "<memory>"
    assert lm.vocabulary == {UNK, "a", "b", "ab"}
    assert lm.log10_prob("b", ("a",)) == -0.2  # listed
    assert lm.log10_prob("a", ("a",)) == pytest.approx(-1.3)  # bow(a) + p(a)
    assert lm.log10_prob("a", ("b",)) == -1.0  # bow(b) = 0
    assert lm.log10_prob("zzz", ("a",)) == pytest.approx(-2.3)  # <unk> after a
    assert lm.log10_prob("b", ("q",)) == -0.5  # an unknown context is <unk>: no bow
    assert lm.log10_prob("b", ("x", "y", "a")) == -0.2  # only the last word counts
    assert lm.log10_prob("b", ("x", "y", "a")) == -0.2  # (cached, the same)
    assert lm.log10_prob("b") == -0.5
    assert lm.start() == (BOS,) and lm.trim_context(("x", "y", "a")) == ("a",)
    assert lm.sentence_log10_prob(["a", "b"]) == pytest.approx(-1.0 - 0.2 - 2.0)
    assert lm.is_prefix("a") and lm.is_prefix("ab") and not lm.is_prefix("<")
    assert not lm.is_prefix("abc") and not lm.is_prefix("ba")
    unigram = NgramLM({(UNK,): (-1.0, 0.0), ("a",): (-0.5, 0.0)})
    assert unigram.trim_context(("a", "b")) == () and unigram.log10_prob("a", ("b",)) == -0.5
    words = {(w,): (-1.0, 0.0) for w in (UNK, "a", "b", "c")}
    trigram = NgramLM({**words, ("a", "b", "c"): (-0.1, 0.0)})
    assert trigram.trim_context(("x", "a", "b")) == ("a", "b")
    assert trigram.log10_prob("c", ("x", "a", "b")) == -0.1
    with pytest.raises(LanguageModelError, match="^m.arpa: the model has no <unk> unigram$"):
        NgramLM({("a",): (-1.0, 0.0)}, "m.arpa")


def test_build_report_counts(tmp_path):
    from speech_rnn.lm import build_arpa_from_sentences

    (tmp_path / "one.txt").write_text("A b\n")
    (tmp_path / "two.txt").write_text("b c d\n")
    report = build_arpa(
        [tmp_path / "one.txt", str(tmp_path / "two.txt")], tmp_path / "m.arpa", order=2
    )
    assert (report.path, report.order, report.sentences, report.words) == (
        str(tmp_path / "m.arpa"),
        2,
        2,
        5,
    )
    lm = NgramLM.load(tmp_path / "m.arpa")
    assert lm.vocabulary == {BOS, EOS, UNK, "a", "b", "c", "d"}
    # unigrams: the 7 words; bigrams: <s> a, a b, b </s>, <s> b, b c, c d, d </s>
    assert report.ngrams == (7, 7)
    raw = build_arpa(tmp_path / "one.txt", tmp_path / "raw.arpa", order=1, normalize=False)
    assert raw.ngrams == (5,) and "A" in NgramLM.load(tmp_path / "raw.arpa").vocabulary
    same = build_arpa_from_sentences([["a", "b"], ["b", "c", "d"]], tmp_path / "s.arpa", 2)
    assert same.ngrams == report.ngrams and same.words == 5


def test_defaults_order_three_and_a_few_exact_edges(tmp_path):
    """The default order is 3; a zero count of counts anywhere falls back (no division by
    zero); a line after an unusable transcript is still read; exact overlap counts; the
    path a model was loaded from; an unknown context word scored as <unk>."""
    import json

    from speech_rnn.config import TextConfig
    from speech_rnn.lm import build_arpa_from_sentences, manifest_sentences, sentence_overlap

    (tmp_path / "t.txt").write_text("a b c d\nb c d e\n")
    assert build_arpa(tmp_path / "t.txt", tmp_path / "m.arpa").order == 3
    assert len(build_arpa_from_sentences([["a", "b"]], tmp_path / "n.arpa").ngrams) == 3
    assert max(len(g) for g in kneser_ney([["a", "b", "c"]])) == 3
    assert NgramLM.load(tmp_path / "m.arpa").path == str(tmp_path / "m.arpa")
    assert modified_kn_discounts({1: 2, 2: 1, 3: 0, 4: 1}) == FALLBACK_DISCOUNTS
    rows = [{"text": "naïve"}, {"text": "x y"}]
    path = tmp_path / "m.jsonl"
    path.write_text(
        "".join(json.dumps({"audio_filepath": "a.wav", "duration": 1, **r}) + "\n" for r in rows)
    )
    strict = TextConfig(unknown="error", strip_accents=False)
    assert manifest_sentences(path, strict) == [["x", "y"]]
    assert sentence_overlap([["a"], ["b"]], [["a"], ["b"], ["a"], ["c"]]) == (3, 4)
    lm = NgramLM({(UNK,): (-2.0, -0.4), ("b",): (-0.5, 0.0), (UNK, "b"): (-0.05, 0.0)})
    assert lm.log10_prob("b", ("q",)) == -0.05  # q is <unk>: the (<unk>, b) bigram
    assert lm.log10_prob(UNK, ("q",)) == pytest.approx(-2.4)  # bow(<unk>) + p(<unk>)


def test_read_arpa_section_lines_exactly(tmp_path):
    head = "\\data\\\nngram 1=1\n\\1-grams:\n"
    # a backslash line that is no section header is an n-gram line of the wrong shape
    assert arpa_error(tmp_path, head + "\\foo\n") == ":4: expected 1 words"
    assert arpa_error(tmp_path, "\\data\\\nfoo\n") == ":2: not ARPA format"


def test_coordinate_search_finds_the_best_pair_of_a_smooth_surface_with_fewer_tries():
    """attach_lm's alpha/beta search: best alpha at the middle beta, best beta there,
    repeated; on a tilted bowl it ends at the grid's best pair without trying all 30,
    and every pair it tries is tried once."""
    from speech_rnn.lm import coordinate_search

    alphas, betas = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5], [0.0, 0.5, 1.0, 2.0, 3.0]

    def wer(alpha, beta):  # lowest at (1.0, 3.0) on this grid, coupled like alpha and beta
        return (alpha - 1.1) ** 2 + 0.1 * (beta - 3.5) ** 2 - 0.1 * (alpha - 1.1) * (beta - 3.5)

    tried, cache = [], {}

    def evaluate(alpha, beta):
        if (alpha, beta) not in cache:
            tried.append((alpha, beta))
            cache[(alpha, beta)] = (alpha, beta, wer(alpha, beta), 0.0)
        return cache[(alpha, beta)]

    coordinate_search(evaluate, alphas, betas)
    grid_best = min(((a, b) for a in alphas for b in betas), key=lambda p: wer(*p))
    assert grid_best == (1.0, 3.0)
    assert min(tried, key=lambda p: wer(*p)) == grid_best
    assert tried[: len(alphas)] == [(a, 1.0) for a in alphas]  # first: alphas at beta 1.0
    assert len(tried) == len(set(tried)) < len(alphas) * len(betas)
