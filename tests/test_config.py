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


# -- every validation rule, at its boundary (the value just allowed and just refused) --------
def _set(*assignments):
    return Config().with_overrides(list(assignments))


@pytest.mark.parametrize(
    "allowed, refused, message",
    [
        (["features.stack=1"], ["features.stack=0"], "stack and stride must be at least 1"),
        (["features.stride=1"], ["features.stride=0"], "stack and stride must be at least 1"),
        (
            ["features.num_mfcc=40", "features.num_mel_bins=40"],
            ["features.num_mfcc=41", "features.num_mel_bins=40"],
            r"num_mfcc \(41\) exceeds num_mel_bins",
        ),
        (["audio.sample_rate=1000", "features.upper_hz=400"], ["audio.sample_rate=999"], "1000"),
        (["audio.max_duration=0.01"], ["audio.max_duration=0"], "max_duration: must be positive"),
        (["features.frame_length_ms=0.5"], ["features.frame_length_ms=0"], "must be positive"),
        (["features.frame_step_ms=0.5"], ["features.frame_step_ms=0"], "must be positive"),
        (["features.fft_length=1"], ["features.fft_length=0"], "must be >= 1"),
        (
            ["features.num_mel_bins=1", "features.num_mfcc=1"],
            ["features.num_mel_bins=0", "features.num_mfcc=0"],
            "must be >= 1",
        ),
        (
            ["features.upper_hz=21"],
            ["features.upper_hz=20"],
            r"upper_hz \(20\) must be above lower_hz \(20\)",
        ),
        # the mel filters stop at min(upper_hz, sample_rate / 2): 4000 Hz at 8 kHz
        (
            ["audio.sample_rate=8000", "features.lower_hz=3999"],
            ["audio.sample_rate=8000", "features.lower_hz=4000"],
            r"lower_hz \(4000 Hz\) must be below .* = 4000 Hz",
        ),
        (
            ["features.upper_hz=3000", "features.lower_hz=2999"],
            ["features.upper_hz=3000.5", "features.lower_hz=3000.5"],
            "must be above lower_hz",
        ),
        (["features.num_mfcc=1"], ["features.num_mfcc=0"], "must be >= 1"),
        (["model.lstm_layers=1"], ["model.lstm_layers=0"], "lstm_layers: must be at least 1"),
        (["train.pictures_every=0"], ["train.pictures_every=-1"], "must not be negative"),
        (["train.batch_size=1"], ["train.batch_size=0"], "batch_size: must be at least 1"),
        (["train.max_steps=0"], ["train.max_steps=-1"], "max_steps: must not be negative"),
        (["train.learning_rate=0"], ["train.learning_rate=-0.5"], "must not be negative, got -0.5"),
        (["text.charset=ab "], ["text.charset=aba"], "charset: has repeated characters"),
        (["text.unknown=error"], ["text.unknown=keep"], "'keep' is not one of drop, error"),
        (["train.strategy=multiworker"], ["train.strategy=tpu"], "not one of auto, default"),
        (["features.normalization=none"], ["features.normalization=cmvn"], "global, utterance"),
    ],
)
def test_each_rule_allows_the_boundary_and_refuses_past_it(allowed, refused, message):
    _set(*allowed)
    with pytest.raises(ConfigError, match=message):
        _set(*refused)


def test_validation_names_where_the_value_came_from(tmp_path):
    with pytest.raises(ConfigError, match=r"^--set\.train\.batch_size: must be at least 1$"):
        _set("train.batch_size=0")
    (tmp_path / "c.json").write_text(json.dumps({"model": {"lstm_layers": 0}}))
    with pytest.raises(ConfigError, match=rf"^{tmp_path / 'c.json'}\.model\.lstm_layers: must"):
        Config.load(tmp_path / "c.json")
    with pytest.raises(ConfigError, match=r"^config\.model: expected a mapping, got list$"):
        Config.from_dict({"model": []})
    with pytest.raises(ConfigError, match=r"^src: expected a mapping, got str$"):
        Config.from_dict("x", source="src")


