"""Feature store at scale: start-up, bytes on disk, input throughput, before and after.

    python scripts/bench_store.py [--copies 85] [--sample 400] [--out bench_store.json]

Builds a large manifest from the shared kathleen clips (each clip repeated under distinct
ids: 85 copies = 121k utterances, 100 h; the manifest points at the same files many times)
and measures, each phase in its own process (so peak RSS is the phase's own):

* start-up as training does it (manifest read, vocabulary, pre-flight without decoding
  audio, the feature-store key and index) on the large manifest;
* feature statistics: before, ``compute_feature_stats`` decodes the corpus; after, the
  store's index sums the moments kept per shard (measured on ``--sample`` clips, scaled);
* bytes per hour of audio: the float32 tf.data cache of today, the float16 store, and an
  int16 PCM store (recomputing the log-mel at read time) for comparison;
* input throughput of one worker: decoding on the fly vs reading the store vs reading int16
  PCM and recomputing the log-mel (utterances/s and audio-s/s).

Timings on a shared machine are disturbed; counts, bytes and memory are not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..config import Config
from ..log import logger
from ..manifest import Utterance, write_manifest
from ..paths import default_shared_data
from .common import kathleen_utterances, peak_rss_mb

NO_VERIFY = ["train.verify_audio=false"]


def large_manifest(path, copies: int, limit=None, data_dir=None, link_dir=None) -> dict:
    """The kathleen clips ``copies`` times under distinct ids; with ``link_dir`` each line
    gets its own path there (a symbolic link to the clip), so that per-file caches hold one
    entry per line, as they would for a corpus of distinct files."""
    clips = kathleen_utterances(data_dir or default_shared_data(), limit)
    utts = [
        Utterance(u.audio_filepath, u.duration, u.text, id=f"{u.key}~{c}")
        for c in range(copies)
        for u in clips
    ]
    if link_dir is not None:
        Path(link_dir).mkdir(parents=True, exist_ok=True)
        linked = []
        for u in utts:
            link = Path(link_dir) / f"{u.id}.flac"
            if not link.is_symlink():
                link.symlink_to(u.audio_filepath)
            linked.append(Utterance(str(link), u.duration, u.text, id=u.id))
        utts = linked
    write_manifest(utts, path, relative=link_dir is None)  # relative paths resolve links
    return {"utterances": len(utts), "hours": sum(u.duration for u in utts) / 3600}


def _examples(manifest, config):
    from ..preflight import preflight
    from ..train import build_vocabulary, load_examples

    utts = load_examples([manifest], config, "train")
    vocab = build_vocabulary(utts, config)
    return utts, preflight(utts, vocab, config, "train", strict=False)


def phase(name: str, manifest: str, store: str, scratch: str) -> dict:
    """One measurement, in this process."""
    if name == "manifest_read":  # before TensorFlow is imported: the reader's memory only
        return _manifest_read(manifest)
    import numpy as np
    import tensorflow as tf

    from ..features import FeatureExtractor
    from ..featurestore import build_store, open_store, parse_record, plan_shards
    from ..pipeline import compute_feature_stats, log_mel_dataset

    config = Config().with_overrides(NO_VERIFY)
    start = time.perf_counter()
    out = {}
    if name == "startup":  # the part both paths share: manifest, vocabulary, pre-flight
        utts, examples = _examples(manifest, config)
        out["utterances"] = len(examples)
        t0 = time.perf_counter()
        plan = plan_shards(utts, config)  # the store's key: what opening a store adds
        out["store_plan_s"], out["shards"] = time.perf_counter() - t0, len(plan)
    elif name in ("preflight_decode", "preflight_headers"):  # as training starts, cached
        out.update(_startup_preflight(manifest, scratch, name == "preflight_decode"))
    elif name == "startup_store":  # ... plus opening the store: key, index, shard sizes, stats
        utts, examples = _examples(manifest, config)
        open_store(store, utts, config).feature_stats()
    elif name == "stats_before":
        utts, examples = _examples(manifest, config)
        raw = FeatureExtractor(config.features, config.audio.sample_rate)
        t0 = time.perf_counter()
        compute_feature_stats(examples, config, raw, Path(scratch) / "f32cache")
        out["stats_s"] = time.perf_counter() - t0
        out["f32_cache_bytes"] = sum(
            p.stat().st_size for p in Path(scratch).glob("f32cache*") if p.is_file()
        )
    elif name == "build_store":
        utts, _ = _examples(manifest, config)
        build_store(utts, config, store)
        out["store_bytes"] = sum(p.stat().st_size for p in Path(store, "shards").glob("*.tfrecord"))
    elif name == "stats_after":
        utts, _ = _examples(manifest, config)
        t0 = time.perf_counter()
        open_store(store, utts, config).feature_stats()
        out["stats_s"] = time.perf_counter() - t0
    elif name == "read_decode":  # on the fly, as every worker does today
        _, examples = _examples(manifest, config)
        raw = FeatureExtractor(config.features, config.audio.sample_rate)
        ds = log_mel_dataset(examples, config.with_overrides(["train.cache=false"]), raw)
        out["items"] = sum(1 for _ in ds.prefetch(8))
    elif name == "read_store":
        utts, _ = _examples(manifest, config)
        s = open_store(store, utts, config)
        ds = tf.data.TFRecordDataset(list(s.shards), num_parallel_reads=4).map(
            lambda r: parse_record(r, config.features.num_mel_bins),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        out["items"] = sum(1 for _ in ds.prefetch(8))
    elif name in ("write_pcm", "read_pcm"):
        out.update(_pcm(name, manifest, scratch, config, np, tf))
    out["seconds"] = time.perf_counter() - start
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _manifest_read(manifest) -> dict:
    """``read_manifest`` in a fresh process: its time and how much it raised the peak RSS."""
    from ..manifest import read_manifest

    before = peak_rss_mb()
    start = time.perf_counter()
    lines = len(read_manifest(manifest))
    return {
        "lines": lines,
        "file_bytes": Path(manifest).stat().st_size,
        "seconds": time.perf_counter() - start,
        "peak_rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "read_mb": peak_rss_mb() - before,
    }


def _startup_preflight(manifest, scratch, decode: bool) -> dict:
    """Training's start-up on ``manifest``: read it, build the vocabulary, check every
    utterance (decoding the audio when ``decode``, as ``train.verify_audio`` does by
    default) with the per-file cache in ``scratch`` that a restart reuses."""
    import threading

    from ..preflight import cache_name, check_utterances
    from ..train import build_vocabulary, load_examples

    config = Config().with_overrides([f"train.verify_audio={str(decode).lower()}"])
    imported = peak_rss_mb()  # Python, TensorFlow and this package: before any manifest
    t0 = time.perf_counter()
    utts = load_examples([manifest], config, "train")
    t1 = time.perf_counter()
    vocab = build_vocabulary(utts, config)
    cache = Path(scratch) / cache_name(f"train {manifest}")
    children, done = {}, threading.Event()
    sampler = threading.Thread(target=_sample_children, args=(children, done), daemon=True)
    sampler.start()
    try:
        result = check_utterances(
            utts, vocab, config, decode_audio=decode, cache_file=cache, save_cache_to=cache
        )
    finally:
        done.set()
        sampler.join()
    t2 = time.perf_counter()
    return {
        "utterances": len(utts),
        "usable": len(result.examples),
        "probed": result.probed,
        "cached": result.cached,
        "manifest_s": t1 - t0,
        "preflight_s": t2 - t1,
        "cache_bytes": cache.stat().st_size,
        "peak_rss_after_imports_mb": imported,
        "pool_processes": len(children),
        "peak_rss_per_pool_process_mb": max(children.values(), default=0.0),
    }


def _sample_children(peaks: dict, done) -> None:
    """The peak RSS (VmHWM, MiB) of each child process, polled until ``done``. (The
    children's ``getrusage`` figure is no use here: a child started by fork and exec keeps
    the parent's peak from before the exec.)"""
    import os

    while not done.wait(0.1):
        pids = set()
        for task in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{task}/children") as f:
                    pids.update(f.read().split())
            except OSError:
                continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    hwm = next(x for x in f if x.startswith("VmHWM:"))
            except (OSError, StopIteration):
                continue
            peaks[pid] = max(peaks.get(pid, 0.0), int(hwm.split()[1]) / 1024.0)


def _pcm(name, manifest, scratch, config, np, tf) -> dict:
    """The alternative: int16 PCM in TFRecords, the log-mel recomputed at every read."""
    from ..audio import load_audio
    from ..features import FeatureExtractor

    path = Path(scratch) / "pcm.tfrecord"
    if name == "write_pcm":
        _, examples = _examples(manifest, config)
        with tf.io.TFRecordWriter(str(path)) as w:
            for e in examples:
                pcm = np.clip(load_audio(e.utterance.audio_filepath, 16000) * 32767, -32768, 32767)
                w.write(pcm.astype("<i2").tobytes())
        return {"pcm_bytes": path.stat().st_size}
    extractor = FeatureExtractor(config.features, config.audio.sample_rate)

    def featurize(raw):
        wave = tf.cast(tf.io.decode_raw(raw, tf.int16), tf.float32) / 32768.0
        return extractor.log_mel(wave)

    ds = tf.data.TFRecordDataset(str(path)).map(featurize, num_parallel_calls=tf.data.AUTOTUNE)
    return {"items": sum(1 for _ in ds.prefetch(8))}


def _run(name, manifest, store, scratch) -> dict:
    command = [sys.executable, "-m", "speech_rnn.bench.store", "--phase", name]
    command += ["--manifest", str(manifest), "--store", str(store), "--scratch", str(scratch)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"phase {name} failed: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    logger.info(f"bench store: {name}: {result}")
    return result


def run_all(copies: int, sample: int, workdir) -> dict:
    work = Path(workdir)
    big, small = work / "large.jsonl", work / "sample.jsonl"
    sizes = {"large": large_manifest(big, copies), "sample": large_manifest(small, 1, sample)}
    store, scratch = work / "store", work / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    r = {"sizes": sizes}
    for name in ("stats_before", "build_store", "stats_after", "read_decode", "read_store",
                 "write_pcm", "read_pcm"):  # fmt: skip
        r[name] = _run(name, small, store, scratch)
    r["startup"] = _run("startup", big, store, scratch)
    return r


def report(r: dict) -> str:
    big, small = r["sizes"]["large"], r["sizes"]["sample"]
    scale = big["hours"] / small["hours"]
    hours = small["hours"]
    utt = small["utterances"]

    def rate(phase):
        return r[phase]["items"] / r[phase]["seconds"]

    rows = [
        ("corpus (large manifest)", f"{big['utterances']:,} utt, {big['hours']:.1f} h", ""),
        (
            "start-up without statistics (manifest, vocabulary, pre-flight w/o decoding)",
            f"{r['startup']['seconds'] - r['startup']['store_plan_s']:.1f} s, "
            f"{r['startup']['peak_rss_mb']:.0f} MiB peak",
            f"+ {r['startup']['store_plan_s']:.1f} s store key ({r['startup']['shards']} shards)",
        ),
        (
            "feature statistics, scaled to the large corpus",
            f"{r['stats_before']['stats_s'] * scale:.0f} s (decodes all audio)",
            f"{r['stats_after']['stats_s']:.2f} s on the sample (sums per-shard moments)",
        ),
        (
            "features on disk per hour of audio",
            f"{r['stats_before']['f32_cache_bytes'] / hours / 1e6:.1f} MB (float32 tf.data cache)",
            f"{r['build_store']['store_bytes'] / hours / 1e6:.1f} MB (float16 store); "
            f"int16 PCM {r['write_pcm']['pcm_bytes'] / hours / 1e6:.1f} MB",
        ),
        (
            "input throughput, one worker (utt/s; audio-s/s)",
            f"{rate('read_decode'):.0f}; {rate('read_decode') * hours * 3600 / utt:.0f} (decode)",
            f"{rate('read_store'):.0f}; {rate('read_store') * hours * 3600 / utt:.0f} (store); "
            f"int16 PCM + log-mel {rate('read_pcm'):.0f}",
        ),
        ("input work per worker, N workers", "the whole corpus", "1/N of the corpus"),
    ]
    lines = ["| measure | before | after |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--copies",
        type=int,
        default=85,
        help="times the kathleen clips are repeated (under new ids) in the large manifest",
    )
    p.add_argument(
        "--sample", type=int, default=400, help="kathleen clips for the per-hour measurements"
    )
    p.add_argument("--out", default="bench_store.json", help="where the JSON results go")
    p.add_argument("--phase", help=argparse.SUPPRESS)
    p.add_argument("--manifest", help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    p.add_argument("--scratch", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.copies < 1 or args.sample < 1:
        p.error("--copies and --sample must be at least 1")
    if args.phase:
        sys.stdout.write(
            json.dumps(phase(args.phase, args.manifest, args.store, args.scratch)) + "\n"
        )
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_store_") as work:
        results = run_all(args.copies, args.sample, work)
    Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    sys.stdout.write(report(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
