"""tf.distribute on one machine: MirroredStrategy over two logical CPUs, and
MultiWorkerMirroredStrategy with two worker processes on localhost, against single-device
training with the same global batch on a small deterministic configuration."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import REPO, cli, free_port, short_kathleen_clips

from speech_rnn.manifest import write_manifest

DETERMINISTIC = [
    "model.lstm_layers=1",
    "model.lstm_units=16",
    "model.dropout=0",
    "model.input_dropout=0",
    "specaugment.enabled=false",
    "train.jit_compile=false",
    "train.deterministic=true",
    "train.epochs=3",
    "train.log_samples=0",
    "train.warmup_steps=2",
    "train.clipnorm=1.0",
    "train.checkpoint_every_steps=1",
]
# Float tolerance between a run on one device and the same global batch split across
# replicas: the only difference is the order in which gradients are summed.
REL_TOL = 1e-4


def cli_command(manifest, run, extra):
    exe = shutil.which("speech-rnn")
    head = [exe] if exe else [sys.executable, "-m", "speech_rnn.cli"]
    sets = [a for item in DETERMINISTIC + extra for a in ("--set", item)]
    return head + [
        "train",
        "--train",
        str(manifest),
        "--dev",
        str(manifest),
        "--out",
        str(run),
        "--quiet",
        *sets,
    ]


def history(run):
    return [json.loads(line) for line in (Path(run) / "history.jsonl").read_text().splitlines()]


def final_line(output: str, prefix: str) -> str:
    return [line for line in output.splitlines() if line.startswith(prefix)][-1]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    write_manifest(short_kathleen_clips(6, max_seconds=3.0), root / "clips.jsonl")
    return root / "clips.jsonl"


@pytest.fixture(scope="module")
def single_device_run(manifest):
    """The reference: one device, global batch 4, trained in this process (op determinism,
    switched on for the run, is switched off again at its end)."""
    run = manifest.parent / "single"
    command = cli_command(manifest, run, ["train.strategy=default", "train.batch_size=4"])
    result = cli(*command[1:])
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def assert_same_curve(run, reference):
    got, want = history(run), history(reference)
    assert [h["step"] for h in got] == [h["step"] for h in want]
    for a, b in zip(got, want):
        assert a["dev_loss"] == pytest.approx(b["dev_loss"], rel=REL_TOL)


def test_mirrored_on_two_logical_cpus_with_scaled_rate_matches_one_device(
    manifest, single_device_run
):
    """Two replicas of batch 2 with ``train.scale_lr`` and half the one device's rate: the
    linear scaling rule (rate x replicas) gives that rate back, and the dev-loss curve and
    the rate at every evaluation are the one device's."""
    from speech_rnn.config import Config

    rate = Config().train.learning_rate  # the one-device run's: the default
    run = manifest.parent / "mirrored"
    script = textwrap.dedent("""
        import sys, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from speech_rnn.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    scaled = ["train.scale_lr=true", f"train.learning_rate={rate / 2!r}"]
    command = [sys.executable, "-c", script] + cli_command(
        manifest, run, ["train.strategy=mirrored", "train.batch_size=2", *scaled]
    )[1:]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mirrored strategy, 2 replica(s), batch 2 per replica = 4 global" in proc.stdout
    assert f"learning rate {rate:g} (scaled by replicas)" in proc.stdout
    env = json.loads((run / "env.json").read_text())
    assert (env["strategy"], env["replicas"], env["global_batch"]) == ("mirrored", 2, 4)
    assert_same_curve(run, single_device_run)
    # the rate the optimizer trained with at each evaluation: the one device's, whose peak
    # (after the 2-step warm-up; newbob only lowers it) is the default rate
    rates = [[h["learning_rate"] for h in history(r)] for r in (run, single_device_run)]
    assert rates[0] == rates[1] and max(rates[0]) == pytest.approx(rate, rel=1e-6)


def read_only_view(folder: Path) -> list:
    """A command prefix that runs a process in its own mount namespace, where ``folder`` is
    a read-only bind mount of itself: the process sees every file the others write there,
    and any write of its own (from Python or from TensorFlow's C++) fails with EROFS."""
    unshare = shutil.which("unshare")
    if not unshare:
        pytest.skip("no unshare here to give a process a read-only view of a folder")
    share = [unshare, "-m"] if os.geteuid() == 0 else [unshare, "-rm"]
    script = 'mount --bind -o ro "$0" "$0" && exec "$@"'
    probe = folder.parent / "read_only_probe"
    probe.mkdir(exist_ok=True)
    test = subprocess.run(
        [*share, "sh", "-c", script, str(probe), "sh", "-c", f"touch {probe}/x"],
        capture_output=True,
        text=True,
    )
    if "Read-only file system" not in test.stderr:
        pytest.skip(f"cannot give a process a read-only view of a folder here: {test.stderr}")
    return [*share, "sh", "-c", script, str(folder)]


def start_workers(manifest, run, tmp_root, ports, guard_run=False):
    """Two workers on localhost; with ``guard_run`` the non-chief sees the run folder
    read-only, so that a write of its own there kills it (and fails the test)."""
    cluster = [f"127.0.0.1:{p}" for p in ports]
    procs = []
    if guard_run:
        run.mkdir(parents=True, exist_ok=True)  # the chief accepts an empty folder
    for index in range(2):
        env = dict(
            os.environ,
            TMPDIR=str(tmp_root / f"tmp{index}"),
            TF_CONFIG=json.dumps(
                {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
            ),
        )
        (tmp_root / f"tmp{index}").mkdir(exist_ok=True)
        command = cli_command(manifest, run, ["train.strategy=auto", "train.batch_size=2"])
        if guard_run and index == 1:
            command = read_only_view(run) + command
        procs.append(
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
                env=env,
            )
        )
    return procs


def finish(procs, timeout=600, expect=None):
    """Wait for every process; the first to fail kills the others (a worker left alone
    waits forever in an all-reduce) and fails the test with its stderr."""
    expect = expect or [0] * len(procs)
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        failed = [p for p, want in zip(procs, expect) if p.poll() not in (None, want)]
        if failed:
            break
        time.sleep(0.2)
    killed = [p.poll() is None for p in procs]
    for p, kill in zip(procs, killed):
        if kill:
            p.kill()
    outs = [p.communicate() for p in procs]
    # the process that failed by itself first, then those killed here
    order = sorted(range(len(procs)), key=lambda i: killed[i])
    for index in order:
        p, want, err = procs[index], expect[index], outs[index][1]
        assert p.returncode == want, f"process {index} exited {p.returncode}: {err[-3000:]}"
    return [out for out, _ in outs] if expect == [0] * len(procs) else outs


@pytest.fixture(scope="module")
def two_worker_run(manifest, tmp_path_factory):
    """An uninterrupted two-worker run (global batch 4); worker 1 has a read-only view of
    the run folder. (run folder, the workers' outputs, their temporary-folder root)."""
    root = tmp_path_factory.mktemp("two_workers")
    run = root / "run"
    outs = finish(start_workers(manifest, run, root, [free_port(), free_port()], guard_run=True))
    return run, outs, root


def test_two_workers_agree_write_only_from_the_chief_and_match_one_device(
    two_worker_run, single_device_run
):
    run, outs, root = two_worker_run
    assert "multiworker strategy, 2 replica(s), batch 2 per replica = 4 global" in outs[0]
    assert "this worker is not the chief" in outs[1]
    digests = {final_line(out, "final weights sha256") for out in outs}
    assert len(digests) == 1  # bit-identical on both workers
    # Worker 1 ran to the end with the run folder read-only: it wrote nothing there (a
    # write would have killed it), and it removed its own temporary folder.
    assert not any((root / "tmp1").iterdir())
    assert not any((root / "tmp0").iterdir())
    assert (run / "metrics.json").is_file() and list((run / "checkpoints").glob("ckpt-*.index"))
    env = json.loads((run / "env.json").read_text())
    assert (env["strategy"], env["replicas"]) == ("multiworker", 2)
    assert_same_curve(run, single_device_run)


def checkpoint_steps(run) -> list:
    folder = run / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name.split("-")[1].split(".")[0]) for p in folder.glob("ckpt-*.index"))


