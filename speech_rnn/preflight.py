"""Pre-flight check: decide, before TensorFlow sees anything, which utterances are usable.

Checks each utterance's audio header (exists, readable, not empty), duration bounds, the
normalized transcript (empty, characters outside the vocabulary) and CTC feasibility: a
label needs ``len + repeats`` output frames after time reduction. Problems are collected,
printed as counts plus the first few files, and the bad utterances dropped, or training is
stopped with ``strict``.

The checks run in a process pool, in chunks, so a large corpus uses every core. Reading
or decoding the audio is the expensive part: each file's result is cached (in the run
folder) under its path, size and modification time and the settings of the probe, so a
restart re-reads only the files that changed or are new.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from .audio import audio_duration, load_audio, num_samples_after_resampling
from .config import Config
from .errors import AudioError, SpeechRnnError, TranscriptError
from .features import num_windows
from .fileio import atomic_write_json
from .log import logger
from .manifest import Problem
from .text import Vocabulary, ctc_min_frames, normalize_text


@dataclass(frozen=True)
class Example:
    """A usable utterance with its normalized text and label ids."""

    utterance: object  # manifest.Utterance
    text: str  # normalized transcript
    labels: tuple  # class ids
    num_windows: int  # model output frames for this clip


@dataclass(frozen=True)
class PreflightResult:
    examples: tuple
    problems: tuple
    probed: int = 0  # audio files read or decoded (not answered from the cache)
    cached: int = 0  # audio files answered from the cache

    def summary(self, name: str, max_listed: int = 5) -> str:
        lines = [f"{name}: {len(self.examples)} usable utterances"]
        if self.problems:
            kinds = Counter(p.message.split(" (")[0].split(":")[0] for p in self.problems)
            lines[0] += f", {len(self.problems)} dropped"
            lines += [f"  {count} x {kind}" for kind, count in kinds.most_common()]
            lines += [f"  - {p}" for p in self.problems[:max_listed]]
            if len(self.problems) > max_listed:
                lines.append(f"  ... and {len(self.problems) - max_listed} more")
        return "\n".join(lines)


class PreflightError(SpeechRnnError):
    """Raised in strict mode, or when nothing usable is left."""


CHUNK = 256  # utterances per task handed to a pool process
_CACHE_VERSION = 1


def _probe_audio(path: str, decode: bool, sample_rate: int):
    """Duration in seconds (from the samples when ``decode``), or the AudioError."""
    try:
        if decode:
            return len(load_audio(path, sample_rate)) / sample_rate
        return audio_duration(path)
    except AudioError as e:
        return e


def _file_probe(path: str, known, decode: bool, sample_rate: int):
    """(entry, probed): ``entry`` is [size, mtime_ns, duration or problem message]; the
    cached one when the file's size and modification time still match."""
    try:
        st = os.stat(path)
        stamp = [st.st_size, st.st_mtime_ns]
    except OSError:
        stamp = [None, None]
    if known is not None and list(known[:2]) == stamp and stamp[0] is not None:
        return known, False
    value = _probe_audio(path, decode, sample_rate)
    return stamp + [value.problem if isinstance(value, AudioError) else value], True


def _check_one(utt, probe, vocab: Vocabulary, config: Config, enforce_duration: bool):
    """An :class:`Example`, or the problem message that drops ``utt``."""
    sr = config.audio.sample_rate
    duration = utt.duration
    if probe is not None:
        if isinstance(probe, str):
            return probe
        duration = probe
    if duration <= 0:
        return "empty audio (0 s)"
    if enforce_duration and duration > config.audio.max_duration:
        return (
            f"too long: {duration:.1f} s is over audio.max_duration {config.audio.max_duration:g} s"
        )
    if enforce_duration and duration < config.audio.min_duration:
        return (
            f"too short: {duration:.3f} s is under audio.min_duration "
            f"{config.audio.min_duration:g} s"
        )
    try:
        text = normalize_text(utt.text, config.text)
    except TranscriptError as e:
        return f"transcript: {e}"
    if not text:
        return "empty transcript after normalization"
    unknown = vocab.unknown_chars(text)
    if unknown:
        return f"characters outside the vocabulary: {''.join(sorted(unknown))!r}"
    labels = tuple(vocab.encode(text))
    windows = num_windows(num_samples_after_resampling(duration, sr), config.features, sr)
    needed = ctc_min_frames(labels)
    if needed > windows:
        return (
            f"transcript too long for its audio under CTC: needs {needed} frames, "
            f"{duration:.2f} s gives {windows} after {config.features.stride}x reduction"
        )
    return Example(utt, text, labels, windows)


def _check_chunk(task):
    """One pool task: [(result, fresh cache entry or None)] for a chunk of utterances."""
    utterances, known, vocab, config, probe_audio, decode, enforce_duration = task
    out = []
    for utt, entry in zip(utterances, known, strict=True):
        fresh = None
        probe = None
        if probe_audio:
            entry, probed = _file_probe(utt.audio_filepath, entry, decode, config.audio.sample_rate)
            fresh = entry if probed else None
            probe = entry[2]
        out.append((_check_one(utt, probe, vocab, config, enforce_duration), fresh))
    return out


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


