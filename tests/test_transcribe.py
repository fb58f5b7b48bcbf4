"""Transcription: word times and confidences (hand-made alignments, then the checked-in
digits model on connected digits with known boundaries), the Python API, batching, and
the command line (formats, output folders, stdin, per-file failures, flag checks, lm)."""

from __future__ import annotations

import dataclasses
import difflib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import cli

from speech_rnn import SpeechRecognizer, Transcription, load_model
from speech_rnn.decoding import DecodingOptions, beam_decode, greedy_decode, prefix_beam_search
from speech_rnn.errors import AudioError, ConfigError
from speech_rnn.text import Vocabulary

HERE = Path(__file__).resolve().parent
FIXTURE_MODEL = HERE / "fixtures" / "digits_model"
DIGIT_CHARS = tuple(" efghinorstuvwxz")


# -- word times on a hand-made alignment ------------------------------------------------------
def bare_recognizer(chars=DIGIT_CHARS, seconds_per_window=0.03):
    """Just what :meth:`SpeechRecognizer.words` needs, without a model."""
    r = SpeechRecognizer.__new__(SpeechRecognizer)
    r.vocab = Vocabulary(chars)
    r.seconds_per_window = seconds_per_window
    r.space_id = chars.index(" ")
    return r


def aligned_logits(spans, steps=60, chars=DIGIT_CHARS):
    """Logits where each (char, first frame, last frame, probability) holds its frames and
    the blank holds every other frame with 0.95."""
    blank = len(chars)
    probs = np.full((steps, blank + 1), 1e-3)
    probs[:, blank] = 0.95
    for char, first, last, p in spans:
        probs[first : last + 1, blank] = (1 - p) * 0.9
        probs[first : last + 1, chars.index(char)] = p
    return np.log(probs / probs.sum(axis=1, keepdims=True))


SPANS = [
    ("o", 10, 10, 0.9),
    ("n", 11, 12, 0.9),
    ("e", 13, 13, 0.9),
    (" ", 30, 30, 0.9),
    ("t", 40, 40, 0.9),
    ("w", 41, 41, 0.6),
    ("o", 42, 44, 0.9),
]


def test_word_times_and_confidence_from_a_known_alignment():
    r = bare_recognizer()
    logits = aligned_logits(SPANS)
    hyp = greedy_decode(logits, len(logits), r.vocab.blank_id)
    words = r.words(hyp, logits)
    # frame k covers [0.03 k, 0.03 (k + 1)) s: a word runs from its first character's
    # first frame to the end of its last character's last frame
    assert [(w.word, w.start, w.end) for w in words] == [("one", 0.30, 0.42), ("two", 1.20, 1.35)]
    probs = np.exp(logits)
    assert words[0].confidence == pytest.approx(probs[10:14].max(axis=1).min(), abs=1e-4)
    assert words[1].confidence == pytest.approx(probs[41, DIGIT_CHARS.index("w")], abs=1e-4)
    assert words[1].confidence < words[0].confidence
    shifted = r.words(hyp, logits, offset=100.0, limit=101.3)
    assert [(w.start, w.end) for w in shifted] == [(100.3, 100.42), (101.2, 101.3)]


def test_every_decoder_gives_the_same_times_on_a_clean_alignment():
    r = bare_recognizer()
    logits = aligned_logits(SPANS)
    blank = r.vocab.blank_id
    expected = r.words(greedy_decode(logits, len(logits), blank), logits)
    for hyp in (
        beam_decode(logits[None], [len(logits)], blank, 8)[0],
        prefix_beam_search(logits, blank, DIGIT_CHARS, 8),
    ):
        assert r.words(hyp, logits) == expected


def test_time_reduction_sets_the_frame_duration():
    r = bare_recognizer(seconds_per_window=0.04)  # e.g. 10 ms frames, stride 4
    logits = aligned_logits(SPANS)
    words = r.words(greedy_decode(logits, len(logits), r.vocab.blank_id), logits)
    assert [(w.start, w.end) for w in words] == [(0.4, 0.56), (1.6, 1.8)]


# -- the checked-in digits model ---------------------------------------------------------------
@pytest.fixture(scope="module")
def recognizer():
    if not (FIXTURE_MODEL / "best.keras").is_file():
        pytest.skip("fixture model missing: run tests/fixtures/make_digits_model.py")
    return load_model(FIXTURE_MODEL)


@pytest.fixture(scope="module")
def test_digits(fsdd_dir):
    from fixtures.digits import connected_digits

    return connected_digits(fsdd_dir, "test", 150, seed=7)