def wait_for_checkpoint(run, step, procs, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = checkpoint_steps(run)
        if done and done[-1] >= step:
            return
        assert all(p.poll() is None for p in procs), "a worker ended before the checkpoint"
        time.sleep(0.05)
    pytest.fail(f"no checkpoint at step {step} within {timeout} s")


def test_stopped_then_killed_workers_resume_and_match_an_uninterrupted_run(
    manifest, single_device_run, two_worker_run, tmp_path
):
    """One run folder through both ways a multi-worker run ends early, then to the end:
    SIGTERM to the non-chief alone (the stop vote stops both at one step, with a
    checkpoint), the same command again until a worker is killed with SIGKILL, and the same
    command once more, which ends bit-identical to the run that was never interrupted."""
    run = tmp_path / "run"
    total = json.loads((single_device_run / "metrics.json").read_text())["steps"]
    procs = start_workers(manifest, run, tmp_path, [free_port(), free_port()])
    wait_for_checkpoint(run, 1, procs)
    procs[1].send_signal(signal.SIGTERM)  # only the non-chief is told to stop
    (out0, err0), (out1, err1) = finish(procs, expect=[0, 128 + signal.SIGTERM])
    # the chief learns of it through the stop vote and stops at the same step
    assert "stopped by another worker; run folder" in out0
    assert "stopped by SIGTERM; run folder" in out1
    stopped_at = json.loads((run / "metrics.json").read_text())["steps"]
    assert 0 < stopped_at < total - 1
    assert f"checkpoint saved at step {stopped_at}; run the same command to resume" in err1
    assert checkpoint_steps(run)[-1] == stopped_at  # the chief saved the stop step
    # both hold the same weights at that step
    assert final_line(out0, "final weights sha256") == final_line(out1, "final weights sha256")

    procs = start_workers(manifest, run, tmp_path, [free_port(), free_port()])
    wait_for_checkpoint(run, stopped_at + 1, procs)
    procs[1].send_signal(signal.SIGKILL)  # a worker dies ...
    procs[1].wait()
    procs[0].send_signal(signal.SIGKILL)  # ... the chief, stuck in an all-reduce,
    procs[0].wait()  # is stopped by the scheduler
    for p in procs:
        p.communicate()
    # the newest checkpoint the state file lists: one whose files the kill cut short is not
    # listed, and its step is redone
    state = (run / "checkpoints" / "checkpoint").read_text()
    backup = max(map(int, re.findall(r'^all_model_checkpoint_paths: ".*ckpt-(\d+)"$', state, re.M)))
    assert stopped_at < backup < total
    outs = finish(start_workers(manifest, run, tmp_path, [free_port(), free_port()]))
    for out in outs:
        assert re.search(rf" step {backup}$", final_line(out, "restored")), out[-2000:]
    assert json.loads((run / "metrics.json").read_text())["steps"] == total
    # deterministic: bit-identical to the run that was never interrupted
    uninterrupted = final_line(two_worker_run[1][0], "final weights sha256")
    assert {final_line(out, "final weights sha256") for out in outs} == {uninterrupted}
    assert [h["dev_loss"] for h in history(run)][-1] == history(two_worker_run[0])[-1]["dev_loss"]


# Builds the real training parts (speech_rnn.train) on the test clips, traces one train step
# under the strategy and counts the collective all-reduce ops in its graph (nested function
# libraries included), then trains a few steps with fit and saves the weights.
STEP_PROBE = textwrap.dedent("""
    import json, sys, tempfile
    import numpy as np
    from speech_rnn.config import Config
    from speech_rnn.distribute import make_strategy
    from speech_rnn.pipeline import make_dataset
    from speech_rnn.runfolder import RunFolder
    from speech_rnn.train import _prepare_data, build_training

    manifest, kind, steps, overrides, out = sys.argv[1:6]
    strategy, kind = make_strategy(kind)
    import keras, tensorflow as tf
    config = Config().with_overrides(json.loads(overrides))
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(config.train.seed)
    own = RunFolder(tempfile.mkdtemp())
    data = _prepare_data(manifest, None, None, own, own, config)
    replicas = strategy.num_replicas_in_sync
    with strategy.scope():
        parts = build_training(config, data, replicas)
    dataset = make_dataset(data.train_examples, config, data.extractor, training=True,
        label_length=data.label_length, boundaries=data.boundaries,
        batch_size=config.train.batch_size * replicas, replicas=replicas)
    batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
    step = tf.function(lambda b: strategy.run(parts.trainer.train_step, args=(b,)))
    func_graph = step.get_concrete_function(batch).graph
    graph = func_graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    reduces = [n.op for n in nodes if n.op.startswith(("CollectiveReduce", "NcclAllReduce"))]
    # what each collective carries: its input's static size times its dtype's size
    reduce_bytes = [op.inputs[0].shape.num_elements() * op.inputs[0].dtype.size
                    for op in func_graph.get_operations() if op.type in reduces]
    params = sum(int(np.prod(v.shape)) for v in parts.trainer.trainable_variables)
    parts.trainer.fit(dataset, epochs=1, steps_per_epoch=int(steps), verbose=0)
    np.savez(out, *[v.numpy() for v in parts.acoustic.weights])
    print("PROBE " + json.dumps({"reduces": reduces, "reduce_bytes": reduce_bytes,
                                 "params": params,
                                 "steps": int(parts.optimizer.iterations.numpy())}))
""")


def run_step_probes(manifest, tmp_path, jobs):
    """Start one probe per (kind, batch, TF_CONFIG or None); their PROBE results in order."""
    procs = []
    for index, (kind, batch, tf_config) in enumerate(jobs):
        overrides = DETERMINISTIC[:5] + [
            "train.jit_compile=false",
            "train.clipnorm=1.0",
            "train.warmup_steps=2",
            f"train.batch_size={batch}",
        ]
        env = dict(os.environ)
        env.pop("TF_CONFIG", None)
        if tf_config:
            env["TF_CONFIG"] = json.dumps(tf_config)
        command = [sys.executable, "-c", STEP_PROBE, str(manifest), kind, "3"]
        command += [json.dumps(overrides), str(tmp_path / f"weights{index}.npz")]
        procs.append(
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=REPO,
                env=env,
            )
        )
    outs = finish(procs)
    return [json.loads(final_line(out, "PROBE ")[len("PROBE ") :]) for out in outs]


