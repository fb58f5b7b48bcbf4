"""Fine-tuning: a new run that starts from another run's trained weights (``speech-rnn train
--init-from RUN``), e.g. a model trained on the synthetic corpus adapted to a real speaker.

Weights only mean something with the inputs and outputs they were trained with, so the new
run keeps the source run's sample rate, features, text normalization, vocabulary and model
shape (layers, units, projection, layer normalization); everything else (the train and
augment sections, dropout) is the new run's own. Feature statistics (``global``
normalization) are computed on the new run's training data, so that its features reach the
model with the mean and spread the model was trained on.

The source is recorded in the run folder (``init_from.json``): a run that stops before its
first checkpoint starts from the same weights again when resumed.
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import Config
from .errors import ConfigError
from .fileio import atomic_write_json
from .log import logger
from .runfolder import RunFolder, load_keras_safe

# What the weights depend on: (section, keys), None for every key of the section.
KEPT = (
    ("audio", ("sample_rate",)),
    ("features", None),
    ("text", None),
    ("model", ("lstm_layers", "lstm_units", "projection_units", "layer_norm")),
)


def source_run(path) -> RunFolder:
    """The run folder to start from, or a ConfigError saying why it cannot be one."""
    source = RunFolder(Path(path).resolve())
    missing = [p.name for p in (source.config, source.vocab) if not p.is_file()]
    if missing:
        raise ConfigError(f"--init-from {path}: not a trained run folder (no {', '.join(missing)})")
    return source


def source_config(source: RunFolder) -> Config:
    """The source run's config: where ``--init-from`` without ``--config`` starts."""
    return Config.load(source.config)


def check_compatible(config: Config, source: RunFolder) -> None:
    """A ConfigError naming every kept setting on which ``config`` and the source differ."""
    mine, theirs = config.to_dict(), source_config(source).to_dict()
    differ = [
        f"{section}.{key} ({mine[section][key]!r} here, {theirs[section][key]!r} there)"
        for section, keys in KEPT
        for key in keys or theirs[section]
        if mine[section].get(key) != theirs[section].get(key)
    ]
    if differ:
        raise ConfigError(
            f"--init-from {source.root}: {'; '.join(differ)} differ; a fine-tuned model keeps "
            "the features, text rules and model shape its weights were trained with"
        )


def record(run: RunFolder, source: RunFolder) -> None:
    """Remember the source in the new run (once), for a resume before the first checkpoint."""
    path = run.root / "init_from.json"
    if not path.is_file():
        atomic_write_json(path, {"run": str(source.root.resolve())})


def recorded_source(run: RunFolder) -> RunFolder | None:
    """The source recorded in ``run`` by :func:`record`, if any."""
    path = run.root / "init_from.json"
    if not path.is_file():
        return None
    try:
        return RunFolder(json.loads(path.read_text(encoding="utf-8"))["run"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(f"{path}: unreadable; delete it or train into a new --out") from None


def load_weights(acoustic, source: RunFolder, which: str = "best") -> Path:
    """Copy the weights of the source's model into ``acoustic``, layer by layer by name;
    returns the file read. A ConfigError when a layer is missing or shaped differently."""
    path = source.model_path(which)
    trained = load_keras_safe(path)
    names = {layer.name for layer in trained.layers}
    for layer in acoustic.layers:
        if not layer.weights:
            continue
        if layer.name not in names:
            raise ConfigError(f"--init-from {path}: the model has no layer {layer.name!r}")
        weights = trained.get_layer(layer.name).get_weights()
        shapes = [tuple(w.shape) for w in weights]
        wanted = [tuple(w.shape) for w in layer.get_weights()]
        if shapes != wanted:
            raise ConfigError(
                f"--init-from {path}: layer {layer.name!r} has weights {shapes}, this run "
                f"needs {wanted}"
            )
        layer.set_weights(weights)
    logger.info(f"weights initialized from {path}")
    return path
