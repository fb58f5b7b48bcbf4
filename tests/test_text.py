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
