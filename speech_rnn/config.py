"""One configuration object, from the CLI to the pipeline, the model and the saved run.

The config is a tree of frozen dataclasses. It is saved as ``config.json`` in every run
folder, so that a trained run always reloads with exactly the features it was trained on.
YAML or JSON files and ``--set section.key=value`` overrides are validated: an unknown key
is an error that lists the valid keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from .errors import ConfigError
from .fileio import atomic_write_text


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 16000  # everything is resampled to this rate, mono
    max_duration: float = 30.0  # seconds; longer training utterances are rejected
    min_duration: float = 0.1  # seconds; shorter ones are rejected


@dataclass(frozen=True)
class FeatureConfig:
    frame_length_ms: float = 25.0
    frame_step_ms: float = 10.0
    fft_length: int = 512
    num_mel_bins: int = 40
    num_mfcc: int = 26
    lower_hz: float = 20.0
    upper_hz: float = 7600.0
    deltas: bool = False  # append first and second order deltas
    normalization: str = "global"  # global | utterance | none
    stack: int = 4  # frames per window (time reduction front-end)
    stride: int = 3  # frames between windows: the time-reduction factor


@dataclass(frozen=True)
class SpecAugmentConfig:
    enabled: bool = True
    freq_masks: int = 2
    freq_mask_width: int = 8  # mel bins, at most
    time_masks: int = 2
    time_mask_width: int = 25  # 10 ms frames, at most
    time_mask_max_fraction: float = 0.15  # of the utterance, per mask


@dataclass(frozen=True)
class AugmentConfig:
    # speed factors, one drawn per training utterance and epoch (e.g. [0.9, 1.0, 1.1]);
    # empty: off. Applied to the cached log-mel frames along time (a tempo change: the
    # pitch stays), so an utterance of T frames becomes round(T / factor) frames
    speed_perturb: tuple[float, ...] = ()
    # vocal tract length perturbation: each training utterance's mel axis is stretched by a
    # factor drawn per utterance and epoch from [1 - w, 1 + w] (formants move as they do
    # between speakers); 0: off
    freq_warp: float = 0.0
    # additive noise, mel-flat, at a signal-to-noise ratio drawn per training utterance and
    # epoch from [low, high] dB, added to the cached mel power (so no noise recordings are
    # needed); empty: off
    noise_snr_db: tuple[float, ...] = ()
    # the share of training utterances (drawn per epoch) that get the noise; the rest stay
    # clean, so that clean speech (near-silent pauses above all) is not out of distribution
    noise_fraction: float = 0.5


@dataclass(frozen=True)
class TextConfig:
    charset: str = "abcdefghijklmnopqrstuvwxyz' "
    lowercase: bool = True
    strip_accents: bool = True  # é -> e; else accented letters are unknown
    spell_numbers: bool = True  # "42" -> "forty two"
    unknown: str = "drop"  # drop | error: characters outside the charset


@dataclass(frozen=True)
class ModelConfig:
    lstm_layers: int = 3
    lstm_units: int = 256
    projection_units: int = 0  # optional Dense front-end before the LSTMs (0: none)
    dropout: float = 0.3  # between LSTM layers and before the output layer
    input_dropout: float = 0.1
    layer_norm: bool = False  # LayerNormalization between the BiLSTM layers
    # initial bias of the blank logit (0: Keras' zero bias like every other class); a
    # positive value starts the model near "all blank", as CTC training soon finds anyway
    blank_bias_init: float = 0.0


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16  # per replica, at most
    # padded audio per batch and replica, at most (0: no limit): a bucket of utterances up
    # to L seconds is batched max(1, min(batch_size, floor(max_batch_seconds / L))) at a time
    max_batch_seconds: float = 120.0
    epochs: int = 100
    max_minutes: float = 0.0  # wall-clock budget for this invocation (0: none)
    max_steps: int = 0  # stop after this many optimizer steps (0: none)
    learning_rate: float = 1e-3
    warmup_steps: int = 300
    # warmup_newbob: linear warm-up, then constant, lowered by newbob annealing (below);
    # warmup_cosine: linear warm-up, then a cosine down to min_lr_scale at the last step;
    # one_cycle: up from lr/25 over the first 30% of the steps, then a cosine down to
    # min_lr_scale. The last two own the decay (no newbob); their total steps come from the
    # budget: max_steps, else epochs (and, with max_minutes, the steps the time allows)
    lr_schedule: str = "warmup_newbob"
    sortagrad: bool = False  # epoch 1 in order of increasing duration (bucketed), then shuffled
    clipnorm: float = 5.0
    anneal_factor: float = 0.5  # lr *= factor when the dev loss did not improve ...
    anneal_patience: int = 1  # ... for this many evaluations
    min_lr_scale: float = 0.01
    early_stop_patience: int = 6  # evaluations without dev WER improvement
    eval_every_steps: int = 0  # also evaluate every N steps (0: once per epoch)
    # also evaluate when max_minutes or max_steps stops training inside an epoch, so that
    # best.keras can be the last weights
    eval_at_stop: bool = False
    checkpoint_every_steps: int = 200
    keep_checkpoints: int = 3
    jit_compile: bool = True
    seed: int = 1234
    bucket_width_s: float = 1.0  # bucket boundaries every this many audio seconds
    shuffle_buffer: int = 20000
    cache: bool = True  # cache features on disk in the run folder
    max_nonfinite_in_row: int = 20
    log_samples: int = 3  # sample transcripts/clips shown in TensorBoard
    pictures_every: int = 1  # spectrogram+posteriorgram pictures every N evaluations (0: none)
    strict: bool = False  # stop on any bad example instead of dropping it
    verify_audio: bool = True  # decode every file in the pre-flight check
    deterministic: bool = False  # deterministic TF ops (bit-exact resume; slower)
    strategy: str = "auto"  # auto | default | mirrored | multiworker
    scale_lr: bool = False  # learning rate x replicas (linear scaling rule)
    mixed_precision: bool = False  # float16 on GPU (loss-scaled), bfloat16 on CPU
    feature_store: str = ""  # read features from this store (speech-rnn cache); "": decode
    input_partitions: int = 0  # feature-store partitions per step (0: one per worker)


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # -- (de)serialization -------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON types (tuples become lists), as saved in a run folder."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> Config:
        return _build(cls, data, source)

    def save(self, path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path) -> Config:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise ConfigError(f"{path}: cannot read config ({e.strerror})") from None
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"{path}: not a text config file (invalid UTF-8 at byte {e.start})"
            ) from None
        if path.suffix in (".yaml", ".yml"):
            import yaml  # safe_load below: a config file can never construct Python objects

            try:
                data = yaml.safe_load(text) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}: not valid JSON ({e.msg}, line {e.lineno})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        return cls.from_dict(data, source=str(path))

    def with_overrides(self, assignments) -> Config:
        """Apply ``section.key=value`` strings (the CLI's ``--set``)."""
        data = self.to_dict()
        for item in assignments or ():
            key, sep, raw = item.partition("=")
            if not sep or "." not in key:
                raise ConfigError(f"--set {item!r}: expected section.key=value")
            section, name = key.strip().split(".", 1)
            if section not in data:
                raise ConfigError(
                    f"--set {item!r}: unknown section {section!r}; valid: {', '.join(sorted(data))}"
                )
            data[section][name] = _parse_scalar(raw.strip())
        return Config.from_dict(data, source="--set")


def _parse_scalar(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def _coerce(value, wanted: type, where: str):
    if wanted is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if wanted is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if wanted is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if wanted is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if wanted == tuple[float, ...]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, str):  # --set augment.speed_perturb=0.9,1.0,1.1
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list of numbers, got {value!r}")
        try:
            return tuple(
                _coerce(_parse_scalar(v) if isinstance(v, str) else v, float, where) for v in value
            )
        except ConfigError:
            raise ConfigError(f"{where}: expected a list of numbers, got {value!r}") from None
    return value


def _build(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(names)}"
        )
    kwargs = {}
    for name in names:
        if name not in data:
            continue
        wanted = hints[name]
        sub_where = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(wanted):
            kwargs[name] = _build(wanted, data[name], sub_where)
        else:
            kwargs[name] = _coerce(data[name], wanted, sub_where)
    obj = cls(**kwargs)
    _validate(obj, where)
    return obj


