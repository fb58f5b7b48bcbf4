"""Manifests: one utterance per line (JSONL, NeMo style), or a DeepSpeech CSV.

A JSONL line holds ``audio_filepath``, ``duration`` (seconds), ``text`` and optionally
``speaker`` and ``id``. Relative paths resolve against the manifest's folder. Reading is
strict about shape and reports each bad line with its number; with a ``problems`` list the
bad lines are collected and skipped instead of raising.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .audio import audio_duration
from .errors import AudioError, ManifestError
from .fileio import atomic_write_text


@dataclass(frozen=True)
class Utterance:
    audio_filepath: str  # absolute path once read
    duration: float  # seconds
    text: str
    speaker: str | None = None
    id: str | None = None

    @property
    def key(self) -> str:
        """A name for messages and logs: the id if there is one, else the file path."""
        return self.id or self.audio_filepath


@dataclass(frozen=True)
class Problem:
    """One unusable input, reported with where it came from."""

    source: str  # file (manifest or audio)
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.message}"


def _report(problems, source, message, line=None):
    if problems is None:
        raise ManifestError(source, message, line)
    problems.append(Problem(str(source), message, line))


def _text_lines(path: Path):
    """(line number, line with its line end) for each line of ``path``, read and decoded
    one line at a time, so that memory holds one line of the file, never all of it. Lines
    end at ``\\n``, ``\\r\\n`` or a bare ``\\r`` (as Python's universal newlines), so a
    character such as U+2028 inside a JSON string does not split its line."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise ManifestError(path, "manifest not found") from None
    except OSError as e:
        raise ManifestError(path, f"cannot read manifest ({e.strerror})") from None
    with f:
        number = offset = 0
        try:
            for raw in f:
                start = len(_BOM) if offset == 0 and raw.startswith(_BOM) else 0
                try:
                    text = raw[start:].decode("utf-8") if start else raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise ManifestError(
                        path, f"not UTF-8 text (byte {offset + start + e.start})", number + 1
                    ) from None
                offset += len(raw)
                for piece in _LINE_END.findall(text) if "\r" in text else (text,):
                    if piece:
                        number += 1
                        yield number, piece
        except OSError as e:
            raise ManifestError(path, f"cannot read manifest ({e.strerror})", number) from None


_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, tolerated before the first line
# One line and its end: a binary line ends at "\n"; a bare "\r" inside it ends one too.
_LINE_END = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")


def iter_manifest(path, problems: list | None = None, check_files: bool = True):
    """The utterances of a ``.jsonl``/``.json`` (one object per line) or DeepSpeech
    ``.csv`` manifest, one at a time, as the file is read: memory holds one line of the
    file and the ids seen so far (for the duplicate check), not the file."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        rows = _csv_rows(path, problems)
    else:
        rows = _jsonl_rows(path, problems)
    base = path.parent
    seen_ids = {}
    for line, row in rows:
        utt = _utterance_from_row(path, line, row, base, problems, check_files)
        if utt is None:
            continue
        if utt.id is not None:
            if utt.id in seen_ids:
                _report(
                    problems,
                    path,
                    f"duplicate id {utt.id!r} (first on line {seen_ids[utt.id]}); skipped",
                    line,
                )
                continue
            seen_ids[utt.id] = line
        yield utt


def read_manifest(path, problems: list | None = None, check_files: bool = True) -> list:
    """Read a ``.jsonl``/``.json`` (one object per line) or DeepSpeech ``.csv`` manifest
    into a list of :class:`Utterance`, streaming the file (see :func:`iter_manifest`)."""
    return list(iter_manifest(path, problems, check_files))


def _jsonl_rows(path, problems):
    for number, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            _report(problems, path, f"not valid JSON ({e.msg})", number)
            continue
        if not isinstance(row, dict):
            _report(problems, path, "a manifest line must be a JSON object", number)
            continue
        yield number, row


def _csv_rows(path, problems):
    # The lines keep their ends, as the csv module wants (a file opened with newline="").
    reader = csv.DictReader(line for _, line in _text_lines(path))
    required = {"wav_filename", "transcript"}
    try:
        fieldnames = reader.fieldnames
        if not fieldnames or not required <= set(fieldnames):
            raise ManifestError(
                path, "a CSV manifest needs the columns wav_filename,wav_filesize,transcript"
            )
        for row in reader:
            if row["wav_filename"] is None or row["transcript"] is None:
                _report(
                    problems,
                    path,
                    "fewer columns than the header (an unclosed quote?)",
                    reader.line_num,
                )
                continue
            yield (
                reader.line_num,
                {
                    "audio_filepath": row["wav_filename"],
                    "text": row["transcript"],
                    "duration": None,
                },
            )
    except csv.Error as e:
        raise ManifestError(path, f"malformed CSV ({e})", line=reader.line_num or None) from None


def _utterance_from_row(path, line, row, base, problems, check_files):
    for name in ("audio_filepath", "text"):
        if name not in row:
            _report(problems, path, f"missing field {name!r}", line)
            return None
        if not isinstance(row[name], str):
            _report(problems, path, f"field {name!r} must be a string", line)
            return None
    audio = row["audio_filepath"]
    if not audio.strip():
        _report(problems, path, "empty audio_filepath", line)
        return None
    audio_path = Path(audio) if os.path.isabs(audio) else base / audio
    audio_path = Path(os.path.normpath(audio_path))
    if check_files and not audio_path.is_file():
        _report(problems, path, f"audio file not found: {audio_path}", line)
        return None
    duration = row.get("duration")
    if duration is None:
        # DeepSpeech CSVs carry no duration: read it from the file header.
        try:
            duration = audio_duration(audio_path)
        except AudioError as e:  # reported as this line's problem
            _report(problems, path, str(e), line)
            return None
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
    ):
        _report(problems, path, f"duration must be a finite number, got {duration!r}", line)
        return None
    if duration < 0:
        _report(problems, path, f"negative duration {duration}", line)
        return None
    speaker = row.get("speaker")
    utt_id = row.get("id")
    return Utterance(
        str(audio_path),
        float(duration),
        row["text"],
        None if speaker is None else str(speaker),
        None if utt_id is None else str(utt_id),
    )


def write_manifest(utterances, path, relative: bool = True) -> None:
    """Write a JSONL manifest atomically; paths relative to its folder when ``relative``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.parent.resolve()
    lines = []
    for utt in utterances:
        row = {k: v for k, v in asdict(utt).items() if v is not None}
        if relative:
            row["audio_filepath"] = os.path.relpath(Path(utt.audio_filepath).resolve(), base)
        row["duration"] = round(float(utt.duration), 4)
        lines.append(json.dumps(row, ensure_ascii=False))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
