"""Data recipes on the real shared corpora: FSDD connected digits (digit counts, gaps from the
stored word times, split by take, one speaker, deterministic, resumable), the isolated FSDD
split, and the kathleen split by prompt."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from speech_rnn.data import recipes
from speech_rnn.errors import ConfigError
from speech_rnn.manifest import read_manifest
from speech_rnn.text import DIGIT_WORDS

sf = pytest.importorskip("soundfile")
TAKE = re.compile(r"(\d)_([a-z]+)_(\d+)")
COUNTS = {"count": 24, "dev_count": 8, "test_count": 24}
TOL = 1e-3  # word times are rounded to 0.1 ms


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def build(fsdd_dir, out, seed=3, **counts):
    return recipes.fsdd_connected(fsdd_dir, out, seed=seed, progress=False, **{**COUNTS, **counts})


@pytest.fixture(scope="module")
def connected(fsdd_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("connected")
    return out, build(fsdd_dir, out)


def test_connected_digit_strings_are_built_as_promised(connected):
    out, manifests = connected
    takes = {"test": range(0, 5), "dev": range(5, 10), "train": range(10, 50)}
    for split, path in manifests.items():
        lines = rows(path)
        assert len(lines) == COUNTS["count" if split == "train" else f"{split}_count"]
        assert len(read_manifest(path)) == len(lines)  # extra fields are ignored
        for row in lines:
            words = row["words"]
            assert 3 <= len(words) <= 7
            assert row["text"] == " ".join(w for _, _, w in words)
            audio, rate = sf.read(out / row["audio_filepath"], dtype="float32")
            assert rate == recipes.CONNECTED_RATE
            assert row["duration"] == pytest.approx(len(audio) / rate, abs=TOL)
            # Lead-in, gaps between words and tail all lie within 50-300 ms.
            edges = [0.0] + [t for s, e, _ in words for t in (s, e)] + [row["duration"]]
            silences = [edges[i + 1] - edges[i] for i in range(0, len(edges), 2)]
            assert all(0.05 - TOL <= g <= 0.3 + TOL for g in silences), silences
            # One speaker, the word's own digit, takes of the split only.
            for source, (_, _, word) in zip(row["sources"], words):
                digit, speaker, take = TAKE.fullmatch(source).groups()
                assert speaker == row["speaker"]
                assert DIGIT_WORDS[int(digit)] == word
                assert int(take) in takes[split], (split, source)
            # The stored times are where the speech is: the gaps are silence or low noise.
            inside = np.concatenate([audio[round(s * rate) : round(e * rate)] for s, e, _ in words])
            gaps = np.concatenate(
                [
                    audio[round(words[i][1] * rate) + 2 : round(words[i + 1][0] * rate) - 2]
                    for i in range(len(words) - 1)
                ]
            )
            rms = lambda x: float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))  # noqa: E731
            assert rms(gaps) < rms(inside) / 10, row["id"]


def test_connected_digits_vary(connected):
    _, manifests = connected
    lines = [r for path in manifests.values() for r in rows(path)]
    assert {len(r["words"]) for r in lines} == set(range(3, 8))
    assert len({r["speaker"] for r in lines}) >= 3
    assert len({w for r in lines for _, _, w in r["words"]}) == 10


def test_connected_digits_are_deterministic_for_a_seed(connected, fsdd_dir, tmp_path):
    out, manifests = connected
    again = build(fsdd_dir, tmp_path / "again")
    for split in manifests:
        assert again[split].read_bytes() == manifests[split].read_bytes()
    for wav in sorted((out / "audio").glob("*.wav"))[::7]:
        assert (tmp_path / "again" / "audio" / wav.name).read_bytes() == wav.read_bytes()
    other = build(fsdd_dir, tmp_path / "other", seed=4)
    assert other["test"].read_bytes() != manifests["test"].read_bytes()


def test_connected_digits_resume_and_extend(connected, fsdd_dir, tmp_path):
    out, manifests = connected
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    audio = sorted((copy / "audio").glob("*.wav"))
    stamps = {p.name: p.stat().st_mtime_ns for p in audio}
    removed, truncated = audio[0], audio[1]
    expected = {p.name: p.read_bytes() for p in (removed, truncated)}
    removed.unlink()
    truncated.write_bytes(truncated.read_bytes()[:200])
    stamps = {k: v for k, v in stamps.items() if k not in expected}

    resumed = build(fsdd_dir, copy, count=COUNTS["count"] + 6)
    for name, data in expected.items():  # redone, byte for byte
        assert (copy / "audio" / name).read_bytes() == data
    for name, stamp in stamps.items():  # finished files are not rewritten
        assert (copy / "audio" / name).stat().st_mtime_ns == stamp
    for split in ("dev", "test"):
        assert resumed[split].read_bytes() == manifests[split].read_bytes()
    extended = rows(resumed["train"])
    assert len(extended) == COUNTS["count"] + 6
    assert extended[: COUNTS["count"]] == rows(manifests["train"])


def test_connected_digits_refuse_a_folder_built_otherwise(connected, fsdd_dir, tmp_path):
    out, _ = connected
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with pytest.raises(ConfigError, match="seed"):
        build(fsdd_dir, copy, seed=5)
    with pytest.raises(ConfigError, match="positive"):
        build(fsdd_dir, tmp_path / "bad", count=0)


def test_isolated_fsdd_keeps_the_official_split(fsdd_dir, tmp_path):
    manifests = recipes.fsdd(fsdd_dir, tmp_path)
    seen = {}
    for split, path in manifests.items():
        utts = read_manifest(path)
        assert utts
        for utt in utts:
            digit, speaker, take = TAKE.fullmatch(utt.id).groups()
            assert recipes.split_of_take(int(take)) == split
            assert utt.text == DIGIT_WORDS[int(digit)] and utt.speaker == speaker
            assert utt.id not in seen
            seen[utt.id] = split
    total = len(list(fsdd_dir.glob("*.wav")))
    assert len(seen) == total
    if total == 2500:  # the full dataset: 5 speakers x 10 digits x 50 takes
        counts = {s: len(read_manifest(p)) for s, p in manifests.items()}
        assert counts == {"train": 2000, "dev": 250, "test": 250}


def test_kathleen_is_split_by_prompt(kathleen_dir, tmp_path):
    manifests = recipes.kathleen(kathleen_dir, tmp_path)
    files = len(list(kathleen_dir.glob("*.flac")))
    prompts = {}
    for split, path in manifests.items():
        utts = read_manifest(path)
        assert len(utts) >= 0.05 * files, split  # full data: >= 72 of 1,429 (dev has 123)
        for utt in utts:
            prompt = re.sub(r"_\d+$", "", utt.id)
            assert prompts.setdefault(prompt, split) == split, prompt
    total = sum(len(read_manifest(p)) for p in manifests.values())
    assert total == files
    assert set(manifests) == {"train", "dev", "test"}


def test_recipe_command(fsdd_dir, tmp_path, capsys):
    from speech_rnn.cli import main

    code = main(
        [
            "recipe",
            "fsdd-connected",
            "--source",
            str(fsdd_dir),
            "--out",
            str(tmp_path / "c"),
            "--count",
            "3",
            "--dev-count",
            "1",
            "--test-count",
            "2",
            "--quiet",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert re.search(r"train\s+3 utterances", out) and re.search(r"test\s+2 utterances", out)
    code = main(
        ["recipe", "fsdd", "--source", str(tmp_path / "missing"), "--out", str(tmp_path / "i")]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
