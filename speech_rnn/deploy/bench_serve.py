"""Load benchmark of ``speech-rnn serve``: N concurrent clients against 1 sequential one.

    python -m speech_rnn.deploy.bench_serve --model RUN --clips DIR_OR_MANIFEST \\
        --clients 8 --seconds 30

Starts the server in a subprocess on a free localhost port, warms it up, then runs two
phases of ``--seconds`` each against the same server: one client sending requests one
after another, then ``--clients`` clients at once (threads, one keep-alive connection
each), every request a real clip from ``--clips`` (a folder of audio files, or a JSONL
manifest with ``audio_filepath``). Reported per phase: requests/s, audio seconds
transcribed per second, p50/p95/p99 latency, errors (any status but 200, or a failed
connection; must be 0), and the server's resident memory (VmRSS from /proc, sampled every
0.2 s) at the start, half way, at the end and at its peak. Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def load_clips(source, limit: int = 200) -> list:
    """(name, bytes, seconds) of up to ``limit`` clips from a folder or a JSONL manifest."""
    import soundfile

    source = Path(source)
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    else:
        paths = []
        for line in source.read_text(encoding="utf-8").splitlines():
            if line.strip():
                path = Path(json.loads(line)["audio_filepath"])
                paths.append(path if path.is_absolute() else source.parent / path)
    if not paths:
        raise SystemExit(f"bench_serve: no audio clips in {source}")
    clips = []
    for path in paths[:limit]:
        info = soundfile.info(str(path))
        clips.append((path.name, path.read_bytes(), info.frames / info.samplerate))
    return clips


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            value = rss_mb(self.pid)
            if value is not None:
                self.samples.append(value)
            self.done.wait(self.every_s)

    def stop(self) -> dict:
        self.done.set()
        self.join()
        last = rss_mb(self.pid)
        if last is not None:
            self.samples.append(last)
        if not self.samples:
            return {
                "rss_start_mb": None,
                "rss_mid_mb": None,
                "rss_end_mb": None,
                "rss_peak_mb": None,
            }
        return {
            "rss_start_mb": round(self.samples[0], 1),
            "rss_mid_mb": round(self.samples[len(self.samples) // 2], 1),
            "rss_end_mb": round(self.samples[-1], 1),
            "rss_peak_mb": round(max(self.samples), 1),
        }


def post(conn, clip, query: str = ""):
    _, body, _ = clip
    conn.request(
        "POST",
        f"/v1/transcribe{query}",
        body=body,
        headers={"Content-Type": "application/octet-stream"},
    )
    response = conn.getresponse()
    data = response.read()
    return response.status, data


def run_phase(port: int, clips, clients: int, seconds: float, pid: int | None = None) -> dict:
    """``clients`` threads posting clips (each starting at its own offset) for ``seconds``."""
    latencies, audio, errors, problems = [], [], [0], []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(k: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = k * max(1, len(clips) // clients)
        start_gate.wait()
        while time.perf_counter() < stop_at[0]:
            clip = clips[i % len(clips)]
            i += 1
            t0 = time.perf_counter()
            try:
                status, data = post(conn, clip)
            except (OSError, http.client.HTTPException) as e:
                status, data = None, str(e).encode()
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            elapsed = time.perf_counter() - t0
            with lock:
                if status == 200:
                    latencies.append(elapsed)
                    audio.append(clip[2])
                else:
                    errors[0] += 1
                    if len(problems) < 5:
                        problems.append(f"{status}: {data[:200].decode(errors='replace')}")
        conn.close()

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    sampler = RssSampler(pid) if pid else None
    if sampler:
        sampler.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start_gate.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000 if latencies else np.zeros(1)
    out = {
        "clients": clients,
        "seconds": round(wall, 2),
        "requests": len(latencies),
        "errors": errors[0],
        "requests_per_s": round(len(latencies) / wall, 2),
        "audio_s_per_s": round(sum(audio) / wall, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p95_ms": round(float(np.percentile(lat, 95)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "problems": problems,
    }
    if sampler:
        out.update(sampler.stop())
    return out


def start_server(args, port: int, log_file):
    command = [
        sys.executable,
        "-m",
        "speech_rnn.cli",
        "serve",
        "--model",
        str(Path(args.model).resolve()),
        "--port",
        str(port),
        "--max-batch",
        str(args.max_batch),
        "--batch-wait-ms",
        str(args.batch_wait_ms),
        "--queue-size",
        str(max(64, 2 * args.clients)),
    ]
    if args.threads:
        command += ["--threads", str(args.threads)]
    # The server runs this checkout's speech_rnn (python -m puts the working folder first).
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": package_root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=package_root
    )
    deadline = time.monotonic() + args.startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log_file.flush()
            raise SystemExit(
                f"bench_serve: the server exited with status {process.returncode}:"
                f"\n{Path(log_file.name).read_text()[-2000:]}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise SystemExit("bench_serve: the server did not answer /health in time")


def server_stats(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/v1/stats")
    stats = json.loads(conn.getresponse().read())
    conn.close()
    return stats


COLUMNS = [
    ("mode", "{}"),
    ("clients", "{}"),
    ("requests", "{}"),
    ("req/s", "{:.2f}"),
    ("audio s/s", "{:.1f}"),
    ("p50 ms", "{:.0f}"),
    ("p95 ms", "{:.0f}"),
    ("p99 ms", "{:.0f}"),
    ("errors", "{}"),
    ("RSS start MB", "{:.0f}"),
    ("RSS mid MB", "{:.0f}"),
    ("RSS end MB", "{:.0f}"),
    ("RSS peak MB", "{:.0f}"),
]
KEYS = [
    "mode",
    "clients",
    "requests",
    "requests_per_s",
    "audio_s_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "errors",
    "rss_start_mb",
    "rss_mid_mb",
    "rss_end_mb",
    "rss_peak_mb",
]


def table(rows) -> str:
    lines = [
        "| " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    for row in rows:
        cells = []
        for (_, fmt), key in zip(COLUMNS, KEYS, strict=True):
            value = row.get(key)
            cells.append("-" if value is None else fmt.format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, metavar="RUN", help="trained run folder to serve")
    p.add_argument(
        "--clips",
        required=True,
        metavar="DIR_OR_MANIFEST",
        help="folder of audio files, or a JSONL manifest (audio_filepath)",
    )
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        help="length of each phase, sequential and concurrent (default 30)",
    )
    p.add_argument(
        "--warmup-s",
        type=float,
        default=5.0,
        help="concurrent warm-up before measuring, to compile the batch shapes (default 5)",
    )
    p.add_argument("--max-batch", type=int, default=16, help="server --max-batch (default 16)")
    p.add_argument(
        "--batch-wait-ms", type=float, default=10.0, help="server --batch-wait-ms (default 10)"
    )
    p.add_argument("--threads", type=int, help="server --threads (TensorFlow threads)")
    p.add_argument("--max-clips", type=int, default=200, help="clips to load (default 200)")
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=180.0,
        metavar="S",
        help="how long to wait for the server to start (default 180)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")


def run(args) -> int:
    if args.clients < 1 or args.seconds <= 0:
        raise SystemExit("bench_serve: --clients must be >= 1 and --seconds > 0")
    clips = load_clips(args.clips, args.max_clips)
    total = sum(c[2] for c in clips)
    print(
        f"{len(clips)} clips, {total:.1f} s of audio (mean {total / len(clips):.2f} s)", flush=True
    )
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", prefix="bench_serve_", suffix=".log") as log_file:
        process = start_server(args, port, log_file)
        try:
            for clip in clips:  # batch-of-one shapes, every length
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                post(conn, clip)
                conn.close()
            if args.warmup_s > 0:
                run_phase(port, clips, args.clients, args.warmup_s)
            rows = [{"mode": "sequential", **run_phase(port, clips, 1, args.seconds, process.pid)}]
            before = server_stats(port)
            rows.append(
                {
                    "mode": "concurrent",
                    **run_phase(port, clips, args.clients, args.seconds, process.pid),
                }
            )
            after = server_stats(port)
            stats = {key: after[key] - before[key] for key in ("requests", "batches")}
            stats["max_batch_seen"] = after["max_batch_seen"]
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    print(table(rows))
    speedup = rows[1]["requests_per_s"] / max(rows[0]["requests_per_s"], 1e-9)
    print(
        f"concurrent/sequential throughput: {speedup:.2f}x; concurrent phase: "
        f"{stats['requests']} requests in {stats['batches']} batches (mean "
        f"{stats['requests'] / max(stats['batches'], 1):.1f}, largest seen "
        f"{stats['max_batch_seen']})"
    )
    for row in rows:
        for problem in row["problems"]:
            print(f"{row['mode']} error: {problem}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": rows,
                    "speedup": speedup,
                    "server_stats": stats,
                    "clips": len(clips),
                    "clip_seconds": total,
                },
                indent=2,
            )
        )
    return 1 if any(row["errors"] for row in rows) else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m speech_rnn.deploy.bench_serve", description=__doc__.splitlines()[0]
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
