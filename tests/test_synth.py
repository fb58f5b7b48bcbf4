"""The synthetic corpus: sentence generator, espeak-ng voices, determinism, splits, resume."""

import argparse
import dataclasses
import io
import re

import numpy as np
import pytest

from speech_rnn.config import TextConfig
from speech_rnn.errors import SpeechRnnError
from speech_rnn.manifest import read_manifest
from speech_rnn.synth.sentences import (
    MAX_WORDS,
    MIN_WORDS,
    generate_sentences,
    ordinal_words,
    time_words,
    vocabulary,
    year_words,
)
from speech_rnn.text import normalize_text

sf = pytest.importorskip("soundfile")


# ------------------------------------------------------------------ sentences (no espeak)


@pytest.fixture(scope="module")
def sentences():
    return generate_sentences(2000, seed=7)


def test_vocabulary_is_large():
    assert len(vocabulary()) >= 2000


def test_sentences_unique_and_within_length(sentences):
    normalized = [normalize_text(s) for s in sentences]
    assert len(set(normalized)) == len(sentences) == 2000
    lengths = [len(n.split()) for n in normalized]
    assert min(lengths) >= MIN_WORDS and max(lengths) <= MAX_WORDS
    assert len(set(lengths)) >= 12  # short and long sentences both occur


def test_sentences_normalize_cleanly(sentences):
    strict = TextConfig(unknown="error")
    for s in sentences:
        n = normalize_text(s, strict)  # raises on a character outside a-z ' space
        assert re.fullmatch(r"[a-z']+( [a-z']+)*", n), s
        assert not re.search(r"\d", s), s  # numbers are written as words


def test_sentence_words_come_from_the_vocabulary(sentences):
    used = {w for s in sentences for w in normalize_text(s).split()}
    assert used <= vocabulary(), sorted(used - vocabulary())[:20]
    assert len(used) >= 1500  # the vocabulary is really used, not just listed


def test_generator_is_deterministic_and_a_stream(sentences):
    assert generate_sentences(2000, seed=7) == sentences
    assert generate_sentences(300, seed=7) == sentences[:300]
    assert generate_sentences(300, seed=8) != sentences[:300]


def test_number_words():
    assert ordinal_words(1) == "first" and ordinal_words(22) == "twenty second"
    assert ordinal_words(30) == "thirtieth"
    assert year_words(1984) == "nineteen eighty four"
    assert year_words(2007) == "two thousand seven"
    assert year_words(1905) == "nineteen oh five"
    assert time_words(7, 15) == "seven fifteen"
    assert time_words(21, 30, style=1) == "half past nine"
    assert time_words(12, 0, style=1) == "noon"


# ------------------------------------------------------------------ voices and synthesis

espeak = pytest.importorskip("speech_rnn.synth.engine")
synth_corpus = pytest.importorskip("speech_rnn.synth.corpus")
pytest.importorskip("espeakng_loader")


def test_every_voice_exists():
    assert len(espeak.VOICES) >= 20 and len(set(espeak.VOICES)) == len(espeak.VOICES)
    available = set(espeak.available_voices())
    missing = [v for v in espeak.VOICES if v not in available]
    assert not missing, missing
    espeak.check_voices(espeak.VOICES)  # and espeak-ng resolves each one exactly


def test_held_out_voices_are_unseen():
    train, dev, test = (set(synth_corpus.SPLIT_VOICES[s]) for s in ("train", "dev", "test"))
    assert not (train & dev) and not (train & test) and not (dev & test)
    assert len(test) >= 3 and len(dev) >= 2

    def variants(names):
        return {espeak.split_voice(n)[1] for n in names}

    assert not variants(test) & (variants(train) | variants(dev))
    assert not variants(dev) & variants(train)


def test_wrong_voice_names_are_errors():
    with pytest.raises(espeak.VoiceNotFoundError):
        espeak.check_voices(["en-us+M1"])  # the file is "m1": case matters
    with pytest.raises(espeak.VoiceNotFoundError):
        espeak.engine().check_voice("en-us+M1")  # espeak-ng itself would fall back silently
    with pytest.raises(espeak.VoiceNotFoundError):
        espeak.check_voices(["xx-nowhere+m1"])
    assert issubclass(espeak.VoiceNotFoundError, SpeechRnnError)


