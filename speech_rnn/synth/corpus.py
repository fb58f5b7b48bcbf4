"""An offline synthetic English speech corpus (``speech-rnn synth``), spoken by espeak-ng
(:mod:`.engine`) from the sentence grammar (:mod:`.sentences`).

Each utterance gets a seeded voice, speaking rate, pitch and pitch range, then optionally a
simple room reverberation and additive noise at a random signal-to-noise ratio, and is
written as 16 kHz 16-bit mono WAV. Its audio depends only on its text and parameters.

Splits: the test split is spoken by voice combinations (and voice variants) never heard in
train or dev, and dev by its own two; each sentence belongs to exactly one split (by a seeded
hash of its text), so no sentence is shared between splits.

The ``digits`` grammar speaks digit strings instead ("three seven nine", 1 to 7 digits,
lengths and digits uniform): the same few words in 50 training voices, which is what a
digit recognizer trained on a handful of real speakers lacks. With ten words the texts
repeat, so only the voices keep its splits apart.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_write_bytes, recorded_settings_differ
from ..log import add_log_flags
from ..manifest import Utterance, read_manifest, write_manifest
from ..text import DIGIT_WORDS, normalize_text
from .engine import (
    DEV_VOICES,
    SAMPLE_RATE,
    TEST_VOICES,
    TRAIN_VOICES,
    VOICES,
    SynthError,
    check_voices,
    synthesize,
)
from .sentences import iter_sentences

SPLITS = ("train", "dev", "test")
FORMAT_VERSION = 1  # bump when the audio for a given seed changes
SPLIT_VOICES = {"train": TRAIN_VOICES, "dev": DEV_VOICES, "test": TEST_VOICES}
GRAMMARS = ("sentences", "digits")
MAX_DIGITS = 7
DEFAULT_DEV_FRACTION = 0.05
DEFAULT_TEST_FRACTION = 0.05


# --------------------------------------------------------------------------------------------
# One utterance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UtteranceParams:
    """Everything that decides an utterance's audio, besides its text."""

    voice: str
    rate: int  # words per minute (espeak's default is 175)
    pitch: int  # 0-100, 50 = the voice's own pitch
    pitch_range: int  # 0-100, 50 = normal intonation
    espeak_seed: int
    pad_start: float  # seconds of silence (or noise) around the speech
    pad_end: float
    snr_db: float | None  # None: no added noise
    noise_color: str  # white | pink | brown
    rt60: float | None  # None: no reverberation; else the decay time in seconds
    drr_db: float  # direct-to-reverberant energy ratio
    peak_db: float  # final peak level, dBFS
    noise_seed: int


def draw_params(
    voice: str, rng: np.random.Generator, noise: bool = True, reverb: bool = True
) -> UtteranceParams:
    """Random but seeded parameters. Every value is drawn whatever the flags, so turning
    noise or reverberation off leaves the rest (voice, rate, pitch...) unchanged."""
    rate = int(rng.integers(135, 206))
    pitch = int(rng.integers(35, 66))
    pitch_range = int(rng.integers(30, 81))
    espeak_seed = int(rng.integers(0, 2**31 - 1))
    pad_start, pad_end = (round(float(x), 3) for x in rng.uniform(0.05, 0.3, size=2))
    use_noise = rng.random() < 0.8
    snr = round(float(rng.uniform(10.0, 40.0)), 2)
    color = ("white", "pink", "brown")[int(rng.integers(0, 3))]
    use_reverb = rng.random() < 0.5
    rt60 = round(float(rng.uniform(0.15, 0.7)), 3)
    drr = round(float(rng.uniform(0.0, 10.0)), 2)
    peak = round(float(rng.uniform(-14.0, -2.0)), 2)
    noise_seed = int(rng.integers(0, 2**31 - 1))
    return UtteranceParams(
        voice,
        rate,
        pitch,
        pitch_range,
        espeak_seed,
        pad_start,
        pad_end,
        snr if (noise and use_noise) else None,
        color,
        rt60 if (reverb and use_reverb) else None,
        drr,
        peak,
        noise_seed,
    )


