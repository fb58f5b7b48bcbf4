"""Training: config -> manifests -> pre-flight -> datasets -> model -> fit, resumable.

``train(...)`` creates (or resumes) a run folder. Each epoch is one ``Model.fit`` call on a
dataset shuffled with (seed, epoch), so a resumed run replays exactly the epoch it stopped
in and skips the batches already done. The full training state is checkpointed with
``tf.train.CheckpointManager`` (written to temporary files and renamed, the previous
checkpoints kept); :class:`TrainingHooks` evaluates dev WER/CER, logs TensorBoard,
anneals the learning rate, keeps ``best.keras`` and stops early.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import finetune
from .compat import disable_op_determinism, op_determinism_enabled
from .config import Config
from .distribute import cluster_from_env, make_strategy
from .errors import ConfigError, RunFolderError, SpeechRnnError
from .features import FeatureExtractor, FeatureStats, feature_dim, window_dim
from .featurestore import StoreInput, open_store
from .fileio import prepare_output_dir
from .inference import make_forward
from .log import logger
from .manifest import read_manifest
from .pipeline import (
    batches_per_epoch,
    bucket_batch_sizes,
    bucket_boundaries,
    compute_feature_stats,
    label_pad_length,
    make_dataset,
)
from .preflight import preflight
from .runfolder import RunFolder, run_lock, write_env
from .runfolder import load_history as _load_history
from .text import Vocabulary, normalize_text

# Sections that define the model and its features: fixed for the life of a run.
_FROZEN_SECTIONS = ("audio", "features", "text", "model")


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


def _resolve_config(run: RunFolder, requested: Config | None, write: bool = True) -> Config:
    if not run.exists():
        config = requested or Config()
        if write:
            run.root.mkdir(parents=True, exist_ok=True)
            config.save(run.config)
        return config
    saved = Config.load(run.config)
    if requested is None:
        return saved
    saved_dict, requested_dict = saved.to_dict(), requested.to_dict()
    changed = [
        f"{section}.{key}"
        for section in _FROZEN_SECTIONS
        for key in saved_dict[section]
        if saved_dict[section][key] != requested_dict[section][key]
    ]
    if changed:
        raise ConfigError(
            f"{run.root} was created with a different {', '.join(changed)}; "
            "resume without changing them, or train into a new --out folder"
        )
    if saved.train != requested.train:
        logger.info("resuming with an updated train section of the config")
        if write:
            requested.save(run.config)
    return requested


def load_examples(paths, config, name):
    """The utterances of ``paths``; bad manifest lines are logged (or raised when strict)."""
    problems = []
    utterances = []
    for path in paths:
        utterances += read_manifest(path, problems=problems)
    for p in problems[:5]:
        logger.warning(f"{name}: skipped manifest line: {p}")
    if len(problems) > 5:
        logger.warning(f"{name}: ... and {len(problems) - 5} more manifest problems")
    if problems and config.train.strict:
        raise SpeechRnnError(
            f"{name}: {len(problems)} bad manifest line(s) and train.strict is "
            f"set; first: {problems[0]}"
        )
    return utterances


def build_vocabulary(utterances, config) -> Vocabulary:
    """The characters of the normalized transcripts (unusable ones are left to pre-flight)."""
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


def train(
    train_manifests,
    dev_manifest,
    out_dir,
    config: Config | None = None,
    verbose: int = 1,
    train_weights=None,
    init_from=None,
) -> dict:
    """Train (or resume) the run in ``out_dir``; returns the final metrics.

    ``train_manifests``: one manifest or several; with ``train_weights`` (one per manifest)
    each epoch draws from the manifests in those proportions, else it uses every utterance
    once. ``config.train.strategy`` picks the ``tf.distribute`` strategy; under several
    workers only the chief writes ``out_dir``. ``init_from``: a trained run folder whose
    weights and vocabulary a new run starts from (:mod:`.finetune`); without ``config``
    the new run takes the source's.
    """

    # One epoch is one pass over a dataset of unknown length: Keras warns when it ends.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    run = RunFolder(out_dir)
    # The strategy comes first: a multi-worker one must be set up before TensorFlow runs
    # any operation in this process.
    requested_strategy = (
        config or (Config.load(run.config) if run.exists() else Config())
    ).train.strategy
    strategy, strategy_kind = make_strategy(requested_strategy)
    cluster = cluster_from_env()
    # The chief writes the run folder; other workers write to a folder of their own.
    if cluster.is_chief:  # before any work: a clear error, and one writer at a time
        prepare_output_dir(run.root, "run folder")
        lock = run_lock(run)
    else:
        lock = contextlib.nullcontext()
    with lock:
        return _train_locked(
            run,
            config,
            cluster,
            strategy,
            strategy_kind,
            train_manifests,
            train_weights,
            dev_manifest,
            verbose,
            init_from,
        )


def _init_source(run: RunFolder, init_from) -> RunFolder | None:
    """The run to take initial weights from: ``init_from``, else the one ``run`` recorded."""
    recorded = finetune.recorded_source(run)
    if init_from is None:
        return recorded
    source = finetune.source_run(init_from)
    if run.exists() and (recorded is None or recorded.root != source.root.resolve()):
        raise ConfigError(
            f"{run.root} is an existing run that was not started from {init_from}; resume it "
            "without --init-from, or train into a new --out folder"
        )
    return source


def _train_locked(
    run,
    config,
    cluster,
    strategy,
    strategy_kind,
    train_manifests,
    train_weights,
    dev_manifest,
    verbose,
    init_from=None,
) -> dict:
    import keras
    import tensorflow as tf

    own = run if cluster.is_chief else RunFolder(tempfile.mkdtemp(prefix="speech_rnn_worker_"))
    resuming = run.exists()
    source = _init_source(run, init_from)
    if source is not None:
        if config is None and not resuming:
            config = finetune.source_config(source)
        finetune.check_compatible(config or Config.load(run.config), source)
    config = _resolve_config(run, config, write=cluster.is_chief)
    if source is not None and cluster.is_chief:
        finetune.record(run, source)
    tc = config.train
    keras.utils.set_random_seed(tc.seed)
    # Op determinism is process-wide (and turns XLA off in Keras): undo it on the way out
    # so that it does not leak into a later run in the same process.
    switch_determinism = tc.deterministic and not op_determinism_enabled()
    if switch_determinism:
        tf.config.experimental.enable_op_determinism()
    replicas = strategy.num_replicas_in_sync
    logger.info(
        f"{'resuming' if resuming else 'new'} run: {run.root} ({strategy_kind} strategy, "
        f"{replicas} replica(s), batch {tc.batch_size} per replica = {tc.batch_size * replicas} "
        f"global{', this worker is not the chief' if not cluster.is_chief else ''})"
    )
    try:
        data = _prepare_data(train_manifests, train_weights, dev_manifest, run, own, config, source)
        policy = _mixed_precision_policy(tc.mixed_precision)
        try:
            with strategy.scope():
                parts = build_training(config, data, replicas)
            return _fit(
                run,
                own,
                config,
                data,
                parts,
                strategy,
                strategy_kind,
                replicas,
                train_weights,
                verbose,
            )
        finally:
            if policy:
                keras.mixed_precision.set_global_policy("float32")
    finally:
        if switch_determinism:
            disable_op_determinism()
        if not cluster.is_chief:
            shutil.rmtree(own.root, ignore_errors=True)


@dataclass
class TrainingData:
    """What training reads: the checked examples, vocabulary, features and batching."""

    vocab: Vocabulary
    train_paths: list
    train_examples: list
    dev_examples: tuple
    sources: list | None
    extractor: FeatureExtractor
    cache_path: Path | None
    label_length: int
    boundaries: list
    store: object = None  # featurestore.Store when train.feature_store is set
    init_source: RunFolder | None = None  # a run to start from (fine-tuning)


def _prepare_data(
    train_manifests, train_weights, dev_manifest, run, own, config, source=None
) -> TrainingData:
    """Manifests -> pre-flight -> vocabulary and feature statistics (read from the run when
    resuming, else computed and written to this process's own folder; a fine-tuned run's
    vocabulary is its ``source``'s, since the output layer is)."""
    tc = config.train
    train_paths = (
        [train_manifests] if isinstance(train_manifests, (str, Path)) else list(train_manifests)
    )
    if train_weights is not None and (
        len(train_weights) != len(train_paths) or any(w <= 0 for w in train_weights)
    ):
        raise ConfigError("give one positive weight per training manifest")
    if train_weights is not None and tc.sortagrad:
        raise ConfigError(
            "train.sortagrad orders one training set by duration; it does not combine "
            "with --train-weights (a weighted mix is drawn at random)"
        )
    per_source = [load_examples([p], config, f"train[{Path(p).name}]") for p in train_paths]
    if run.vocab.is_file():
        vocab = Vocabulary.load(run.vocab)
    elif source is not None:
        vocab = Vocabulary.load(source.vocab)
        vocab.save(own.vocab)
    else:
        vocab = build_vocabulary([u for utts in per_source for u in utts], config)
        vocab.save(own.vocab)
    logger.info(f"vocabulary: {len(vocab.chars)} characters + blank: {''.join(vocab.chars)!r}")
    train_examples, sources = [], []
    for path, utts, weight in zip(
        train_paths, per_source, train_weights or [1.0] * len(train_paths), strict=True
    ):
        checked = preflight(utts, vocab, config, f"train {path}", tc.strict, run.cache, own.cache)
        sources.append((len(train_examples), len(train_examples) + len(checked), float(weight)))
        train_examples += checked
    sources = sources if train_weights is not None else None
    dev_examples = ()
    if dev_manifest:
        dev_utts = load_examples([dev_manifest], config, "dev")
        dev_examples = preflight(dev_utts, vocab, config, "dev", tc.strict, run.cache, own.cache)

    dim = feature_dim(config.features)
    cache_path = own.cache / "train_logmel" if tc.cache else None
    store = None
    if tc.feature_store:
        if sources:
            raise ConfigError("train.feature_store cannot mix weighted manifests yet")
        if tc.sortagrad:
            raise ConfigError("train.sortagrad does not combine with train.feature_store yet")
        store = open_store(tc.feature_store, [u for utts in per_source for u in utts], config)
        logger.info(f"feature store: {store.root} ({len(store.shards)} shards, {store.index.name})")
        cache_path = None
    stats = None
    if config.features.normalization == "global":
        if run.feature_stats.is_file():
            stats = FeatureStats.load(run.feature_stats, dim)
        else:
            raw = FeatureExtractor(config.features, config.audio.sample_rate)
            stats = (
                store.feature_stats()
                if store
                else compute_feature_stats(train_examples, config, raw, cache_path, sources)
            )
            stats.save(own.feature_stats)
    extractor = FeatureExtractor(config.features, config.audio.sample_rate, stats)
    everything = list(train_examples) + list(dev_examples)
    return TrainingData(
        vocab,
        train_paths,
        train_examples,
        dev_examples,
        sources,
        extractor,
        cache_path,
        label_pad_length(everything),
        bucket_boundaries(everything, config),
        store,
        source,
    )


def _mixed_precision_policy(enabled: bool):
    """float16 on a GPU (with loss scaling), bfloat16 on a CPU; None when off."""
    if not enabled:
        return None
    import keras
    import tensorflow as tf

    policy = "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"
    keras.mixed_precision.set_global_policy(policy)
    return policy


@dataclass
class TrainingParts:
    """What training builds: the model, its optimizer and the checkpoint that holds them."""

    acoustic: object
    trainer: object
    optimizer: object
    schedule: object
    checkpoint: object
    progress: dict


def progress_variables() -> dict:
    """The training progress a checkpoint saves beside the weights: where in which epoch,
    the best dev WER and loss, and the evaluations since the best and since annealing."""
    import tensorflow as tf

    return {
        name: tf.Variable(value, trainable=False, dtype=dtype, name=name)
        for name, value, dtype in (
            ("epoch", 0, tf.int64),
            ("batch_in_epoch", 0, tf.int64),
            ("best_wer", np.inf, tf.float64),
            ("best_loss", np.inf, tf.float64),
            ("evals_since_best", 0, tf.int64),
            ("evals_since_anneal", 0, tf.int64),
        )
    }


def build_training(config, data: TrainingData, replicas: int) -> TrainingParts:
    """Model, optimizer, trainer and checkpoint; call inside the strategy's scope."""
    import keras
    import tensorflow as tf

    from .model import build_model, count_parameters
    from .trainer import CTCTrainer, WarmupAnnealSchedule, make_optimizer

    tc = config.train
    acoustic = build_model(config.model, window_dim(config.features), data.vocab.num_classes)
    # Linear scaling rule: the global batch grows with the replicas, so does the rate;
    # the warm-up keeps the first steps stable.
    base_lr = tc.learning_rate * (replicas if tc.scale_lr else 1)
    schedule = WarmupAnnealSchedule(
        base_lr, tc.warmup_steps, tc.lr_schedule, min_scale=tc.min_lr_scale
    )
    optimizer = make_optimizer(
        schedule,
        tc.clipnorm,
        keras.mixed_precision.global_policy().name == "mixed_float16",
    )
    trainer = CTCTrainer(acoustic, data.vocab.blank_id, tc.batch_size)
    trainer.compile(optimizer=optimizer, jit_compile=tc.jit_compile)
    probe = make_dataset(
        data.train_examples[:1],
        config,
        data.extractor,
        training=False,
        label_length=data.label_length,
        boundaries=data.boundaries,
    )
    trainer(next(iter(probe)))  # create the weights ...
    optimizer.build(trainer.trainable_variables)  # ... and the optimizer slots, before restore
    logger.info(
        f"model: {config.model.lstm_layers} x BiLSTM({config.model.lstm_units}), "
        f"{count_parameters(acoustic):,} parameters, input {window_dim(config.features)} "
        f"({config.features.stack} frames every {config.features.stride}); "
        f"learning rate {base_lr:g}{' (scaled by replicas)' if tc.scale_lr else ''}"
    )
    progress = progress_variables()
    # Dropout's random-number states are not reached through the model's trackable
    # children; name them explicitly so a resumed run draws the same masks.
    rng_states = {
        f"state_{i}": v.value
        for i, v in enumerate(acoustic.non_trainable_variables)
        if "seed_generator" in v.path
    }
    checkpoint = tf.train.Checkpoint(
        model=trainer,
        optimizer=optimizer,
        lr_scale=schedule.scale,
        rng=tf.train.Checkpoint(**rng_states),
        **progress,
    )
    return TrainingParts(acoustic, trainer, optimizer, schedule, checkpoint, progress)


def _fit(
    run,
    own,
    config,
    data: TrainingData,
    parts: TrainingParts,
    strategy,
    strategy_kind,
    replicas,
    train_weights,
    verbose,
) -> dict:
    """Restore, then one ``fit`` per epoch until the budget, a stop or the last epoch."""
    import tensorflow as tf

    from .callbacks import TrainingHooks
    from .progress import TrainingProgress

    tc = config.train
    # Every worker resumes from the run folder's checkpoints; each saves to its own folder.
    restore_from = tf.train.CheckpointManager(
        parts.checkpoint, run.checkpoints, max_to_keep=tc.keep_checkpoints
    )
    restored = _restore_latest(parts.checkpoint, restore_from)
    if not restored and data.init_source is not None:
        finetune.load_weights(parts.acoustic, data.init_source)
    manager = (
        restore_from
        if own is run
        else tf.train.CheckpointManager(
            parts.checkpoint, own.checkpoints, max_to_keep=tc.keep_checkpoints
        )
    )
    p = parts.progress
    state = TrainState(
        epoch=int(p["epoch"].numpy()),
        batch_in_epoch=int(p["batch_in_epoch"].numpy()),
        best_wer=float(p["best_wer"].numpy()),
        best_loss=float(p["best_loss"].numpy()),
        evals_since_best=int(p["evals_since_best"].numpy()),
        evals_since_anneal=int(p["evals_since_anneal"].numpy()),
    )
    if restored:
        logger.info(
            f"restored {restored}: epoch {state.epoch}, batch {state.batch_in_epoch}, "
            f"step {int(parts.optimizer.iterations.numpy())}"
        )
    global_batch = tc.batch_size * replicas
    workers = cluster_from_env().workers
    store_input = data.store and StoreInput(
        data.store,
        data.train_examples,
        config,
        data.extractor,
        label_length=data.label_length,
        boundaries=data.boundaries,
        global_batch=global_batch,
        replicas=replicas,
        partitions=tc.input_partitions or workers,
    )
    write_env(
        own,
        tc.seed,
        {
            "feature_store": store_input and store_input.describe(workers),
            "resumed_from": restored,
            "init_from": data.init_source and str(data.init_source.root),
            "strategy": strategy_kind,
            "replicas": replicas,
            "batch_per_replica": tc.batch_size,
            "global_batch": tc.batch_size * replicas,
            "train_manifests": [str(x) for x in data.train_paths],
            "train_weights": train_weights,
        },
    )
    # Files that passed the pre-flight check but no longer decode: left out, counted, logged.
    skipped = []
    dev_dataset = (
        make_dataset(
            data.dev_examples,
            config,
            data.extractor,
            training=False,
            label_length=data.label_length,
            boundaries=data.boundaries,
            skipped=skipped,
        )
        if data.dev_examples
        else None
    )
    hooks = TrainingHooks(
        run=own,
        config=config,
        trainer=parts.trainer,
        optimizer=parts.optimizer,
        schedule=parts.schedule,
        manager=manager,
        progress=p,
        state=state,
        forward=make_forward(parts.acoustic),
        vocab=data.vocab,
        extractor=data.extractor,
        dev_examples=data.dev_examples,
        dev_dataset=dev_dataset,
        train_examples=data.train_examples,
        strategy=strategy,
        data_info=_data_info(data, train_weights),
        last_eval_step=_evaluated_at_restore(run, int(parts.optimizer.iterations.numpy())),
    )
    hooks.skipped_files = skipped
    batch_sizes = bucket_batch_sizes(data.boundaries, config, global_batch, replicas)
    steps, exact = batches_per_epoch(
        data.train_examples,
        data.boundaries,
        batch_sizes,
        data.sources,
    )
    if store_input:
        steps, exact = store_input.steps, True
    parts.schedule.total_steps.assign(float(planned_steps(tc, steps)))
    progress = TrainingProgress(tc.epochs, tc.max_minutes) if verbose else None
    previous_handlers = _install_signal_handlers(hooks)
    try:
        while state.epoch < tc.epochs and not state.stop_reason:
            dataset = (
                store_input.dataset(
                    strategy, workers, epoch=state.epoch, skip_batches=state.batch_in_epoch
                )
                if store_input
                else make_dataset(
                    data.train_examples,
                    config,
                    data.extractor,
                    training=True,
                    epoch=state.epoch,
                    cache_path=data.cache_path,
                    skip_batches=state.batch_in_epoch,
                    label_length=data.label_length,
                    boundaries=data.boundaries,
                    sources=data.sources,
                    batch_size=global_batch,
                    replicas=replicas,
                    skipped=skipped,
                )
            )
            hooks.begin_epoch()
            if progress:
                progress.begin_epoch(state.epoch, steps, exact, state.batch_in_epoch)
            parts.trainer.fit(
                dataset,
                epochs=state.epoch + 1,
                initial_epoch=state.epoch,
                callbacks=[progress, hooks] if progress else [hooks],
                verbose=0,  # Keras' bar cannot know the epoch's length: ours does
                shuffle=False,
            )
            hooks.end_epoch()
        if not state.stop_reason:
            state.stop_reason = f"finished {tc.epochs} epochs"
    finally:
        _restore_signal_handlers(previous_handlers)
        if store_input:
            logger.info(f"feature store: this worker read {store_input.read_count()} records")
        if progress:
            progress.close()
        hooks.close()
    return hooks.finish()


def planned_steps(tc, steps_per_epoch: int) -> int:
    """The optimizer steps the budget allows, as far as it is known before training:
    ``max_steps``, else all epochs (a time budget is estimated during training)."""
    by_epochs = tc.epochs * max(1, steps_per_epoch)
    return min(tc.max_steps, by_epochs) if tc.max_steps else by_epochs


def _data_info(data: TrainingData, train_weights) -> dict:
    """What the run trains on, for the HParams dashboard and the closing summary."""
    return {
        "train_manifests": ",".join(str(p) for p in data.train_paths),
        "train_weights": ",".join(f"{w:g}" for w in train_weights) if train_weights else "",
        "train_utterances": len(data.train_examples),
        "train_hours": round(sum(e.utterance.duration for e in data.train_examples) / 3600, 4),
        "dev_utterances": len(data.dev_examples),
        "dev_hours": round(sum(e.utterance.duration for e in data.dev_examples) / 3600, 4),
    }


def _evaluated_at_restore(run: RunFolder, step: int) -> int:
    """``step`` if the run's last evaluation scored the restored weights (a budget that
    stopped on an epoch's last batch), so that they are not scored again; else -1. Read
    from the chief's run folder, so that every worker skips the same evaluation."""
    history = _load_history(run)
    return step if step > 0 and history and history[-1]["step"] == step else -1


def _restore_latest(checkpoint, manager):
    """Restore the newest readable checkpoint; a corrupt one is skipped with a warning."""
    for path in reversed(manager.checkpoints):
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
            return path
        except Exception as e:  # noqa: BLE001 - a corrupt file raises many kinds: fall back
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            logger.warning("checkpoint %s is unreadable (%s); trying the previous one", path, first)
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
    return _load_history(run_dir)
