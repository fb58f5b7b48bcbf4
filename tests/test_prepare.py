"""Tests of speech_rnn.data.prepare on small look-alike trees of each layout, built from the real
recordings in the shared data folder (or the few committed in tests/fixtures/speech)."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
from pathlib import Path

import pytest
import soundfile
from conftest import FIXTURE_SPEECH, FULL_SHARED, shared_data

from speech_rnn.data.prepare import (
    LAYOUTS,
    PrepareReport,
    add_arguments,
    detect_layout,
    format_report,
    group_key,
    import_layout,
    parse_fractions,
    prepare,
    run,
    split_utterances,
)
from speech_rnn.errors import AudioError, ConfigError, ManifestError
from speech_rnn.manifest import Problem, Utterance, read_manifest, write_manifest
from speech_rnn.text import normalize_text

KATHLEEN = shared_data() / "kathleen"
FSDD = shared_data() / "fsdd"
KATHLEEN_TEXTS = FIXTURE_SPEECH / "kathleen_texts.jsonl"  # see make_speech_fixtures.py

# Three takes of a0001 and a0002, two of a0003: repeated prompts with identical texts.
KATHLEEN_STEMS = [
    "arctic_a0001_1592748574",
    "arctic_a0001_1592748585",
    "arctic_a0001_1592748600",
    "arctic_a0002_1592748530",
    "arctic_a0002_1592748544",
    "arctic_a0003_1592748500",
]
FSDD_NAMES = ["7_jackson_0.wav", "7_jackson_12.wav", "3_theo_5.wav", "0_lucas_4.wav"]


def kathleen_text(stem):
    return (KATHLEEN / f"{stem}.txt").read_text(encoding="utf-8").strip()


def header_duration(path):
    return soundfile.info(str(path)).duration


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """One small tree (or file) per layout: {layout: (path, expected {id: (text, speaker)})}."""
    root = tmp_path_factory.mktemp("layouts")
    out = {}

    folder = root / "folder"
    folder.mkdir()
    for stem in KATHLEEN_STEMS:
        shutil.copy(KATHLEEN / f"{stem}.flac", folder)
        shutil.copy(KATHLEEN / f"{stem}.txt", folder)
    out["folder"] = (folder, {s: (kathleen_text(s), None) for s in KATHLEEN_STEMS})

    fsdd = root / "fsdd"
    fsdd.mkdir()
    for name in FSDD_NAMES:
        shutil.copy(FSDD / name, fsdd)
    words = {"7": "seven", "3": "three", "0": "zero"}
    out["fsdd"] = (fsdd, {n[:-4]: (words[n[0]], n.split("_")[1]) for n in FSDD_NAMES})

    libri = root / "libri"
    chapter = libri / "19" / "198"
    chapter.mkdir(parents=True)
    lines, expected = [], {}
    for number, stem in enumerate(KATHLEEN_STEMS[:3]):
        utt_id = f"19-198-{number:04d}"
        shutil.copy(KATHLEEN / f"{stem}.flac", chapter / f"{utt_id}.flac")
        text = kathleen_text(stem).upper()
        lines.append(f"{utt_id} {text}")
        expected[utt_id] = (text, "19")
    (chapter / "19-198.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out["librispeech"] = (libri, expected)

    lj = root / "LJSpeech-1.1"
    (lj / "wavs").mkdir(parents=True)
    rows = [
        'LJ001-0001|Raw "quoted" text, 1|Normalized "quoted" text, one',
        "LJ001-0002|Raw text only 2|",
        "LJ001-0003|Raw text three|Normalized text three",
    ]
    for stem, row in zip(KATHLEEN_STEMS[3:], rows):
        data, rate = soundfile.read(KATHLEEN / f"{stem}.flac")
        soundfile.write(lj / "wavs" / f"{row.split('|')[0]}.wav", data, rate)
    (lj / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out["ljspeech"] = (
        lj,
        {
            "LJ001-0001": ('Normalized "quoted" text, one', None),
            "LJ001-0002": ("Raw text only 2", None),
            "LJ001-0003": ("Normalized text three", None),
        },
    )

    if "MP3" in soundfile.available_formats():
        cv = root / "cv-corpus" / "en"
        (cv / "clips").mkdir(parents=True)
        expected = {}
        header = "client_id\tpath\tsentence\tup_votes\tdown_votes\n"
        for split, stems in (
            ("train", KATHLEEN_STEMS[:2]),
            ("dev", KATHLEEN_STEMS[3:4]),
            ("test", KATHLEEN_STEMS[5:6]),
        ):
            body = []
            for stem in stems:
                clip = f"common_voice_en_{stem[-4:]}"
                data, rate = soundfile.read(KATHLEEN / f"{stem}.flac")
                soundfile.write(cv / "clips" / f"{clip}.mp3", data, rate, format="MP3")
                sentence = '"' + kathleen_text(stem)  # a stray quote, as CV has
                body.append(f"client{split}\t{clip}.mp3\t{sentence}\t2\t0")
                expected[clip] = (sentence, f"client{split}")
            (cv / f"{split}.tsv").write_text(header + "\n".join(body) + "\n", encoding="utf-8")
        out["commonvoice"] = (cv, expected)

    man_dir = root / "manifests"
    utts = [
        Utterance(
            str(KATHLEEN / f"{s}.flac"),
            header_duration(KATHLEEN / f"{s}.flac"),
            kathleen_text(s),
            "kathleen",
            s,
        )
        for s in KATHLEEN_STEMS[:2]
    ]
    write_manifest(utts, man_dir / "data.jsonl")
    out["manifest"] = (
        man_dir / "data.jsonl",
        {s: (kathleen_text(s), "kathleen") for s in KATHLEEN_STEMS[:2]},
    )
    csv_rows = ["wav_filename,wav_filesize,transcript"]
    for name in FSDD_NAMES[:2]:
        csv_rows.append(f"{FSDD / name},{(FSDD / name).stat().st_size},seven")
    (man_dir / "ds.csv").write_text("\n".join(csv_rows) + "\n", encoding="utf-8")
    out["csv"] = (man_dir / "ds.csv", None)
    return out


def flatten(splits):
    return [u for utts in splits.values() for u in utts]


# -- detection and importers -----------------------------------------------------------


def test_detect_layout_of_each_tree(trees):
    for layout, (path, _) in trees.items():
        assert detect_layout(path) == layout


def test_detect_layout_failures_say_why(tmp_path):
    with pytest.raises(ManifestError, match="no audio files"):
        detect_layout(tmp_path)
    shutil.copy(KATHLEEN / f"{KATHLEEN_STEMS[0]}.flac", tmp_path)
    with pytest.raises(ManifestError, match="no same-named .txt"):
        detect_layout(tmp_path)
    with pytest.raises(ManifestError, match="not found"):
        detect_layout(tmp_path / "missing")
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(ManifestError, match=".jsonl/.json or .csv"):
        detect_layout(tmp_path / "notes.md")


@pytest.mark.parametrize(
    "layout", ["folder", "fsdd", "librispeech", "ljspeech", "commonvoice", "manifest"]
)
def test_import_layout_texts_speakers_ids_durations(trees, layout):
    if layout not in trees:
        pytest.skip("soundfile cannot write MP3 here, so no Common Voice clips")
    path, expected = trees[layout]
    problems = []
    utts = flatten(import_layout(path, layout, problems))
    assert problems == []
    assert {u.id: (u.text, u.speaker) for u in utts} == expected
    for utt in utts:
        assert os.path.isabs(utt.audio_filepath)
        assert utt.duration == pytest.approx(header_duration(utt.audio_filepath), abs=1e-3)
        assert utt.duration > 0.2


def test_import_csv_manifest(trees):
    utts = import_layout(trees["csv"][0], "csv")["all"]
    assert [Path(u.audio_filepath).name for u in utts] == sorted(FSDD_NAMES[:2])
    assert all(u.text == "seven" and u.duration > 0.2 for u in utts)


def test_fsdd_keeps_official_split(trees):
    splits = import_layout(trees["fsdd"][0], "fsdd")
    assert {k: [u.id for u in v] for k, v in splits.items()} == {
        "train": ["3_theo_5", "7_jackson_12"],
        "test": ["0_lucas_4", "7_jackson_0"],
    }


def test_commonvoice_splits_and_mp3_durations(trees):
    if "commonvoice" not in trees:
        pytest.skip("soundfile cannot write MP3 here, so no Common Voice clips")
    splits = import_layout(trees["commonvoice"][0], "commonvoice")
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "dev": 1, "test": 1}
    original = header_duration(KATHLEEN / f"{KATHLEEN_STEMS[0]}.flac")
    assert splits["train"][0].duration == pytest.approx(original, abs=0.1)


def test_folder_problems_are_collected_or_raised(tmp_path):
    for stem in KATHLEEN_STEMS[:2]:
        shutil.copy(KATHLEEN / f"{stem}.flac", tmp_path)
        shutil.copy(KATHLEEN / f"{stem}.txt", tmp_path)
    shutil.copy(KATHLEEN / f"{KATHLEEN_STEMS[2]}.flac", tmp_path)  # no transcript
    (tmp_path / "empty.wav").write_bytes(b"")  # zero bytes
    (tmp_path / "empty.txt").write_text("hello")
    problems = []
    utts = import_layout(tmp_path, "folder", problems)["all"]
    assert [u.id for u in utts] == KATHLEEN_STEMS[:2]
    assert all(isinstance(p, Problem) for p in problems)
    messages = sorted(str(p) for p in problems)
    assert len(messages) == 2
    assert any("empty.wav" in m and "0 bytes" in m for m in messages)
    assert any(KATHLEEN_STEMS[2] in m and "no transcript" in m for m in messages)
    with pytest.raises(ManifestError, match="no transcript"):
        import_layout(tmp_path, "folder")
    (tmp_path / f"{KATHLEEN_STEMS[2]}.flac").unlink()
    with pytest.raises(AudioError, match="0 bytes"):
        import_layout(tmp_path, "folder")


def test_librispeech_missing_audio_names_the_line(tmp_path):
    chapter = tmp_path / "19" / "198"
    chapter.mkdir(parents=True)
    shutil.copy(KATHLEEN / f"{KATHLEEN_STEMS[0]}.flac", chapter / "19-198-0000.flac")
    shutil.copy(KATHLEEN / f"{KATHLEEN_STEMS[1]}.flac", chapter / "19-198-0002.flac")
    (chapter / "19-198.trans.txt").write_text("19-198-0000 HELLO\n19-198-0001 GONE\n")
    problems = []
    utts = import_layout(tmp_path, "librispeech", problems)["all"]
    assert [u.id for u in utts] == ["19-198-0000"]
    assert [(Path(p.source).name, p.line) for p in problems] == [
        ("19-198-0002.flac", None),
        ("19-198.trans.txt", 2),
    ]


# -- grouping and splitting ------------------------------------------------------------


def kathleen_corpus():
    """Every kathleen utterance by name and text (no audio read): many repeated prompts. From
    the full folder when present, else from the committed list of all its transcripts."""
    if FULL_SHARED is None:
        rows = (json.loads(line) for line in KATHLEEN_TEXTS.read_text().splitlines())
        texts = [(KATHLEEN / f"{row['id']}.txt", row["text"]) for row in rows]
    else:
        texts = [(p, p.read_text(encoding="utf-8")) for p in sorted(KATHLEEN.glob("*.txt"))]
    return [Utterance(str(p.with_suffix(".flac")), 1.0, text, None, p.stem) for p, text in texts]


def test_group_key():
    utt = Utterance(
        "/x/arctic_a0001_1592748574.flac",
        1.0,
        "Author, Philip Steels, etc.",
        "kathleen",
        "arctic_a0001_1592748574",
    )
    assert group_key(utt, "prompt") == "arctic_a0001"
    assert group_key(utt, "text") == normalize_text(utt.text) == "author philip steels etc"
    assert group_key(utt, "speaker") == "kathleen"
    assert group_key(utt, "id") == group_key(utt, "none") == utt.id
    with pytest.raises(ManifestError, match="no speaker"):
        group_key(Utterance("/x/a.wav", 1.0, "a"), "speaker")
    with pytest.raises(ConfigError):
        group_key(utt, "colour")


@pytest.mark.parametrize("group_by", ["prompt", "text"])
def test_split_is_deterministic_and_groups_never_straddle(group_by):
    corpus = kathleen_corpus()
    fractions = {"train": 0.8, "dev": 0.1, "test": 0.1}
    splits = split_utterances(corpus, fractions, group_by, seed=0)
    shuffled = corpus[:]
    random.Random(1).shuffle(shuffled)
    assert split_utterances(shuffled, fractions, group_by, seed=0) == splits
    assert sum(len(v) for v in splits.values()) == len(corpus)
    owner = {}
    for name, utts in splits.items():
        assert utts == sorted(utts, key=lambda u: u.id)
        for utt in utts:
            key = group_key(utt, group_by)
            assert owner.setdefault(key, name) == name, f"{key} in two splits"
    assert 0.7 < len(splits["train"]) / len(corpus) < 0.9
    assert len(splits["dev"]) > 50 and len(splits["test"]) > 50
    other = split_utterances(corpus, fractions, group_by, seed=1)
    assert other != splits


def test_prompt_grouping_also_keeps_kathleen_texts_together():
    # A few kathleen takes were read with small slips ("recognize" for "recognizing"), so
    # text grouping can split a prompt's takes; prompt grouping keeps sentences together too.
    splits = split_utterances(kathleen_corpus(), {"train": 0.8, "dev": 0.1, "test": 0.1}, "prompt")
    owner = {}
    for name, utts in splits.items():
        for utt in utts:
            assert owner.setdefault(group_key(utt, "text"), name) == name


def test_parse_fractions():
    assert parse_fractions("train=0.8,dev=0.1,test=0.1") == {"train": 0.8, "dev": 0.1, "test": 0.1}
    for bad in ("train", "train=x", "train=0,dev=0", "tr/ain=1", "train=-1"):
        with pytest.raises(ConfigError):
            parse_fractions(bad)


# -- prepare ---------------------------------------------------------------------------


def test_prepare_writes_manifests_that_read_back(trees, tmp_path):
    source, expected = trees["folder"]
    report = prepare(source, tmp_path / "out", fractions={"train": 0.5, "dev": 0.25, "test": 0.25})
    assert isinstance(report, PrepareReport) and report.problems == ()
    assert set(report.manifests) == {"train", "dev", "test"}
    ids = []
    for split, path in report.manifests.items():
        assert path == tmp_path / "out" / f"{split}.jsonl"
        first = path.read_text().splitlines()[:1]
        assert not first or not os.path.isabs(json.loads(first[0])["audio_filepath"])
        utts = read_manifest(path)
        assert len(utts) == report.counts[split]
        assert report.hours[split] == pytest.approx(sum(u.duration for u in utts) / 3600, abs=1e-6)
        assert all(Path(u.audio_filepath).is_file() for u in utts)
        prompts = {group_key(u, "prompt") for u in utts}
        ids += [u.id for u in utts]
        for other, other_path in report.manifests.items():
            if other != split:  # default grouping for kathleen takes: by prompt
                assert not prompts & {group_key(u, "prompt") for u in read_manifest(other_path)}
    assert sorted(ids) == sorted(expected)
    summary = format_report(report)
    assert "train" in summary and "no problems" in summary


def test_prepare_keeps_official_split_unless_asked(trees, tmp_path):
    report = prepare(trees["fsdd"][0], tmp_path / "a")
    assert report.counts == {"train": 2, "test": 2}
    report = prepare(trees["fsdd"][0], tmp_path / "b", fractions={"train": 1.0, "test": 0.0})
    assert report.counts == {"train": 4, "test": 0}


def test_prepare_duration_limits_and_strict(trees, tmp_path):
    source = trees["folder"][0]
    durations = sorted(header_duration(p) for p in source.glob("*.flac"))
    limit = (durations[0] + durations[-1]) / 2
    report = prepare(source, tmp_path / "out", max_duration=limit)
    longer = sum(d > limit for d in durations)
    assert len(report.problems) == longer >= 1
    assert sum(report.counts.values()) == len(durations) - longer
    assert f"over --max-duration {limit:g} s" in report.problems[0].message
    report = prepare(source, tmp_path / "min", min_duration=limit)
    assert "under --min-duration" in report.problems[0].message
    with pytest.raises(ManifestError, match=rf"{longer} problem\(s\).*over --max-duration"):
        prepare(source, tmp_path / "strict", max_duration=limit, strict=True)
    assert not (tmp_path / "strict").exists()
    with pytest.raises(ConfigError):
        prepare(source, tmp_path / "bad", min_duration=5, max_duration=1)


def test_prepare_reports_problems(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for stem in KATHLEEN_STEMS[:3]:
        shutil.copy(KATHLEEN / f"{stem}.flac", source)
        shutil.copy(KATHLEEN / f"{stem}.txt", source)
    (source / "broken.wav").write_bytes(b"")
    (source / "broken.txt").write_text("broken")
    shutil.copy(KATHLEEN / f"{KATHLEEN_STEMS[4]}.flac", source)
    report = prepare(source, tmp_path / "out")
    assert sum(report.counts.values()) == 3 and len(report.problems) == 2
    summary = format_report(report, max_problems=1)
    assert "2 problem(s)" in summary and "and 1 more" in summary
    with pytest.raises(ManifestError, match="2 problem"):
        prepare(source, tmp_path / "strict", strict=True)


def test_cli_arguments_and_run(trees, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for action in parser._actions:
        assert action.help, action.dest
    args = parser.parse_args(
        [
            str(trees["librispeech"][0]),
            "--out",
            str(tmp_path / "m"),
            "--split",
            "train=2,dev=1",
            "--group-by",
            "speaker",
            "--seed",
            "3",
        ]
    )
    assert args.split == {"train": 2.0, "dev": 1.0} and args.layout == "auto"
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "utterances" in printed and "no problems" in printed
    counts = {p.stem: len(read_manifest(p)) for p in (tmp_path / "m").glob("*.jsonl")}
    assert sorted(counts.values()) == [0, 3]  # one speaker: all in one split
    with pytest.raises(SystemExit):
        parser.parse_args(["x", "--out", "y", "--split", "train"])
    assert set(LAYOUTS) <= set(parser._option_string_actions["--layout"].choices)
