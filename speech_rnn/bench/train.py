"""Benchmarks 2, 3 and 5 (training side), run inside workers:

* ``run``: for each named configuration (the default and the 10 ms reference), a trainer
  compiled exactly as :func:`speech_rnn.train.train` compiles it, timed over epochs of a
  training subset through the real pipeline (warm disk cache, as every epoch after the
  first), and, for the input-bound ratio, over the same batches held in memory. Figures are
  steady state (from the end of an epoch's first step to the end of its last), since the
  subset's epochs are short and a full epoch amortizes its start-up; whole-epoch figures
  are kept beside them. Several configurations in one spec alternate within each repeat;
  :mod:`speech_rnn.bench` runs each in its own worker.
* ``run_scaling``: optimizer-step time on batches of 2, 8, 32 s utterances.
* ``run_cer_curve``: :func:`speech_rnn.train.train` for a fixed wall-clock budget, with the
  dev CER it logs along the way.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..config import Config
from ..evaluate import evaluate_run
from ..features import FeatureExtractor, FeatureStats, feature_dim, num_windows, window_dim
from ..pipeline import bucket_boundaries, compute_feature_stats, label_pad_length, make_dataset
from ..train import TrainingData, build_training, load_history, train
from .common import build_examples, clock, from_dicts, median
from .roofline import measure_matmul


def build_trainer(config: Config, vocab, extractor, examples, label_length: int, boundaries):
    """Model, optimizer and compiled trainer exactly as :func:`speech_rnn.train.train`
    builds them (default strategy, one replica)."""
    data = TrainingData(
        vocab, [], list(examples), (), None, extractor, None, label_length, list(boundaries)
    )
    return build_training(config, data, 1).trainer


def _fit_epoch(trainer, make) -> tuple:
    """One epoch: build the dataset with ``make()`` (as training does every epoch) and fit.
    Returns (epoch seconds, seconds from the end of the first step to the end of the last):
    the second leaves out the epoch's start-up (building the dataset, filling the shuffle
    buffer, the first batch), which a full-size epoch of many steps amortizes."""
    import keras

    ends = []

    class StepEnds(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            ends.append(clock())

    start = clock()
    trainer.fit(make(), epochs=1, verbose=0, shuffle=False, callbacks=[StepEnds()])
    return clock() - start, (ends[-1] - ends[0]) if len(ends) > 1 else float("nan")


def run(spec: dict) -> dict:
    import keras

    keras.utils.set_random_seed(1234)
    base = Config.from_dict(spec["config"])
    vocab, base_examples = build_examples(from_dicts(spec["utterances"]), base)
    raw = FeatureExtractor(base.features, base.audio.sample_rate)
    stats = compute_feature_stats(base_examples, base, raw)

    setups = {}
    for name, overrides in spec["configs"].items():
        config = base.with_overrides(overrides)
        # As train() does: pre-flight, label padding and buckets under this config.
        _, examples = build_examples([e.utterance for e in base_examples], config, vocab)
        extractor = FeatureExtractor(config.features, config.audio.sample_rate, stats)
        boundaries = bucket_boundaries(examples, config)
        label_length = label_pad_length(examples)
        cache = Path(spec["work_dir"]) / "train_cache" / name / "train_logmel"

        def real(
            config=config,
            extractor=extractor,
            boundaries=boundaries,
            cache=cache,
            examples=examples,
            label_length=label_length,
        ):
            return make_dataset(
                examples,
                config,
                extractor,
                training=True,
                epoch=0,
                cache_path=cache,
                label_length=label_length,
                boundaries=boundaries,
            )

        # The first pass writes the disk cache (training's first epoch); later passes read
        # it, as every later epoch does.
        memory = real().cache()
        audio, true_w, padded_w, batches, first_audio = 0.0, 0, 0, 0, None
        for batch in memory:
            audio += float(batch["audio_seconds"].numpy().sum())
            first_audio = audio if first_audio is None else first_audio
            true_w += int(batch["feature_lengths"].numpy().sum())
            padded_w += int(batch["features"].shape[0] * batch["features"].shape[1])
            batches += 1
        trainer = build_trainer(config, vocab, extractor, examples, label_length, boundaries)
        warmup, _ = _fit_epoch(trainer, lambda m=memory: m)  # traces / XLA-compiles shapes
        setups[name] = dict(
            config=config,
            real=real,
            memory=memory,
            trainer=trainer,
            audio=audio,
            steady_audio=audio - first_audio,
            batches=batches,
            warmup=warmup,
            efficiency=true_w / max(1, padded_w),
            real_t=[],
            real_steady=[],
            memory_t=[],
            memory_steady=[],
        )

    for _ in range(int(spec["repeats"])):
        for name, s in setups.items():
            epoch, steady = _fit_epoch(s["trainer"], s["real"])
            s["real_t"].append(epoch)
            s["real_steady"].append(steady)
            if name in spec.get("input_bound", ()):
                epoch, steady = _fit_epoch(s["trainer"], lambda m=s["memory"]: m)
                s["memory_t"].append(epoch)
                s["memory_steady"].append(steady)

    out = {"utterances": len(base_examples), "configs": {}}
    for name, s in setups.items():
        config = s["config"]
        result = {
            "overrides": spec["configs"][name],
            "stack": config.features.stack,
            "stride": config.features.stride,
            "jit_compile": config.train.jit_compile,
            "batch_size": config.train.batch_size,
            "batches_per_epoch": s["batches"],
            "audio_seconds_per_epoch": round(s["audio"], 2),
            "warmup_epoch_s": round(s["warmup"], 2),
            "epoch_times_s": s["real_t"],
            "steady_times_s": s["real_steady"],
            # steady state: steps 2..n, as in a full-size epoch (the default figure)
            "audio_s_per_s": s["steady_audio"] / median(s["real_steady"]),
            "step_s": median(s["real_steady"]) / max(1, s["batches"] - 1),
            # whole epochs of this small subset, start-up included
            "epoch_audio_s_per_s": s["audio"] / median(s["real_t"]),
            "padding_efficiency": s["efficiency"],
        }
        if s["memory_t"]:
            result["memory_epoch_times_s"] = s["memory_t"]
            result["memory_steady_times_s"] = s["memory_steady"]
            result["memory_audio_s_per_s"] = s["steady_audio"] / median(s["memory_steady"])
            result["input_bound_ratio"] = median(s["real_steady"]) / median(s["memory_steady"])
            result["epoch_input_bound_ratio"] = median(s["real_t"]) / median(s["memory_t"])
        out["configs"][name] = result
    out["matmul"] = measure_matmul()
    return out


# -- scaling ------------------------------------------------------------------------------------
def synthetic_batch(
    config: Config, num_classes: int, seconds: float, batch_size: int, seed: int = 0
) -> dict:
    """A training batch of ``batch_size`` utterances of ``seconds`` each: random windows
    and random labels of a speaking rate (14 characters a second) CTC can fit."""
    rng = np.random.default_rng(seed)
    sr = config.audio.sample_rate
    windows = num_windows(int(round(seconds * sr)), config.features, sr)
    label_len = max(1, min(int(14 * seconds), windows // 2))
    padded_label = 16 * math.ceil(label_len / 16)
    labels = np.full((batch_size, padded_label), -1, np.int32)
    labels[:, :label_len] = rng.integers(0, num_classes - 1, (batch_size, label_len))
    return {
        "features": rng.standard_normal(
            (batch_size, windows, window_dim(config.features)), dtype=np.float32
        ),
        "feature_lengths": np.full([batch_size], windows, np.int32),
        "labels": labels,
        "label_lengths": np.full([batch_size], label_len, np.int32),
        "index": np.arange(batch_size, dtype=np.int32),
        "audio_seconds": np.full([batch_size], seconds, np.float32),
    }


def run_scaling(spec: dict) -> dict:
    """Optimizer-step time for each length in ``spec["seconds"]`` (in this process)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1234)
    config = Config.from_dict(spec["config"])
    vocab, examples = build_examples(from_dicts(spec["utterances"]), config)
    dim = feature_dim(config.features)
    extractor = FeatureExtractor(
        config.features, config.audio.sample_rate, FeatureStats((0.0,) * dim, (1.0,) * dim)
    )
    trainer = build_trainer(
        config,
        vocab,
        extractor,
        examples[:1],
        label_pad_length(examples),
        bucket_boundaries(examples, config),
    )
    batch_size, steps = config.train.batch_size, int(spec["steps"])
    results = []
    for seconds in spec["seconds"]:
        batch = synthetic_batch(config, vocab.num_classes, seconds, batch_size)
        one = tf.data.Dataset.from_tensors(batch)
        start = clock()
        trainer.fit(one, epochs=1, verbose=0)  # compiles this shape
        first = clock() - start
        times = []

        class StepTimes(keras.callbacks.Callback):
            def __init__(self, times):
                super().__init__()
                self.times = times

            def on_train_batch_begin(self, batch, logs=None):
                self.t = clock()

            def on_train_batch_end(self, batch, logs=None):
                self.times.append(clock() - self.t)

        trainer.fit(one.repeat(steps), epochs=1, verbose=0, callbacks=[StepTimes(times)])
        step = median(times)
        results.append(
            {
                "seconds": seconds,
                "batch_size": batch_size,
                "windows": int(batch["features"].shape[1]),
                "first_step_s": round(first, 3),
                "step_times_s": times,
                "step_s": step,
                "step_s_per_audio_s": step / (seconds * batch_size),
            }
        )
    return {"lengths": results}