def matched(hyp_words, reference):
    """Hypothesis words aligned to reference words: (correct flags, [(hyp, ref)] pairs)."""
    sm = difflib.SequenceMatcher(
        a=[w.word for w in hyp_words], b=[r[0] for r in reference], autojunk=False
    )
    correct, pairs = [False] * len(hyp_words), []
    for block in sm.get_matching_blocks():
        for k in range(block.size):
            correct[block.a + k] = True
            pairs.append((hyp_words[block.a + k], reference[block.b + k]))
    return correct, pairs


def auroc(positive, negative) -> float:
    """Probability that a random positive scores above a random negative (ties: half)."""
    pos, neg = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


@pytest.fixture(scope="module")
def decoded(recognizer, test_digits):
    return [recognizer.transcribe(u.audio, sample_rate=8000) for u in test_digits]


def test_default_cpu_inference_is_compiled_and_decodes_alike(recognizer, test_digits, monkeypatch):
    """The suite decodes through the TensorFlow graph (SPEECH_RNN_INFERENCE_XLA=0, set in
    conftest.py: compiling each new padded length cost it a third of its CPU time). A user's
    CPU gets XLA unless told otherwise: a recognizer loaded without the variable compiles,
    and gives the graph's logits and the same words at the same times."""
    import tensorflow as tf

    from speech_rnn.inference import use_xla_for_inference

    monkeypatch.delenv("SPEECH_RNN_INFERENCE_XLA", raising=False)
    assert use_xla_for_inference() == (not tf.config.list_logical_devices("GPU"))
    compiled = load_model(FIXTURE_MODEL)
    monkeypatch.setenv("SPEECH_RNN_INFERENCE_XLA", "0")
    assert not use_xla_for_inference()
    # one clip: each new length is a compilation (several seconds on a slow machine)
    utt = test_digits[0]
    waveform = recognizer.load_waveform(utt.audio, sample_rate=8000)
    np.testing.assert_allclose(compiled.logits(waveform), recognizer.logits(waveform), atol=1e-4)
    got = compiled.transcribe(utt.audio, sample_rate=8000)
    want = recognizer.transcribe(utt.audio, sample_rate=8000)
    assert got.text == want.text and len(got.words) >= 2
    assert [(w.start, w.end) for w in got.words] == [(w.start, w.end) for w in want.words]


def test_word_boundaries_are_within_100_ms(decoded, test_digits):
    errors = []
    for result, utt in zip(decoded, test_digits):
        for hyp, (_, start, end) in matched(result.words, utt.words)[1]:
            errors += [abs(hyp.start - start), abs(hyp.end - end)]
    errors = np.array(errors)
    within = float(np.mean(errors <= 0.1))
    print(
        f"\n{len(errors) // 2} correct words: boundary error median "
        f"{1000 * np.median(errors):.0f} ms, 90th percentile "
        f"{1000 * np.percentile(errors, 90):.0f} ms, {100 * within:.1f}% within 100 ms"
    )
    assert len(errors) > 600
    assert within >= 0.9
    assert np.median(errors) <= 0.05


def test_confidence_is_lower_on_wrong_words(decoded, test_digits):
    right, wrong = [], []
    for result, utt in zip(decoded, test_digits):
        correct, _ = matched(result.words, utt.words)
        for word, ok in zip(result.words, correct):
            (right if ok else wrong).append(word.confidence)
            assert 0.0 <= word.confidence <= 1.0
    score = auroc(right, wrong)
    print(
        f"\nconfidence AUROC {score:.3f} over {len(right)} right and {len(wrong)} wrong "
        f"words (mean {np.mean(right):.2f} vs {np.mean(wrong):.2f})"
    )
    assert len(wrong) >= 15
    assert score >= 0.8


def test_result_structure_and_inputs(recognizer, test_digits, tmp_path):
    utt = test_digits[0]
    soundfile.write(str(tmp_path / "u.wav"), utt.audio, 8000, subtype="FLOAT")
    from_file = recognizer.transcribe(tmp_path / "u.wav")
    from_array = recognizer.transcribe(utt.audio, sample_rate=8000)
    assert from_file == from_array
    assert isinstance(from_file, Transcription) and from_file.options == DecodingOptions()
    assert from_file.text == " ".join(w.word for w in from_file.words)
    assert " ".join(s.text for s in from_file.segments) == from_file.text
    assert from_file.duration == pytest.approx(len(utt.audio) / 8000, abs=1e-3)
    assert all(0 <= w.start < w.end <= from_file.duration for w in from_file.words)
    with pytest.raises(dataclasses.FrozenInstanceError):
        from_file.words[0].word = "x"
    beam = recognizer.transcribe(utt.audio, 8, 8000)
    assert beam.options.method == "beam" and beam.options.beam_width == 8


