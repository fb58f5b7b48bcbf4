"""espeak-ng, driven through ctypes on the shared library that the ``espeakng-loader``
package ships (with its voice data): synchronous mode, samples collected by the synth
callback; no ``espeak-ng`` program is run and nothing is downloaded.

Determinism: espeak-ng keeps synthesis state in static variables (the pitch "flutter" phase,
gain control, echo buffer) that survive ``espeak_Terminate``, and its breath noise uses the C
library's ``rand()``. So every utterance loads a private copy of the library afresh (a few
tenths of a millisecond), seeds ``rand()`` and espeak's own generator, and unloads it again:
an utterance's audio depends only on its text and parameters, not on what was spoken before
it, in which process, or on resuming.

The voice lists are here too; :mod:`.corpus` assigns them to splits.
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..errors import SpeechRnnError

SAMPLE_RATE = 16000  # what the corpus is written at

# English base voices (file names in espeak-ng-data/lang/gmw) and voice variants (file names
# in espeak-ng-data/voices/!v; case matters: a wrong-case variant silently falls back to the
# plain voice). Each training variant is heard with two accents; the dev and test variants are
# used nowhere else.
TRAIN_VOICES = (
    "en+m1",
    "en-gb-scotland+m1",
    "en-us+m2",
    "en-gb-x-rp+m2",
    "en-us-nyc+m3",
    "en-gb-x-gbclan+m3",
    "en-gb-scotland+m4",
    "en-gb-x-gbcwmd+m4",
    "en-gb-x-rp+m7",
    "en-029+m7",
    "en-gb-x-gbclan+Andy",
    "en+Andy",
    "en-gb-x-gbcwmd+Lee",
    "en-us+Lee",
    "en-029+Mike",
    "en-us-nyc+Mike",
    "en+gustave",
    "en-gb-scotland+gustave",
    "en-us+john",
    "en-gb-x-rp+john",
    "en-us-nyc+quincy",
    "en-gb-x-gbclan+quincy",
    "en-gb-scotland+robert",
    "en-gb-x-gbcwmd+robert",
    "en-gb-x-rp+klatt",
    "en-029+klatt",
    "en-gb-x-gbclan+klatt3",
    "en+klatt3",
    "en-gb-x-gbcwmd+edward",
    "en-us+edward",
    "en-029+david",
    "en-us-nyc+david",
    "en+f1",
    "en-gb-scotland+f1",
    "en-us+f2",
    "en-gb-x-rp+f2",
    "en-us-nyc+f3",
    "en-gb-x-gbclan+f3",
    "en-gb-scotland+f5",
    "en-gb-x-gbcwmd+f5",
    "en-gb-x-rp+Annie",
    "en-029+Annie",
    "en-gb-x-gbclan+belinda",
    "en+belinda",
    "en-gb-x-gbcwmd+linda",
    "en-us+linda",
    "en-029+steph",
    "en-us-nyc+steph",
    "en+shelby",
    "en-gb-scotland+shelby",
)
DEV_VOICES = ("en-us-nyc+m5", "en+Andrea")
TEST_VOICES = ("en-gb-scotland+m6", "en-us+travis", "en-029+f4", "en-gb-x-rp+aunty")
VOICES = TRAIN_VOICES + DEV_VOICES + TEST_VOICES

# espeak-ng's C API (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
_RATE, _PITCH, _RANGE = 1, 3, 4

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SynthError(SpeechRnnError):
    """Speech synthesis cannot run: espeak-ng missing or failing, a bad corpus folder."""


class VoiceNotFoundError(SynthError):
    """A voice name that this espeak-ng installation does not have."""


class _VoiceStruct(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


# --------------------------------------------------------------------------------------------
# Locating espeak-ng
# --------------------------------------------------------------------------------------------


def _loader_paths() -> tuple:
    try:
        import espeakng_loader
    except ImportError:
        raise SynthError(
            "espeak-ng is not available: install the espeakng-loader package "
            "(pip install espeakng-loader)"
        ) from None
    library = Path(espeakng_loader.get_library_path())
    try:
        data = Path(espeakng_loader.get_data_path())
    except (RuntimeError, OSError):
        data = library.parent / "espeak-ng-data"
    if not library.is_file():
        raise SynthError(f"espeak-ng library not found at {library}")
    if not (data / "phontab").is_file():
        raise SynthError(f"espeak-ng voice data not found at {data}")
    return library, data


def data_path() -> Path:
    """The espeak-ng data folder (``phontab``, ``lang/``, ``voices/!v``...)."""
    return _loader_paths()[1]


def english_base_voices() -> list:
    """Names of the English base voices in the data (lowercase file names under ``lang/``)."""
    names = set()
    for path in (data_path() / "lang").rglob("*"):
        name = path.name.lower()
        if path.is_file() and (name == "en" or name.startswith("en-")):
            names.add(name)
    return sorted(names)


def voice_variants() -> list:
    """Names of the voice variants in the data (exact file names in ``voices/!v``)."""
    folder = data_path() / "voices" / "!v"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def available_voices() -> list:
    """Every ``base+variant`` name that exists in this installation's data: an English base
    voice crossed with a variant file of exactly that name (case included)."""
    return [f"{base}+{variant}" for base in english_base_voices() for variant in voice_variants()]


def split_voice(name: str) -> tuple:
    base, sep, variant = name.partition("+")
    return base, (variant if sep else None)


# --------------------------------------------------------------------------------------------
# espeak-ng through ctypes
# --------------------------------------------------------------------------------------------


class Espeak:
    """espeak-ng in synchronous mode, loaded afresh for every utterance (see module doc)."""

    _lock = threading.Lock()  # the library is one global state per process

    def __init__(self):
        library, data = _loader_paths()
        self.data = data
        self._private = _private_library_copy(library)
        self._chunks = []
        self._callback = _SYNTH_CALLBACK(self._collect)
        self._libc = ctypes.CDLL(None) if os.name == "posix" else None
        self.sample_rate = None
        with self._lock:  # learn the sample rate, and fail early if the library is broken
            self._close(self._open())

    def _collect(self, wav, numsamples, events):
        if numsamples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
        return 0

    def _open(self):
        try:
            lib = ctypes.CDLL(str(self._private), mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise SynthError(f"cannot load the espeak-ng library ({e})") from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_VoiceStruct)
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            _unload(lib._handle)
            raise SynthError(f"espeak-ng failed to initialize with the data in {self.data}")
        self.sample_rate = rate
        lib.espeak_SetSynthCallback(self._callback)
        return lib

    @staticmethod
    def _close(lib):
        lib.espeak_Terminate()
        _unload(lib._handle)

    def _set_voice(self, lib, name: str) -> None:
        base, variant = split_voice(name)
        status = lib.espeak_SetVoiceByName(name.encode())
        current = lib.espeak_GetCurrentVoice()
        identifier = current.contents.identifier.decode() if current else ""
        got_base, got_variant = split_voice(identifier)
        got_base = got_base.rsplit("/", 1)[-1]
        if status != _EE_OK or got_base.lower() != base.lower() or got_variant != variant:
            raise VoiceNotFoundError(
                f"espeak-ng has no voice {name!r} (it resolved to "
                f"{identifier or 'nothing'!r}); see available_voices()"
            )

    def check_voice(self, name: str) -> None:
        """Raise :class:`VoiceNotFoundError` unless espeak-ng resolves ``name`` exactly."""
        with self._lock:
            lib = self._open()
            try:
                self._set_voice(lib, name)
            finally:
                self._close(lib)

    def synthesize(
        self,
        text: str,
        voice: str,
        rate: int = 175,
        pitch: int = 50,
        pitch_range: int = 50,
        seed: int = 0,
    ) -> np.ndarray:
        """int16 samples at ``self.sample_rate`` (22050 Hz for the shipped voices)."""
        with self._lock:
            lib = self._open()
            try:
                self._set_voice(lib, voice)
                lib.espeak_SetParameter(_RATE, int(rate), 0)
                lib.espeak_SetParameter(_PITCH, int(pitch), 0)
                lib.espeak_SetParameter(_RANGE, int(pitch_range), 0)
                seed = int(seed) & 0x7FFFFFFF
                if self._libc is not None:
                    self._libc.srand(ctypes.c_uint(seed))
                if hasattr(lib, "espeak_ng_SetRandSeed"):
                    lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
                self._chunks = []
                data = text.encode("utf-8")
                status = lib.espeak_Synth(
                    data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                lib.espeak_Synchronize()
                if status != _EE_OK:
                    raise SynthError(f"espeak-ng failed to speak {text[:40]!r} (status {status})")
                chunks, self._chunks = self._chunks, []
            finally:
                self._close(lib)
        if not chunks:
            raise SynthError(f"espeak-ng produced no audio for {text[:40]!r}")
        return np.concatenate(chunks)


def _unload(handle) -> None:
    unload = getattr(_ctypes, "dlclose", None) or _ctypes.FreeLibrary
    unload(handle)


_PRIVATE = {}


def _private_library_copy(library: Path) -> Path:
    """A copy of the library for this process alone: unloading it then really resets it, even
    if another module of the process has the original loaded."""
    pid = os.getpid()
    if pid not in _PRIVATE:
        folder = Path(tempfile.mkdtemp(prefix="speech_rnn_espeak_"))
        target = folder / "libespeak-ng-speech-rnn.so"
        shutil.copy2(library, target)
        _PRIVATE[pid] = target

        def cleanup(folder=folder, owner=pid):
            if os.getpid() == owner:
                shutil.rmtree(folder, ignore_errors=True)

        atexit.register(cleanup)
    return _PRIVATE[pid]


_ENGINE = {}


def engine() -> Espeak:
    """The process's :class:`Espeak` (created on first use)."""
    pid = os.getpid()
    if pid not in _ENGINE:
        _ENGINE[pid] = Espeak()
    return _ENGINE[pid]


def check_voices(names=VOICES) -> None:
    """Check that each name is both in the data (exact case) and resolved exactly by espeak-ng;
    raise :class:`VoiceNotFoundError` for the first that is not."""
    bases, variants = set(english_base_voices()), set(voice_variants())
    for name in names:
        base, variant = split_voice(name)
        if base not in bases:
            raise VoiceNotFoundError(
                f"espeak-ng has no English base voice {base!r} (have: {', '.join(sorted(bases))})"
            )
        if variant is not None and variant not in variants:
            raise VoiceNotFoundError(
                f"espeak-ng has no voice variant {variant!r} in "
                f"{data_path() / 'voices' / '!v'} (names are "
                f"case-sensitive)"
            )
        engine().check_voice(name)


def synthesize(
    text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50, seed: int = 0
) -> np.ndarray:
    """Clean speech for ``text``: float32 mono at 16 kHz, in [-1, 1]."""
    import soxr

    samples = engine().synthesize(text, voice, rate, pitch, pitch_range, seed)
    audio = samples.astype(np.float32) / 32768.0
    return soxr.resample(audio, engine().sample_rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
