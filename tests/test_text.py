import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speech_rnn.config import TextConfig
from speech_rnn.errors import TranscriptError
from speech_rnn.text import Vocabulary, ctc_min_frames, normalize_text, number_to_words


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Hello, World!", "hello world"),
        ("It's 1984.", "it's one thousand nine hundred eighty four"),
        ("Café  déjà-vu", "cafe deja vu"),
        ("\ufeff“Quoted” — text\r\n", "quoted text"),
        ("Agent 007", "agent zero zero seven"),
        ("'tis rock'n'roll", "tis rock'n'roll"),
        ("3,500 ships", "three thousand five hundred ships"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def test_number_to_words():
    assert number_to_words(0) == "zero"
    assert number_to_words(15) == "fifteen"
    assert number_to_words(101) == "one hundred one"
    assert number_to_words(2_000_020) == "two million twenty"


def test_unknown_characters_can_be_an_error():
    strict = TextConfig(unknown="error", strip_accents=False)
    with pytest.raises(TranscriptError, match="outside the charset"):
        normalize_text("naïve", strict)
    assert normalize_text("naïve", TextConfig(strip_accents=False)) == "nave"


def test_vocabulary_blank_is_last_and_save_load(tmp_path):
    vocab = Vocabulary.from_transcripts(["abc", "cab d"])
    assert vocab.chars == (" ", "a", "b", "c", "d")
    assert vocab.blank_id == 5 and vocab.num_classes == 6
    vocab.save(tmp_path / "v.json")
    assert Vocabulary.load(tmp_path / "v.json") == vocab
    with pytest.raises(TranscriptError, match="'z'"):
        vocab.encode("zz")


def test_ctc_min_frames_counts_repeats():
    assert ctc_min_frames([1, 2, 3]) == 3
    assert ctc_min_frames([1, 1, 2, 2, 2]) == 8


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalizer_output_round_trips_through_the_vocabulary(raw):
    config = TextConfig()
    text = normalize_text(raw, config)
    assert set(text) <= set(config.charset)
    assert text == text.strip() and "  " not in text
    vocab = Vocabulary(tuple(config.charset))
    assert vocab.decode(vocab.encode(text)) == text
    assert normalize_text(text, config) == text  # idempotent


# -- hand-computed cases for each rule (issue 17: mutation survivors) ------------------------------
def test_number_to_words_at_every_boundary():
    cases = {
        -5: "minus five",
        19: "nineteen",
        20: "twenty",
        21: "twenty one",
        99: "ninety nine",
        100: "one hundred",
        999: "nine hundred ninety nine",
        1000: "one thousand",
        1001: "one thousand one",
        12_345: "twelve thousand three hundred forty five",
        10**6: "one million",
        10**9: "one billion",
        10**12: "one trillion",
        10**15 - 1: "nine hundred ninety nine trillion nine hundred ninety nine billion "
        "nine hundred ninety nine million nine hundred ninety nine thousand "
        "nine hundred ninety nine",
        10**15: "one" + " zero" * 15,  # from 10**15 on, digit by digit
        10**15 + 7: "one" + " zero" * 14 + " seven",
    }
    for n, words in cases.items():
        assert number_to_words(n) == words, n


def test_numbers_in_text_are_spelled_with_their_separators_and_leading_zeros():
    assert normalize_text("0") == "zero"  # one digit: not a "leading zero"
    assert normalize_text("05") == "zero five"
    assert normalize_text("1,000,000 and 12,34") == "one million and twelve thirty four"
    assert normalize_text("a1b") == "a one b"  # a number is its own word
    assert normalize_text("\u2460") == "one"  # NFKC: a circled one is the digit 1
    assert normalize_text("a1b", TextConfig(spell_numbers=False)) == "ab"  # digits dropped


def test_case_accents_ligatures_and_apostrophes():
    assert normalize_text("AbC", TextConfig(charset="abcABC ", lowercase=False)) == "AbC"
    assert normalize_text("AbC", TextConfig(charset="abcABC ")) == "abc"
    assert normalize_text("Straße Æsir œuvre Øre \ufb01ne") == "strasse aesir oeuvre ore fine"
    assert normalize_text("café", TextConfig(strip_accents=False)) == "caf"
    assert normalize_text("don\u2019t won\u2018t can`t it\u02bcs") == "don't won't can't it's"
    # without an apostrophe in the charset it is punctuation: a word break
    assert normalize_text("don't", TextConfig(charset="abcdefghijklmnopqrstuvwxyz ")) == "don t"
    assert normalize_text("'' a '  'b' c'") == "a b c"


def test_the_unknown_character_error_names_the_character_and_the_charset():
    import re

    strict = TextConfig(unknown="error", strip_accents=False)
    message = "character 'ï' (U+00EF) is outside the charset \"abcdefghijklmnopqrstuvwxyz' \""
    with pytest.raises(TranscriptError, match=f"^{re.escape(message)}$"):
        normalize_text("naïve", strict)
    assert normalize_text("a, b!", strict) == "a b"  # punctuation is a break, not unknown


def test_vocabulary_rules(tmp_path):
    import json

    from speech_rnn.errors import RunFolderError

    with pytest.raises(TranscriptError, match="^vocabulary has repeated characters$"):
        Vocabulary(("a", "b", "a"))
    vocab = Vocabulary(("a", "b"))
    assert vocab.decode([0, -1, 2, 5, 1, 0]) == "aba"  # the blank and out-of-range ids go
    assert vocab.unknown_chars("abzy") == {"z", "y"}
    with pytest.raises(TranscriptError, match="^characters 'yz' are not in the vocabulary$"):
        vocab.encode("zay")
    assert vocab.encode("ba") == [1, 0]
    empty = Vocabulary.from_transcripts([])
    assert empty.chars == () and empty.blank_id == 0 and empty.num_classes == 1
    vocab.save(tmp_path / "v.json")
    assert json.loads((tmp_path / "v.json").read_text()) == {"chars": ["a", "b"], "blank": "last"}
    for name, content in {
        "multi.json": '{"chars": ["ab"]}',
        "number.json": '{"chars": [1]}',
        "nokey.json": '{"letters": ["a"]}',
        "list.json": '["a"]',
        "bad.json": "{",
    }.items():
        (tmp_path / name).write_text(content)
        with pytest.raises(RunFolderError, match=f"{name}: not a valid vocabulary file"):
            Vocabulary.load(tmp_path / name)
    with pytest.raises(RunFolderError, match="entries must be single characters"):
        Vocabulary.load(tmp_path / "multi.json")
    with pytest.raises(RunFolderError, match="missing.json: not a valid vocabulary file"):
        Vocabulary.load(tmp_path / "missing.json")


def test_ctc_min_frames_only_counts_equal_neighbours():
    assert ctc_min_frames([]) == 0
    assert ctc_min_frames([1, 2, 1]) == 3
    assert ctc_min_frames([3, 3, 3]) == 5


def test_what_normalization_inserts_is_exactly_spaces_and_letters():
    """With an upper-case X in the charset (and no lower-casing), anything the normalizer
    inserted besides spaces and the spelled letters would show."""
    keep_x = TextConfig(charset="abcdefghijklmnopqrstuvwxyzX' ", lowercase=False)
    assert normalize_text("a1b a01b", keep_x) == "a one b a zero one b"
    assert normalize_text("straße æon œil øre", keep_x) == "strasse aeon oeil ore"
    assert normalize_text("Xa caf\u00e9 X'a'", keep_x) == "Xa cafe X'a"


def test_a_vocabulary_file_error_ends_with_the_reason(tmp_path):
    from speech_rnn.errors import RunFolderError

    (tmp_path / "v.json").write_text('{"chars": ["ab"]}')
    with pytest.raises(RunFolderError, match=r"v\.json: not a valid vocabulary file \(entries"):
        Vocabulary.load(tmp_path / "v.json")
