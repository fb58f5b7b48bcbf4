"""Manifests are read one line at a time (speech_rnn/manifest.py): memory never holds the
file's text next to the parsed rows, and a bad line deep in a large file is still reported
in one line with its number (and, for bad UTF-8, its byte)."""

from __future__ import annotations

import json
import tracemalloc

import pytest
from conftest import short_kathleen_clips

from speech_rnn.errors import ManifestError
from speech_rnn.manifest import iter_manifest, read_manifest

LINES = 20_000


@pytest.fixture(scope="module")
def clip():
    return short_kathleen_clips(1)[0]


def row(clip, i, with_id=True) -> str:
    out = {"audio_filepath": clip.audio_filepath, "duration": clip.duration}
    out["text"] = f"{clip.text} {i}"
    if with_id:
        out["id"] = f"{clip.key}~{i}"
    return json.dumps(out)


def test_reading_holds_one_line_of_the_file_at_a_time(clip, tmp_path):
    # No ids: nothing grows with the file but the returned list, so what reading needs
    # beyond its result is a constant (the old whole-file read needed the bytes, their text
    # and a list of the lines: over 2x the file).
    path = tmp_path / "m.jsonl"
    path.write_text("".join(row(clip, i, with_id=False) + "\n" for i in range(LINES)))
    size = path.stat().st_size
    tracemalloc.start()
    try:
        utterances = read_manifest(path, check_files=False)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(utterances) == LINES and utterances[-1].text.endswith(f" {LINES - 1}")
    assert size > 3_000_000
    transient = peak - kept  # memory used while reading, beyond the result
    assert transient < 256 * 1024, f"{transient} bytes beyond the result for a {size}-byte file"


def test_the_first_utterances_come_before_the_rest_of_the_file_is_read(clip, tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(row(clip, 0) + "\n" + row(clip, 1) + "\n{broken\n")
    utterances = iter_manifest(path)
    assert next(utterances).id == f"{clip.key}~0"  # line 3 not parsed yet
    assert next(utterances).id == f"{clip.key}~1"
    with pytest.raises(ManifestError, match=r"m\.jsonl:3: not valid JSON"):
        next(utterances)


def test_a_bad_line_deep_in_a_large_manifest_is_one_line_with_its_number(clip, tmp_path):
    lines = [row(clip, i) for i in range(LINES)]
    bad = LINES // 2
    path = tmp_path / "m.jsonl"
    path.write_text("\n".join(lines[:bad] + ["{not json"] + lines[bad:]) + "\n")
    with pytest.raises(ManifestError) as e:
        read_manifest(path, check_files=False)
    want = "not valid JSON (Expecting property name enclosed in double quotes)"
    assert str(e.value) == f"{path}:{bad + 1}: {want}"
    problems = []
    assert len(read_manifest(path, problems, check_files=False)) == LINES
    assert [(p.line, p.message.split(" (")[0]) for p in problems] == [(bad + 1, "not valid JSON")]
    # A duplicate id far from its first line names both lines.
    path.write_text("\n".join(lines + [lines[3]]) + "\n")
    problems = []
    assert len(read_manifest(path, problems, check_files=False)) == LINES
    assert str(problems[0]) == (
        f"{path}:{LINES + 1}: duplicate id '{clip.key}~3' (first on line 4); skipped"
    )


def test_bad_utf8_is_reported_with_its_line_and_byte(clip, tmp_path):
    head = ("\ufeff" + row(clip, 0) + "\r\n" + row(clip, 1) + "\r\n").encode("utf-8")
    path = tmp_path / "m.jsonl"
    before = b'{"text": "caf'
    path.write_bytes(head + before + b'\xe9"}\n')
    with pytest.raises(ManifestError) as e:
        read_manifest(path, check_files=False)
    # the byte counts the byte-order mark: it is the file's byte, as a hex editor shows it
    assert str(e.value) == f"{path}:3: not UTF-8 text (byte {len(head) + len(before)})"
    with pytest.raises(ManifestError, match=r"m\.jsonl:3: not UTF-8"):  # not a line to skip
        read_manifest(path, [], check_files=False)
    path.write_bytes(b"\xef\xbb\xbf" + before + b'\xff"}\n')  # on the first line, after a BOM
    with pytest.raises(ManifestError) as e:
        read_manifest(path, check_files=False)
    assert str(e.value) == f"{path}:1: not UTF-8 text (byte {3 + len(before)})"


def test_line_ends_and_separators_inside_strings(clip, tmp_path):
    path = tmp_path / "m.jsonl"
    # old Mac line ends; U+2028 and U+0085 are legal inside a JSON string and end no line
    text = json.loads(row(clip, 0))
    text["text"] = "a\u2028b\x85c"
    path.write_text(
        json.dumps(text, ensure_ascii=False) + "\r" + row(clip, 1) + "\r{x\r", newline=""
    )
    problems = []
    got = read_manifest(path, problems, check_files=False)
    assert [u.text for u in got] == ["a\u2028b\x85c", f"{clip.text} 1"]
    assert [p.line for p in problems] == [3]
