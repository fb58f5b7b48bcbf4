"""Output formats: timestamp formatting, escaping, one cue per segment, JSON round trip."""

from __future__ import annotations

import json

import pytest

from speech_rnn import Segment, Transcription, Word
from speech_rnn.decoding import DecodingOptions
from speech_rnn.writers import (
    FORMATS,
    escape_vtt,
    format_timestamp,
    output_name,
    render,
    write_outputs,
)


def sample(text_a="hello there", text_b="general kenobi") -> Transcription:
    words = (
        Word(0.5, 0.9, "hello", 0.91),
        Word(1.0, 1.4, "there", 0.42),
        Word(62.345, 62.9, "general", 0.8),
        Word(63.0, 63.5, "kenobi", 0.75),
    )
    segments = (Segment(0.5, 1.4, text_a), Segment(62.345, 63.5, text_b))
    return Transcription(f"{text_a} {text_b}", 64.0, segments, words, DecodingOptions())


@pytest.mark.parametrize(
    "seconds, srt, vtt",
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (62.345, "00:01:02,345", "00:01:02.345"),
        (3599.9996, "01:00:00,000", "01:00:00.000"),  # rounds up across every unit
        (3723.004, "01:02:03,004", "01:02:03.004"),
        (360000.0, "100:00:00,000", "100:00:00.000"),  # hours are not wrapped
    ],
)
def test_timestamps(seconds, srt, vtt):
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, ".") == vtt


@pytest.mark.parametrize("bad", [-0.001, float("nan"), float("inf")])
def test_timestamp_rejects_impossible_times(bad):
    with pytest.raises(ValueError):
        format_timestamp(bad)


def test_srt():
    out = render(sample(), "srt")
    assert out == (
        "1\n00:00:00,500 --> 00:00:01,400\nhello there\n\n"
        "2\n00:01:02,345 --> 00:01:03,500\ngeneral kenobi\n"
    )


def test_vtt():
    out = render(sample(), "vtt")
    assert out == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.400\nhello there\n\n"
        "00:01:02.345 --> 00:01:03.500\ngeneral kenobi\n"
    )


def test_cue_text_is_escaped_and_kept_on_one_line():
    tricky = sample("a <i>b</i> & c --> d", "two\n\nlines\tand {\\an8} tags")
    vtt = render(tricky, "vtt")
    assert "a &lt;i&gt;b&lt;/i&gt; &amp; c --&gt; d" in vtt
    assert "<" not in vtt and vtt.count("-->") == 2  # only the two timing lines
    assert "two lines and {\\an8} tags" in vtt
    srt = render(tricky, "srt")
    assert "<" not in srt and "{" not in srt
    assert srt.count("-->") == 2  # the ">" of the literal one is escaped
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == 2 and all(len(b.splitlines()) == 3 for b in blocks)
    assert escape_vtt("&amp;") == "&amp;amp;"


def test_empty_transcription_writes_valid_files():
    empty = Transcription("", 2.0, (), (), DecodingOptions())
    assert render(empty, "txt") == "\n"
    assert render(empty, "srt") == ""
    assert render(empty, "vtt") == "WEBVTT\n"
    assert render(empty, "tsv") == "start\tend\tword\tconfidence\n"
    assert json.loads(render(empty, "json"))["words"] == []


def test_tsv_has_one_row_per_word():
    rows = render(sample(), "tsv").splitlines()
    assert rows[0] == "start\tend\tword\tconfidence"
    assert rows[3] == "62.345\t62.900\tgeneral\t0.8000"
    assert len(rows) == 5


def test_json_is_the_transcription_structure():
    data = json.loads(render(sample(), "json"))
    assert set(data) == {"text", "duration", "segments", "words", "options"}
    assert data["words"][1] == {"start": 1.0, "end": 1.4, "word": "there", "confidence": 0.42}
    assert data["segments"][1] == {"start": 62.345, "end": 63.5, "text": "general kenobi"}
    assert data["options"] == {
        "beam_width": 0,
        "lm": None,
        "alpha": 0.5,
        "beta": 1.0,
        "method": "greedy",
    }
    rebuilt = Transcription(
        data["text"],
        data["duration"],
        tuple(Segment(**s) for s in data["segments"]),
        tuple(Word(**w) for w in data["words"]),
        DecodingOptions(**{k: v for k, v in data["options"].items() if k != "method"}),
    )
    assert rebuilt == sample()


def test_output_names_and_files(tmp_path):
    assert output_name("/a/b/clip.wav") == "clip"
    assert output_name("-") == "stdin"
    assert output_name("/data/x/y/clip.flac", root="/data") == "x/y/clip"
    paths = write_outputs(sample(), "sub/clip", tmp_path, FORMATS)
    assert sorted(p.name for p in paths) == sorted(f"clip.{f}" for f in FORMATS)
    assert (tmp_path / "sub" / "clip.txt").read_text() == "hello there general kenobi\n"
    with pytest.raises(ValueError, match="unknown format"):
        render(sample(), "docx")


def test_zero_length_segments_still_last_a_millisecond():
    from speech_rnn.writers import to_srt, to_vtt

    result = Transcription("hi", 2.0, (Segment(1.5, 1.5, "hi"),), (), DecodingOptions())
    assert to_srt(result) == "1\n00:00:01,500 --> 00:00:01,501\nhi\n"
    assert to_vtt(result) == "WEBVTT\n\n00:00:01.500 --> 00:00:01.501\nhi\n"


def test_json_is_indented_and_keeps_non_ascii_text():
    text = render(sample("ça va", "naïve"), "json")
    assert '  "text": "ça va naïve",' in text.splitlines()
    assert text.startswith('{\n  "text"') and text.endswith("}\n")


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="finite, non-negative number, got -1"):
        format_timestamp(-1)
    with pytest.raises(
        ValueError, match=r"^unknown format 'docx'; choose from txt, json, srt, vtt, tsv$"
    ):
        render(sample(), "docx")


def test_a_name_without_a_stem_is_audio():
    assert output_name("/") == "audio"
    assert output_name("") == "audio"


def test_write_outputs_makes_nested_folders_and_reports_what_failed(tmp_path):
    from speech_rnn.errors import OutputError

    paths = write_outputs(sample(), "a/b/clip", tmp_path / "new", ["txt"])
    assert paths == [tmp_path / "new" / "a" / "b" / "clip.txt"]
    assert paths[0].read_text() == "hello there general kenobi\n"
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"file/clip\.txt: cannot write \(File exists\)"):
        write_outputs(sample(), "clip", tmp_path / "file", ["txt"])
