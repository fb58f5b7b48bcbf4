"""The Free Spoken Digit Dataset's file names: ``{digit}_{speaker}_{take}.wav``, takes 0-4
of each digit and speaker being the dataset's official test split. Shared by the importer,
the recipes, the benchmarks and the tests' connected-digit builder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from ..text import DIGIT_WORDS

FILE_NAME = re.compile(r"(\d)_([a-z]+)_(\d+)\.wav")
TEST_TAKES = range(0, 5)  # the dataset's official test split


class Recording(NamedTuple):
    path: Path
    digit: int
    speaker: str
    take: int

    @property
    def word(self) -> str:
        return DIGIT_WORDS[self.digit]


def parse(path) -> Recording | None:
    """The recording a file name describes, or None if it is not an FSDD name."""
    path = Path(path)
    match = FILE_NAME.fullmatch(path.name)
    if not match:
        return None
    digit, speaker, take = match.groups()
    return Recording(path, int(digit), speaker, int(take))


def official_split(take: int) -> str:
    """``test`` for takes 0-4, ``train`` for the rest."""
    return "test" if take in TEST_TAKES else "train"


def recordings(folder) -> list:
    """Every FSDD recording in ``folder`` (not recursive), sorted by file name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return [r for r in (parse(p) for p in sorted(folder.iterdir())) if r is not None]
