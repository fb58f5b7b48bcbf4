"""Bounded fuzzing: random and mutated bytes fed to the audio loader and the manifest reader
raise nothing but the project's documented error types."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speech_rnn.audio import audio_duration, load_audio
from speech_rnn.errors import AudioError, ManifestError, SpeechRnnError
from speech_rnn.manifest import read_manifest

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _valid(fmt: str, subtype: str) -> bytes:
    buffer = io.BytesIO()
    t = np.arange(1600) / 16000
    soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * 300 * t), 16000, format=fmt, subtype=subtype)
    return buffer.getvalue()


SEEDS = {
    "wav": _valid("WAV", "PCM_16"),
    "flac": _valid("FLAC", "PCM_16"),
    "ogg": _valid("OGG", "VORBIS"),
}


def mutate(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for position, value, kind in edits:
        if not out:
            break
        i = position % len(out)
        if kind == 0:
            out[i] = value
        elif kind == 1:
            del out[i : i + value % 64]
        else:
            out[i:i] = bytes([value]) * (value % 16 + 1)
    return bytes(out)


@FUZZ
@given(
    kind=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.integers(0, 2)), max_size=12
    ),
    truncate=st.one_of(st.none(), st.integers(0, 4000)),
)
def test_mutated_audio_raises_only_audio_errors(tmp_path_factory, kind, edits, truncate):
    data = mutate(SEEDS[kind], edits)
    if truncate is not None:
        data = data[:truncate]
    path = tmp_path_factory.mktemp("fuzz") / f"clip.{kind}"
    path.write_bytes(data)
    for probe in (audio_duration, load_audio):
        try:
            result = probe(path)
        except AudioError as e:
            assert str(path) in str(e) and "\n" not in str(e)
            continue
        if probe is load_audio:
            assert result.dtype == np.float32 and np.isfinite(result).all()


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_as_audio_raise_only_audio_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "random.wav"
    path.write_bytes(data)
    try:
        load_audio(path)
    except AudioError:
        pass


ROW = {"audio_filepath": "a.wav", "duration": 1.5, "text": "hello", "id": "x"}


@FUZZ
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=80),
            st.dictionaries(
                st.sampled_from(["audio_filepath", "duration", "text", "id", "speaker"]),
                st.one_of(
                    st.none(),
                    st.booleans(),
                    st.integers(),
                    st.floats(),
                    st.text(max_size=10),
                    st.lists(st.integers(), max_size=2),
                ),
                max_size=5,
            ).map(json.dumps),
            st.just(json.dumps(ROW)),
        ),
        max_size=8,
    ),
    raw=st.binary(max_size=64),
    suffix=st.sampled_from([".jsonl", ".csv"]),
)
def test_fuzzed_manifests_raise_only_manifest_errors(tmp_path_factory, lines, raw, suffix):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "a.wav").write_bytes(SEEDS["wav"])
    path = folder / f"m{suffix}"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + raw)
    problems = []
    try:
        utterances = read_manifest(path, problems=problems)
    except ManifestError:
        return
    for utt in utterances:
        assert utt.duration >= 0 and isinstance(utt.text, str)
    try:
        read_manifest(path)
    except SpeechRnnError:
        pass
