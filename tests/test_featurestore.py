"""The sharded feature store (speech_rnn/featurestore.py) on real kathleen clips: written
once, read back equal to on-the-fly features up to float16 rounding, invalidated exactly by
what changes the features or the lines, refused when incomplete, and read by two workers on
localhost, each its own shards, training as one worker does."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
from conftest import REPO, cli, free_port, short_kathleen_clips

from speech_rnn.config import Config
from speech_rnn.manifest import write_manifest

# float16 keeps 11 significant bits: round-to-nearest is within 2^-11 of the value (relative);
# the absolute term covers values in float16's subnormal range (none in practice: log-mel
# is at least log(1e-6) ~ -13.8 in magnitude range well above it).
F16_RTOL = 2.0**-11
F16_ATOL = 1e-6


@pytest.fixture(scope="module")
def clips():
    return short_kathleen_clips(6, max_seconds=3.0)


def stored_log_mels(store):
    import tensorflow as tf

    from speech_rnn.featurestore import parse_record

    out = {}
    for path in store.shards:
        for r in tf.data.TFRecordDataset(path).map(lambda s: parse_record(s, 40)):
            out[r["key"].numpy().decode()] = r["log_mel"].numpy()
    return out


def test_store_reads_back_the_on_the_fly_features_to_float16_rounding(clips, tmp_path):
    from speech_rnn.audio import load_audio
    from speech_rnn.features import FeatureExtractor
    from speech_rnn.featurestore import build_store, open_store

    config = Config()
    done = build_store(clips[:4], config, tmp_path, shard_utterances=2)
    assert (done["shards"], done["written"], done["pending"]) == (2, 2, 0)
    got = stored_log_mels(open_store(tmp_path, clips[:4], config))
    assert sorted(got) == sorted(u.key for u in clips[:4])  # each utterance exactly once
    extractor = FeatureExtractor(config.features, config.audio.sample_rate)
    for u in clips[:4]:
        want = extractor.log_mel(load_audio(u.audio_filepath, 16000)).numpy()
        assert got[u.key].shape == want.shape
        np.testing.assert_allclose(got[u.key], want, rtol=F16_RTOL, atol=F16_ATOL)
        assert not np.array_equal(got[u.key], want)  # it is float16, not a float32 copy


def test_feature_settings_and_added_lines_invalidate_exactly_their_shards(clips, tmp_path):
    from speech_rnn.featurestore import FeatureStoreError, build_store, open_store

    config = Config()
    build_store(clips[:4], config, tmp_path, shard_utterances=2)
    # Appending lines keeps the full shards and writes the new ones only.
    more = build_store(clips, config, tmp_path)
    assert (more["kept"], more["written"], more["shards"]) == (2, 1, 3)
    open_store(tmp_path, clips, config)
    # Settings applied after the read do not invalidate it ...
    after = config.with_overrides(["features.normalization=utterance", "features.stack=2"])
    assert (
        open_store(tmp_path, clips, after).feature_key
        == open_store(tmp_path, clips, config).feature_key
    )
    # ... one that changes the stored features does, with a one-line error.
    changed = config.with_overrides(["features.num_mel_bins=32"])
    with pytest.raises(FeatureStoreError, match=r"no complete feature store.*0 of 3 shards"):
        open_store(tmp_path, clips, changed)
    assert build_store(clips, changed, tmp_path)["written"] == 3
    # An interrupted build (a shard without its completion marker) redoes that shard only.
    marker = sorted((tmp_path / "shards").glob("*.json"))[0]
    marker.unlink()
    redo = build_store(clips, config, tmp_path)
    redo2 = build_store(clips, changed, tmp_path)
    assert redo["written"] + redo2["written"] == 1 and marker.is_file()


def test_incomplete_store_is_refused_with_one_line(clips, tmp_path):
    from speech_rnn.featurestore import FeatureStoreError, build_store, open_store

    config = Config()
    build_store(clips[:4], config, tmp_path, shard_utterances=2)
    shard = sorted((tmp_path / "shards").glob("*.tfrecord"))[1]
    data = shard.read_bytes()
    shard.write_bytes(data[:-10])
    with pytest.raises(FeatureStoreError, match=rf"{re.escape(str(shard))}: truncated"):
        open_store(tmp_path, clips[:4], config)
    shard.write_bytes(data)
    open_store(tmp_path, clips[:4], config)
    shard.unlink()
    with pytest.raises(FeatureStoreError, match="shard missing"):
        open_store(tmp_path, clips[:4], config)
    # No completion marker (the index): training refuses before any work, in one line.
    next(tmp_path.glob("index-*.json")).unlink()
    write_manifest(clips[:4], tmp_path / "clips.jsonl")
    proc = cli(
        "train", "--train", tmp_path / "clips.jsonl", "--out", tmp_path / "run", "--quiet",
        "--set", f"train.feature_store={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 2
    err = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(err) == 1 and "no completion marker" in err[0] and str(tmp_path) in err[0]


# -- two workers on localhost ------------------------------------------------------------
SETTINGS = [
    "model.lstm_layers=1",
    "model.lstm_units=16",
    "model.dropout=0",
    "model.input_dropout=0",
    "specaugment.enabled=false",
    "train.jit_compile=false",
    "train.deterministic=true",
    "train.epochs=2",
    "train.log_samples=0",
    "train.warmup_steps=2",
    "train.pictures_every=0",
]
REL_TOL = 1e-4  # as tests/test_distributed.py: only the gradient summation order differs


def train_command(manifest, run, store, extra):
    exe = shutil.which("speech-rnn")
    head = [exe] if exe else [sys.executable, "-m", "speech_rnn.cli"]
    sets = [a for s in SETTINGS + [f"train.feature_store={store}"] + extra for a in ("--set", s)]
    return head + ["train", "--train", str(manifest), "--dev", str(manifest)] + [
        "--out", str(run), "--quiet", *sets,
    ]  # fmt: skip


def records_read(out: str) -> int:
    return int(re.search(r"feature store: this worker read (\d+) records", out).group(1))


# -- a worker killed mid-epoch, both restarted ---------------------------------------------
def start_workers(manifest, run, store, tmp_root, extra):
    cluster = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    procs = []
    for index in range(2):
        (tmp_root / f"tmp{index}").mkdir(exist_ok=True)
        env = dict(
            os.environ,
            TMPDIR=str(tmp_root / f"tmp{index}"),
            TF_CONFIG=json.dumps(
                {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
            ),
        )
        procs.append(
            subprocess.Popen(train_command(manifest, run, store, extra), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
        )  # fmt: skip
    return procs


def finish(procs, timeout=600) -> list:
    """Both workers' stdout; a worker that fails kills the other (which would wait forever
    in an all-reduce) and fails the test with its stderr."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.kill()
    outs = [p.communicate() for p in procs]
    for index, (p, (_, err)) in enumerate(zip(procs, outs, strict=True)):
        assert p.returncode == 0, f"worker {index} exited {p.returncode}: {err[-3000:]}"
    return [out for out, _ in outs]