def test_decoding_option_checks(recognizer, tmp_path):
    audio = np.zeros(8000, np.float32)
    with pytest.raises(ConfigError, match="give lm"):
        recognizer.transcribe(audio, alpha=0.5)
    with pytest.raises(ConfigError, match="beam"):
        recognizer.transcribe(audio, beam_width=1, lm=tmp_path / "x.arpa")
    with pytest.raises(ConfigError, match=">= 0"):
        recognizer.transcribe(audio, beam_width=-2)


def test_language_model_through_the_recognizer(recognizer, test_digits, tmp_path):
    from speech_rnn.lm import build_arpa

    rng = np.random.default_rng(0)
    (tmp_path / "text.txt").write_text(
        "\n".join(" ".join(str(d) for d in rng.integers(0, 10, 4)) for _ in range(300))
    )
    build_arpa(tmp_path / "text.txt", tmp_path / "digits.arpa", order=3)
    vocabulary = set("zero one two three four five six seven eight nine".split())
    for utt in test_digits[:10]:
        result = recognizer.transcribe(utt.audio, sample_rate=8000, lm=tmp_path / "digits.arpa")
        assert result.options == DecodingOptions(16, str(tmp_path / "digits.arpa"), 0.5, 1.0)
        assert set(result.text.split()) <= vocabulary
        assert all(a.end <= b.start + 1e-9 for a, b in zip(result.words, result.words[1:]))


def test_many_files_batched_by_length_equal_one_by_one(recognizer, test_digits, tmp_path):
    paths = []
    for i, utt in enumerate(test_digits[:11]):
        paths.append(tmp_path / f"u{i}.wav")
        soundfile.write(str(paths[-1]), utt.audio, 8000, subtype="FLOAT")
    (tmp_path / "bad.wav").write_text("not audio")
    inputs = paths[:5] + [tmp_path / "bad.wav", tmp_path / "missing.wav"] + paths[5:]
    outcomes = {i: out for i, _, out in recognizer.transcribe_many(inputs, batch_size=4)}
    assert sorted(outcomes) == list(range(len(inputs)))
    for i, path in enumerate(inputs):
        if path.stem in ("bad", "missing"):
            assert isinstance(outcomes[i], AudioError) and path.name in str(outcomes[i])
        else:
            alone = recognizer.transcribe(path)
            assert outcomes[i].text == alone.text
            assert [(w.start, w.end) for w in outcomes[i].words] == [
                (w.start, w.end) for w in alone.words
            ]


# -- command line ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def audio_tree(tmp_path_factory, test_digits, recognizer):
    root = tmp_path_factory.mktemp("cli")
    for i, utt in enumerate(test_digits[:4]):
        folder = root / "in" / ("a" if i < 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(folder / f"clip{i}.wav"), utt.audio, 8000)
    shutil.copy(root / "in" / "a" / "clip0.wav", root / "in" / "b" / "clip0.wav")  # same name
    (root / "in" / "notes.txt").write_text("not audio, skipped in folders")
    return root


def run_cli(*args):
    """``speech-rnn ARGS`` in this process (conftest.cli): (status, stdout, stderr)."""
    result = cli(*args)
    return result.returncode, result.stdout, result.stderr


def test_cli_writes_every_format_per_input(audio_tree, capsys):
    out_dir = audio_tree / "out"
    code, stdout, stderr = run_cli(
        "transcribe",
        "--model",
        FIXTURE_MODEL,
        audio_tree / "in",
        "-f",
        "all",
        "-o",
        out_dir,
    )
    assert code == 0, stderr
    assert "wrote 25 file(s)" in stderr and stdout == ""
    for name in ("a/clip0", "a/clip1", "b/clip0", "b/clip2", "b/clip3"):
        for fmt in ("txt", "json", "srt", "vtt", "tsv"):
            assert (out_dir / f"{name}.{fmt}").is_file(), (name, fmt)
    data = json.loads((out_dir / "a/clip1.json").read_text())
    assert set(data) == {"text", "duration", "segments", "words", "options"}
    assert (out_dir / "a/clip1.txt").read_text().strip() == data["text"]
    assert (out_dir / "a/clip1.vtt").read_text().startswith("WEBVTT\n")
    assert len((out_dir / "a/clip1.tsv").read_text().splitlines()) == len(data["words"]) + 1


