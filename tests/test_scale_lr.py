"""``train.scale_lr``: the linear scaling rule under a real 2-replica MirroredStrategy (two
logical CPUs), read from the optimizer that trained, after the warm-up."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from conftest import REPO, TINY_TRAIN, short_kathleen_clips

from speech_rnn.manifest import write_manifest

# The two logical CPUs must exist before TensorFlow starts: a process of its own. The real
# build_training runs unchanged; the script keeps the optimizer it built to read its rate.
SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import speech_rnn.train as training
    from speech_rnn.config import Config
    kept, real_build = {}, training.build_training

    def keep(config, data, replicas):
        parts = real_build(config, data, replicas)
        kept.update(optimizer=parts.optimizer, replicas=replicas)
        return parts

    training.build_training = keep
    manifest, run = sys.argv[1:3]
    metrics = training.train(manifest, manifest, run, Config().with_overrides(sys.argv[3:]), 0)
    optimizer = kept["optimizer"]
    print(json.dumps({
        "replicas": kept["replicas"], "steps": metrics["steps"],
        "iterations": int(optimizer.iterations.numpy()),
        "rate": float(optimizer.learning_rate.numpy()),
    }))
""")
BASE_LR = 0.001
WARMUP = 2


def test_scale_lr_multiplies_the_rate_by_the_replicas(tmp_path):
    manifest, run = tmp_path / "clips.jsonl", tmp_path / "run"
    write_manifest(short_kathleen_clips(4, max_seconds=3.0), manifest)
    overrides = TINY_TRAIN + [
        "train.strategy=mirrored",
        "train.batch_size=2",  # per replica: 4 global, one step per epoch on 4 clips
        "train.scale_lr=true",
        f"train.learning_rate={BASE_LR}",
        f"train.warmup_steps={WARMUP}",
        "train.anneal_patience=1000",  # no newbob halving to blur the rate
        "train.max_steps=4",
        "train.epochs=50",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(manifest), str(run), *overrides],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and out["steps"] == out["iterations"] == 4
    # the optimizer's own rate at step 4, past the 2 warm-up steps: base x replicas
    assert abs(out["rate"] - 2 * BASE_LR) < 1e-9, out
    env = json.loads((run / "env.json").read_text())
    assert (env["strategy"], env["replicas"], env["global_batch"]) == ("mirrored", 2, 4)
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    after_warmup = [h["learning_rate"] for h in history if h["step"] >= WARMUP]
    assert after_warmup and all(abs(r - 2 * BASE_LR) < 1e-9 for r in after_warmup), history
