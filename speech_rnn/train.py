"""Training: config -> manifests -> pre-flight -> datasets -> model -> fit, resumable.

``train(...)`` creates (or resumes) a run folder. Each epoch is one ``Model.fit`` call on a
dataset shuffled with (seed, epoch), so a resumed run replays exactly the epoch it stopped
in and skips the batches already done. The full training state is checkpointed with
``tf.train.CheckpointManager`` (written to temporary files and renamed, the previous
checkpoints kept); :class:`TrainingHooks` evaluates dev WER/CER, logs TensorBoard,
anneals the learning rate, keeps ``best.keras`` and stops early.
"""
from __future__ import annotations

import json
import math
import signal
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Config
from .errors import ConfigError, RunFolderError, SpeechRnnError
from .features import FeatureExtractor, FeatureStats, feature_dim, window_dim
from .manifest import read_manifest
from .preflight import preflight
from .runfolder import RunFolder, write_env
from .text import Vocabulary, normalize_text

# Sections that define the model and its features: fixed for the life of a run.
_FROZEN_SECTIONS = ("audio", "features", "text", "model")


class TrainingStopped(SpeechRnnError):
    """Training stopped on purpose before its budget (signal, too many non-finite losses)."""


@dataclass
class TrainState:
    """Progress counters, mirrored in tf.Variables inside the checkpoint."""
    epoch: int = 0
    batch_in_epoch: int = 0
    best_wer: float = math.inf
    best_loss: float = math.inf
    evals_since_best: int = 0
    evals_since_anneal: int = 0
    stop_reason: str = ""
    history: list = field(default_factory=list)


def _log(message: str) -> None:
    print(message, flush=True)


def _resolve_config(run: RunFolder, requested: Config | None, log) -> Config:
    if not run.exists():
        config = requested or Config()
        run.root.mkdir(parents=True, exist_ok=True)
        config.save(run.config)
        return config
    saved = Config.load(run.config)
    if requested is None:
        return saved
    saved_dict, requested_dict = saved.to_dict(), requested.to_dict()
    changed = [f"{section}.{key}" for section in _FROZEN_SECTIONS
               for key in saved_dict[section]
               if saved_dict[section][key] != requested_dict[section][key]]
    if changed:
        raise ConfigError(f"{run.root} was created with a different {', '.join(changed)}; "
                          "resume without changing them, or train into a new --out folder")
    if saved.train != requested.train:
        log("resuming with an updated train section of the config")
        requested.save(run.config)
    return requested


def _load_examples(paths, vocab, config, name, log):
    problems = []
    utterances = []
    for path in paths:
        utterances += read_manifest(path, problems=problems)
    for p in problems[:5]:
        log(f"{name}: skipped manifest line: {p}")
    if len(problems) > 5:
        log(f"{name}: ... and {len(problems) - 5} more manifest problems")
    if problems and config.train.strict:
        raise SpeechRnnError(f"{name}: {len(problems)} bad manifest line(s) and train.strict is "
                             f"set; first: {problems[0]}")
    return utterances


def _build_vocab(utterances, config) -> Vocabulary:
    texts = []
    for utt in utterances:
        try:
            texts.append(normalize_text(utt.text, config.text))
        except SpeechRnnError:
            pass  # reported by the pre-flight check
    vocab = Vocabulary.from_transcripts(texts)
    if not vocab.chars:
        raise SpeechRnnError("no usable transcripts in the training manifests")
    return vocab


