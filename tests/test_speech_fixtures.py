"""The committed speech fixtures (tests/fixtures/speech): within budget, licensed, and, where
the full shared data is present, exact copies of what make_speech_fixtures.py selects."""

from __future__ import annotations

import json
import re

import soundfile
from conftest import FIXTURE_SPEECH, FULL_SHARED, full_shared_data
from fixtures import make_speech_fixtures as maker

from speech_rnn.data.fsdd import parse as parse_fsdd


def fixture_files():
    return sorted(p for p in FIXTURE_SPEECH.rglob("*") if p.is_file())


def test_fixtures_fit_the_budget_and_every_file_has_a_license_line():
    files = fixture_files()
    assert sum(p.stat().st_size for p in files) <= maker.BUDGET_BYTES
    readme = (FIXTURE_SPEECH / "README.md").read_text()
    assert "CC0 1.0" in readme and "CC BY-SA 4.0" in readme
    flacs = [p for p in files if p.suffix == ".flac"]
    wavs = [p for p in files if p.suffix == ".wav"]
    assert f"{len(flacs)} kathleen clips" in readme and f"{len(wavs)} FSDD recordings" in readme
    for path in flacs:
        assert path.parent.name == "kathleen" and path.with_suffix(".txt").is_file()
        assert re.fullmatch(r"arctic_[ab]\d{4}_\d+", path.stem)
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels) == (16000, 1)
    for path in wavs:
        assert path.parent.name == "fsdd" and parse_fsdd(path) is not None
        info = soundfile.info(str(path))
        assert (info.samplerate, info.channels) == (8000, 1)
    texts = [json.loads(line) for line in (FIXTURE_SPEECH / "kathleen_texts.jsonl").open()]
    assert {p.stem for p in flacs} <= {row["id"] for row in texts}
    assert {p.suffix for p in files} == {".flac", ".txt", ".wav", ".jsonl", ".md"}


def test_fixtures_are_the_selected_copies_of_the_shared_data():
    source = full_shared_data("the fixtures are compared with the files they were copied from")
    planned = maker.planned(source)
    committed = maker.committed()
    assert sorted(planned) == sorted(committed)
    changed = [name for name in planned if planned[name] != committed[name]]
    assert not changed, f"rerun tests/fixtures/make_speech_fixtures.py: {changed[:5]}"
    assert FULL_SHARED == source
