import json

import pytest

from speech_rnn.config import Config
from speech_rnn.errors import ConfigError


def test_round_trip_json_and_yaml(tmp_path):
    config = Config().with_overrides(
        ["train.batch_size=8", "features.stride=2", "specaugment.enabled=false"]
    )
    config.save(tmp_path / "c.json")
    assert Config.load(tmp_path / "c.json") == config
    (tmp_path / "c.yaml").write_text(
        "train:\n  batch_size: 8\nfeatures:\n  stride: 2\nspecaugment:\n  enabled: false\n"
    )
    assert Config.load(tmp_path / "c.yaml") == config


def test_unknown_keys_list_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="unknown key.*bach_size.*valid keys: batch_size"):
        Config().with_overrides(["train.bach_size=8"])
    (tmp_path / "c.json").write_text(json.dumps({"modle": {}}))
    with pytest.raises(ConfigError, match="modle"):
        Config.load(tmp_path / "c.json")


def test_bad_values_are_rejected():
    with pytest.raises(ConfigError, match="integer"):
        Config().with_overrides(["train.batch_size=eight"])
    with pytest.raises(ConfigError, match="normalization"):
        Config().with_overrides(["features.normalization=weird"])
    with pytest.raises(ConfigError, match="negative"):
        Config().with_overrides(["train.learning_rate=-1"])


def test_yaml_is_loaded_safely(tmp_path):
    (tmp_path / "evil.yaml").write_text("train: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.load(tmp_path / "evil.yaml")
