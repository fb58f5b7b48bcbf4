"""Fine-tuning (``speech-rnn train --init-from RUN``): a new run starts from a trained run's
weights and vocabulary, and refuses settings those weights cannot be used with."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import short_kathleen_clips

from speech_rnn.config import Config
from speech_rnn.errors import ConfigError
from speech_rnn.manifest import write_manifest


def _weights(path):
    from speech_rnn.runfolder import load_keras_safe

    return {w.path: np.array(w) for w in load_keras_safe(path).weights}


@pytest.fixture(scope="module")
def new_data(tmp_path_factory):
    """Two clips the source run never trained on: fewer characters than its vocabulary."""
    root = tmp_path_factory.mktemp("finetune_data")
    write_manifest(short_kathleen_clips(6, max_seconds=3.0)[4:], root / "train.jsonl")
    return root / "train.jsonl"


def test_a_fine_tuned_run_starts_from_the_source_weights_and_vocabulary(
    tiny_run, new_data, tmp_path
):
    from speech_rnn.finetune import recorded_source
    from speech_rnn.runfolder import RunFolder
    from speech_rnn.train import train

    # A zero learning rate: one step leaves the weights where they started.
    frozen = Config.load(tiny_run / "config.json").with_overrides(
        ["train.learning_rate=0", "train.max_steps=1", "model.dropout=0.5"]
    )
    source = _weights(tiny_run / "best.keras")
    for init_from, run in ((tiny_run, tmp_path / "tuned"), (None, tmp_path / "scratch")):
        train(new_data, None, run, frozen, verbose=0, init_from=init_from)
    tuned = _weights(tmp_path / "tuned/last.keras")
    scratch = _weights(tmp_path / "scratch/last.keras")
    assert tuned.keys() == source.keys()
    assert all(np.array_equal(tuned[k], source[k]) for k in source)
    assert not all(np.array_equal(scratch[k], source[k]) for k in source if k in scratch)
    vocab = json.loads((tiny_run / "vocab.json").read_text())
    assert json.loads((tmp_path / "tuned/vocab.json").read_text()) == vocab
    assert json.loads((tmp_path / "scratch/vocab.json").read_text()) != vocab  # smaller
    assert recorded_source(RunFolder(tmp_path / "tuned")).root == tiny_run.resolve()
    env = json.loads((tmp_path / "tuned/env.json").read_text())
    assert env["init_from"] == str(tiny_run.resolve())
    with pytest.raises(ConfigError, match="not started from"):  # a run keeps its source
        train(new_data, None, tmp_path / "scratch", None, verbose=0, init_from=tiny_run)


def test_settings_the_weights_depend_on_must_match_the_source(tiny_run, new_data, tmp_path):
    from speech_rnn.train import train

    base = Config.load(tiny_run / "config.json")
    changed = base.with_overrides(["features.stride=2", "model.lstm_units=8"])
    with pytest.raises(ConfigError) as error:
        train(new_data, None, tmp_path / "run", changed, verbose=0, init_from=tiny_run)
    message = str(error.value)
    assert "features.stride (2 here, 3 there)" in message and "model.lstm_units" in message
    assert "\n" not in message
    assert not (tmp_path / "run/config.json").exists()  # no half-made run left behind
    with pytest.raises(ConfigError, match="not a trained run folder .no config.json, vocab"):
        train(new_data, None, tmp_path / "run", base, verbose=0, init_from=tmp_path)


def test_cli_init_from_starts_from_the_source_config(tiny_run, tmp_path):
    from speech_rnn import cli

    saved = Config.load(tiny_run / "config.json")
    parser = cli.build_parser()
    common = ["train", "--train", "t.jsonl", "--out", str(tmp_path / "r")]
    args = parser.parse_args([*common, "--init-from", str(tiny_run), "--minutes", "2"])
    config = cli._train_config(args)
    assert config.model == saved.model and config.features == saved.features
    assert config.train.max_minutes == 2
    assert cli._train_config(parser.parse_args(common)).model == Config().model