def _median_f0(audio, sr=16000):
    """Median pitch of the voiced frames, by autocorrelation (60-400 Hz)."""
    frame, hop = 640, 320
    lo, hi = sr // 400, sr // 60
    f0s = []
    for start in range(0, len(audio) - frame, hop):
        x = audio[start : start + frame] - audio[start : start + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.02:
            continue
        ac = np.correlate(x, x, "full")[frame - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            f0s.append(sr / lag)
    return float(np.median(f0s))


def test_synthesis_output_and_voices_differ():
    text = "The quick brown fox jumps over the lazy dog near the river."
    male = espeak.synthesize(text, "en-us+m3")
    female = espeak.synthesize(text, "en-us+f2")
    for audio in (male, female):
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert 1.5 < len(audio) / espeak.SAMPLE_RATE < 8
        assert np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
        assert np.sqrt(np.mean(audio**2)) > 0.01
    f0_male, f0_female = _median_f0(male), _median_f0(female)
    assert 70 < f0_male < 150, f0_male
    assert f0_female > 1.5 * f0_male, (f0_male, f0_female)
    # Same variant, other accent: a different pronunciation, not the same samples.
    scottish = espeak.synthesize(text, "en-gb-scotland+m3")
    assert len(scottish) != len(male) or not np.array_equal(scottish, male)


def test_rate_and_pitch_take_effect():
    text = "Please call me at half past nine tomorrow morning."
    slow = espeak.synthesize(text, "en-us+m1", rate=130)
    fast = espeak.synthesize(text, "en-us+m1", rate=220)
    assert len(slow) > 1.3 * len(fast)
    low = _median_f0(espeak.synthesize(text, "en-us+m1", pitch=20))
    high = _median_f0(espeak.synthesize(text, "en-us+m1", pitch=80))
    assert high > 1.2 * low


def test_rendering_is_deterministic_whatever_came_before():
    text = "My phone number is four two seven nine one."
    params = synth_corpus.utterance_params(seed=3, split="train", index=5)
    first = synth_corpus.wav_bytes(synth_corpus.render(text, params))
    synth_corpus.render(
        "Something else entirely, spoken first.", synth_corpus.utterance_params(3, "dev", 1)
    )
    espeak.synthesize("And another voice.", "en+klatt3", seed=99)
    second = synth_corpus.wav_bytes(synth_corpus.render(text, params))
    assert first == second
    audio, sr = sf.read(io.BytesIO(first), dtype="float32")
    info = sf.info(io.BytesIO(first))
    assert sr == 16000 and info.channels == 1 and info.subtype == "PCM_16"
    assert np.abs(audio).max() <= 10 ** (params.peak_db / 20) + 1e-3


def test_noise_and_reverb_options():
    rng = np.random.default_rng(0)
    plain = synth_corpus.draw_params(
        "en-us+m1", np.random.default_rng(1), noise=False, reverb=False
    )
    assert plain.snr_db is None and plain.rt60 is None
    noisy = synth_corpus.draw_params("en-us+m1", np.random.default_rng(1), noise=True, reverb=True)
    # Turning an effect off leaves every other parameter as it was.
    assert (plain.rate, plain.pitch, plain.espeak_seed) == (
        noisy.rate,
        noisy.pitch,
        noisy.espeak_seed,
    )
    params = [synth_corpus.draw_params("en-us+m1", rng) for _ in range(200)]
    snrs = [p.snr_db for p in params if p.snr_db is not None]
    assert 100 < len(snrs) < 200 and min(snrs) >= 10 and max(snrs) <= 40
    assert 50 < sum(p.rt60 is not None for p in params) < 150
    text = "Open the door."
    base = synth_corpus.draw_params("en-us+m1", np.random.default_rng(4), noise=False, reverb=False)
    clean = synth_corpus.render(text, base)
    lead = int(base.pad_start * espeak.SAMPLE_RATE)
    assert np.abs(clean[: lead - 10]).max() < 1e-4  # silent lead-in
    with_noise = synth_corpus.render(text, dataclasses.replace(base, snr_db=15.0))
    assert np.abs(with_noise[: lead - 10]).max() > 1e-3  # noise fills the pauses
    with_reverb = synth_corpus.render(text, dataclasses.replace(base, rt60=0.6))
    assert len(with_reverb) == len(clean) and not np.allclose(with_reverb, clean, atol=1e-3)


# ------------------------------------------------------------------ the corpus

HOURS = 0.02


def _snapshot(folder):
    return {
        p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    manifests = synth_corpus.build_corpus(out, hours=HOURS, seed=11, workers=1, progress=False)
    return out, manifests


def test_corpus_layout(corpus):
    out, manifests = corpus
    assert set(manifests) == {"train", "dev", "test"}
    total = 0.0
    listed = set()
    for split, path in manifests.items():
        assert path == out / f"{split}.jsonl"
        utts = read_manifest(path)  # every file exists
        assert utts, split
        for u in utts:
            info = sf.info(u.audio_filepath)
            assert info.samplerate == 16000 and info.channels == 1
            assert info.subtype == "PCM_16"
            assert abs(info.frames / 16000 - u.duration) < 1e-3
            assert u.id.startswith(split + "-") and u.speaker in synth_corpus.SPLIT_VOICES[split]
            listed.add(u.audio_filepath)
        total += sum(u.duration for u in utts)
    assert total >= HOURS * 3600
    on_disk = {str(p) for p in (out / "audio").iterdir()}
    assert on_disk == listed  # no stray or temporary files


def test_splits_share_no_sentence_and_no_voice(corpus):
    _, manifests = corpus
    texts, voices = {}, {}
    for split, path in manifests.items():
        utts = read_manifest(path)
        texts[split] = {normalize_text(u.text) for u in utts}
        voices[split] = {u.speaker for u in utts}
        assert len(texts[split]) == len(utts)  # unique within the split too
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not texts[a] & texts[b]
        assert not voices[a] & voices[b]
    assert voices["test"] <= set(espeak.TEST_VOICES)
    assert voices["dev"] <= set(espeak.DEV_VOICES)


def test_corpus_is_deterministic(corpus, tmp_path):
    out, manifests = corpus
    again = synth_corpus.build_corpus(
        tmp_path / "again", hours=HOURS, seed=11, workers=2, progress=False
    )
    for split in manifests:  # paths in manifests are relative: the bytes are equal
        assert again[split].read_bytes() == manifests[split].read_bytes()
    original = {k: v[0] for k, v in _snapshot(out).items()}
    assert {k: v[0] for k, v in _snapshot(tmp_path / "again").items()} == original


def test_corpus_resumes_without_rewriting(corpus):
    out, _ = corpus
    before = _snapshot(out)
    synth_corpus.build_corpus(out, hours=HOURS, seed=11, workers=1, progress=False)
    after = _snapshot(out)
    assert after.keys() == before.keys()
    for name, (data, mtime) in before.items():
        assert after[name][0] == data
        if name.suffix == ".wav":
            assert after[name][1] == mtime, name  # not written again
    # A lost file is made again, identical.
    victim = sorted((out / "audio").glob("train-*.wav"))[1]
    data = victim.read_bytes()
    victim.unlink()
    synth_corpus.build_corpus(out, hours=HOURS, seed=11, workers=1, progress=False)
    assert victim.read_bytes() == data


def test_other_settings_in_the_same_folder_are_refused(corpus):
    out, _ = corpus
    with pytest.raises(espeak.SynthError, match="seed"):
        synth_corpus.build_corpus(out, hours=HOURS, seed=12, workers=1, progress=False)
    with pytest.raises(espeak.SynthError, match="noise"):
        synth_corpus.build_corpus(out, hours=HOURS, seed=11, noise=False, workers=1, progress=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(SpeechRnnError, match="hours"):
        synth_corpus.build_corpus(tmp_path / "x", hours=0)
    with pytest.raises(SpeechRnnError, match="workers"):
        synth_corpus.build_corpus(tmp_path / "x", hours=0.01, workers=0)


def test_sentence_split_is_stable():
    assert synth_corpus.sentence_split("Open the door.", 0) == synth_corpus.sentence_split(
        "open the door", 0
    )
    counts = {"train": 0, "dev": 0, "test": 0}
    for s in generate_sentences(2000, seed=2):
        counts[synth_corpus.sentence_split(s, 2)] += 1
    assert 40 < counts["test"] < 170 and 40 < counts["dev"] < 170


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synth_corpus.add_arguments(parser)
    for action in parser._actions:
        if action.dest != "help":
            assert action.help, action.dest
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path / "c"),
            "--hours",
            "0.005",
            "--seed",
            "4",
            "--no-noise",
            "--no-reverb",
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert synth_corpus.run(args) == 0
    printed = capsys.readouterr().out
    assert "train" in printed and "test" in printed
    utts = read_manifest(tmp_path / "c" / "train.jsonl")
    params = synth_corpus.utterance_params(4, "train", 0, noise=False, reverb=False)
    assert params.snr_db is None and utts[0].speaker == params.voice


def test_the_digits_grammar_speaks_digit_strings_in_each_splits_own_voices(corpus, tmp_path):
    from speech_rnn.text import DIGIT_WORDS

    out = tmp_path / "digits"
    manifests = synth_corpus.build_corpus(
        out, hours=0.01, seed=3, workers=1, progress=False, grammar="digits"
    )
    lengths = set()
    for split, path in manifests.items():
        utts = read_manifest(path)
        assert {u.speaker for u in utts} <= set(synth_corpus.SPLIT_VOICES[split])
        for u in utts:
            words = u.text.split()
            assert set(words) <= set(DIGIT_WORDS) and 1 <= len(words) <= synth_corpus.MAX_DIGITS
            lengths.add(len(words))
    assert len(lengths) > 3  # strings of several lengths, single digits included
    assert 1 in lengths
    again = synth_corpus.build_corpus(
        tmp_path / "again", hours=0.01, seed=3, workers=1, progress=False, grammar="digits"
    )
    assert again["train"].read_bytes() == manifests["train"].read_bytes()
    sentences_folder, _ = corpus
    with pytest.raises(espeak.SynthError, match="grammar"):
        synth_corpus.build_corpus(
            sentences_folder, hours=HOURS, seed=11, workers=1, progress=False, grammar="digits"
        )
    with pytest.raises(espeak.SynthError, match="grammar"):  # and the other way round
        synth_corpus.build_corpus(out, hours=0.01, seed=3, workers=1, progress=False)
    with pytest.raises(espeak.SynthError, match="grammar must be one of sentences, digits"):
        synth_corpus.build_corpus(out, hours=0.01, grammar="numbers")