_CHOICES = {
    ("normalization",): ("global", "utterance", "none"),
    ("unknown",): ("drop", "error"),
    ("strategy",): ("auto", "default", "mirrored", "multiworker"),
    ("lr_schedule",): ("warmup_newbob", "warmup_cosine", "one_cycle"),
}
_SIGNED = {"blank_bias_init"}  # numbers that may be negative


def _validate(obj, where: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        choices = _CHOICES.get((f.name,))
        if choices and value not in choices:
            raise ConfigError(f"{where}.{f.name}: {value!r} is not one of {', '.join(choices)}")
        negative = isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0
        if negative and f.name not in _SIGNED:
            raise ConfigError(f"{where}.{f.name}: must not be negative, got {value}")
    if isinstance(obj, FeatureConfig):
        if obj.stack < 1 or obj.stride < 1:
            raise ConfigError(f"{where}: stack and stride must be at least 1")
        if obj.num_mfcc > obj.num_mel_bins:
            raise ConfigError(f"{where}: num_mfcc ({obj.num_mfcc}) exceeds num_mel_bins")
    if isinstance(obj, AudioConfig):
        if obj.sample_rate < 1000:
            raise ConfigError(
                f"{where}.sample_rate: must be at least 1000 Hz, got {obj.sample_rate}"
            )
        if obj.max_duration <= 0:
            raise ConfigError(f"{where}.max_duration: must be positive")
    if isinstance(obj, FeatureConfig):
        if obj.frame_length_ms <= 0 or obj.frame_step_ms <= 0:
            raise ConfigError(f"{where}: frame_length_ms and frame_step_ms must be positive")
        if obj.fft_length < 1 or obj.num_mel_bins < 1 or obj.num_mfcc < 1:
            raise ConfigError(f"{where}: fft_length, num_mel_bins and num_mfcc must be >= 1")
        if obj.upper_hz <= obj.lower_hz:
            raise ConfigError(
                f"{where}: upper_hz ({obj.upper_hz:g}) must be above lower_hz ({obj.lower_hz:g})"
            )
    if isinstance(obj, Config):
        top = min(obj.features.upper_hz, obj.audio.sample_rate / 2)  # as the mel filters use it
        if obj.features.lower_hz >= top:
            raise ConfigError(
                f"{where}: features.lower_hz ({obj.features.lower_hz:g} Hz) must be below "
                f"min(features.upper_hz, audio.sample_rate / 2) = {top:g} Hz"
            )
    if isinstance(obj, ModelConfig) and obj.lstm_layers < 1:
        raise ConfigError(f"{where}.lstm_layers: must be at least 1")
    if isinstance(obj, ModelConfig) and not abs(obj.blank_bias_init) < 100:
        raise ConfigError(
            f"{where}.blank_bias_init: must be a finite number below 100 in size, "
            f"got {obj.blank_bias_init}"
        )
    if isinstance(obj, TrainConfig) and obj.batch_size < 1:
        raise ConfigError(f"{where}.batch_size: must be at least 1")
    if isinstance(obj, TrainConfig) and obj.pictures_every < 0:
        raise ConfigError(f"{where}.pictures_every: must be >= 0 (0: no pictures)")
    if isinstance(obj, AugmentConfig) and not all(0.5 <= f <= 2.0 for f in obj.speed_perturb):
        raise ConfigError(
            f"{where}.speed_perturb: factors must be in [0.5, 2], got {obj.speed_perturb}"
        )
    if isinstance(obj, AugmentConfig) and not 0.0 <= obj.freq_warp <= 0.3:
        raise ConfigError(f"{where}.freq_warp: must be in [0, 0.3], got {obj.freq_warp}")
    if isinstance(obj, AugmentConfig) and obj.noise_snr_db:
        _validate_snr_range(obj.noise_snr_db, f"{where}.noise_snr_db")
    if isinstance(obj, AugmentConfig) and not 0.0 <= obj.noise_fraction <= 1.0:
        raise ConfigError(f"{where}.noise_fraction: must be in [0, 1], got {obj.noise_fraction}")
    if isinstance(obj, TextConfig) and len(set(obj.charset)) != len(obj.charset):
        raise ConfigError(f"{where}.charset: has repeated characters")


def _validate_snr_range(snr_db, where: str) -> None:
    low_high = len(snr_db) == 2 and snr_db[0] <= snr_db[1]
    if not low_high or not all(-20.0 <= x <= 60.0 for x in snr_db):
        raise ConfigError(
            f"{where}: give two values, low <= high, in [-20, 60] dB (or none), got {snr_db}"
        )
