"""A run folder that carries its own LM: ``lm attach`` counts the training transcripts (and
only those) into ``lm.arpa``, tunes alpha/beta on dev into ``lm.json``, reports the overlap
of held-out sentences with the LM text; ``load_model``, ``evaluate`` and ``transcribe`` then
decode with it unless told ``--no-lm`` (or ``--beam 1``)."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import cli, short_kathleen_clips

from speech_rnn.errors import RunFolderError
from speech_rnn.lm import NgramLM, manifest_sentences, sentence_overlap
from speech_rnn.manifest import write_manifest
from speech_rnn.recognizer import load_model
from speech_rnn.runlm import attach_lm


@pytest.fixture(scope="module")
def lm_run(tiny_run, tmp_path_factory):
    """A copy of the tiny run (the shared one must stay LM-free) with an attached LM, its
    text from two clips, tuned on the other two, the last clip a held-out check set."""
    root = tmp_path_factory.mktemp("lm_run")
    run = root / "run"
    shutil.copytree(tiny_run, run)
    clips = short_kathleen_clips(5, max_seconds=3.0)
    write_manifest(clips[:2], root / "lm_train.jsonl")
    write_manifest(clips[2:4], root / "lm_dev.jsonl")
    write_manifest([clips[4], clips[0]], root / "check.jsonl")  # one shared with the LM text
    settings = attach_lm(
        run,
        root / "lm_train.jsonl",
        root / "lm_dev.jsonl",
        [root / "check.jsonl"],
        order=2,
        alphas=(0.0, 0.5),
        betas=(0.0, 2.0),
        beam_width=4,
    )
    return run, root, settings, clips


def test_attach_counts_only_the_training_text_and_saves_tuned_weights(lm_run):
    run, root, settings, clips = lm_run
    saved = json.loads((run / "lm.json").read_text())
    assert saved == json.loads(json.dumps(settings))
    assert (saved["alpha"], saved["beta"]) in {(a, b) for a in (0.0, 0.5) for b in (0.0, 2.0)}
    assert saved["beam_width"] == 4 and saved["order"] == 2
    assert saved["tuned_on"] == str(root / "lm_dev.jsonl")
    assert 0 <= saved["dev_wer"] and 0 <= saved["dev_greedy_wer"]
    assert saved["sentences"] == 2
    lm = NgramLM.load(run / "lm.arpa")
    train_words = {w for s in manifest_sentences(root / "lm_train.jsonl") for w in s}
    dev_only = {w for s in manifest_sentences(root / "lm_dev.jsonl") for w in s} - train_words
    assert train_words <= lm.vocabulary
    assert dev_only and not (dev_only & lm.vocabulary)  # dev text was never counted
    overlap = saved["overlap"]
    assert overlap[str(root / "lm_dev.jsonl")] == {"sentences": 2, "in_lm_text": 0}
    assert overlap[str(root / "check.jsonl")] == {"sentences": 2, "in_lm_text": 1}


def test_sentence_overlap_counts_verbatim_sentences():
    lm_text = [["a", "b"], ["c"]]
    assert sentence_overlap(lm_text, [["a", "b"], ["a"], ["c"], ["b", "a"]]) == (2, 4)


def test_load_model_decodes_with_the_run_lm_unless_told_not_to(lm_run):
    run, _, settings, clips = lm_run
    audio = clips[2].audio_filepath
    recognizer = load_model(run)
    result = recognizer.transcribe(audio)
    assert result.options.method == "beam+lm"
    assert result.options.lm == str(run / "lm.arpa")
    assert (result.options.alpha, result.options.beta) == (settings["alpha"], settings["beta"])
    assert result.options.beam_width == 4
    assert recognizer.transcribe(audio, alpha=3.0).options.alpha == 3.0  # explicit wins
    assert recognizer.transcribe(audio, beam_width=1).options.method == "greedy"
    assert recognizer.transcribe(audio, beam_width=8).options.beam_width == 8
    plain = load_model(run, use_lm=False)
    assert plain.run_lm is None
    assert plain.transcribe(audio).options.method == "greedy"


def test_a_run_without_its_lm_pair_is_refused(lm_run, tmp_path):
    run, *_ = lm_run
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    (broken / "lm.json").unlink()
    with pytest.raises(RunFolderError, match="lm.arpa and lm.json go together"):
        load_model(broken)
    assert load_model(broken, use_lm=False).run_lm is None


def test_cli_evaluate_and_transcribe_use_the_run_lm_and_no_lm(lm_run):
    run, root, settings, _ = lm_run
    manifest = root / "lm_dev.jsonl"
    with_lm = cli("evaluate", "--model", run, "--manifest", manifest, "--out", root / "a.json")
    assert with_lm.returncode == 0, with_lm.stderr[-2000:]
    report = json.loads((root / "a.json").read_text())
    assert report["decoding"] == "beam+lm" and report["lm"] == str(run / "lm.arpa")
    assert report["alpha"] == settings["alpha"] and report["beta"] == settings["beta"]
    plain = cli(
        "evaluate", "--model", run, "--manifest", manifest, "--no-lm", "--out", root / "b.json"
    )
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert json.loads((root / "b.json").read_text())["decoding"] == "greedy"
    clash = cli("transcribe", "--model", run, "--lm", run / "lm.arpa", "--no-lm", "x.wav")
    assert clash.returncode == 2 and "--lm and --no-lm" in clash.stderr
    no_lm_alpha = cli("transcribe", "--model", run, "--no-lm", "--alpha", "1", "x.wav")
    assert no_lm_alpha.returncode == 2 and "alpha and beta weight" in no_lm_alpha.stderr


def test_cli_lm_build_from_a_manifest_and_attach(lm_run, tmp_path):
    run, root, *_ = lm_run
    out = tmp_path / "m.arpa"
    built = cli("lm", "build", "--manifest", root / "lm_train.jsonl", "--out", out)
    assert built.returncode == 0, built.stderr[-2000:]
    assert "2 sentences" in built.stdout
    words = {w for s in manifest_sentences(root / "lm_train.jsonl") for w in s}
    assert words <= NgramLM.load(out).vocabulary
    target = tmp_path / "run"
    shutil.copytree(run, target)
    for name in ("lm.arpa", "lm.json"):
        (target / name).unlink()
    untuned = cli(
        "lm", "attach", "--model", target, "--train", root / "lm_train.jsonl", "--alphas", "1"
    )
    assert untuned.returncode == 2 and "give --dev too" in untuned.stderr
    attached = cli(
        "lm", "attach", "--model", target, "--train", root / "lm_train.jsonl",
        "--check", root / "check.jsonl",
    )  # fmt: skip
    assert attached.returncode == 0, attached.stderr[-2000:]
    assert "1 of 2 sentences are in the LM text" in attached.stdout
    saved = json.loads((target / "lm.json").read_text())
    assert (saved["alpha"], saved["beta"], saved["tuned_on"]) == (0.5, 1.0, None)


def test_transcribe_refuses_an_unusable_run_lm_in_one_line_with_status_2(
    lm_run, tmp_path, capsys, monkeypatch
):
    """A run whose lm.arpa is not an ARPA file: ``transcribe`` stops before decoding any
    audio, status 2, one line naming the file (the console script exits with main's status)."""
    from speech_rnn.cli import main
    from speech_rnn.recognizer import SpeechRecognizer

    run, _, _, clips = lm_run
    broken = tmp_path / "run"
    shutil.copytree(run, broken)
    (broken / "lm.arpa").write_text("this is not an ARPA language model\n")
    model_calls = []  # every waveform the acoustic model is run on goes through here
    real = SpeechRecognizer.features
    monkeypatch.setattr(
        SpeechRecognizer, "features", lambda self, w: model_calls.append(1) or real(self, w)
    )
    code = main(["transcribe", "--model", str(broken), clips[0].audio_filepath])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == "" and model_calls == []  # refused before any audio went through the model
    [line] = err.splitlines()
    assert line.startswith(f"speech-rnn transcribe: error: {broken / 'lm.arpa'}"), line
