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


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "file not found")
    if not path.is_file():
        raise AudioError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def audio_duration(path) -> float:
    """Duration in seconds from the file header (no decoding)."""
    path = Path(path)
    _check_path(path)
    try:
        info = soundfile.info(str(path))
        if info.frames > 0 and info.samplerate > 0:
            return info.frames / info.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        pass
    data, rate = _decode(path)
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
                    raise AudioError(path, f"truncated audio: header promises {chunk_size} "
                                           f"bytes of samples, file holds {available}")
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
            raise AudioError(path, f"truncated audio: header promises {expected} frames, "
                                   f"file holds {len(data)}")
        return data, rate
    except AudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as sf_error:
        sf_message = str(sf_error).splitlines()[0] if str(sf_error) else type(sf_error).__name__
    # Formats libsndfile lacks (some mp3/m4a files): librosa through audioread.
    try:
        import warnings

        import librosa
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception:
        raise AudioError(path, f"unreadable audio ({sf_message})") from None
    data = np.asarray(data, dtype=np.float32)
    data = data[:, None] if data.ndim == 1 else data.T
    return data, int(rate)


def resample(waveform: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr (high quality), float32 in and out."""
    if orig_rate == target_rate:
        return waveform
    import soxr
    return soxr.resample(waveform, orig_rate, target_rate, quality="HQ").astype(np.float32)


def load_audio(path, sample_rate: int = 16000) -> np.ndarray:
    """Read ``path`` as mono float32 at ``sample_rate``; raise AudioError if unusable."""
    path = Path(path)
    _check_path(path)
    data, rate = _decode(path)
    if data.size == 0:
        raise AudioError(path, "no audio samples")
    if not np.isfinite(data).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    return resample(mono, rate, sample_rate)


def num_samples_after_resampling(duration_s: float, sample_rate: int) -> int:
    """Samples a clip of ``duration_s`` has at ``sample_rate`` (as soxr produces them)."""
    return int(math.ceil(duration_s * sample_rate - 1e-6))