def _colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if color == "white" or n < 4:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
        freqs[0] = freqs[1]
        exponent = 0.5 if color == "pink" else 1.0
        shaped = spectrum / np.maximum(freqs, 20.0) ** exponent
        noise = np.fft.irfft(shaped, n)
    noise = noise - noise.mean()
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _active_rms(audio: np.ndarray) -> float:
    """RMS over the frames within 40 dB of the loudest: the speech, not the pauses."""
    frame = 320
    n = len(audio) // frame
    if n == 0:
        return float(np.sqrt(np.mean(audio**2)) + 1e-12)
    energy = np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1)
    active = energy[energy >= energy.max() * 1e-4]
    return float(np.sqrt(active.mean()) + 1e-12)


def _room_response(rt60: float, drr_db: float, rng: np.random.Generator) -> np.ndarray:
    """A direct impulse followed by an exponentially decaying noise tail."""
    length = int(min(1.2 * rt60, 1.0) * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * np.exp(-6.9078 * t / rt60)  # -60 dB at rt60
    predelay = int(0.004 * SAMPLE_RATE)
    tail[:predelay] = 0.0
    tail *= math.sqrt(10 ** (-drr_db / 10) / (np.sum(tail**2) + 1e-12))
    tail[0] = 1.0
    return tail


def render(text: str, params: UtteranceParams) -> np.ndarray:
    """The utterance as written to the corpus: float32, 16 kHz, peak at ``params.peak_db``."""
    from scipy.signal import fftconvolve

    speech = synthesize(
        text, params.voice, params.rate, params.pitch, params.pitch_range, params.espeak_seed
    ).astype(np.float64)
    rng = np.random.default_rng(params.noise_seed)
    audio = np.concatenate(
        [
            np.zeros(int(params.pad_start * SAMPLE_RATE)),
            speech,
            np.zeros(int(params.pad_end * SAMPLE_RATE)),
        ]
    )
    # The room and the noise are always drawn, in this order, so that switching one effect off
    # does not change the other.
    room = _room_response(params.rt60 or 0.3, params.drr_db, rng)
    if params.rt60 is not None:
        audio = fftconvolve(audio, room)[: len(audio)]
    noise = _colored_noise(len(audio), params.noise_color, rng)
    if params.snr_db is not None:
        audio = audio + noise * (_active_rms(audio) / 10 ** (params.snr_db / 20))
    peak = np.max(np.abs(audio)) + 1e-12
    audio = audio * (10 ** (params.peak_db / 20) / peak)
    return audio.astype(np.float32)


def wav_bytes(audio: np.ndarray) -> bytes:
    """16-bit PCM WAV at 16 kHz."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------------------------


def sentence_split(
    sentence: str,
    seed: int,
    dev_fraction: float = DEFAULT_DEV_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> str:
    """The one split a sentence belongs to, from a seeded hash of its normalized text."""
    digest = hashlib.blake2b(f"{seed}\0{normalize_text(sentence)}".encode(), digest_size=8).digest()
    u = int.from_bytes(digest, "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + dev_fraction:
        return "dev"
    return "train"


class _SentencePool:
    """The seed's sentence stream, dealt into splits; ``get(split, i)`` is the split's i-th."""

    def __init__(self, seed, dev_fraction, test_fraction):
        self.seed, self.fractions = seed, (dev_fraction, test_fraction)
        self.stream = iter_sentences(seed)
        self.lists = {split: [] for split in SPLITS}

    def get(self, split: str, index: int) -> str:
        target = self.lists[split]
        while len(target) <= index:
            sentence = next(self.stream)
            self.lists[sentence_split(sentence, self.seed, *self.fractions)].append(sentence)
        return target[index]


class _DigitPool:
    """Digit strings: ``get(split, i)`` is drawn from (seed, split, i) alone."""

    def __init__(self, seed):
        self.seed = seed

    def get(self, split: str, index: int) -> str:
        rng = np.random.default_rng([self.seed, SPLITS.index(split), 3, index])
        count = int(rng.integers(1, MAX_DIGITS + 1))
        return " ".join(DIGIT_WORDS[int(d)] for d in rng.integers(0, 10, size=count))


def utterance_params(
    seed: int, split: str, index: int, noise: bool = True, reverb: bool = True
) -> UtteranceParams:
    """Parameters of utterance ``index`` of ``split``; voices are dealt in shuffled rounds so
    that every voice of the split is used equally often."""
    voices = SPLIT_VOICES[split]
    split_code = SPLITS.index(split)
    cycle, position = divmod(index, len(voices))
    order = np.random.default_rng([seed, split_code, 1, cycle]).permutation(len(voices))
    rng = np.random.default_rng([seed, split_code, 2, index])
    return draw_params(voices[int(order[position])], rng, noise, reverb)


def _existing_duration(path: Path) -> float | None:
    """Duration of a complete WAV already written (files are written atomically, so one that
    reads back with our sample rate and some frames is whole); None if absent or unreadable."""
    import soundfile as sf

    if not path.is_file():
        return None
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError):  # soundfile's LibsndfileError is a RuntimeError
        return None
    if info.samplerate != SAMPLE_RATE or info.frames <= 0:
        return None
    return info.frames / SAMPLE_RATE


def _render_job(job: tuple) -> tuple:
    """Worker: (text, params) -> (duration, WAV bytes)."""
    text, params = job
    audio = render(text, params)
    return len(audio) / SAMPLE_RATE, wav_bytes(audio)


def _settings(seed, noise, reverb, dev_fraction, test_fraction, grammar) -> dict:
    return {
        "format": FORMAT_VERSION,
        "seed": seed,
        "noise": noise,
        "reverb": reverb,
        "dev_fraction": dev_fraction,
        "test_fraction": test_fraction,
        "sample_rate": SAMPLE_RATE,
        "voices": {s: list(v) for s, v in SPLIT_VOICES.items()},
        "grammar": grammar,
    }


def _check_folder(out_dir: Path, settings: dict) -> None:
    # folders built before --grammar hold sentences
    differs = recorded_settings_differ(out_dir, "synth.json", settings, {"grammar": "sentences"})
    if differs:
        raise SynthError(
            f"{out_dir} holds a corpus built with other settings "
            f"({', '.join(differs)} differ); use another --out folder"
        )


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def build_corpus(
    out_dir,
    hours: float = 2.0,
    seed: int = 0,
    noise: bool = True,
    reverb: bool = True,
    workers: int | None = None,
    dev_fraction: float = DEFAULT_DEV_FRACTION,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    progress: bool = True,
    grammar: str = "sentences",
) -> dict:
    """Synthesize about ``hours`` of speech into ``out_dir``, sentences or digit strings
    (``grammar``).

    Writes ``out_dir/audio/<split>-<index>.wav`` and ``out_dir/{train,dev,test}.jsonl``, and
    returns ``{split: manifest path}``. Each split holds ``hours * fraction`` (at least one
    utterance); utterances are added until the split's total duration reaches its share.
    Deterministic for a seed, and resumable: WAV files already there are kept.
    """
    from tqdm import tqdm

    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise SynthError(f"hours must be a positive number, got {hours!r}")
    for name, value in (("dev_fraction", dev_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 0.5:
            raise SynthError(f"{name} must be between 0 and 0.5, got {value!r}")
    if grammar not in GRAMMARS:
        raise SynthError(f"grammar must be one of {', '.join(GRAMMARS)}, got {grammar!r}")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise SynthError(f"workers must be at least 1, got {workers}")
    out_dir = Path(out_dir)
    _check_folder(out_dir, _settings(seed, noise, reverb, dev_fraction, test_fraction, grammar))
    check_voices(VOICES)
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)

    fractions = {
        "train": 1.0 - dev_fraction - test_fraction,
        "dev": dev_fraction,
        "test": test_fraction,
    }
    targets = {split: hours * 3600.0 * fractions[split] for split in SPLITS}
    pool = (
        _SentencePool(seed, dev_fraction, test_fraction)
        if grammar == "sentences"
        else _DigitPool(seed)
    )
    executor = None
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    bar = tqdm(
        total=round(hours * 3600.0),
        unit="s",
        desc="synth",
        # the count is seconds of audio, a float: show it whole
        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s of audio [{elapsed}<{remaining}{postfix}]",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    manifests = {}
    try:
        for split in ("test", "dev", "train"):
            bar.set_postfix_str(split)
            utterances = []
            total, index, average = 0.0, 0, 3.0
            while total < targets[split]:
                count = max(1, min(256, math.ceil((targets[split] - total) / average)))
                if executor is not None:
                    count = max(count, min(workers * 4, 256))
                batch, jobs = [], []
                for i in range(index, index + count):
                    text = pool.get(split, i)
                    params = utterance_params(seed, split, i, noise, reverb)
                    utt_id = f"{split}-{i:06d}"
                    path = audio_dir / f"{utt_id}.wav"
                    duration = _existing_duration(path)
                    batch.append((utt_id, path, text, params.voice, duration))
                    if duration is None:
                        jobs.append((text, params))
                rendered = iter(
                    executor.map(_render_job, jobs, chunksize=2)
                    if executor is not None
                    else map(_render_job, jobs)
                )
                for utt_id, path, text, voice, duration in batch:
                    data = None
                    if duration is None:
                        duration, data = next(rendered)
                    if total >= targets[split]:
                        continue  # past the split's share: not written
                    if data is not None:
                        atomic_write_bytes(path, data)
                    utterances.append(Utterance(str(path), duration, text, voice, utt_id))
                    total += duration
                    bar.update(duration)
                index += count
                average = total / max(1, len(utterances))
            manifest = out_dir / f"{split}.jsonl"
            write_manifest(utterances, manifest)
            manifests[split] = manifest
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown()
    return {split: manifests[split] for split in SPLITS}


# --------------------------------------------------------------------------------------------
# Command line: ``speech-rnn synth``
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_log_flags(parser)
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="corpus folder to create or resume (audio/ and train/dev/test manifests go here)",
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=2.0,
        metavar="H",
        help="hours of speech to synthesize, all splits together (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="random seed: same seed, same corpus (default: %(default)s)",
    )
    parser.add_argument(
        "--no-noise",
        action="store_true",
        help="do not add background noise (otherwise 80%% of utterances get noise at 10-40 dB SNR)",
    )
    parser.add_argument(
        "--no-reverb",
        action="store_true",
        help="do not add room reverberation (otherwise half of the utterances get it)",
    )
    parser.add_argument(
        "--grammar",
        choices=GRAMMARS,
        default="sentences",
        help="what the voices say: English sentences, or digit strings of 1-7 digits "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="synthesis processes (default: number of CPUs, at most 4)",
    )
    parser.add_argument(
        "--dev-fraction",
        type=float,
        default=DEFAULT_DEV_FRACTION,
        metavar="F",
        help="share of the hours for dev (default: %(default)s)",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=DEFAULT_TEST_FRACTION,
        metavar="F",
        help="share of the hours for test (default: %(default)s)",
    )


def run(args) -> int:
    """Build the corpus described by the parsed ``args``; print a summary. Returns 0."""
    manifests = build_corpus(
        args.out,
        hours=args.hours,
        seed=args.seed,
        noise=not args.no_noise,
        reverb=not args.no_reverb,
        workers=args.workers,
        dev_fraction=args.dev_fraction,
        test_fraction=args.test_fraction,
        progress=not args.quiet,
        grammar=args.grammar,
    )
    for split, path in manifests.items():
        utts = read_manifest(path, check_files=False)
        hours = sum(u.duration for u in utts) / 3600
        voices = len({u.speaker for u in utts})
        print(f"{split:5s} {len(utts):6d} utterances  {hours:6.2f} h  {voices:2d} voices  {path}")
    return 0
