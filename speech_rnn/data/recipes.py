"""Data recipes: ready-to-train train/dev/test manifests from the shared speech corpora.

* ``fsdd``: isolated spoken digits with the dataset's official split (takes 0-4 of every digit
  and speaker are test); takes 5-9 are carved out of train as dev, so dev never shares a
  recording with train.
* ``fsdd-connected``: utterances of 3-7 digits, each made by joining recordings of ONE
  speaker with 50-300 ms gaps, written as 16-bit WAV. Test joins only test takes (0-4), dev
  only dev takes (5-9), train only takes 10-49. Each manifest row also holds ``words``
  ([start, end, word] in seconds, measured on the written audio) and ``sources`` (the FSDD
  recording of each word). Deterministic for a seed and resumable.
* ``kathleen``: the read English sentences, split by prompt id (``prepare.prepare``).

Both fsdd recipes take ``holdout_speaker`` (``--holdout-speaker NAME``): leave one speaker
out. Every recording of that speaker goes to test and none to train or dev; the other
speakers' official test takes (0-4) join their training takes, so test holds only the
unseen voice. ``dev_speaker`` (``--dev-speaker NAME``) does the same for dev: a second
unseen voice to choose settings on, so that decisions about new speakers are not taken on
the test speaker's word; the other speakers' dev takes (5-9) then join train.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import load_audio
from ..errors import ConfigError, ManifestError
from ..fileio import atomic_write_bytes, atomic_write_text, recorded_settings_differ
from ..log import add_log_flags, logger
from ..manifest import read_manifest, write_manifest
from ..paths import default_shared_data
from ..text import DIGIT_WORDS
from .fsdd import TEST_TAKES
from .fsdd import parse as parse_fsdd_name
from .fsdd import recordings as fsdd_recordings
from .prepare import import_layout, prepare

DEV_TAKES = range(5, 10)  # carved out of the official train split
SPLITS = ("train", "dev", "test")

CONNECTED_VERSION = 1  # bump when the audio for a given seed changes
CONNECTED_RATE = 8000  # FSDD's own rate: resampling up would add no information
MIN_DIGITS, MAX_DIGITS = 3, 7
MIN_GAP_S, MAX_GAP_S = 0.05, 0.30
NOISE_SNR_DB = (30.0, 50.0)  # "low noise": well below the speech
TRIM_DB = 40.0  # trim edge frames this far below the recording's loudest


def split_of_take(take: int) -> str:
    """The split an FSDD take (the index in ``{digit}_{speaker}_{index}.wav``) belongs to."""
    if take in TEST_TAKES:
        return "test"
    return "dev" if take in DEV_TAKES else "train"


def split_of_recording(
    take: int, speaker: str, holdout_speaker: str | None = None, dev_speaker: str | None = None
) -> str:
    """The split of a recording: by take (:func:`split_of_take`); a held-out speaker's takes
    are all test and a dev speaker's all dev, and then no one else's are."""
    if speaker == holdout_speaker:
        return "test"
    if speaker == dev_speaker:
        return "dev"
    split = split_of_take(take)
    if split == "test" and holdout_speaker is not None:
        return "train"
    if split == "dev" and dev_speaker is not None:
        return "train"
    return split


def check_speakers(source, holdout_speaker: str | None, dev_speaker: str | None = None) -> None:
    """A ConfigError unless each given speaker is a speaker of the FSDD files in ``source``,
    the two differ, and at least one speaker is left to train on."""
    chosen = {"--holdout-speaker": holdout_speaker, "--dev-speaker": dev_speaker}
    chosen = {flag: name for flag, name in chosen.items() if name is not None}
    if not chosen:
        return
    speakers = sorted({r.speaker for r in fsdd_recordings(source)})
    for flag, name in chosen.items():
        if name not in speakers:
            raise ConfigError(
                f"{flag} {name!r} is not a speaker of {source}; "
                f"speakers: {', '.join(speakers) or 'none found'}"
            )
    if holdout_speaker is not None and holdout_speaker == dev_speaker:
        raise ConfigError(f"--dev-speaker and --holdout-speaker are both {dev_speaker!r}")
    if len(speakers) <= len(chosen):
        raise ConfigError(
            f"{' and '.join(chosen)} leave no speaker of {source} to train on "
            f"(speakers: {', '.join(speakers)})"
        )


def default_source(name: str) -> Path:
    """``<shared data>/<name>``, or a ConfigError saying that --source is needed."""
    shared = default_shared_data()
    if shared is None or not (shared / name).is_dir():
        raise ConfigError(
            f"no --source given and no shared {name}/ folder found "
            "(looked in ../shared/data and $SPEECH_RNN_SHARED_DATA)"
        )
    return shared / name


# -- fsdd: isolated digits --------------------------------------------------------------


def fsdd(
    source, out_dir, holdout_speaker: str | None = None, dev_speaker: str | None = None
) -> dict:
    """Write ``out_dir/{train,dev,test}.jsonl`` for isolated digits; returns the paths.
    ``holdout_speaker``: all of that speaker's recordings are test, no one else's;
    ``dev_speaker``: the same for dev."""
    check_speakers(source, holdout_speaker, dev_speaker)
    problems = []
    imported = import_layout(source, "fsdd", problems)
    splits = {split: [] for split in SPLITS}
    for utt in imported["train"] + imported["test"]:
        name = parse_fsdd_name(utt.audio_filepath)
        split = split_of_recording(name.take, name.speaker, holdout_speaker, dev_speaker)
        splits[split].append(utt)
    for split, utts in splits.items():
        if not utts:
            raise ManifestError(source, f"no usable recordings for the {split} split")
    for problem in problems[:5]:
        logger.warning(f"skipped: {problem}")
    out_dir = Path(out_dir)
    manifests = {}
    for split in SPLITS:
        manifests[split] = out_dir / f"{split}.jsonl"
        # Absolute paths: the recordings stay in the (read-only) source folder.
        write_manifest(splits[split], manifests[split], relative=False)
    return manifests


# -- fsdd-connected: digit strings of one speaker ---------------------------------------


@dataclass(frozen=True)
class ConnectedPlan:
    """Everything that decides one connected-digit utterance, drawn before any audio."""

    split: str
    index: int
    speaker: str
    sources: tuple  # Path of each word's recording
    gaps: tuple  # samples: lead-in, the gaps between words, tail
    snr_db: float | None  # None: digital silence between words

    @property
    def id(self) -> str:
        return f"{self.split}-{self.index:06d}"


def _fsdd_pool(
    source: Path, holdout_speaker: str | None = None, dev_speaker: str | None = None
) -> dict:
    """``{split: {speaker: {digit: [path, ...]}}}`` over the FSDD files in ``source``."""
    pool = {split: {} for split in SPLITS}
    found = fsdd_recordings(source)
    if not found:
        raise ManifestError(source, "no FSDD recordings ({digit}_{speaker}_{index}.wav) found")
    for r in found:
        split = split_of_recording(r.take, r.speaker, holdout_speaker, dev_speaker)
        by_digit = pool[split].setdefault(r.speaker, {})
        by_digit.setdefault(r.digit, []).append((r.take, r.path))
    out = {}
    for split, speakers in pool.items():
        # A speaker can only say every digit string if all ten digits exist in the split.
        usable = {
            s: {d: [p for _, p in sorted(t)] for d, t in digits.items()}
            for s, digits in speakers.items()
            if len(digits) == len(DIGIT_WORDS)
        }
        if not usable:
            raise ManifestError(source, f"no speaker has all ten digits in the {split} takes")
        out[split] = usable
    return out


def _fingerprint(source: Path) -> str:
    """Names and sizes of the FSDD files: a changed source changes every plan."""
    h = hashlib.sha256()
    for r in fsdd_recordings(source):
        h.update(f"{r.path.name}\0{r.path.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def plan_utterance(pool: dict, seed: int, split: str, index: int) -> ConnectedPlan:
    """Utterance ``index`` of ``split``: depends only on the pool, the seed, split and index."""
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    speakers = sorted(pool[split])
    speaker = speakers[int(rng.integers(len(speakers)))]
    count = int(rng.integers(MIN_DIGITS, MAX_DIGITS + 1))
    sources = []
    for digit in rng.integers(0, len(DIGIT_WORDS), size=count):
        takes = pool[split][speaker][int(digit)]
        fresh = [p for p in takes if p not in sources] or takes  # vary repeated digits
        sources.append(fresh[int(rng.integers(len(fresh)))])
    gaps = rng.integers(
        round(MIN_GAP_S * CONNECTED_RATE), round(MAX_GAP_S * CONNECTED_RATE) + 1, size=count + 1
    )
    snr = float(rng.uniform(*NOISE_SNR_DB))
    noisy = bool(rng.random() < 0.5)
    return ConnectedPlan(
        split, index, speaker, tuple(sources), tuple(int(g) for g in gaps), snr if noisy else None
    )


def _word(path: Path) -> str:
    return parse_fsdd_name(path).word


def trim_silence(audio: np.ndarray, rate: int) -> np.ndarray:
    """Drop edge frames (10 ms) more than TRIM_DB below the loudest frame, keeping 10 ms of
    margin, then fade the edges over 4 ms so that the joins do not click."""
    hop = max(1, rate // 100)
    frames = len(audio) // hop
    if frames >= 3:
        rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))
        loud = np.flatnonzero(rms >= rms.max() * 10 ** (-TRIM_DB / 20))
        start = max(0, (loud[0] - 1) * hop)
        end = min(len(audio), (loud[-1] + 2) * hop)
        audio = audio[start:end]
    audio = audio.astype(np.float32, copy=True)
    fade = min(len(audio) // 2, int(0.004 * rate))
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade, dtype=np.float32))
        audio[:fade] *= ramp
        audio[-fade:] *= ramp[::-1]
    return audio


class _Recordings:
    """Trimmed recordings at CONNECTED_RATE, each read once."""

    def __init__(self):
        self._cache = {}

    def __getitem__(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            self._cache[path] = trim_silence(load_audio(path, CONNECTED_RATE), CONNECTED_RATE)
        return self._cache[path]


def layout(plan: ConnectedPlan, recordings) -> tuple:
    """``(total samples, [(start sample, end sample, word), ...])`` of a plan."""
    position = plan.gaps[0]
    spans = []
    for path, gap in zip(plan.sources, plan.gaps[1:], strict=True):
        length = len(recordings[path])
        spans.append((position, position + length, _word(path)))
        position += length + gap
    return position, spans


def render(plan: ConnectedPlan, recordings, seed: int) -> np.ndarray:
    """The utterance's waveform: recordings at their spans, optionally a low noise floor."""
    total, spans = layout(plan, recordings)
    audio = np.zeros(total, np.float32)
    for path, (start, end, _) in zip(plan.sources, spans, strict=True):
        audio[start:end] = recordings[path]
    if plan.snr_db is not None:
        speech = np.concatenate([audio[s:e] for s, e, _ in spans])
        level = np.sqrt(np.mean(speech**2)) / 10 ** (plan.snr_db / 20)
        rng = np.random.default_rng([seed, SPLITS.index(plan.split), plan.index, 1])
        audio += (rng.standard_normal(total) * level).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def _wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _complete(path: Path, frames: int) -> bool:
    """A WAV written earlier (atomically) with the expected length: nothing to redo."""
    import soundfile as sf

    if not path.is_file():
        return False
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError):
        return False
    return info.samplerate == CONNECTED_RATE and info.frames == frames