@pytest.mark.parametrize(
    "raw, value",
    [
        ("true", True),
        ("Yes", True),
        ("ON", True),
        ("false", False),
        ("no", False),
        ("Off", False),
        ("7", 7),
        ("-2", -2),
        ("0.25", 0.25),
        ("1e-3", 0.001),
        ("utterance", "utterance"),
        ("1,5", "1,5"),
    ],
)
def test_set_values_are_parsed_as_the_scalars_they_spell(raw, value):
    from speech_rnn.config import _parse_scalar

    parsed = _parse_scalar(raw)
    assert parsed == value and type(parsed) is type(value)


def test_values_are_coerced_to_the_field_type_or_refused():
    config = _set("train.learning_rate=1", "train.epochs=3.0", " audio.max_duration = 12 ")
    assert config.train.learning_rate == 1.0 and type(config.train.learning_rate) is float
    assert config.train.epochs == 3 and type(config.train.epochs) is int
    assert config.audio.max_duration == 12.0
    for assignment, message in [
        ("train.epochs=3.5", "train.epochs: expected an integer, got 3.5"),
        ("train.epochs=true", "expected an integer, got True"),
        ("train.learning_rate=fast", "expected a number, got 'fast'"),
        ("train.learning_rate=on", "expected a number, got True"),
        ("train.cache=1", "train.cache: expected true/false, got 1"),
        ("text.charset=12", "text.charset: expected a string, got 12"),
    ]:
        with pytest.raises(ConfigError, match=message):
            _set(assignment)


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("train.batch_size", "expected section.key=value"),
        ("batch_size=4", "expected section.key=value"),
        (
            "trian.batch_size=4",
            r"unknown section 'trian'; valid: audio, augment, features, model, spec",
        ),
    ],
)
def test_malformed_set_assignments(assignment, message):
    with pytest.raises(ConfigError, match=message):
        _set(assignment)


def test_set_keeps_everything_else_and_values_may_hold_equals_signs():
    config = _set("text.charset=ab=c", "model.lstm_units=8")
    assert config.text.charset == "ab=c" and config.model.lstm_units == 8
    assert config.train == Config().train and config.features == Config().features
    assert Config().with_overrides(None) == Config() == Config().with_overrides([])


def test_load_reports_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.json: cannot read config"):
        Config.load(tmp_path / "missing.json")
    (tmp_path / "bin.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ConfigError, match="not a text config file .invalid UTF-8 at byte 7"):
        Config.load(tmp_path / "bin.json")
    (tmp_path / "bad.json").write_text('{\n  "train": {,}\n}')
    with pytest.raises(ConfigError, match=r"bad\.json: not valid JSON .*, line 2\)"):
        Config.load(tmp_path / "bad.json")
    (tmp_path / "list.yml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="the top level must be a mapping of sections"):
        Config.load(tmp_path / "list.yml")
    # an empty YAML file and a byte-order mark are both fine: the defaults
    (tmp_path / "empty.yaml").write_text("")
    assert Config.load(tmp_path / "empty.yaml") == Config()
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + b'{"model": {"lstm_units": 8}}')
    assert Config.load(tmp_path / "bom.json").model.lstm_units == 8


def test_saved_config_is_indented_json_with_every_key(tmp_path):
    Config().save(tmp_path / "c.json")
    text = (tmp_path / "c.json").read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "audio": {\n    "sample_rate": 16000,')
    assert json.loads(text) == Config().to_dict()


def test_yaml_errors_quote_the_parser_first_line_and_keys_split_at_the_first_dot(tmp_path):
    (tmp_path / "c.yaml").write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: not valid YAML \(while parsing a flow seq"):
        Config.load(tmp_path / "c.yaml")
    # "train.batch_size.x": section train, key "batch_size.x" (unknown), not section
    # "train.batch_size"
    with pytest.raises(ConfigError, match=r"unknown key\(s\) batch_size\.x; valid keys"):
        _set("train.batch_size.x=1")
