"""Every bad input gets a one-line error naming the file (and line) and the problem, through
the real loader, manifest reader, pre-flight check and CLI; nothing reaches TensorFlow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
from conftest import TINY_TRAIN, cli, run_cli, short_kathleen_clips

from speech_rnn.audio import load_audio
from speech_rnn.config import Config
from speech_rnn.errors import AudioError, ManifestError
from speech_rnn.manifest import Utterance, read_manifest, write_manifest
from speech_rnn.preflight import PreflightError, check_utterances, preflight
from speech_rnn.text import Vocabulary

SR = 16000


def tone(seconds=1.0, rate=SR, channels=1, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    signal = amplitude * np.sin(2 * np.pi * 440 * t)
    return np.repeat(signal[:, None], channels, axis=1) if channels > 1 else signal


# -- audio ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bad_audio(tmp_path_factory):
    """{name: path} of broken audio files."""
    d = tmp_path_factory.mktemp("bad_audio")
    files = {"missing": d / "missing.wav"}
    files["zero_bytes"] = d / "zero.wav"
    files["zero_bytes"].write_bytes(b"")
    files["text_as_wav"] = d / "text.wav"
    files["text_as_wav"].write_text("RIFF? no, just some text pretending to be audio\n" * 20)
    full = d / "full.wav"
    soundfile.write(full, tone(2.0), SR, subtype="PCM_16")
    files["truncated_wav"] = d / "truncated.wav"
    files["truncated_wav"].write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full_flac = d / "full.flac"
    soundfile.write(full_flac, tone(2.0), SR, subtype="PCM_16")
    files["truncated_flac"] = d / "truncated.flac"
    files["truncated_flac"].write_bytes(full_flac.read_bytes()[: full_flac.stat().st_size // 2])
    for bad in ("nan", "inf"):
        data = tone(1.0).astype(np.float32)
        data[100:200] = np.nan if bad == "nan" else np.inf
        files[f"float_{bad}"] = d / f"{bad}.wav"
        soundfile.write(files[f"float_{bad}"], data, SR, subtype="FLOAT")
    return files


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing", "file not found"),
        ("zero_bytes", "empty file"),
        ("text_as_wav", "unreadable audio"),
        ("truncated_wav", "truncated"),
        ("truncated_flac", "truncated|unreadable"),
        ("float_nan", "NaN or infinite"),
        ("float_inf", "NaN or infinite"),
    ],
)
def test_broken_audio_is_one_clear_error(bad_audio, name, message):
    path = bad_audio[name]
    with pytest.raises(AudioError, match=message) as info:
        load_audio(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text


@pytest.mark.parametrize(
    "subtype, rate, channels, suffix",
    [
        ("PCM_U8", 16000, 1, "wav"),
        ("PCM_24", 16000, 1, "wav"),
        ("FLOAT", 16000, 1, "wav"),
        ("DOUBLE", 16000, 1, "wav"),
        ("PCM_16", 44100, 2, "wav"),
        ("PCM_16", 8000, 1, "wav"),
        ("VORBIS", 22050, 1, "ogg"),
        ("MPEG_LAYER_III", 16000, 1, "mp3"),
    ],
)
def test_any_format_rate_and_channel_count_loads_as_16k_mono(
    tmp_path, subtype, rate, channels, suffix
):
    path = tmp_path / f"tone.{suffix}"
    try:
        soundfile.write(path, tone(1.0, rate, channels), rate, subtype=subtype)
    except (soundfile.LibsndfileError, TypeError, ValueError) as e:
        pytest.skip(f"libsndfile here cannot write {subtype}: {e}")
    waveform = load_audio(path, SR)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert abs(len(waveform) - SR) < SR * 0.06  # 1 s (mp3 adds codec padding)
    peak = np.abs(waveform).max()
    assert 0.4 < peak < 0.6, peak  # same scale whatever the encoding


def test_silent_and_very_short_audio_transcribe_to_text_without_error(tiny_run, tmp_path):
    from speech_rnn import load_model

    recognizer = load_model(tiny_run)
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(SR, np.float32), SR)
    short = tmp_path / "short.wav"
    soundfile.write(short, tone(0.05), SR)
    for path in (silent, short):
        result = recognizer.transcribe(path)
        assert isinstance(result.text, str)


# -- manifests ------------------------------------------------------------------------------
def test_manifest_problems_are_reported_with_line_numbers(tmp_path):
    clip = short_kathleen_clips(1)[0]
    good = json.dumps(
        {"audio_filepath": clip.audio_filepath, "duration": clip.duration, "text": "ok", "id": "a"}
    )
    lines = [
        good,
        "{not json",
        json.dumps({"audio_filepath": clip.audio_filepath, "duration": 1.0}),
        json.dumps({"audio_filepath": clip.audio_filepath, "duration": -2.0, "text": "x"}),
        json.dumps({"audio_filepath": "/nowhere/x.wav", "duration": 1.0, "text": "x"}),
        json.dumps(
            {"audio_filepath": "../../../../../etc/hosts.wav", "duration": 1.0, "text": "x"}
        ),
        good,  # duplicate id "a"
        "[1, 2]",
    ]
    path = tmp_path / "m.jsonl"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))  # BOM + CRLF
    problems = []
    utterances = read_manifest(path, problems=problems)
    assert [u.id for u in utterances] == ["a"]
    by_line = {p.line: p.message for p in problems}
    assert "not valid JSON" in by_line[2]
    assert "missing field 'text'" in by_line[3]
    assert "negative duration" in by_line[4]
    assert "not found" in by_line[5] and "not found" in by_line[6]
    assert "duplicate id 'a'" in by_line[7]
    assert "JSON object" in by_line[8]
    assert all(str(path) in str(p) and "\n" not in str(p) for p in problems)
    with pytest.raises(ManifestError, match=r"m.jsonl:2: not valid JSON"):
        read_manifest(path)


def test_csv_manifests_with_cr_line_ends_or_a_stray_cr_are_read_or_reported(tmp_path):
    clip = short_kathleen_clips(1)[0]
    header, row = "wav_filename,wav_filesize,transcript", f"{clip.audio_filepath},0,ok"
    for ending in ("\r", "\r\n"):  # old Mac and Windows line ends
        path = tmp_path / "m.csv"
        path.write_text(header + ending + row + ending, newline="")
        assert [u.text for u in read_manifest(path)] == ["ok"]
    path.write_text(f'{header}\n"{clip.audio_filepath}\r,0,ok\n', newline="")  # unclosed quote
    with pytest.raises(ManifestError, match=r"m.csv:3: fewer columns than the header"):
        read_manifest(path)
    path.write_text(f"{header}\n{clip.audio_filepath},0,{'a' * 200_000}\n")  # csv.Error inside
    with pytest.raises(ManifestError, match=r"m.csv:\d+: malformed CSV \(field larger"):
        read_manifest(path)


# -- pre-flight ------------------------------------------------------------------------------
def test_preflight_reports_every_kind_of_bad_utterance(tmp_path, bad_audio):
    clip = short_kathleen_clips(1)[0]
    long_wav = tmp_path / "long.wav"
    soundfile.write(long_wav, tone(31.0), SR)
    tiny_wav = tmp_path / "tiny.wav"
    soundfile.write(tiny_wav, tone(0.05), SR)
    good = Utterance(clip.audio_filepath, clip.duration, "HELLO, World! It's 42 ÉTÉ.")
    utterances = [
        good,
        Utterance(clip.audio_filepath, clip.duration, "?!"),  # empty
        Utterance(clip.audio_filepath, clip.duration, "naïve ☃ x" * 1),  # ok: normalized
        Utterance(clip.audio_filepath, clip.duration, "word " * 120),  # CTC too long
        Utterance(clip.audio_filepath, clip.duration, "zzz"),  # OOV for vocab
        Utterance(str(long_wav), 31.0, "a long one"),
        Utterance(str(tiny_wav), 0.05, "a"),
        Utterance(str(bad_audio["truncated_wav"]), 2.0, "truncated"),
        Utterance(str(bad_audio["float_nan"]), 1.0, "nan"),
        Utterance(str(bad_audio["zero_bytes"]), 1.0, "zero"),
    ]
    vocab = Vocabulary(tuple("abcdefghijklmnopqrstuvwxy' "))  # no "z"
    config = Config()
    result = check_utterances(utterances, vocab, config, decode_audio=True)
    assert [e.text for e in result.examples] == ["hello world it's forty two ete", "naive x"]
    messages = [p.message for p in result.problems]
    assert len(messages) == 8
    expected = [
        "empty transcript",
        "too long for its audio under CTC",
        "outside the vocabulary",
        "over audio.max_duration",
        "under audio.min_duration",
        "truncated",
        "NaN or infinite",
        "empty file",
    ]
    for fragment in expected:
        assert any(fragment in m for m in messages), (fragment, messages)
    summary = result.summary("train")
    assert "2 usable utterances, 8 dropped" in summary and str(tiny_wav) in summary
    with pytest.raises(PreflightError, match="8 unusable utterance.*strict"):
        preflight(
            utterances, vocab, config.with_overrides(["train.strict=true"]), "train", strict=True
        )


def test_train_cli_drops_bad_utterances_and_strict_stops(tmp_path, bad_audio):
    clips = short_kathleen_clips(3)
    bad = [
        Utterance(str(bad_audio["truncated_flac"]), 2.0, "broken"),
        Utterance(clips[0].audio_filepath, clips[0].duration, ""),
    ]
    write_manifest(clips + bad, tmp_path / "train.jsonl")
    sets = [a for item in TINY_TRAIN for a in ("--set", item)]
    run = cli(
        "train",
        "--train",
        tmp_path / "train.jsonl",
        "--out",
        tmp_path / "run",
        "--epochs",
        1,
        "--quiet",
        *sets,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    # dropped utterances are a warning, on stderr
    assert "warning: train" in run.stderr and "3 usable utterances, 2 dropped" in run.stderr
    assert "truncated.flac" in run.stderr
    # the console script: its whole stderr, TensorFlow's start-up included, is one line
    strict = run_cli(
        "train",
        "--train",
        tmp_path / "train.jsonl",
        "--out",
        tmp_path / "run2",
        "--strict",
        "--quiet",
        *sets,
    )
    assert strict.returncode == 2
    assert "strict" in strict.stderr and "Traceback" not in strict.stderr
    assert len(strict.stderr.strip().splitlines()) == 1


def test_transcribe_reports_failed_files_and_goes_on(tiny_run, bad_audio):
    clip = short_kathleen_clips(1)[0]
    proc = cli(
        "transcribe",
        "--model",
        tiny_run,
        bad_audio["text_as_wav"],
        clip.audio_filepath,
        bad_audio["missing"],
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith(clip.audio_filepath)
    assert "text.wav" in proc.stderr and "missing.wav" in proc.stderr
    assert "Traceback" not in proc.stderr