def _check_settings(out_dir: Path, settings: dict) -> None:
    differs = recorded_settings_differ(out_dir, "recipe.json", settings)
    if differs:
        raise ConfigError(
            f"{out_dir} was built with other settings ({', '.join(differs)} "
            "differ); use the same ones or another --out folder"
        )


def fsdd_connected(
    source,
    out_dir,
    count: int = 4000,
    dev_count: int = 200,
    test_count: int = 500,
    seed: int = 0,
    progress: bool = True,
    holdout_speaker: str | None = None,
    dev_speaker: str | None = None,
) -> dict:
    """Build connected-digit utterances into ``out_dir/audio`` and write the manifests
    (``count`` train, ``dev_count`` dev, ``test_count`` test); returns ``{split: path}``.
    WAV files already there with the planned length are kept, not rewritten."""
    from tqdm import tqdm

    counts = {"train": count, "dev": dev_count, "test": test_count}
    for split, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{split} utterance count must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    source, out_dir = Path(source), Path(out_dir)
    check_speakers(source, holdout_speaker, dev_speaker)
    pool = _fsdd_pool(source, holdout_speaker, dev_speaker)
    settings = {
        "recipe": "fsdd-connected",
        "version": CONNECTED_VERSION,
        "seed": seed,
        "sample_rate": CONNECTED_RATE,
        "source": _fingerprint(source),
        "holdout_speaker": holdout_speaker,  # None matches folders recorded before the key
        "dev_speaker": dev_speaker,
    }
    _check_settings(out_dir, settings)
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    recordings = _Recordings()
    manifests = {}
    bar = tqdm(
        total=sum(counts.values()),
        unit="utt",
        desc="fsdd-connected",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    try:
        for split in ("test", "dev", "train"):
            rows = []
            for index in range(counts[split]):
                plan = plan_utterance(pool, seed, split, index)
                total, spans = layout(plan, recordings)
                path = audio_dir / f"{plan.id}.wav"
                if not _complete(path, total):
                    atomic_write_bytes(
                        path, _wav_bytes(render(plan, recordings, seed), CONNECTED_RATE)
                    )
                rows.append(
                    {
                        "audio_filepath": os.path.relpath(path, out_dir),
                        "duration": round(total / CONNECTED_RATE, 4),
                        "text": " ".join(word for _, _, word in spans),
                        "speaker": plan.speaker,
                        "id": plan.id,
                        "words": [
                            [round(s / CONNECTED_RATE, 4), round(e / CONNECTED_RATE, 4), w]
                            for s, e, w in spans
                        ],
                        "sources": [p.stem for p in plan.sources],
                    }
                )
                bar.update(1)
            manifests[split] = out_dir / f"{split}.jsonl"
            atomic_write_text(manifests[split], "".join(json.dumps(r) + "\n" for r in rows))
    finally:
        bar.close()
    return {split: manifests[split] for split in SPLITS}


# -- kathleen ---------------------------------------------------------------------------


def kathleen(source, out_dir, seed: int = 0) -> dict:
    """Split the kathleen folder 80/10/10 by prompt id; returns ``{split: path}``."""
    report = prepare(source, out_dir, layout="folder", group_by="prompt", seed=seed)
    for problem in report.problems[:5]:
        logger.warning(f"skipped: {problem}")
    return dict(report.manifests)


# -- command line -----------------------------------------------------------------------


def _common(parser, name: str) -> None:
    add_log_flags(parser)
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"the {name} folder (default: ../shared/data/{name} beside the "
        "project, or $SPEECH_RNN_SHARED_DATA/" + name + ")",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for train.jsonl, dev.jsonl and test.jsonl",
    )


