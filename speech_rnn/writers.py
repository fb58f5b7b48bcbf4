"""Output formats for transcriptions: txt, json, srt, vtt, tsv.

Each writer turns one :class:`~speech_rnn.recognizer.Transcription` into the text of one
file. ``json`` is the transcription itself (``dataclasses.asdict``: text, duration,
segments, words, decoding options; see docs/transcription.md). ``srt`` and ``vtt`` hold
one cue per segment; ``tsv`` one row per word (start and end in seconds, the word, its
confidence), with a header row.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from .errors import ConfigError, OutputError
from .fileio import atomic_write_text

FORMATS = ("txt", "json", "srt", "vtt", "tsv")


def format_timestamp(seconds: float, decimal_marker: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or, with ``decimal_marker="."``, ``HH:MM:SS.mmm`` (WebVTT).
    Rounded to the millisecond; hours are not wrapped past 99."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"timestamp must be a finite, non-negative number, got {seconds!r}")
    millis = int(round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def _one_line(text: str) -> str:
    """Cue text on one line: line breaks and tabs would end a cue or a field early."""
    return " ".join(text.split())


def _cues(result):
    """(start, end, text) per non-empty segment, with end > start."""
    for seg in result.segments:
        text = _one_line(seg.text)
        if text:
            yield seg.start, max(seg.end, seg.start + 0.001), text


def to_txt(result) -> str:
    return result.text + "\n"


def to_json(result) -> str:
    return json.dumps(transcription_dict(result), indent=2, ensure_ascii=False) + "\n"


def to_srt(result) -> str:
    """SubRip. Players read HTML-like tags (``<i>``) and ``{...}`` overrides in cue text and
    SRT has no escape syntax, so angle brackets and braces are shown as their fullwidth
    look-alikes; line breaks are joined, so no blank line can end a cue early."""
    blocks = []
    for index, (start, end, text) in enumerate(_cues(result), start=1):
        text = text.translate(_SRT_ESCAPES)
        blocks.append(f"{index}\n{format_timestamp(start)} --> {format_timestamp(end)}\n{text}\n")
    return "\n".join(blocks)


_SRT_ESCAPES = str.maketrans({"<": "\uff1c", ">": "\uff1e", "{": "\uff5b", "}": "\uff5d"})


def escape_vtt(text: str) -> str:
    """WebVTT cue text: ``&``, ``<`` and ``>`` as character references (which also keeps
    the cue from ever holding ``-->``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(result) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, text in _cues(result):
        blocks.append(
            f"{format_timestamp(start, '.')} --> {format_timestamp(end, '.')}\n{escape_vtt(text)}\n"
        )
    return "\n".join(blocks)


def to_tsv(result) -> str:
    rows = ["start\tend\tword\tconfidence"]
    for w in result.words:
        rows.append(f"{w.start:.3f}\t{w.end:.3f}\t{_one_line(w.word)}\t{w.confidence:.4f}")
    return "\n".join(rows) + "\n"


WRITERS = {"txt": to_txt, "json": to_json, "srt": to_srt, "vtt": to_vtt, "tsv": to_tsv}


def transcription_dict(result) -> dict:
    """The JSON structure: the dataclasses as plain dicts and lists."""
    data = dataclasses.asdict(result)
    data["options"]["method"] = result.options.method
    return data


def render(result, fmt: str) -> str:
    try:
        return WRITERS[fmt](result)
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}") from None


def output_name(source: str, root=None) -> str:
    """The output base name for an input: its file name without the audio suffix
    (``clip.wav`` -> ``clip``); for a file found under a folder input ``root``, its path
    relative to that folder (``a/clip``), so equal names in subfolders stay apart;
    ``stdin`` for ``-``."""
    if source == "-":
        return "stdin"
    path = Path(source)
    if root is not None:
        try:
            return path.relative_to(root).with_suffix("").as_posix()
        except ValueError:
            pass
    return path.stem or "audio"


def _kept_path(source: str) -> str:
    """The input path as given, made relative (no root, no ``..``), suffix kept."""
    path = Path(source)
    parts = [p for p in path.parts[len(path.anchor and [path.anchor]) :] if p not in ("..", ".")]
    return "/".join(parts) or "audio"


def output_names(inputs) -> list:
    """One output base name per ``(source, root)`` input, unique among them, decided
    before any work: :func:`output_name`; where two inputs share it (``a/x.wav`` and
    ``a/x.flac``), each keeps its suffix (``x.wav``, ``x.flac``); where they still share
    it (``a/x.wav`` and ``b/x.wav`` given as files), each is named by its path as given
    (``a/x.wav``, ``b/x.wav``). The same file given twice is a ConfigError."""
    sources = [(str(source), root) for source, root in inputs]
    names = [output_name(source, root) for source, root in sources]

    def suffixed(source, root):
        if source == "-":
            return "stdin"
        if root is not None:
            try:
                return Path(source).relative_to(root).as_posix()
            except ValueError:
                pass
        return Path(source).name or "audio"

    for rename in (suffixed, lambda source, _root: _kept_path(source)):
        counts = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        if all(n == 1 for n in counts.values()):
            return names
        names = [
            rename(source, root) if counts[name] > 1 else name
            for (source, root), name in zip(sources, names, strict=True)
        ]
    seen = {}
    for source, name in zip((s for s, _ in sources), names, strict=True):
        if name in seen:
            raise ConfigError(
                f"{source} and {seen[name]} would write the same output file {name}.*; "
                "give each input once"
            )
        seen[name] = source
    return names


def write_outputs(result, name: str, out_dir, formats) -> list:
    """Write ``out_dir/name.FMT`` for each format (``name`` from :func:`output_name`);
    returns the paths."""
    paths = []
    for fmt in formats:
        path = Path(out_dir) / f"{name}.{fmt}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, render(result, fmt))
        except OSError as e:
            raise OutputError(f"{path}: cannot write ({e.strerror or type(e).__name__})") from None
        paths.append(path)
    return paths
