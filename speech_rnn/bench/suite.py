"""Speed benchmarks, side by side: every comparison a ratio measured in the same run.

``speech-rnn bench`` (or ``scripts/bench.py``) runs on ``../shared/data`` (kathleen read
speech, FSDD digits) or on ``--manifest``, prints a table and writes JSON with the machine
description. Every figure is the median of ``--repeats`` repeats.
Each measurement runs in its own worker process (:mod:`speech_rnn.bench.worker`), so thread
settings are fixed before TensorFlow starts and peak memory is per job.

1. input pipeline, cold and warm, vs a plain librosa loop (:mod:`speech_rnn.bench_pipeline`)
2. input-bound ratio: epoch time through the pipeline / same batches from memory
3. training throughput, default vs the 10 ms reference (``--cer-curve``: dev CER over a
   fixed wall-clock budget for both) (:mod:`speech_rnn.bench_train`)
4. inference real-time factor, 1 thread and all threads, greedy and beam, pocketsphinx on
   the same files when installed; batch transcription (:mod:`speech_rnn.bench_infer`)
5. scaling with utterance length; peak resident memory
6. roofline: model FLOPs per audio-second over the measured matmul rate
   (:mod:`speech_rnn.bench_roofline`)

Benchmarks are not tests: nothing here asserts on wall-clock time.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..config import Config
from ..data.recipes import kathleen
from ..log import add_log_flags, logger
from ..paths import default_shared_data
from ..recognizer import DEFAULT_BATCH_SIZE
from ..runfolder import RunFolder
from .common import (
    BenchError,
    describe_machine,
    fsdd_utterances,
    kathleen_utterances,
    manifest_utterances,
    to_dicts,
)
from .launch import run_worker, set_in_process
from .roofline import fraction_of_limit, model_flops

SECTIONS = ("pipeline", "train", "inference", "scaling")
REFERENCE = ["features.stack=1", "features.stride=1", "train.jit_compile=false"]
TARGETS = {
    "pipeline_cold_vs_librosa": (">=", 3.0),
    "pipeline_warm_x_realtime": (">=", 5000.0),
    "input_bound_ratio": ("<=", 1.05),
    "train_default_audio_s_per_s": (">=", 120.0),
    "train_default_vs_reference": (">=", 5.0),
    "rtf_per_file_1_thread": ("<=", 0.006),
    "pocketsphinx_vs_ours_1_thread": (">=", 25.0),
    "batch_x_realtime": (">=", 300.0),
}
# Sizes of the full run (about 10-15 minutes on 2 cores) and of --quick (seconds).
FULL = dict(
    repeats=3,
    pipeline_kathleen=None,
    pipeline_fsdd=250,
    train_utterances=192,
    infer_files=20,
    many_files=400,
    many_repeats=2,
    scale_seconds=(2, 8, 32),
    scale_batch=4,
    scale_steps=3,
    scale_separate=True,
)
QUICK = dict(
    repeats=1,
    pipeline_kathleen=8,
    pipeline_fsdd=4,
    train_utterances=8,
    infer_files=2,
    many_files=4,
    many_repeats=1,
    scale_seconds=(1, 2),
    scale_batch=2,
    scale_steps=2,
    scale_separate=False,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_log_flags(p)
    p.add_argument(
        "--data",
        metavar="DIR",
        help="shared data folder with kathleen/ and fsdd/ (default: ../shared/data "
        "or $SPEECH_RNN_SHARED_DATA)",
    )
    p.add_argument(
        "--manifest",
        metavar="MANIFEST",
        help="benchmark these utterances instead of the shared data",
    )
    p.add_argument(
        "--model",
        metavar="RUN_DIR",
        help="trained run folder for the inference benchmarks (default: a model "
        "with random weights, which is as fast but transcribes nonsense)",
    )
    p.add_argument(
        "--out", metavar="JSON", help="results file (default: runs/bench/bench-DATE.json)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and one repeat: checks that everything runs (seconds)",
    )
    p.add_argument("--repeats", type=int, metavar="N", help="repeats per figure (default 3)")
    p.add_argument(
        "--only",
        metavar="LIST",
        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override the default configuration (the reference is the default "
        "plus " + " ".join(REFERENCE) + ")",
    )
    p.add_argument(
        "--cer-curve",
        type=float,
        metavar="MINUTES",
        help="also train the default and the reference for MINUTES each and "
        "record their dev CER over wall time (long)",
    )
    p.add_argument(
        "--dev-manifest",
        metavar="MANIFEST",
        help="dev set for --cer-curve with --manifest (default: a kathleen split)",
    )
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run every measurement in this process, not in worker processes: "
        "faster to start, but thread settings are not applied and peak "
        "memory is not per job (for checking that the code runs)",
    )
    p.add_argument(
        "--work-dir",
        metavar="DIR",
        help="scratch folder (default: a temporary one, removed at the end)",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    sizes = dict(QUICK if args.quick else FULL)
    if args.repeats is not None:
        if args.repeats < 1:
            raise BenchError("--repeats must be at least 1")
        sizes["repeats"] = args.repeats
    sections = _sections(args.only)
    set_in_process(args.in_process)
    if args.in_process:
        import warnings

        warnings.filterwarnings("ignore", module="keras")
    config = Config().with_overrides(args.set)
    reference = config.with_overrides(REFERENCE)
    data = _data(args)
    work = (
        Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="speech_rnn_bench_"))
    )
    out = (
        Path(args.out)
        if args.out
        else Path("runs") / "bench" / f"bench-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    )
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": describe_machine(),
        "sizes": sizes,
        "data": data["description"],
        "in_process": bool(args.in_process),
        "config_overrides": list(args.set),
        "reference_overrides": REFERENCE,
        "sections": {},
    }
    try:
        _run_sections(report, sections, sizes, config, reference, data, work, args)
    finally:
        set_in_process(False)
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["targets"] = evaluate_targets(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=float) + "\n", encoding="utf-8")
    print(format_table(report))
    print(f"\nresults: {out}")
    return 0


def _sections(only) -> tuple:
    if not only:
        return SECTIONS
    chosen = tuple(s.strip() for s in only.split(",") if s.strip())
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        raise BenchError(
            f"--only: unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}"
        )
    return chosen


def _data(args) -> dict:
    """The utterances for each benchmark, from --manifest or the shared data folder."""
    if args.manifest:
        utts = manifest_utterances(args.manifest)
        if not utts:
            raise BenchError(f"{args.manifest}: no utterances")
        return {
            "description": {"manifest": str(args.manifest), "utterances": len(utts)},
            "pipeline": utts,
            "train": utts,
            "speech": utts,
            "kathleen": None,
        }
    root = Path(args.data) if args.data else default_shared_data()
    if root is None or not (root / "kathleen").is_dir():
        raise BenchError(
            "no shared data found (../shared/data or $SPEECH_RNN_SHARED_DATA); "
            "give --data DIR or --manifest MANIFEST"
        )
    kathleen = kathleen_utterances(root)
    if not kathleen:
        raise BenchError(f"{root / 'kathleen'}: no clips with transcripts")
    sizes = QUICK if args.quick else FULL
    fsdd = fsdd_utterances(root, sizes["pipeline_fsdd"]) if (root / "fsdd").is_dir() else []
    limit = sizes["pipeline_kathleen"]
    return {
        "description": {
            "shared_data": str(root),
            "kathleen_clips": len(kathleen),
            "fsdd_clips_in_pipeline": len(fsdd),
        },
        "pipeline": kathleen[:limit] + fsdd,
        "train": kathleen,
        "speech": kathleen,
        "kathleen": root / "kathleen",
    }


def _spread(items, count):
    """``count`` items spread evenly over ``items``."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def _log(message: str) -> None:
    logger.info(f"[bench {datetime.datetime.now():%H:%M:%S}] {message}")