def checkpoint_steps(run) -> list:
    found = (run / "checkpoints").glob("ckpt-*.index")
    return sorted(int(p.name.split("-")[1].split(".")[0]) for p in found)


# One utterance per worker per step; a checkpoint after every step (the backup to resume).
RESUME = ["train.batch_size=1", "train.checkpoint_every_steps=1"]


@pytest.fixture(scope="module")
def resume_store(clips, tmp_path_factory):
    """Ten utterances (the six clips, four of them again under new ids) in shards of two:
    partition 0 holds shards 0, 2, 4 (six utterances), partition 1 shards 1, 3 (four), so
    an epoch is six steps and worker 1's last two are empty. With the uninterrupted
    two-worker run, the reference of both two-worker tests: (manifest, store, run, the
    workers' outputs)."""
    root = tmp_path_factory.mktemp("store_resume")
    manifest, store = root / "clips.jsonl", root / "store"
    write_manifest(clips + [replace(u, id=f"{u.key}~2") for u in clips[:4]], manifest)
    built = cli("cache", "--train", manifest, "--store", store, "--shard-utterances", 2)
    assert built.returncode == 0, built.stderr[-2000:]
    assert "5 shards: 5 written" in built.stdout
    run = root / "run"
    outs = finish(start_workers(manifest, run, store, root, RESUME))
    return manifest, store, run, outs


