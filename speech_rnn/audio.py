"""Reading audio: any format soundfile (or librosa's audioread fallback) reads, any sample
rate and channel count, returned as mono float32 at the configured rate.

Every failure is an :class:`AudioError` naming the file and the problem.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile

from .errors import AudioError


def check_file(path: Path) -> None:
    """An AudioError unless ``path`` is a non-empty regular file."""
    if not path.exists():
        raise AudioError(path, "file not found")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def unreadable(path: Path, error: OSError) -> AudioError:
    """The one-line error for a file the operating system would not let us read."""
    return AudioError(path, f"cannot read the file ({error.strerror or error})")


def audio_duration(path) -> float:
    """Duration in seconds from the file header (no decoding)."""
    path = Path(path)
    try:
        check_file(path)
        try:
            info = soundfile.info(str(path))
            if info.frames > 0 and info.samplerate > 0:
                return info.frames / info.samplerate
        except (soundfile.LibsndfileError, RuntimeError, TypeError):
            pass
        data, rate = _decode(path)
    except OSError as e:
        raise unreadable(path, e) from None
    return len(data) / rate


def _check_wav_data_size(path: Path) -> None:
    """libsndfile silently shortens a WAV whose data chunk claims more bytes than the file
    holds; compare the header's claim with the file size ourselves."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size != 0xFFFFFFFF and chunk_size > available:
                    raise AudioError(
                        path,
                        f"truncated audio: header promises {chunk_size} "
                        f"bytes of samples, file holds {available}",
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)


def _decode(path: Path):
    """Decode to (float32 array [frames] or [frames, channels], sample rate)."""
    if path.suffix.lower() == ".wav":
        _check_wav_data_size(path)
    try:
        with soundfile.SoundFile(str(path)) as f:
            expected = f.frames
            data = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
        if expected > 0 and len(data) < expected:
            raise AudioError(
                path, f"truncated audio: header promises {expected} frames, file holds {len(data)}"
            )
        return data, _checked_rate(path, rate)
    except AudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as sf_error:
        sf_message = str(sf_error).splitlines()[0] if str(sf_error) else type(sf_error).__name__
    # Formats libsndfile lacks (some mp3/m4a files): librosa through audioread.
    import warnings

    import audioread
    import librosa

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, rate = librosa.load(str(path), sr=None, mono=False)
    except (
        audioread.DecodeError,
        EOFError,
        OSError,
        RuntimeError,
        ValueError,
        soundfile.LibsndfileError,
    ):
        raise AudioError(path, f"unreadable audio ({sf_message})") from None
    data = np.asarray(data, dtype=np.float32)
    data = data[:, None] if data.ndim == 1 else data.T
    return data, _checked_rate(path, int(rate))


def _checked_rate(path, rate: int) -> int:
    if rate <= 0:
        raise AudioError(path, f"invalid sample rate {rate} Hz in the header")
    return rate


def resample(waveform: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality), float32 in and out."""
    if orig_rate == target_rate:
        return waveform
    import soxr

    return soxr.resample(waveform, orig_rate, target_rate, quality="HQ").astype(np.float32)


def load_audio(path, sample_rate: int = 16000) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate``; raise AudioError if unusable."""
    path = Path(path)
    try:
        check_file(path)
        data, rate = _decode(path)
    except OSError as e:
        raise unreadable(path, e) from None
    if data.size == 0:
        raise AudioError(path, "no audio samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    return resample_checked(path, mono, rate, sample_rate)


def resample_checked(source, waveform: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """:func:`resample`, with an AudioError naming ``source`` when nothing is left (a few
    samples at a high rate, or a header with an absurd rate)."""
    out = resample(waveform, orig_rate, target_rate)
    if out.size == 0:
        raise AudioError(
            source,
            f"too short: {len(waveform)} sample(s) at {orig_rate} Hz "
            f"leave no samples at {target_rate} Hz",
        )
    return out


def num_samples_after_resampling(duration_s: float, sample_rate: int) -> int:
    """Samples a clip of ``duration_s`` has at ``sample_rate`` (as soxr produces them)."""
    return int(math.ceil(duration_s * sample_rate - 1e-6))