def _section(report, name, fn):
    _log(f"{name} ...")
    try:
        report["sections"][name] = fn()
    except BenchError as e:
        report["sections"][name] = {"error": str(e)}
        _log(f"{name}: {e}")


def _run_sections(report, sections, sizes, config, reference, data, work, args):
    repeats = sizes["repeats"]
    base = config.to_dict()
    if "pipeline" in sections:
        _section(
            report,
            "pipeline",
            lambda: run_worker(
                "pipeline",
                {"config": base, "utterances": to_dicts(data["pipeline"]), "repeats": repeats},
                work,
            ),
        )
    if "train" in sections:
        utts = _spread(data["train"], sizes["train_utterances"])
        _section(report, "train", lambda: _train_section(base, utts, repeats, work))
    speech_files = [u.audio_filepath for u in data["speech"]]
    model_dir, model_config = None, config
    if "inference" in sections or "scaling" in sections:
        model_dir, model_config, random_weights = _model(args, base, data, work, report)
        report["model"] = {"run_dir": str(model_dir), "random_weights": random_weights}
    if "inference" in sections:
        files = _spread(speech_files, sizes["infer_files"])
        many = _spread(speech_files, sizes["many_files"])
        _section(
            report,
            "inference",
            lambda: _inference_section(model_dir, files, many, sizes, repeats, work),
        )
    if "scaling" in sections:
        _section(
            report,
            "scaling",
            lambda: _scaling_section(base, model_dir, data["speech"], sizes, repeats, work),
        )
    report["sections"]["roofline"] = _roofline(report, config, reference, model_config)
    if args.cer_curve:
        _section(report, "cer_curve", lambda: _cer_curve(args, base, data, work, report))