def test_a_worker_killed_mid_epoch_resumes_from_the_store_exactly(resume_store, tmp_path):
    manifest, store, reference, reference_outs = resume_store
    total = json.loads((reference / "metrics.json").read_text())["steps"]
    per_epoch = [records_read(out) // 2 for out in reference_outs]  # two epochs
    assert per_epoch == [6, 4] and total == 2 * 6
    steps = total // 2
    run = tmp_path / "run"
    procs = start_workers(manifest, run, store, tmp_path, RESUME)
    deadline = time.monotonic() + 300
    while not any(s >= 2 for s in checkpoint_steps(run)):
        assert all(p.poll() is None for p in procs), "a worker ended before the checkpoint"
        assert time.monotonic() < deadline, "no checkpoint at step 2 within 300 s"
        time.sleep(0.02)
    procs[1].send_signal(signal.SIGKILL)  # a worker dies mid-epoch ...
    procs[1].wait()
    procs[0].send_signal(signal.SIGKILL)  # ... the chief, stuck in an all-reduce, is stopped
    procs[0].wait()
    for p in procs:
        p.communicate()
    outs = finish(start_workers(manifest, run, store, tmp_path, RESUME))  # the same command
    # Where they resumed (the newest checkpoint the state file lists; one whose files were
    # cut short by the kill is not listed, and its step is redone): mid-epoch, both alike.
    resumed = {re.search(r"restored .*: epoch (\d+), batch (\d+),", out).groups() for out in outs}
    assert len(resumed) == 1
    epoch, batch = map(int, resumed.pop())
    assert 0 < batch < steps and epoch < 2, f"resumed at epoch {epoch}, batch {batch}"
    assert json.loads((run / "metrics.json").read_text())["steps"] == total
    # Bit-identical to the run that was never interrupted, on both workers.
    want = final_weights(reference_outs[0])
    assert {final_weights(out) for out in outs} == {want}
    # Reads after the restart: each worker its own records, once per epoch left, the
    # resumed one in full (the checkpoint holds a batch position, so the batches before it
    # are read again and skipped, not trained on twice), and nothing more.
    assert [records_read(out) for out in outs] == [n * (2 - epoch) for n in per_epoch]


def final_weights(out: str) -> str:
    return [x for x in out.splitlines() if x.startswith("final weights")][-1]


def test_two_workers_each_read_their_shards_once_and_train_as_one_worker(resume_store, tmp_path):
    # The two-worker run is the module's uninterrupted one (resume_store, shared with the
    # kill test below): per step one utterance from each of the two partitions.
    manifest, store, run, outs = resume_store
    # The reference: one worker reading both partitions (global batch 2 = 1 + 1), trained
    # in this process.
    single = tmp_path / "single"
    command = train_command(
        manifest, single, store, RESUME + ["train.batch_size=2", "train.input_partitions=2"]
    )
    result = cli(*command[1:])
    assert result.returncode == 0, result.stderr[-3000:]
    assert records_read(result.stdout) == 2 * 10  # two epochs, every utterance once
    # Partition 0 holds shards 0, 2 and 4 (6 utterances), partition 1 shards 1 and 3 (4):
    # each worker reads its own, every utterance is read exactly once per epoch across them.
    reads = [records_read(out) for out in outs]
    assert reads == [2 * 6, 2 * 4]
    env = json.loads((run / "env.json").read_text())
    assert env["feature_store"]["worker_shards"] == [0, 2, 4]
    assert env["feature_store"]["partitions"] == 2 and env["replicas"] == 2
    assert len({final_weights(out) for out in outs}) == 1
    got, want = (
        [json.loads(x) for x in (r / "history.jsonl").read_text().splitlines()]
        for r in (run, single)
    )
    assert [h["step"] for h in got] == [h["step"] for h in want]
    for a, b in zip(got, want, strict=True):
        assert a["dev_loss"] == pytest.approx(b["dev_loss"], rel=REL_TOL)


def test_bench_store_phases_on_three_clips(tmp_path, kathleen_dir):
    # A smoke test of the benchmark's code (the large manifest is the benchmark's only).
    from speech_rnn.bench.store import large_manifest, phase

    manifest = tmp_path / "m.jsonl"
    sizes = large_manifest(manifest, copies=2, limit=3, data_dir=kathleen_dir.parent)
    assert sizes["utterances"] == 6
    ids = [json.loads(x)["id"] for x in manifest.read_text().splitlines()]
    assert len(set(ids)) == 6  # the same files under distinct ids
    store, scratch = tmp_path / "store", tmp_path / "scratch"
    scratch.mkdir()
    assert phase("build_store", manifest, store, scratch)["store_bytes"] > 0
    assert phase("read_store", manifest, store, scratch)["items"] == 6
    assert phase("startup", manifest, store, scratch)["shards"] == 1
    assert phase("manifest_read", manifest, store, scratch)["lines"] == 6
    # Start-up with the pre-flight cache: each line its own file path (a link), so the
    # second start answers every line from the cache.
    linked = tmp_path / "linked.jsonl"
    large_manifest(linked, copies=2, limit=3, data_dir=kathleen_dir.parent, link_dir=tmp_path / "l")
    paths = {json.loads(x)["audio_filepath"] for x in linked.read_text().splitlines()}
    assert len(paths) == 6 and all(os.path.islink(p) for p in paths)
    first, second = (phase("preflight_headers", linked, store, scratch) for _ in range(2))
    assert (first["probed"], first["cached"], second["probed"], second["cached"]) == (6, 0, 0, 6)