def test_cli_glob_and_stdout_order(audio_tree, capsys):
    files = [audio_tree / "in" / "b" / "clip3.wav", audio_tree / "in" / "a" / "clip1.wav"]
    code, stdout, _ = run_cli("transcribe", "--model", FIXTURE_MODEL, *files)
    assert code == 0
    assert [line.split("\t")[0] for line in stdout.splitlines()] == [str(f) for f in files]
    code, stdout, _ = run_cli(
        "transcribe",
        "--model",
        FIXTURE_MODEL,
        "--glob",
        "clip0*",
        audio_tree / "in",
        "-f",
        "json",
    )
    assert code == 0
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [Path(r["file"]).name for r in rows] == ["clip0.wav", "clip0.wav"]
    code, stdout, _ = run_cli("transcribe", "--model", FIXTURE_MODEL, files[0], "-f", "srt")
    assert code == 0 and stdout.startswith("1\n00:00:0")


def test_cli_reports_each_failed_file_and_goes_on(audio_tree, capsys, tmp_path):
    (tmp_path / "bad.wav").write_text("not audio")
    (tmp_path / "empty").mkdir()
    good = audio_tree / "in" / "a" / "clip0.wav"
    code, stdout, stderr = run_cli(
        "transcribe",
        "--model",
        FIXTURE_MODEL,
        tmp_path / "bad.wav",
        good,
        tmp_path / "missing.flac",
        tmp_path / "empty",
    )
    assert code == 1
    assert stdout.splitlines()[0].startswith(f"{good}\t") and len(stdout.splitlines()) == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3
    assert errors[0].startswith(f"error: {tmp_path / 'bad.wav'}: ")
    assert errors[1] == f"error: {tmp_path / 'missing.flac'}: file not found"
    assert errors[2] == f"error: {tmp_path / 'empty'}: folder holds no audio files"
    assert "3 of 4 input(s) failed" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--alpha", "0.5"], "add --lm"),
        (["--beta", "1"], "add --lm"),
        (["--lm", "x.arpa", "--beam", "1"], "--beam >= 2"),
        (["--beam", "-1"], "--beam must be >= 0"),
        (["--batch-size", "0"], "--batch-size"),
        (["-f", "all"], "add --output-dir"),
        (["SECOND", "-f", "vtt"], "single input"),
        (["--glob", "*.wav"], "no INPUT is a folder"),
        (["-", "-"], "only once"),
        (["--threads", "0"], "--threads must be >= 1"),
    ],
)
def test_cli_rejects_flag_combinations(audio_tree, capsys, args, message):
    first = audio_tree / "in" / "a" / "clip0.wav"
    args = [str(first) if a == "SECOND" else a for a in args]
    code, _, stderr = run_cli("transcribe", "--model", FIXTURE_MODEL, first, *args)
    # (a second INPUT goes before the flags: argparse takes positionals in one run)
    assert code == 2
    assert stderr.strip().startswith("speech-rnn transcribe: error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_cli_reads_a_wav_stream_on_stdin(audio_tree, recognizer, capsys, monkeypatch):
    path = audio_tree / "in" / "b" / "clip2.wav"
    buffer = io.BytesIO()
    audio, rate = soundfile.read(str(path), dtype="float32")
    soundfile.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    command = [
        sys.executable,
        "-m",
        "speech_rnn.cli",
        "transcribe",
        "--model",
        str(FIXTURE_MODEL),
        "-",
        "-f",
        "json",
        "--threads",
        "1",
    ]
    proc = subprocess.run(command, input=buffer.getvalue(), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    data = json.loads(proc.stdout.decode())
    assert data["file"] == "-" and data["text"] == recognizer.transcribe(path).text
    # a stream that is not audio: the same command in this process, stdin replaced
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"RIFF nonsense")))
    code, _, stderr = run_cli(*command[3:])
    assert code == 1
    assert "error: -: stdin is not a readable audio stream" in stderr