def check_utterances(
    utterances,
    vocab: Vocabulary,
    config: Config,
    check_audio: bool = True,
    enforce_duration: bool = True,
    decode_audio: bool = False,
    workers: int | None = None,
    cache_file=None,
    save_cache_to=None,
) -> PreflightResult:
    """Sort ``utterances`` into usable examples and problems. ``check_audio`` reads each
    header; ``decode_audio`` decodes each file completely (catches truncated files and
    NaN samples, and measures the exact length). ``workers`` processes (default: the
    cores, at most 8; 1 runs here) check chunks of :data:`CHUNK` utterances. The audio
    results are read from ``cache_file`` when its entry for a file matches the file's size
    and modification time, and all of them written to ``save_cache_to``."""
    from tqdm import tqdm

    utterances = list(utterances)
    probe_audio = check_audio or decode_audio
    sr = config.audio.sample_rate
    cache = _load_cache(cache_file, decode_audio, sr) if probe_audio else {}
    workers = default_workers() if workers is None else max(1, workers)
    tasks = (
        (
            utterances[i : i + CHUNK],
            [cache.get(u.audio_filepath) for u in utterances[i : i + CHUNK]],
            vocab,
            config,
            probe_audio,
            decode_audio,
            enforce_duration,
        )
        for i in range(0, len(utterances), CHUNK)
    )
    bar = tqdm(
        total=len(utterances),
        desc="checking audio" if probe_audio else "checking",
        unit="utt",
        disable=None,
        leave=False,
    )
    examples, problems, probed = [], [], 0
    with bar, _pool(workers, len(utterances)) as pool:
        results = pool.map(_check_chunk, tasks) if pool else map(_check_chunk, tasks)
        position = 0
        for chunk in results:
            for result, fresh in chunk:
                utt = utterances[position]
                position += 1
                if fresh is not None:
                    probed += 1
                    cache[utt.audio_filepath] = fresh
                if isinstance(result, Example):
                    examples.append(result)
                else:
                    problems.append(Problem(utt.audio_filepath, result))
            bar.update(len(chunk))
    if probe_audio and save_cache_to is not None:
        current = {u.audio_filepath: cache[u.audio_filepath] for u in utterances}
        if probed or len(current) != len(cache) or cache_file != save_cache_to:
            _save_cache(save_cache_to, current, decode_audio, sr)
    cached = len(utterances) - probed if probe_audio else 0
    return PreflightResult(tuple(examples), tuple(problems), probed, cached)


def _pool(workers: int, count: int):
    """A process pool when it pays (several workers, more than one chunk), else a no-op.
    Spawned, not forked: the parent may already run TensorFlow's threads."""
    import contextlib

    if workers <= 1 or count <= CHUNK or not _main_is_guarded():
        return contextlib.nullcontext()
    return ProcessPoolExecutor(
        max_workers=min(workers, -(-count // CHUNK)),
        mp_context=multiprocessing.get_context("spawn"),
    )


def _main_is_guarded() -> bool:
    """A spawned process imports the main script again: only safe when the script keeps
    its work under ``if __name__ == "__main__":`` (the CLI, pytest, ``python -c``). A script
    without that guard is checked serially rather than run again in every pool process."""
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None:
        return True  # interactive, -c, or -m (the module is imported by name)
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "__main__" in f.read()
    except OSError:
        return False


def _load_cache(path, decode: bool, sample_rate: int) -> dict:
    """{audio path: [size, mtime_ns, duration or problem]}; empty when missing, unreadable
    or made with other probe settings."""
    import json

    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(saved, dict) or saved.get("key") != _cache_key(decode, sample_rate):
        return {}
    files = saved.get("files")
    return files if isinstance(files, dict) else {}


def _save_cache(path, cache: dict, decode: bool, sample_rate: int) -> None:
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"key": _cache_key(decode, sample_rate), "files": cache})


def _cache_key(decode: bool, sample_rate: int) -> dict:
    return {"version": _CACHE_VERSION, "decode": bool(decode), "sample_rate": int(sample_rate)}


def cache_name(name: str) -> str:
    """The cache file's name for the check called ``name`` (e.g. "train path/to.jsonl")."""
    import hashlib

    return f"preflight-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:16]}.json"


def preflight(
    utterances, vocab, config, name: str, strict: bool, cache_dir=None, save_dir=None
) -> tuple:
    """Check, log the summary, and return the usable examples (or raise). The audio results
    are cached in ``cache_dir`` (read) and ``save_dir`` (written; default ``cache_dir``)."""
    from pathlib import Path

    cache_file = Path(cache_dir) / cache_name(name) if cache_dir is not None else None
    save_dir = save_dir if save_dir is not None else cache_dir
    result = check_utterances(
        utterances,
        vocab,
        config,
        decode_audio=config.train.verify_audio,
        cache_file=cache_file,
        save_cache_to=Path(save_dir) / cache_name(name) if save_dir is not None else None,
    )
    if result.cached:
        logger.info(
            f"{name}: {result.cached} audio check(s) reused from the cache, "
            f"{result.probed} file(s) read"
        )
    if result.problems and strict:  # the error is the one line, naming the first file
        raise PreflightError(
            f"{name}: {len(result.problems)} unusable utterance(s) and "
            f"train.strict is set; first: {result.problems[0]}"
        )
    # Dropped utterances are a warning: --quiet still shows them.
    (logger.warning if result.problems else logger.info)(result.summary(name))
    if not result.examples:
        first = f"; first problem: {result.problems[0]}" if result.problems else ""
        raise PreflightError(f"{name}: no usable utterances{first}")
    return result.examples
