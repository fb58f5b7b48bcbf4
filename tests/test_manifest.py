"""Manifests, each rule with exact, hand-written expectations (issue 17: the mutation
survivors in ``manifest``): every problem's one-line message and line number, paths, the
fields' types, CSV durations from the audio header, and what ``write_manifest`` writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile

from speech_rnn.errors import ManifestError
from speech_rnn.manifest import Problem, Utterance, read_manifest, write_manifest


@pytest.fixture
def clips(tmp_path):
    """Two real WAV files (0.5 s and 1.25 s of faint noise at 16 kHz) in tmp_path/audio."""
    folder = tmp_path / "audio"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, seconds in (("a.wav", 0.5), ("b.wav", 1.25)):
        samples = (rng.standard_normal(int(seconds * 16000)) * 0.01).astype(np.float32)
        soundfile.write(str(folder / name), samples, 16000, subtype="PCM_16")
    return folder


def lines(path, *rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_every_jsonl_problem_is_one_exact_line(tmp_path, clips):
    a = str(clips / "a.wav")
    path = lines(
        tmp_path / "m.jsonl",
        {"audio_filepath": a, "duration": 0.5, "text": "ok", "id": "x"},  # 1: fine
        "",  # 2: blank lines are skipped
        "{",  # 3
        "7",  # 4
        {"duration": 1.0, "text": "t"},  # 5
        {"audio_filepath": a, "duration": 1.0, "text": 5},  # 6
        {"audio_filepath": 5, "duration": 1.0, "text": "t"},  # 7
        {"audio_filepath": "   ", "duration": 1.0, "text": "t"},  # 8
        {"audio_filepath": "audio/none.wav", "duration": 1.0, "text": "t"},  # 9
        {"audio_filepath": a, "duration": True, "text": "t"},  # 10
        {"audio_filepath": a, "duration": "1.0", "text": "t"},  # 11
        {"audio_filepath": a, "duration": float("nan"), "text": "t"},  # 12: NaN
        {"audio_filepath": a, "duration": float("inf"), "text": "t"},  # 13: Infinity
        {"audio_filepath": a, "duration": -0.25, "text": "t"},  # 14
        {"audio_filepath": a, "duration": 2, "text": "t", "id": "x"},  # 15: duplicate id
        {"audio_filepath": a, "duration": 0, "text": "", "id": "y"},  # 16: fine
    )
    problems = []
    utterances = read_manifest(path, problems=problems)
    assert [(u.id, u.duration, u.text) for u in utterances] == [("x", 0.5, "ok"), ("y", 0.0, "")]
    missing = os.path.normpath(tmp_path / "audio" / "none.wav")
    assert [str(p) for p in problems] == [
        f"{path}:3: not valid JSON (Expecting property name enclosed in double quotes)",
        f"{path}:4: a manifest line must be a JSON object",
        f"{path}:5: missing field 'audio_filepath'",
        f"{path}:6: field 'text' must be a string",
        f"{path}:7: field 'audio_filepath' must be a string",
        f"{path}:8: empty audio_filepath",
        f"{path}:9: audio file not found: {missing}",
        f"{path}:10: duration must be a finite number, got True",
        f"{path}:11: duration must be a finite number, got '1.0'",
        f"{path}:12: duration must be a finite number, got nan",
        f"{path}:13: duration must be a finite number, got inf",
        f"{path}:14: negative duration -0.25",
        f"{path}:15: duplicate id 'x' (first on line 1); skipped",
    ]
    assert [p.line for p in problems] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    assert all(p.source == str(path) for p in problems)
    # without a problems list, the first problem raises, with the same line
    with pytest.raises(ManifestError) as raised:
        read_manifest(path)
    assert str(raised.value) == str(problems[0]) and raised.value.line == 3


def test_paths_types_and_optional_fields(tmp_path, clips):
    sub = tmp_path / "lists"
    sub.mkdir()
    path = lines(
        sub / "m.JSON",  # any suffix but .csv is JSON lines
        {"audio_filepath": "../audio/./a.wav", "duration": 1, "text": "t", "speaker": 7, "id": 3},
        {"audio_filepath": str(clips / "b.wav"), "duration": 1.5, "text": "u"},
        {"audio_filepath": "../audio/gone.wav", "duration": 1.0, "text": "v"},
    )
    problems = []
    first, second = read_manifest(path, problems=problems)
    assert first == Utterance(str(clips / "a.wav"), 1.0, "t", "7", "3")  # resolved, normalized
    assert isinstance(first.duration, float) and first.key == "3"
    assert second == Utterance(str(clips / "b.wav"), 1.5, "u", None, None)
    assert second.key == str(clips / "b.wav")  # no id: the path names it
    assert len(problems) == 1 and "gone.wav" in problems[0].message
    # check_files=False keeps lines whose audio is missing (for text-only uses)
    assert [u.text for u in read_manifest(path, check_files=False)] == ["t", "u", "v"]


def test_unreadable_manifests(tmp_path):
    with pytest.raises(ManifestError) as raised:
        read_manifest(tmp_path / "no.jsonl")
    assert str(raised.value) == f"{tmp_path / 'no.jsonl'}: manifest not found"
    (tmp_path / "latin1.jsonl").write_bytes(b'{"text": "caf\xe9"}\n')
    with pytest.raises(ManifestError, match=r"latin1.jsonl:1: not UTF-8 text \(byte 13\)$"):
        read_manifest(tmp_path / "latin1.jsonl")
    with pytest.raises(ManifestError, match=r": cannot read manifest \(Is a directory\)$"):
        read_manifest(tmp_path)
    assert str(Problem("f.wav", "bad")) == "f.wav: bad"  # no line: just the file
    assert str(Problem("m.jsonl", "bad", 0)) == "m.jsonl:0: bad"


def test_csv_durations_come_from_the_audio_header(tmp_path, clips):
    path = tmp_path / "m.csv"
    path.write_text(
        "wav_filename,wav_filesize,transcript\n"
        "audio/a.wav,0,first\n"
        f"{clips / 'b.wav'},0,second\n"
        "audio/notaudio.wav,0,third\n"
    )
    (clips / "notaudio.wav").write_bytes(b"not audio at all" * 10)
    problems = []
    got = read_manifest(path, problems=problems)
    assert [(u.text, u.duration) for u in got] == [("first", 0.5), ("second", 1.25)]
    assert [p.line for p in problems] == [4] and "notaudio.wav" in problems[0].message
    path.write_text("wav_filename,transcript_text\naudio/a.wav,x\n")
    message = "a CSV manifest needs the columns wav_filename,wav_filesize,transcript"
    with pytest.raises(ManifestError, match=f"m.csv: {message}$"):
        read_manifest(path)
    path.write_text("")
    with pytest.raises(ManifestError, match=f"m.csv: {message}$"):
        read_manifest(path)


def test_write_manifest_rows(tmp_path, clips):
    utterances = [
        Utterance(str(clips / "a.wav"), 0.123456, "héllo", None, "a"),
        Utterance(str(clips / "b.wav"), 2, "x", "spk", None),
    ]
    path = tmp_path / "new" / "deeper" / "m.jsonl"  # folders made as needed
    write_manifest(utterances, path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 2
    assert "héllo" in text  # not escaped
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows == [
        {"audio_filepath": "../../audio/a.wav", "duration": 0.1235, "text": "héllo", "id": "a"},
        {"audio_filepath": "../../audio/b.wav", "duration": 2.0, "text": "x", "speaker": "spk"},
    ]
    assert read_manifest(path) == [
        Utterance(str(clips / "a.wav"), 0.1235, "héllo", None, "a"),
        Utterance(str(clips / "b.wav"), 2.0, "x", "spk", None),
    ]
    write_manifest(utterances, path, relative=False)
    assert json.loads(path.read_text().splitlines()[1])["audio_filepath"] == str(clips / "b.wav")
    write_manifest([], path)
    assert path.read_text() == ""


def test_csv_rows_exactly(tmp_path, clips):
    path = tmp_path / "m.csv"
    path.write_text(  # exactly the two required columns; a quoted transcript over two lines
        'wav_filename,transcript\naudio/a.wav,"two\r\nlines"\n"audio/b.wav\n', newline=""
    )
    problems = []
    assert [u.text for u in read_manifest(path, problems=problems)] == ["two\r\nlines"]
    assert [str(p) for p in problems] == [
        f"{path}:4: fewer columns than the header (an unclosed quote?)"
    ]
    path.write_text("wav_filename,transcript\naudio/x.wav\naudio/a.wav,ok\n")  # a short row
    problems = []
    assert [u.text for u in read_manifest(path, problems=problems)] == ["ok"]
    assert [p.line for p in problems] == [2]
    path.write_text("wav_filename,transcript\naudio/missing_header.wav,x\naudio/b.wav,later\n")
    (clips / "missing_header.wav").write_bytes(b"RIFF")
    problems = []
    assert [u.text for u in read_manifest(path, problems=problems)] == ["later"]
    assert [(p.source, p.line) for p in problems] == [(str(path), 2)]
    with pytest.raises(ManifestError) as raised:
        read_manifest(tmp_path)
    assert str(raised.value).startswith(f"{tmp_path}: cannot read manifest (")