def _speaker_flags(parser) -> None:
    parser.add_argument(
        "--holdout-speaker",
        metavar="NAME",
        help="leave one speaker out: all of NAME's recordings are test, none are train or "
        "dev (the others' test takes 0-4 join train); default: the official split",
    )
    parser.add_argument(
        "--dev-speaker",
        metavar="NAME",
        help="a second unseen speaker for dev: all of NAME's recordings are dev, none are "
        "train or test (the others' dev takes 5-9 join train); default: takes 5-9 of every "
        "speaker",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``recipe`` command's sub-commands to an argparse (sub)parser."""
    names = parser.add_subparsers(dest="recipe", required=True, metavar="RECIPE")
    p = names.add_parser("fsdd", help="isolated digits: official split, dev = takes 5-9")
    _common(p, "fsdd")
    _speaker_flags(p)
    p = names.add_parser(
        "fsdd-connected", help="3-7 digit strings joined from one speaker's recordings"
    )
    _common(p, "fsdd")
    _speaker_flags(p)
    p.add_argument(
        "--count",
        type=int,
        default=4000,
        metavar="N",
        help="training utterances (default: %(default)s)",
    )
    p.add_argument(
        "--dev-count",
        type=int,
        default=200,
        metavar="N",
        help="dev utterances (default: %(default)s)",
    )
    p.add_argument(
        "--test-count",
        type=int,
        default=500,
        metavar="N",
        help="test utterances (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="random seed: same seed, same audio (default: %(default)s)",
    )
    p = names.add_parser("kathleen", help="read English sentences, split 80/10/10 by prompt")
    _common(p, "kathleen")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="seed of the split hash (default: %(default)s)",
    )


def _summary(manifests: dict) -> str:
    lines = []
    for split, path in manifests.items():
        utts = read_manifest(path, check_files=False)
        hours = sum(u.duration for u in utts) / 3600
        lines.append(f"{split:<5}  {len(utts):>6} utterances  {hours:6.2f} h  {path}")
    return "\n".join(lines)


def run(args) -> int:
    """Run the recipe named in the parsed ``args``; print what it wrote."""
    folder = "kathleen" if args.recipe == "kathleen" else "fsdd"
    source = args.source or default_source(folder)
    if args.recipe == "fsdd":
        manifests = fsdd(source, args.out, args.holdout_speaker, args.dev_speaker)
    elif args.recipe == "fsdd-connected":
        manifests = fsdd_connected(
            source,
            args.out,
            count=args.count,
            dev_count=args.dev_count,
            test_count=args.test_count,
            seed=args.seed,
            progress=not args.quiet,
            holdout_speaker=args.holdout_speaker,
            dev_speaker=args.dev_speaker,
        )
    else:
        manifests = kathleen(source, args.out, seed=args.seed)
    print(_summary(manifests))
    return 0