def test_cli_lm_build_and_tune(recognizer, test_digits, tmp_path, capsys):
    from speech_rnn.manifest import Utterance, write_manifest

    text = tmp_path / "corpus.txt"
    rng = np.random.default_rng(1)
    text.write_text(
        "\n".join(" ".join(str(d) for d in rng.integers(0, 10, 5)) for _ in range(200)) + "\n"
    )
    code, stdout, stderr = run_cli(
        "lm", "build", "--text", text, "--order", "2", "--out", tmp_path / "lm.arpa"
    )
    assert code == 0, stderr
    assert "order 2, 200 sentences, 1000 words" in stdout
    utts = []
    for i, utt in enumerate(test_digits[20:28]):
        soundfile.write(str(tmp_path / f"d{i}.wav"), utt.audio, 8000)
        utts.append(Utterance(str(tmp_path / f"d{i}.wav"), len(utt.audio) / 8000, utt.text))
    write_manifest(utts, tmp_path / "dev.jsonl")
    code, stdout, stderr = run_cli(
        "lm",
        "tune",
        "--model",
        FIXTURE_MODEL,
        "--manifest",
        tmp_path / "dev.jsonl",
        "--lm",
        tmp_path / "lm.arpa",
        "--alphas",
        "0,0.5",
        "--betas",
        "0,1",
        "--beam",
        "8",
        "--out",
        tmp_path / "tune.json",
    )
    assert code == 0, stderr
    result = json.loads((tmp_path / "tune.json").read_text())
    assert len(result["grid"]) == 4 and result["alpha"] in (0, 0.5) and result["beta"] in (0, 1)
    assert result["wer"] == min(row[2] for row in result["grid"])
    assert "best: --alpha" in stdout
    code, _, stderr = run_cli(
        "lm",
        "tune",
        "--model",
        FIXTURE_MODEL,
        "--manifest",
        tmp_path / "dev.jsonl",
        "--lm",
        tmp_path / "lm.arpa",
        "--alphas",
        "x",
    )
    assert code == 2 and "--alphas" in stderr


def test_transcribe_many_streams_long_files_like_transcribe(recognizer, test_digits, tmp_path):
    """Files longer than ``chunking.max_chunk_s`` take transcribe_many's streamed branch:
    each comes back (by its index, with the short files around it) with the same words and
    times as ``transcribe`` of that file, cut on silence into several chunks."""
    from speech_rnn.longform import ChunkOptions, iter_chunks, stream_audio

    chunking = ChunkOptions(max_chunk_s=6.0, min_chunk_s=3.0, block_s=2.0)
    long_paths = []
    for k in range(2):
        audio = np.concatenate([u.audio for u in test_digits[10 * k : 10 * k + 10]])
        long_paths.append(tmp_path / f"long{k}.wav")
        soundfile.write(str(long_paths[-1]), audio, 8000, subtype="FLOAT")
    short = tmp_path / "short.wav"
    soundfile.write(str(short), test_digits[30].audio, 8000, subtype="FLOAT")
    chunks = list(iter_chunks(stream_audio(long_paths[0], 16000, 2.0), 16000, chunking))
    assert len(chunks) >= 3  # really cut
    inputs = [long_paths[0], short, long_paths[1]]
    outcomes = {
        i: out for i, _, out in recognizer.transcribe_many(inputs, batch_size=4, chunking=chunking)
    }
    assert sorted(outcomes) == [0, 1, 2]
    for i, path in enumerate(inputs):
        alone = recognizer.transcribe(path, chunking=chunking)
        assert outcomes[i] == alone, path
        assert outcomes[i].duration == pytest.approx(soundfile.info(str(path)).duration, abs=1e-3)
    assert len(outcomes[0].words) > 10


def test_cli_exits_2_for_an_unusable_model_or_language_model(capsys, tmp_path, test_digits):
    """An unusable model or LM is one line and exit 2, before any audio is transcribed."""
    clip = tmp_path / "clip.wav"
    soundfile.write(str(clip), test_digits[0].audio, 8000)
    broken = tmp_path / "model"
    shutil.copytree(FIXTURE_MODEL, broken)
    for name in ("best.keras", "last.keras"):
        (broken / name).write_bytes(b"PK\x03\x04 not a model")
    code, out, err = run_cli("transcribe", "--model", broken, clip)
    assert code == 2 and out == "", err
    [line] = err.strip().splitlines()
    assert line.startswith("speech-rnn transcribe: error: ") and str(broken) in line
    lm = tmp_path / "lm.arpa"
    lm.write_text("this is not an ARPA file\n")
    code, out, err = run_cli("transcribe", "--model", FIXTURE_MODEL, clip, "--lm", lm)
    assert code == 2 and out == "", err
    [line] = err.strip().splitlines()
    assert line.startswith("speech-rnn transcribe: error: ") and str(lm) in line