def _model(args, base, data, work, report):
    if args.model:
        run = RunFolder(args.model)
        if not run.exists():
            raise BenchError(f"{args.model}: not a run folder (no config.json)")
        return run.root, Config.load(run.config), False
    _log("initializing a model with random weights for the inference benchmarks")
    made = run_worker(
        "make_model",
        {
            "config": base,
            "run_dir": str(work / "random_model"),
            "utterances": to_dicts(data["train"]),
        },
        work,
    )
    report["model_init"] = made
    return Path(made["run_dir"]), Config.from_dict(base), True


def _train_section(base, utts, repeats, work):
    """The default and the reference, one worker each: two XLA-compiled trainers sharing a
    process disturbed each other's epochs (recompiling after the other one ran)."""
    out = {"configs": {}}
    for name, overrides in (("default", []), ("reference", REFERENCE)):
        result = run_worker(
            "train",
            {
                "config": base,
                "utterances": to_dicts(utts),
                "repeats": repeats,
                "configs": {name: overrides},
                "input_bound": [name],
            },
            work,
        )
        out["configs"][name] = dict(
            result["configs"][name],
            threads=result["threads"],
            peak_rss_mb=result["peak_rss_mb"],
            matmul=result["matmul"],
        )
        out["utterances"] = result["utterances"]
        if name == "default":
            out["matmul"] = result["matmul"]
    return out


def _inference_section(model_dir, files, many, sizes, repeats, work):
    spec = {
        "run_dir": str(model_dir),
        "files": files,
        "beam_width": 16,
        "repeats": repeats,
        "batch_size": DEFAULT_BATCH_SIZE,
        "many_repeats": sizes["many_repeats"],
    }
    one = run_worker("infer", dict(spec, pocketsphinx=True), work, threads=1)
    every = run_worker("infer", dict(spec, many_files=many), work, threads=None)
    out = {"one_thread": one, "all_threads": every}
    if one.get("rtf_pocketsphinx"):
        out["pocketsphinx_vs_ours_1_thread"] = one["rtf_pocketsphinx"] / one["rtf_greedy"]
    else:
        out["pocketsphinx"] = "not installed (pip install 'speech-rnn[bench]')"
    out["all_vs_one_thread_greedy"] = one["rtf_greedy"] / every["rtf_greedy"]
    return out


def _scaling_section(base, model_dir, speech, sizes, repeats, work):
    speech_files = [u.audio_filepath for u in speech]
    seconds = list(sizes["scale_seconds"])
    groups = [[s] for s in seconds] if sizes["scale_separate"] else [seconds]
    train, infer = [], []
    train_config = (
        Config.from_dict(base)
        .with_overrides([f"train.batch_size={sizes['scale_batch']}"])
        .to_dict()
    )
    for group in groups:  # one process per length: peak memory per length
        for rows, task, spec in (
            (
                train,
                "scale_train",
                {
                    "config": train_config,
                    "seconds": group,
                    "steps": sizes["scale_steps"],
                    "utterances": to_dicts(speech[:4]),
                },
            ),
            (
                infer,
                "scale_infer",
                {
                    "run_dir": str(model_dir),
                    "seconds": group,
                    "repeats": repeats,
                    "source_files": speech_files[:40],
                },
            ),
        ):
            try:
                result = run_worker(task, spec, work)
            except BenchError as e:  # e.g. over the memory limit: record it, go on
                rows.extend({"seconds": s, "error": str(e)} for s in group)
                continue
            rows.extend(dict(row, peak_rss_mb=result["peak_rss_mb"]) for row in result["lengths"])
    for rows, key in ((train, "step_s"), (infer, "transcribe_s")):
        done = [row for row in rows if key in row]
        for row in done:
            row["time_ratio_vs_shortest"] = row[key] / done[0][key]
            row["length_ratio_vs_shortest"] = row["seconds"] / done[0]["seconds"]
    return {
        "train_step": train,
        "transcribe": infer,
        "train_batch_size": sizes["scale_batch"],
        "separate_processes": sizes["scale_separate"],
    }


