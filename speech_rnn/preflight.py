"""Pre-flight check: decide, before TensorFlow sees anything, which utterances are usable.

Checks each utterance's audio header (exists, readable, not empty), duration bounds, the
normalized transcript (empty, characters outside the vocabulary) and CTC feasibility: a
label needs ``len + repeats`` output frames after time reduction. Problems are collected,
printed as counts plus the first few files, and the bad utterances dropped, or training is
stopped with ``strict``.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .audio import audio_duration, load_audio, num_samples_after_resampling
from .config import Config
from .errors import AudioError, SpeechRnnError, TranscriptError
from .features import num_windows
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


def _probe_audio(path: str, decode: bool, sample_rate: int):
    """Duration in seconds (from the samples when ``decode``), or the AudioError."""
    try:
        if decode:
            return len(load_audio(path, sample_rate)) / sample_rate
        return audio_duration(path)
    except AudioError as e:
        return e


def probe_all(utterances, decode: bool, sample_rate: int) -> list:
    """Probe every file, in threads (decoders release the GIL), with a progress bar."""
    from tqdm import tqdm

    paths = [u.audio_filepath for u in utterances]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        results = pool.map(lambda p: _probe_audio(p, decode, sample_rate), paths)
        return list(
            tqdm(
                results,
                total=len(paths),
                desc="checking audio",
                unit="file",
                disable=None,
                leave=False,
            )
        )


def check_utterances(
    utterances,
    vocab: Vocabulary,
    config: Config,
    check_audio: bool = True,
    enforce_duration: bool = True,
    decode_audio: bool = False,
) -> PreflightResult:
    """Sort ``utterances`` into usable examples and problems. ``check_audio`` reads each
    header; ``decode_audio`` decodes each file completely (catches truncated files and
    NaN samples, and measures the exact length)."""
    examples, problems = [], []
    sr = config.audio.sample_rate
    probes = probe_all(utterances, decode_audio, sr) if (check_audio or decode_audio) else None
    for position, utt in enumerate(utterances):

        def drop(message, utt=utt):
            problems.append(Problem(utt.audio_filepath, message))

        duration = utt.duration
        if probes is not None:
            if isinstance(probes[position], AudioError):
                drop(probes[position].problem)
                continue
            duration = probes[position]
        if duration <= 0:
            drop("empty audio (0 s)")
            continue
        if enforce_duration and duration > config.audio.max_duration:
            drop(
                f"too long: {duration:.1f} s is over audio.max_duration "
                f"{config.audio.max_duration:g} s"
            )
            continue
        if enforce_duration and duration < config.audio.min_duration:
            drop(
                f"too short: {duration:.3f} s is under audio.min_duration "
                f"{config.audio.min_duration:g} s"
            )
            continue
        try:
            text = normalize_text(utt.text, config.text)
        except TranscriptError as e:
            drop(f"transcript: {e}")
            continue
        if not text:
            drop("empty transcript after normalization")
            continue
        unknown = vocab.unknown_chars(text)
        if unknown:
            drop(f"characters outside the vocabulary: {''.join(sorted(unknown))!r}")
            continue
        labels = tuple(vocab.encode(text))
        windows = num_windows(num_samples_after_resampling(duration, sr), config.features, sr)
        needed = ctc_min_frames(labels)
        if needed > windows:
            drop(
                f"transcript too long for its audio under CTC: needs {needed} frames, "
                f"{duration:.2f} s gives {windows} after {config.features.stride}x reduction"
            )
            continue
        examples.append(Example(utt, text, labels, windows))
    return PreflightResult(tuple(examples), tuple(problems))


def preflight(utterances, vocab, config, name: str, strict: bool) -> tuple:
    """Check, log the summary, and return the usable examples (or raise)."""
    result = check_utterances(utterances, vocab, config, decode_audio=config.train.verify_audio)
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
