"""The pre-flight check at scale: a process pool that agrees with the serial check, and a
cache of the audio results that a restart reuses and a changed file or line invalidates."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace

import pytest
from conftest import short_kathleen_clips

from speech_rnn import preflight as pf
from speech_rnn.config import Config
from speech_rnn.manifest import Utterance
from speech_rnn.text import Vocabulary, normalize_text

CONFIG = Config()


@pytest.fixture
def corpus(tmp_path):
    """Copies of four real clips (ours to touch), and a vocabulary for their transcripts."""
    clips = []
    for utt in short_kathleen_clips(4, max_seconds=3.0):
        copy = tmp_path / "audio" / os.path.basename(utt.audio_filepath)
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(utt.audio_filepath, copy)
        clips.append(replace(utt, audio_filepath=str(copy)))
    vocab = Vocabulary.from_transcripts([normalize_text(u.text, CONFIG.text) for u in clips])
    return clips, vocab


def repeated(clips, vocab, count):
    """``count`` utterances over the clips under distinct ids, with some bad ones mixed in."""
    absent = next(c for c in "qzxjkvwy" if c not in vocab.chars)
    out = []
    for i in range(count):
        utt = replace(clips[i % len(clips)], id=f"u{i}")
        if i % 97 == 5:
            utt = replace(utt, audio_filepath=utt.audio_filepath + ".missing.flac")
        elif i % 89 == 7:
            utt = replace(utt, text="")
        elif i % 83 == 9:
            utt = replace(utt, text=utt.text + " " + absent)
        out.append(utt)
    return out


def counting_probe(monkeypatch):
    """Count the audio reads of a serial check (workers=1 runs in this process)."""
    calls = []
    real = pf._probe_audio

    def probe(path, decode, sample_rate):
        calls.append(path)
        return real(path, decode, sample_rate)

    monkeypatch.setattr(pf, "_probe_audio", probe)
    return calls


def test_the_pool_gives_the_serial_result(corpus):
    clips, vocab = corpus
    utterances = repeated(clips, vocab, 3 * pf.CHUNK + 17)  # several chunks, the last one short
    serial = pf.check_utterances(utterances, vocab, CONFIG, workers=1)
    pooled = pf.check_utterances(utterances, vocab, CONFIG, workers=2)
    assert pooled.examples == serial.examples
    assert pooled.problems == serial.problems
    kinds = {p.message.split(":")[0] for p in serial.problems}
    assert kinds == {
        "file not found",
        "empty transcript after normalization",
        "characters outside the vocabulary",
    }
    bad = [i for i in range(len(utterances)) if i % 97 == 5 or i % 89 == 7 or i % 83 == 9]
    assert len(serial.problems) == len(bad)
    assert len(serial.examples) + len(serial.problems) == len(utterances)
    first = str(serial.problems[0])
    assert first.startswith(utterances[5].audio_filepath) and "\n" not in first


def test_a_restart_reuses_the_cache_and_a_change_invalidates_only_what_changed(
    corpus, tmp_path, monkeypatch
):
    clips, vocab = corpus
    utterances = [replace(u, id=f"u{i}") for i, u in enumerate(clips)]
    calls = counting_probe(monkeypatch)
    cache = tmp_path / "cache"

    def start(utts):
        calls.clear()
        before = len(pf.preflight(utts, vocab, CONFIG, "train x.jsonl", False, cache))
        return before, list(calls)

    assert start(utterances) == (4, [u.audio_filepath for u in utterances])
    assert start(utterances) == (4, [])  # the restart reads no audio
    saved = json.loads((cache / pf.cache_name("train x.jsonl")).read_text())
    assert len(saved["files"]) == 4

    touched = clips[1].audio_filepath  # a new modification time
    os.utime(touched, ns=(os.stat(touched).st_atime_ns, os.stat(touched).st_mtime_ns + 10**9))
    assert start(utterances) == (4, [touched])
    grown = clips[2].audio_filepath  # a new size (same time): a truncated file, now dropped
    stamp = os.stat(grown)
    with open(grown, "r+b") as f:
        f.truncate(stamp.st_size // 2)
    os.utime(grown, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert start(utterances)[1] == [grown]
    added = Utterance(clips[0].audio_filepath.replace(".flac", "-new.flac"), 1.0, "a", id="n")
    shutil.copyfile(clips[0].audio_filepath, added.audio_filepath)
    assert start(utterances + [added])[1] == [added.audio_filepath]  # a line added
    assert start(utterances + [added])[1] == []


def test_the_cache_is_not_used_for_other_probe_settings(corpus, tmp_path, monkeypatch):
    clips, vocab = corpus
    calls = counting_probe(monkeypatch)
    cache = tmp_path / "cache"
    headers = Config().with_overrides(["train.verify_audio=false"])
    pf.preflight(clips, vocab, headers, "dev", False, cache)
    decoding = Config().with_overrides(["train.verify_audio=true"])
    calls.clear()
    pf.preflight(clips, vocab, decoding, "dev", False, cache)
    assert len(calls) == 4  # header durations are no answer to a full decode
    calls.clear()
    pf.preflight(clips, vocab, decoding, "dev", False, cache)
    assert calls == []


def test_training_writes_the_preflight_cache_into_the_run(tiny_run):
    files = list((tiny_run / "cache").glob("preflight-*.json"))
    assert len(files) == 2  # train and dev
    assert all(json.loads(f.read_text())["files"] for f in files)