def _roofline(report, config, reference, model_config) -> dict:
    sections = report["sections"]
    classes = report.get("model_init", {}).get("num_classes")
    if classes is None:
        classes = len(model_config.text.charset) + 1
    out = {
        "num_classes": classes,
        "default": model_flops(config, classes),
        "reference": model_flops(reference, classes),
        "inference_model": model_flops(model_config, classes),
    }
    train = sections.get("train", {})
    if "configs" in train:
        rate = train["matmul"]["flops_per_s"]
        out["train_matmul_flops_per_s"] = rate
        for name, flops in (("default", out["default"]), ("reference", out["reference"])):
            achieved = train["configs"][name]["audio_s_per_s"]
            own_rate = train["configs"][name].get("matmul", {}).get("flops_per_s", rate)
            out[f"train_{name}_fraction"] = fraction_of_limit(
                flops["training_flops_per_audio_second"], achieved, own_rate
            )
    inf = sections.get("inference", {})
    if "one_thread" in inf:
        flops = out["inference_model"]["inference_flops_per_audio_second"]
        one, every = inf["one_thread"], inf["all_threads"]
        out["matmul_1_thread_flops_per_s"] = one["matmul"]["flops_per_s"]
        out["matmul_all_threads_flops_per_s"] = every["matmul"]["flops_per_s"]
        out["inference_1_thread_per_file_fraction"] = fraction_of_limit(
            flops, 1.0 / one["rtf_greedy"], one["matmul"]["flops_per_s"]
        )
        if "batch" in every:
            out["inference_batch_all_threads_fraction"] = fraction_of_limit(
                flops, every["batch"]["x_realtime"], every["matmul"]["flops_per_s"]
            )
    return out


def _cer_curve(args, base, data, work, report):
    minutes = float(args.cer_curve)
    if args.manifest:
        if not args.dev_manifest:
            raise BenchError("--cer-curve with --manifest needs --dev-manifest")
        train_manifest, dev_manifest = args.manifest, args.dev_manifest
    else:
        manifests = kathleen(data["kathleen"], work / "kathleen_split")
        train_manifest, dev_manifest = manifests["train"], manifests["dev"]
    configs = report["sections"].get("train", {}).get("configs", {})
    out = {
        "minutes": minutes,
        "train_manifest": str(train_manifest),
        "dev_manifest": str(dev_manifest),
        "runs": {},
    }
    for name, overrides, steps_per_min in (("default", [], 100.0), ("reference", REFERENCE, 15.0)):
        if name in configs:
            steps_per_min = 60.0 / configs[name]["step_s"]
        every = max(5, int(steps_per_min * minutes / 6))
        config = Config.from_dict(base).with_overrides(
            overrides
            + [
                f"train.max_minutes={minutes}",
                "train.epochs=1000",
                f"train.eval_every_steps={every}",
                "train.early_stop_patience=1000",
            ]
        )
        _log(f"cer curve: {name}, {minutes:g} min, dev every {every} steps")
        out["runs"][name] = run_worker(
            "cer_curve",
            {
                "name": name,
                "config": config.to_dict(),
                "train_manifest": str(train_manifest),
                "dev_manifest": str(dev_manifest),
            },
            work,
            timeout=60 * minutes * 3 + 600,
        )
    return out


