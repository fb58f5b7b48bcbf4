"""Turn a speech corpus on disk into train/dev/test JSONL manifests.

Supported layouts: a folder of audio files with same-named ``.txt`` transcripts, the Free
Spoken Digit Dataset, LibriSpeech, LJSpeech, Common Voice, and existing manifests (JSONL or
DeepSpeech CSV). Transcripts are kept raw; normalization happens at training time.

Splitting is by a hash of (seed, group key), so it is deterministic, independent of input
order, and stable as data is added: a group never moves to another split, and no group
(a sentence, a prompt, a speaker) is ever in two splits. A layout that defines its own split
(Common Voice, FSDD, LibriSpeech with subset folders) keeps it unless ``fractions`` or
``group_by`` is given, in which case all of its utterances are pooled and re-split.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from ..audio import audio_duration
from ..errors import AudioError, ConfigError, ManifestError
from ..log import add_log_flags
from ..manifest import Problem, Utterance, read_manifest, write_manifest
from ..text import normalize_text
from . import fsdd

LAYOUTS = ("folder", "fsdd", "librispeech", "ljspeech", "commonvoice", "manifest", "csv")
GROUP_BYS = ("text", "speaker", "prompt", "id", "none")
DEFAULT_FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")

_TAKE_SUFFIX = re.compile(r"_\d+$")
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_CV_SPLITS = ("train", "dev", "test")


class _Item(NamedTuple):
    """One utterance found by an importer, before its audio header is read."""

    split: str
    audio: Path
    text: str
    speaker: str | None
    id: str | None
    source: Path  # where the transcript came from, for problem reports
    line: int | None = None


def _report(problems, error):
    """Collect ``error`` as a Problem, or raise it when there is no list to collect into."""
    if problems is None:
        raise error
    if isinstance(error, AudioError):
        problems.append(Problem(error.path, error.problem))
    else:
        problems.append(Problem(error.path, error.problem, error.line))


def _audio_files(folder: Path) -> list:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
    )


# -- layout detection -------------------------------------------------------------------


def detect_layout(source: Path) -> str:
    """Guess the layout of ``source`` (a folder or a manifest file)."""
    source = Path(source)
    if source.is_file():
        suffix = source.suffix.lower()
        if suffix in (".jsonl", ".json"):
            return "manifest"
        if suffix == ".csv":
            return "csv"
        raise ManifestError(source, "a single file must be a .jsonl/.json or .csv manifest")
    if not source.is_dir():
        raise ManifestError(source, "not found")
    if (source / "metadata.csv").is_file() and (source / "wavs").is_dir():
        return "ljspeech"
    if (source / "clips").is_dir() and any((source / f"{s}.tsv").is_file() for s in _CV_SPLITS):
        return "commonvoice"
    if _librispeech_transcripts(source)[0]:
        return "librispeech"
    audio = _audio_files(source)
    if audio and all(fsdd.parse(p) for p in audio):
        return "fsdd"
    if any(p.with_suffix(".txt").is_file() for p in audio):
        return "folder"
    found = (
        f"{len(audio)} audio files but no same-named .txt transcripts"
        if audio
        else "no audio files (wav/flac/ogg/mp3)"
    )
    raise ManifestError(
        source,
        f"unknown dataset layout ({found}); expected one of "
        f"{', '.join(LAYOUTS)}: pass --layout or see the docs",
    )


# -- importers: each returns (items, the split names the layout defines) -----------------


def _import_folder(source: Path, problems):
    items = []
    for audio in _audio_files(source):
        txt = audio.with_suffix(".txt")
        if not txt.is_file():
            _report(problems, ManifestError(audio, f"no transcript: expected {txt.name} beside it"))
            continue
        try:
            text = txt.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            _report(problems, ManifestError(txt, "transcript is not UTF-8 text"))
            continue
        items.append(_Item("all", audio, " ".join(text.split()), None, audio.stem, txt))
    return items, ("all",)


def _import_fsdd(source: Path, problems):
    items = []
    for audio in _audio_files(source):
        recording = fsdd.parse(audio)
        if recording is None:
            _report(problems, ManifestError(audio, "name is not {digit}_{speaker}_{index}.wav"))
            continue
        items.append(
            _Item(
                fsdd.official_split(recording.take),
                audio,
                recording.word,
                recording.speaker,
                audio.stem,
                audio,
            )
        )
    return items, ("train", "test")


def _librispeech_transcripts(source: Path):
    """``(files, with_subsets)``: SPEAKER/CHAPTER/*.trans.txt, or one folder deeper when
    ``source`` holds subsets (train-clean-100/, dev-clean/, ...)."""
    files = sorted(source.glob("*/*/*.trans.txt"))
    if files:
        return files, False
    return sorted(source.glob("*/*/*/*.trans.txt")), True


def _import_librispeech(source: Path, problems):
    files, with_subsets = _librispeech_transcripts(source)
    items = []
    for trans in files:
        split = trans.relative_to(source).parts[0] if with_subsets else "all"
        listed = set()
        for number, line in enumerate(_read_text(trans).splitlines(), start=1):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            listed.add(utt_id)
            items.append(
                _Item(
                    split,
                    trans.parent / f"{utt_id}.flac",
                    text.strip(),
                    utt_id.split("-")[0],
                    utt_id,
                    trans,
                    number,
                )
            )
        for flac in sorted(trans.parent.glob("*.flac")):
            if flac.stem not in listed:
                _report(problems, ManifestError(flac, f"no transcript line in {trans.name}"))
    splits = sorted({i.split for i in items}) if with_subsets else ("all",)
    return items, tuple(splits)


def _import_ljspeech(source: Path, problems):
    metadata = source / "metadata.csv"
    # LJSpeech texts hold bare quote marks: quoting must be off or lines would merge.
    reader = csv.reader(io.StringIO(_read_text(metadata)), delimiter="|", quoting=csv.QUOTE_NONE)
    items = []
    for row in reader:
        if not row or not any(field.strip() for field in row):
            continue
        if len(row) < 2:
            _report(
                problems,
                ManifestError(metadata, "expected id|text|normalized_text", reader.line_num),
            )
            continue
        text = row[2] if len(row) > 2 and row[2].strip() else row[1]
        utt_id = row[0].strip()
        items.append(
            _Item(
                "all",
                source / "wavs" / f"{utt_id}.wav",
                text.strip(),
                None,
                utt_id,
                metadata,
                reader.line_num,
            )
        )
    return items, ("all",)


def _import_commonvoice(source: Path, problems):
    items, splits = [], []
    for split in _CV_SPLITS:
        tsv = source / f"{split}.tsv"
        if not tsv.is_file():
            continue
        splits.append(split)
        reader = csv.DictReader(
            io.StringIO(_read_text(tsv)), delimiter="\t", quoting=csv.QUOTE_NONE
        )
        missing = {"client_id", "path", "sentence"} - set(reader.fieldnames or ())
        if missing:
            raise ManifestError(tsv, f"header lacks the columns {', '.join(sorted(missing))}")
        for row in reader:
            path = (row["path"] or "").strip()
            if not path:
                _report(problems, ManifestError(tsv, "empty path", reader.line_num))
                continue
            items.append(
                _Item(
                    split,
                    source / "clips" / path,
                    (row["sentence"] or "").strip(),
                    (row["client_id"] or "").strip() or None,
                    Path(path).stem,
                    tsv,
                    reader.line_num,
                )
            )
    return items, tuple(splits)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise ManifestError(path, f"cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise ManifestError(path, f"not UTF-8 text (byte {e.start})") from None


_IMPORTERS = {
    "folder": _import_folder,
    "fsdd": _import_fsdd,
    "librispeech": _import_librispeech,
    "ljspeech": _import_ljspeech,
    "commonvoice": _import_commonvoice,
}


def _build(items, splits, problems) -> dict:
    """Read each item's duration from its header; skip (or raise on) unusable items."""
    out = {split: [] for split in splits}
    seen = {}
    for item in tqdm(items, desc="Reading audio headers", unit="file", disable=None):
        if item.id is not None and item.id in seen:
            _report(
                problems,
                ManifestError(
                    item.audio, f"duplicate id {item.id!r} (also {seen[item.id]}); skipped"
                ),
            )
            continue
        if not item.text:
            _report(
                problems,
                ManifestError(
                    item.source, f"empty transcript for {item.id or item.audio}", item.line
                ),
            )
            continue
        if item.line is not None and not item.audio.is_file():
            # Name the transcript line that points at the missing file.
            _report(
                problems,
                ManifestError(item.source, f"audio file not found: {item.audio}", item.line),
            )
            continue
        try:
            duration = audio_duration(item.audio)
            if duration <= 0:
                raise AudioError(item.audio, "no audio samples")
        except AudioError as e:
            _report(problems, e)
            continue
        if item.id is not None:
            seen[item.id] = item.audio
        out[item.split].append(
            Utterance(os.path.abspath(item.audio), duration, item.text, item.speaker, item.id)
        )
    return {split: sorted(utts, key=_sort_key) for split, utts in out.items()}


def import_layout(source, layout: str, problems: list | None = None) -> dict:
    """Read ``source`` in ``layout``: ``{split: [Utterance, ...]}`` keyed by the layout's own
    split, or ``{"all": [...]}``. Unusable items go to ``problems`` (or raise without it)."""
    source = Path(source)
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; valid: {', '.join(LAYOUTS)}")
    if layout in ("manifest", "csv"):
        return {"all": sorted(read_manifest(source, problems), key=_sort_key)}
    if not source.is_dir():
        raise ManifestError(source, f"the {layout} layout needs a folder")
    items, splits = _IMPORTERS[layout](source, problems)
    return _build(items, splits, problems)


# -- splitting ----------------------------------------------------------------------------


def _sort_key(utt: Utterance):
    return (utt.id or "", utt.audio_filepath)


def group_key(utt: Utterance, group_by: str) -> str:
    """The key that keeps related utterances in one split."""
    if group_by == "text":
        return normalize_text(utt.text)
    if group_by == "speaker":
        if not utt.speaker:
            raise ManifestError(
                utt.audio_filepath,
                "no speaker: --group-by speaker needs a "
                "layout that names speakers (librispeech, commonvoice, fsdd)",
            )
        return utt.speaker
    if group_by == "prompt":
        # Several takes of one prompt differ only in the suffix: arctic_a0001_1592748574.
        return _TAKE_SUFFIX.sub("", utt.id or Path(utt.audio_filepath).stem)
    if group_by in ("id", "none"):
        return utt.key
    raise ConfigError(f"unknown group_by {group_by!r}; valid: {', '.join(GROUP_BYS)}")


def _check_fractions(fractions: dict) -> dict:
    if not fractions:
        raise ConfigError("no split fractions given")
    for name, value in fractions.items():
        if not _SPLIT_NAME.fullmatch(str(name)):
            raise ConfigError(f"split name {name!r} must be letters, digits, '_', '-', '.'")
        if not isinstance(value, (int, float)) or not value >= 0:
            raise ConfigError(f"split {name!r}: fraction must be >= 0, got {value!r}")
    total = sum(fractions.values())
    if total <= 0:
        raise ConfigError("split fractions add up to 0")
    return {name: value / total for name, value in fractions.items()}  # 8/1/1 works too


def split_utterances(utterances, fractions: dict, group_by: str = "text", seed: int = 0) -> dict:
    """Assign each group to a split by a hash of (seed, group key); see the module doc."""
    fractions = _check_fractions(fractions)
    out = {name: [] for name in fractions}
    names = list(fractions)
    for utt in utterances:
        key = group_key(utt, group_by)
        digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64  # uniform in [0, 1)
        edge = 0.0
        chosen = names[-1]  # rounding of the cumulative sum never drops an utterance
        for name in names:
            edge += fractions[name]
            if point < edge:
                chosen = name
                break
        out[chosen].append(utt)
    return {name: sorted(utts, key=_sort_key) for name, utts in out.items()}


def parse_fractions(text: str) -> dict:
    """``"train=0.8,dev=0.1,test=0.1"`` -> ``{"train": 0.8, ...}``."""
    fractions = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            fractions[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"--split {text!r}: expected name=fraction pairs like train=0.8,dev=0.1,test=0.1"
            ) from None
        if not sep:
            raise ConfigError(f"--split {text!r}: {part!r} lacks '='")
    _check_fractions(fractions)
    return fractions


# -- prepare ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareReport:
    """What ``prepare`` wrote, per split, and the items it skipped."""

    manifests: dict  # split -> manifest path
    counts: dict  # split -> utterances
    hours: dict  # split -> hours of audio
    problems: tuple  # Problem, ...


def _default_group_by(layout: str, utterances: list) -> str:
    if layout == "fsdd":
        return "id"  # text would put each digit wholly into one split
    if layout == "folder" and utterances:
        ids = [u.id or "" for u in utterances]
        if all(_TAKE_SUFFIX.search(i) for i in ids):
            takes = Counter(_TAKE_SUFFIX.sub("", i) for i in ids)
            # Takes are a few re-recordings of one prompt; "utt_001".."utt_999" is not.
            if max(takes.values()) <= 10:
                return "prompt"
    return "text"


def prepare(
    source,
    out_dir,
    layout: str = "auto",
    fractions: dict | None = None,
    group_by: str | None = None,
    seed: int = 0,
    max_duration: float | None = None,
    min_duration: float | None = None,
    strict: bool = False,
) -> PrepareReport:
    """Import ``source``, split it, and write ``out_dir/{split}.jsonl`` manifests."""
    source, out_dir = Path(source), Path(out_dir)
    if layout == "auto":
        layout = detect_layout(source)
    if group_by is not None and group_by not in GROUP_BYS:
        raise ConfigError(f"unknown group_by {group_by!r}; valid: {', '.join(GROUP_BYS)}")
    for name, value in (("--max-duration", max_duration), ("--min-duration", min_duration)):
        if value is not None and not value >= 0:
            raise ConfigError(f"{name} must be >= 0, got {value}")
    if max_duration is not None and min_duration is not None and min_duration > max_duration:
        raise ConfigError(f"--min-duration {min_duration} is over --max-duration {max_duration}")
    if fractions is not None:
        _check_fractions(fractions)

    problems = []
    imported = import_layout(source, layout, problems)
    kept = {split: [] for split in imported}
    for split, utts in imported.items():
        for utt in utts:
            if max_duration is not None and utt.duration > max_duration:
                problems.append(
                    Problem(
                        utt.audio_filepath,
                        f"is {utt.duration:.1f} s, over --max-duration {max_duration:g} s; dropped",
                    )
                )
            elif min_duration is not None and utt.duration < min_duration:
                problems.append(
                    Problem(
                        utt.audio_filepath,
                        f"is {utt.duration:.2f} s, under "
                        f"--min-duration {min_duration:g} s; dropped",
                    )
                )
            else:
                kept[split].append(utt)
    pooled = sorted((u for utts in kept.values() for u in utts), key=_sort_key)

    if strict and problems:
        raise ManifestError(
            source, f"{len(problems)} problem(s) with --strict; first: {problems[0]}"
        )
    if not pooled:
        first = f"; first problem: {problems[0]}" if problems else ""
        raise ManifestError(source, f"no usable utterances in the {layout} layout{first}")

    if list(kept) != ["all"] and fractions is None and group_by is None:
        splits = kept  # the layout's own split
    else:
        splits = split_utterances(
            pooled,
            fractions or DEFAULT_FRACTIONS,
            group_by or _default_group_by(layout, pooled),
            seed,
        )

    manifests, counts, hours = {}, {}, {}
    for split, utts in splits.items():
        path = out_dir / f"{split}.jsonl"
        write_manifest(utts, path)
        manifests[split], counts[split] = path, len(utts)
        hours[split] = sum(u.duration for u in utts) / 3600
    return PrepareReport(manifests, counts, hours, tuple(problems))


def format_report(report: PrepareReport, max_problems: int = 10) -> str:
    """A short summary: utterances and hours per split, then the problems."""
    lines = []
    width = max((len(s) for s in report.manifests), default=5)
    for split, path in report.manifests.items():
        lines.append(
            f"{split:<{width}}  {report.counts[split]:>7} utterances  "
            f"{report.hours[split]:8.2f} h  {path}"
        )
    total = len(report.problems)
    if total == 0:
        lines.append("no problems")
    else:
        lines.append(f"{total} problem(s), skipped:")
        lines.extend(f"  {p}" for p in report.problems[:max_problems])
        if total > max_problems:
            lines.append(f"  ... and {total - max_problems} more")
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------


def _fractions_arg(text: str) -> dict:
    try:
        return parse_fractions(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser) -> None:
    """Add the ``prepare`` command's arguments to an argparse (sub)parser."""
    add_log_flags(parser)
    parser.add_argument(
        "source", type=Path, help="dataset folder, or a .jsonl/.csv manifest to re-split"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for the {split}.jsonl manifests"
    )
    parser.add_argument(
        "--layout",
        choices=("auto",) + LAYOUTS,
        default="auto",
        help="dataset layout (default: detect it)",
    )
    parser.add_argument(
        "--split",
        type=_fractions_arg,
        default=None,
        metavar="NAME=FRAC,...",
        help="split fractions, e.g. train=0.8,dev=0.1,test=0.1 (the default); "
        "given for Common Voice/FSDD, re-splits instead of using "
        "their own split",
    )
    parser.add_argument(
        "--group-by",
        choices=GROUP_BYS,
        default=None,
        help="what must stay within one split (default: prompt for takes "
        "of the same prompt, else text; also re-splits like --split)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split hash")
    parser.add_argument(
        "--max-duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="drop longer utterances (reported as problems)",
    )
    parser.add_argument(
        "--min-duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="drop shorter utterances (reported as problems)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="fail on any problem instead of skipping the item"
    )


def run(args) -> int:
    """Run ``prepare`` from parsed arguments and print the summary."""
    report = prepare(
        args.source,
        args.out,
        layout=args.layout,
        fractions=args.split,
        group_by=args.group_by,
        seed=args.seed,
        max_duration=args.max_duration,
        min_duration=args.min_duration,
        strict=args.strict,
    )
    print(format_report(report))
    return 0