def train(train_manifests, dev_manifest, out_dir, config: Config | None = None,
          log=_log, verbose: int = 1, train_weights=None) -> dict:
    """Train (or resume) the run in ``out_dir``; returns the final metrics.

    ``train_manifests``: one manifest or several; with ``train_weights`` (one per manifest)
    each epoch draws from the manifests in those proportions, else it uses every utterance
    once.
    """
    import keras
    import tensorflow as tf

    from .evaluate import make_forward
    from .model import build_model, count_parameters
    from .pipeline import bucket_boundaries, compute_feature_stats, label_pad_length, make_dataset
    from .trainer import CTCTrainer, WarmupAnnealSchedule

    # One epoch is one pass over a dataset of unknown length: Keras warns when it ends.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    run = RunFolder(out_dir)
    resuming = run.exists()
    config = _resolve_config(run, config, log)
    tc = config.train
    keras.utils.set_random_seed(tc.seed)
    if tc.deterministic:
        tf.config.experimental.enable_op_determinism()
    log(f"{'resuming' if resuming else 'new'} run: {run.root}")

    train_paths = [train_manifests] if isinstance(train_manifests, (str, Path)) else list(train_manifests)
    if train_weights is not None and (len(train_weights) != len(train_paths)
                                      or any(w <= 0 for w in train_weights)):
        raise ConfigError("give one positive weight per training manifest")
    per_source = [_load_examples([p], None, config, f"train[{Path(p).name}]", log)
                  for p in train_paths]
    if resuming and run.vocab.is_file():
        vocab = Vocabulary.load(run.vocab)
    else:
        vocab = _build_vocab([u for utts in per_source for u in utts], config)
        vocab.save(run.vocab)
    log(f"vocabulary: {len(vocab.chars)} characters + blank: {''.join(vocab.chars)!r}")
    train_examples, sources = [], []
    for path, utts, weight in zip(train_paths, per_source, train_weights or [1.0] * len(train_paths)):
        checked = preflight(utts, vocab, config, f"train {path}", tc.strict, log)
        sources.append((len(train_examples), len(train_examples) + len(checked), float(weight)))
        train_examples += checked
    sources = sources if train_weights is not None else None
    dev_examples = ()
    if dev_manifest:
        dev_utts = _load_examples([dev_manifest], vocab, config, "dev", log)
        dev_examples = preflight(dev_utts, vocab, config, "dev", tc.strict, log)

    dim = feature_dim(config.features)
    cache_path = run.cache / "train_logmel" if tc.cache else None
    if config.features.normalization == "global":
        if run.feature_stats.is_file():
            stats = FeatureStats.load(run.feature_stats, dim)
        else:
            raw = FeatureExtractor(config.features, config.audio.sample_rate)
            stats = compute_feature_stats(train_examples, config, raw, cache_path, sources)
            stats.save(run.feature_stats)
    else:
        stats = None
    extractor = FeatureExtractor(config.features, config.audio.sample_rate, stats)

    all_examples = list(train_examples) + list(dev_examples)
    label_length = label_pad_length(all_examples)
    boundaries = bucket_boundaries(all_examples, config)

    acoustic = build_model(config.model, window_dim(config.features), vocab.num_classes)
    schedule = WarmupAnnealSchedule(tc.learning_rate, tc.warmup_steps)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    trainer = CTCTrainer(acoustic, vocab.blank_id, tc.batch_size, tc.clipnorm)
    trainer.compile(optimizer=optimizer, jit_compile=tc.jit_compile)
    probe = make_dataset(train_examples[:1], config, extractor, training=False,
                         label_length=label_length, boundaries=boundaries)
    trainer(next(iter(probe)))              # create the weights ...
    optimizer.build(trainer.trainable_variables)  # ... and the optimizer slots, before restore
    log(f"model: {config.model.lstm_layers} x BiLSTM({config.model.lstm_units}), "
        f"{count_parameters(acoustic):,} parameters, input {window_dim(config.features)} "
        f"({config.features.stack} frames every {config.features.stride})")

    progress = {name: tf.Variable(value, trainable=False, dtype=dtype, name=name)
                for name, value, dtype in (("epoch", 0, tf.int64), ("batch_in_epoch", 0, tf.int64),
                                           ("best_wer", np.inf, tf.float64),
                                           ("best_loss", np.inf, tf.float64),
                                           ("evals_since_best", 0, tf.int64),
                                           ("evals_since_anneal", 0, tf.int64))}
    # Dropout's random-number states are not reached through the model's trackable
    # children; name them explicitly so a resumed run draws the same masks.
    rng_states = {f"state_{i}": v.value for i, v in enumerate(acoustic.non_trainable_variables)
                  if "seed_generator" in v.path}
    checkpoint = tf.train.Checkpoint(model=trainer, optimizer=optimizer,
                                     lr_scale=schedule.scale,
                                     rng=tf.train.Checkpoint(**rng_states), **progress)
    manager = tf.train.CheckpointManager(checkpoint, run.checkpoints, max_to_keep=tc.keep_checkpoints)
    restored = _restore_latest(checkpoint, manager, log)
    state = TrainState(epoch=int(progress["epoch"].numpy()),
                       batch_in_epoch=int(progress["batch_in_epoch"].numpy()),
                       best_wer=float(progress["best_wer"].numpy()),
                       best_loss=float(progress["best_loss"].numpy()),
                       evals_since_best=int(progress["evals_since_best"].numpy()),
                       evals_since_anneal=int(progress["evals_since_anneal"].numpy()))
    if restored:
        log(f"restored {restored}: epoch {state.epoch}, batch {state.batch_in_epoch}, "
            f"step {int(optimizer.iterations.numpy())}")

    write_env(run, tc.seed, {"resumed_from": restored, "replicas": 1, "strategy": "default",
                             "train_manifests": [str(p) for p in train_paths],
                             "train_weights": train_weights})
    dev_dataset = (make_dataset(dev_examples, config, extractor, training=False,
                                label_length=label_length, boundaries=boundaries)
                   if dev_examples else None)

    from .callbacks import TrainingHooks
    hooks = TrainingHooks(run=run, config=config, trainer=trainer, optimizer=optimizer,
                          schedule=schedule, manager=manager, progress=progress, state=state,
                          forward=make_forward(acoustic), vocab=vocab, extractor=extractor,
                          dev_examples=dev_examples, dev_dataset=dev_dataset,
                          train_examples=train_examples, log=log)
    previous_handlers = _install_signal_handlers(hooks)
    try:
        while state.epoch < tc.epochs and not state.stop_reason:
            dataset = make_dataset(train_examples, config, extractor, training=True,
                                   epoch=state.epoch, cache_path=cache_path,
                                   skip_batches=state.batch_in_epoch,
                                   label_length=label_length, boundaries=boundaries,
                                   sources=sources)
            hooks.begin_epoch()
            trainer.fit(dataset, epochs=state.epoch + 1, initial_epoch=state.epoch,
                        callbacks=[hooks], verbose=verbose, shuffle=False)
            hooks.end_epoch()
        if not state.stop_reason:
            state.stop_reason = f"finished {tc.epochs} epochs"
    finally:
        _restore_signal_handlers(previous_handlers)
        hooks.close()
    return hooks.finish()


def _restore_latest(checkpoint, manager, log):
    """Restore the newest readable checkpoint; a corrupt one is skipped with a warning."""
    for path in reversed(manager.checkpoints):
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
            return path
        except Exception as e:  # truncated or corrupt files: fall back to the previous one
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            log(f"warning: checkpoint {path} is unreadable ({first}); trying the previous one")
    if manager.checkpoints:
        raise RunFolderError(f"{manager.directory}: no readable checkpoint left")
    return None


def _install_signal_handlers(hooks):
    """SIGINT/SIGTERM ask the hooks to checkpoint and stop after the current batch."""
    def handler(signum, _frame):
        if hooks.stop_requested:  # a second signal: stop now
            raise KeyboardInterrupt
        hooks.request_stop(f"stopped by {signal.Signals(signum).name}", signum)
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    return previous


def _restore_signal_handlers(previous):
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def load_history(run_dir) -> list:
    path = RunFolder(run_dir).history
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