# -- targets and the table ----------------------------------------------------------------------
def _get(report, *keys):
    node = report.get("sections", {})
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def evaluate_targets(report) -> list:
    train = _get(report, "train", "configs") or {}
    default, ref = train.get("default", {}), train.get("reference", {})
    measured = {
        "pipeline_cold_vs_librosa": _get(report, "pipeline", "cold_vs_librosa"),
        "pipeline_warm_x_realtime": _get(report, "pipeline", "warm_audio_s_per_s"),
        "input_bound_ratio": default.get("input_bound_ratio"),
        "train_default_audio_s_per_s": default.get("audio_s_per_s"),
        "train_default_vs_reference": (
            default["audio_s_per_s"] / ref["audio_s_per_s"] if default and ref else None
        ),
        "rtf_per_file_1_thread": _get(report, "inference", "one_thread", "rtf_greedy"),
        "pocketsphinx_vs_ours_1_thread": _get(report, "inference", "pocketsphinx_vs_ours_1_thread"),
        "batch_x_realtime": _get(report, "inference", "all_threads", "batch", "x_realtime"),
    }
    rows = []
    for name, (op, target) in TARGETS.items():
        value = measured[name]
        met = None if value is None else (value >= target if op == ">=" else value <= target)
        rows.append({"name": name, "target": f"{op} {target:g}", "measured": value, "met": met})
    curve = _get(report, "cer_curve", "runs")
    if curve and all("final" in curve.get(n, {}) for n in ("default", "reference")):
        final = {n: curve[n]["final"]["dev_cer"] for n in ("default", "reference")}
        rows.append(
            {
                "name": "cer_default_le_reference_same_wall_time",
                "target": "<= reference",
                "measured": final["default"],
                "reference": final["reference"],
                "met": final["default"] <= final["reference"],
            }
        )
    return rows