def test_two_workers_make_one_all_reduce_per_step_and_stay_identical(manifest, tmp_path):
    """The collectives of one multi-worker train step, counted in its graph, and the two
    workers' weights after three steps, equal to the bit. Whether two workers train as one
    device does is checked on the dev-loss curve by the two-worker test above."""
    import numpy as np

    cluster = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    workers = [
        ("multiworker", 2, {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}})
        for i in range(2)
    ]
    results = run_step_probes(manifest, tmp_path, workers)
    # gradients, utterance count and non-finite flag in one collective; the optimizer adds
    # none (before: count, gradients, and Keras' own sum in apply = 3)
    assert results[0]["reduces"] == ["CollectiveReduceV2"]
    assert results[1]["reduces"] == ["CollectiveReduceV2"]
    # The one collective carries the packed vector: a float32 per trainable parameter, plus
    # the count and the flag (before: the gradients twice, 2 x 4 x params, and the count).
    for r in results:
        assert r["reduce_bytes"] == [4 * (r["params"] + 2)]
    assert [r["steps"] for r in results] == [3, 3]
    weights = [np.load(tmp_path / f"weights{i}.npz") for i in range(2)]
    assert weights[0].files == weights[1].files
    for name in weights[0].files:
        assert np.array_equal(weights[0][name], weights[1][name])  # replicas stay identical


def test_ctc_loss_of_an_empty_replica_share_is_empty_not_an_error():
    # One utterance over two replicas leaves the second an empty batch.
    import tensorflow as tf

    from speech_rnn.trainer import ctc_loss

    batch = {
        "labels": tf.zeros([0, 4], tf.int32),
        "label_lengths": tf.zeros([0], tf.int32),
        "feature_lengths": tf.zeros([0], tf.int32),
    }
    logits = tf.zeros([0, 6, 3])
    spec = {k: tf.TensorSpec([None] + v.shape[1:], v.dtype) for k, v in batch.items()}

    # As in the train step: traced for any batch size, run on an empty one.
    @tf.function(input_signature=[spec, tf.TensorSpec([None, 6, 3], tf.float32)])
    def loss_and_gradient(batch, logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            losses = ctc_loss(batch, logits, blank_id=2)
            total = tf.reduce_sum(losses)
        return losses, total, tape.gradient(total, logits)

    losses, total, gradient = loss_and_gradient(batch, logits)
    assert losses.shape == (0,) and float(total) == 0.0
    assert gradient.shape == (0, 6, 3)
