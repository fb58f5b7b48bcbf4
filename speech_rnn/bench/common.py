"""Shared pieces of the benchmark suite (:mod:`speech_rnn.bench`): the data it runs on,
timing helpers and the machine description. Workers are started by :mod:`.launch`."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

from ..config import Config
from ..data import fsdd
from ..errors import SpeechRnnError
from ..manifest import Utterance, read_manifest
from ..preflight import check_utterances
from ..runtime import cpu_model, git_commit
from ..text import Vocabulary, normalize_text


class BenchError(SpeechRnnError):
    """A benchmark could not run (no data, a worker failed)."""


# -- timing -------------------------------------------------------------------------------------
def median(values) -> float:
    values = [v for v in values if v is not None]
    return float(statistics.median(values)) if values else float("nan")


def clock() -> float:
    return time.perf_counter()


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# -- data ---------------------------------------------------------------------------------------
def kathleen_utterances(data_dir, limit: int | None = None) -> list:
    """Kathleen clips (16 kHz FLAC + transcript) in file-name order."""
    import soundfile

    folder = Path(data_dir) / "kathleen"
    out = []
    for flac in sorted(folder.glob("*.flac")):
        text_file = flac.with_suffix(".txt")
        if not text_file.is_file():
            continue
        out.append(
            Utterance(
                str(flac),
                soundfile.info(str(flac)).duration,
                text_file.read_text(encoding="utf-8").strip(),
                id=flac.stem,
            )
        )
        if limit is not None and len(out) >= limit:
            break
    return out


def fsdd_utterances(data_dir, limit: int | None = None) -> list:
    """FSDD digits (8 kHz WAV, so the pipeline resamples them), spread over speakers."""
    import soundfile

    found = fsdd.recordings(Path(data_dir) / "fsdd")
    if limit is not None and found:
        found = found[:: max(1, len(found) // max(limit, 1))][:limit]
    return [
        Utterance(str(r.path), soundfile.info(str(r.path)).duration, r.word, id=r.path.stem)
        for r in found
    ]


def manifest_utterances(path, limit: int | None = None) -> list:
    utterances = read_manifest(path)
    return utterances[:limit] if limit is not None else utterances


def to_dicts(utterances) -> list:
    return [
        {"audio_filepath": u.audio_filepath, "duration": u.duration, "text": u.text, "id": u.id}
        for u in utterances
    ]


def from_dicts(items) -> list:
    return [
        Utterance(d["audio_filepath"], float(d["duration"]), d["text"], id=d.get("id"))
        for d in items
    ]


def build_examples(utterances, config: Config, vocab=None):
    """(vocabulary, usable pre-flight examples); headers only, durations trusted."""
    if vocab is None:
        texts = []
        for u in utterances:
            try:
                texts.append(normalize_text(u.text, config.text))
            except SpeechRnnError:
                pass
        vocab = Vocabulary.from_transcripts(texts)
    result = check_utterances(utterances, vocab, config, check_audio=False)
    if not result.examples:
        raise BenchError("no usable utterances to benchmark")
    return vocab, list(result.examples)


# -- machine ------------------------------------------------------------------------------------
def _version(*names) -> str | None:
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def describe_machine() -> dict:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gib = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_gib": memory_gib,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "tensorflow": _version("tensorflow", "tensorflow-cpu"),
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "librosa": _version("librosa"),
        "pocketsphinx": _version("pocketsphinx"),
        "git_commit": git_commit(),
        "thread_env": {
            k: os.environ.get(k)
            for k in (
                "OMP_NUM_THREADS",
                "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS",
                "OPENBLAS_CORETYPE",
                "TF_ENABLE_ONEDNN_OPTS",
            )
        },
    }