# -- CER curve ----------------------------------------------------------------------------------
def run_cer_curve(spec: dict) -> dict:
    """Train one configuration for ``minutes`` of wall time; return its dev CER points."""

    config = Config.from_dict(spec["config"])
    out_dir = Path(spec["work_dir"]) / f"cer_{spec['name']}"
    start = clock()
    metrics = train(spec["train_manifest"], spec["dev_manifest"], out_dir, config, verbose=0)
    wall = clock() - start
    history = load_history(out_dir)
    # The model as the budget ran out, scored on the whole dev set (outside the budget).
    final = evaluate_run(
        out_dir, spec["dev_manifest"], which="last", out=out_dir / "final_dev.json"
    )
    return {
        "name": spec["name"],
        "wall_s": wall,
        "final": {
            "train_seconds": metrics.get("train_seconds_this_invocation"),
            "dev_cer": final["cer"],
            "dev_wer": final["wer"],
        },
        "steps": metrics.get("steps"),
        "stop_reason": metrics.get("stop_reason"),
        "audio_seconds_seen": metrics.get("audio_seconds_seen"),
        "points": [
            {
                "elapsed_s": h["elapsed_s"],
                "step": h["step"],
                "dev_cer": h["dev_cer"],
                "dev_wer": h["dev_wer"],
                "dev_loss": h["dev_loss"],
            }
            for h in history
        ],
    }
