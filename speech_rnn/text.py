"""Transcript normalization and the character vocabulary.

The normalizer maps raw transcripts to the configured charset (lowercase a-z, apostrophe and
space by default): accents are stripped, numbers spelled out, other punctuation becomes a
word break. The vocabulary maps characters to class ids; the CTC blank is the *last* class,
which is what ``tf.nn.ctc_loss`` and ``tf.nn.ctc_beam_search_decoder`` expect.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from .config import TextConfig
from .errors import RunFolderError, TranscriptError
from .fileio import atomic_write_json

DEFAULT_TEXT = TextConfig()
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_ONES = (
    list(DIGIT_WORDS)
    + ("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen").split()
)
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def number_to_words(n: int) -> str:
    """Spell a non-negative integer in English words ("1984" -> "one thousand nine hundred
    eighty four"). Numbers of 10**15 and above are read digit by digit."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n >= 10**15:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return _ONES[hundreds] + " hundred" + ("" if rest == 0 else " " + number_to_words(rest))
    for scale, name in _SCALES:
        if n >= scale:
            high, rest = divmod(n, scale)
            return (
                number_to_words(high)
                + " "
                + name
                + ("" if rest == 0 else " " + number_to_words(rest))
            )
    raise AssertionError("unreachable")


def _spell_numbers(text: str) -> str:
    def spell(match: re.Match) -> str:
        digits = match.group(0).replace(",", "")
        # Leading zeros ("007") are read digit by digit, as people do.
        if len(digits) > 1 and digits.startswith("0"):
            return " " + " ".join(_ONES[int(d)] for d in digits) + " "
        return " " + number_to_words(int(digits)) + " "

    return re.sub(r"\d+(?:,\d{3})*", spell, text)


def normalize_text(text: str, config: TextConfig = DEFAULT_TEXT) -> str:
    """Normalize a transcript to ``config.charset``.

    Characters that remain outside the charset are dropped (``unknown="drop"``) or raise a
    :class:`TranscriptError` (``unknown="error"``).
    """
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    if config.lowercase:
        text = text.lower()
    if config.spell_numbers:
        text = _spell_numbers(text)
    if config.strip_accents:
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in decomposed if not unicodedata.combining(c))
        text = text.replace("ß", "ss").replace("æ", "ae").replace("œ", "oe").replace("ø", "o")
    allowed = set(config.charset)
    out = []
    for char in text:
        if char in allowed:
            out.append(char)
        elif char.isspace() or unicodedata.category(char)[0] in "PSZ":
            out.append(" ")  # punctuation and symbols separate words
        elif config.unknown == "error":
            raise TranscriptError(
                f"character {char!r} (U+{ord(char):04X}) is outside the charset {config.charset!r}"
            )
    text = "".join(out)
    if " " in allowed:
        text = " ".join(text.split())
        # An apostrophe is only kept inside a word ("don't"), not as a quote mark.
        if "'" in allowed:
            text = " ".join(w.strip("'") for w in text.split(" "))
            text = " ".join(text.split())
    return text


@dataclass(frozen=True)
class Vocabulary:
    """Characters <-> class ids. The CTC blank is the last class (``blank_id``)."""

    chars: tuple

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars):
            raise TranscriptError("vocabulary has repeated characters")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_transcripts(cls, transcripts) -> Vocabulary:
        return cls(tuple(sorted(set("".join(transcripts)))))

    @property
    def blank_id(self) -> int:
        return len(self.chars)

    @property
    def num_classes(self) -> int:
        return len(self.chars) + 1

    def unknown_chars(self, text: str) -> set:
        return {c for c in text if c not in self._index}

    def encode(self, text: str) -> list:
        try:
            return [self._index[c] for c in text]
        except KeyError:
            missing = "".join(sorted(self.unknown_chars(text)))
            raise TranscriptError(f"characters {missing!r} are not in the vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids if 0 <= i < len(self.chars))

    def save(self, path) -> None:
        atomic_write_json(path, {"chars": list(self.chars), "blank": "last"})

    @classmethod
    def load(cls, path) -> Vocabulary:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            chars = data["chars"]
            if not all(isinstance(c, str) and len(c) == 1 for c in chars):
                raise ValueError("entries must be single characters")
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise RunFolderError(f"{path}: not a valid vocabulary file ({e})") from None
        return cls(tuple(chars))


def ctc_min_frames(label_ids) -> int:
    """Fewest output frames CTC needs for this label: one per label, plus one blank between
    each pair of equal neighbours (``"ll"`` must be emitted as ``l _ l``)."""
    repeats = sum(1 for a, b in pairwise(label_ids) if a == b)
    return len(label_ids) + repeats