def _fmt(value, digits=3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


def format_table(report) -> str:
    lines = []
    m = report["machine"]
    lines.append(
        f"speech_rnn bench {report['date']}: {m['cpu']}, {m['cores']} cores, "
        f"TensorFlow {m['tensorflow']}, Keras {m['keras']}"
    )
    if report.get("model", {}).get("random_weights"):
        lines.append("inference model: random weights (speed only; transcripts are nonsense)")
    rows = [("benchmark", "measured", "side by side")]
    s = report["sections"]
    p = s.get("pipeline", {})
    if "cold_audio_s_per_s" in p:
        rows += [
            (
                "pipeline cold (1st epoch), audio-s/s",
                _fmt(p["cold_audio_s_per_s"]),
                f"{_fmt(p['cold_vs_librosa'])}x librosa loop",
            ),
            (
                "pipeline warm (cached), audio-s/s",
                _fmt(p["warm_audio_s_per_s"]),
                f"{_fmt(p['warm_vs_librosa'])}x librosa loop",
            ),
            (
                "  warm, not counting building the dataset",
                _fmt(p["warm_iterate_only_audio_s_per_s"]),
                "",
            ),
            ("librosa loop, audio-s/s", _fmt(p["librosa_audio_s_per_s"]), ""),
            (
                "decode+resample loop alone, audio-s/s",
                _fmt(p["decode_only_audio_s_per_s"]),
                f"{_fmt(p['decode_share_of_cold'])} of cold time",
            ),
            ("bucket padding efficiency (true/padded windows)", _fmt(p["padding_efficiency"]), ""),
        ]
    t = (s.get("train") or {}).get("configs", {})
    if t:
        d, r = t["default"], t["reference"]
        rows += [
            (
                f"train default ({d['stack']}x{d['stride']} windows, XLA), audio-s/s",
                _fmt(d["audio_s_per_s"]),
                f"{_fmt(d['audio_s_per_s'] / r['audio_s_per_s'])}x reference",
            ),
            ("train reference (10 ms frames, no XLA), audio-s/s", _fmt(r["audio_s_per_s"]), ""),
            (
                "input-bound ratio (pipeline / in-memory step time)",
                _fmt(d.get("input_bound_ratio")),
                f"whole {d['batches_per_epoch']}-step epochs: "
                f"{_fmt(d.get('epoch_input_bound_ratio'))}, "
                f"{_fmt(d['epoch_audio_s_per_s'])} audio-s/s",
            ),
        ]
    i = s.get("inference", {})
    if "one_thread" in i:
        one, every = i["one_thread"], i["all_threads"]
        ps = one.get("rtf_pocketsphinx")
        rows += [
            (
                "RTF per file, 1 thread, greedy",
                _fmt(one["rtf_greedy"], 2),
                f"pocketsphinx {_fmt(ps, 3)}: {_fmt(ps / one['rtf_greedy'])}x slower"
                if ps
                else "pocketsphinx not installed",
            ),
            (f"RTF per file, 1 thread, beam {one['beam_width']}", _fmt(one["rtf_beam"], 2), ""),
            (
                "RTF 1 thread, first pass (XLA compiles)",
                _fmt(one.get("rtf_first_pass"), 2),
                f"{one.get('padded_lengths', '-')} padded lengths for {one['files']} files",
            ),
            (
                "RTF per file, all threads, greedy",
                _fmt(every["rtf_greedy"], 2),
                f"{_fmt(i['all_vs_one_thread_greedy'])}x 1 thread",
            ),
            (
                f"RTF per file, all threads, beam {every['beam_width']}",
                _fmt(every["rtf_beam"], 2),
                "",
            ),
        ]
        if "batch" in every:
            rows.append(
                (
                    f"batch transcription ({every['batch']['files']} files), x realtime",
                    _fmt(every["batch"]["x_realtime"]),
                    "",
                )
            )
        share = one["breakdown_share"]
        rows.append(
            (
                "1-thread time: audio/features/model/decoding",
                " / ".join(f"{100 * share[k]:.0f}%" for k in share),
                "",
            )
        )
    sc = s.get("scaling", {})
    for kind, key, label in (
        ("train_step", "step_s", "train step, batch {b} x {s:g} s"),
        ("transcribe", "transcribe_s", "transcribe {s:g} s"),
    ):
        for row in sc.get(kind, []):
            name = label.format(b=sc.get("train_batch_size"), s=row["seconds"])
            if "error" in row:
                rows.append((name, "failed", row["error"][:70]))
                continue
            rows.append(
                (
                    name,
                    f"{row[key]:.3g} s",
                    f"{_fmt(row['time_ratio_vs_shortest'])}x for "
                    f"{_fmt(row['length_ratio_vs_shortest'])}x length; "
                    f"peak {row['peak_rss_mb']:,.0f} MiB",
                )
            )
            if kind == "train_step":  # what every new batch shape costs a training run
                rows.append(
                    (
                        "  first step of that shape (trace + XLA compile)",
                        f"{row['first_step_s']:.3g} s",
                        f"{_fmt(row['first_step_s'] / row[key])}x a warm step",
                    )
                )
    rf = s.get("roofline", {})
    flops = rf.get("default", {})
    if flops:
        rows.append(
            (
                "model GFLOP per audio-s: inference / training",
                f"{flops['inference_flops_per_audio_second'] / 1e9:.3g} / "
                f"{flops['training_flops_per_audio_second'] / 1e9:.3g}",
                "",
            )
        )
    for key, label in (
        ("train_matmul_flops_per_s", "matmul rate, all threads (train worker)"),
        ("matmul_1_thread_flops_per_s", "matmul rate, 1 thread"),
    ):
        if key in rf:
            rows.append((f"{label}, GFLOP/s", f"{rf[key] / 1e9:.1f}", ""))
    for key, label in (
        ("train_default_fraction", "training default"),
        ("train_reference_fraction", "training reference"),
        ("inference_1_thread_per_file_fraction", "inference per file, 1 thread"),
        ("inference_batch_all_threads_fraction", "batch inference, all threads"),
    ):
        if key in rf:
            rows.append((f"roofline: {label}", f"{100 * rf[key]:.1f}% of matmul rate", ""))
    for name, sec in s.items():
        if isinstance(sec, dict) and "error" in sec:
            rows.append((f"{name}: FAILED", sec["error"][:60], ""))
    widths = [max(len(r[k]) for r in rows) for k in range(3)]
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("targets:")
    for row in report.get("targets", []):
        status = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
        lines.append(
            f"  {row['name']}: {_fmt(row['measured'], 3)} (target {row['target']}) {status}"
        )
    curve = _get(report, "cer_curve", "runs") or {}
    for name, run in curve.items():
        points = ", ".join(
            f"{p['elapsed_s']:.0f}s:{100 * p['dev_cer']:.1f}%" for p in run.get("points", [])
        )
        lines.append(
            f"dev CER over wall time, {name}: {points or '(no evaluation)'}; "
            f"at the end of {run['final']['train_seconds']} s: "
            f"{100 * run['final']['dev_cer']:.1f}%"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
