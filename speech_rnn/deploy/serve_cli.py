"""``speech-rnn serve``: an HTTP API and a web page for a trained model."""

from __future__ import annotations

import ipaddress
import sys

from ..errors import ConfigError
from ..log import logger as log
from ..runtime import add_threads_flag
from .server import MB, Limits, create_app, open_backend

DESCRIPTION = (
    "Serve a trained model over HTTP: POST /v1/transcribe (audio as the raw body "
    "or a multipart file; query options beam, lm, timestamps) returns the JSON of "
    "'speech-rnn transcribe -f json'; GET /health, GET /v1/model, GET /v1/stats; "
    "a web page at / to upload or record audio. Concurrent requests are batched. "
    "Binds to 127.0.0.1 unless --host says otherwise. See docs/deploy.md."
)


def add_arguments(p) -> None:

    d = Limits()
    p.add_argument(
        "--model",
        required=True,
        metavar="RUN|EXPORT_DIR",
        help="trained run folder (config.json, best.keras ...) to serve",
    )
    p.add_argument(
        "--which",
        choices=("best", "last"),
        default="best",
        help="model of the run: best dev WER or last epoch (default: best)",
    )
    p.add_argument(
        "--lm",
        metavar="ARPA",
        help="word n-gram language model that requests may turn on with lm=true "
        "(clients can never name a file)",
    )
    p.add_argument("--alpha", type=float, metavar="A", help="language model weight (needs --lm)")
    p.add_argument("--beta", type=float, metavar="B", help="word insertion bonus (needs --lm)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 "
        "exposes the server to the network, with no authentication)",
    )
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080)")
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=d.max_upload_bytes / (1024 * 1024),
        metavar="MB",
        help="largest upload accepted, in MiB; larger ones get 413 (default %(default)g)",
    )
    p.add_argument(
        "--max-audio-s",
        type=float,
        default=d.max_audio_s,
        metavar="S",
        help="longest audio accepted, in seconds; longer gets 413 (default %(default)g)",
    )
    p.add_argument(
        "--timeout-s",
        type=float,
        default=d.timeout_s,
        metavar="S",
        help="per-request time limit, upload to answer; past it the request "
        "gets 504 (default %(default)g)",
    )
    p.add_argument(
        "--queue-size",
        type=int,
        default=d.queue_size,
        metavar="N",
        help="requests that may wait (uploading, decoding or queued) beside the "
        "batch being computed; one more gets 503 (default %(default)d)",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=d.max_batch,
        metavar="N",
        help="most requests run through the model at once (default %(default)d)",
    )
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=d.batch_wait_ms,
        metavar="MS",
        help="how long a request waits for others to join its batch (default %(default)g)",
    )
    p.add_argument(
        "--max-beam",
        type=int,
        default=d.max_beam,
        metavar="N",
        help="largest beam=N a request may ask for (default %(default)d)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request (uvicorn)")
    add_threads_flag(p)


def limits_from_args(args):

    if not 1 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 1 and 65535, got {args.port}")
    checks = [
        ("--max-upload-mb", args.max_upload_mb > 0),
        ("--max-audio-s", args.max_audio_s > 0),
        ("--timeout-s", args.timeout_s > 0),
        ("--queue-size", args.queue_size >= 1),
        ("--max-batch", args.max_batch >= 1),
        ("--max-beam", args.max_beam >= 1),
        ("--batch-wait-ms", 0 <= args.batch_wait_ms <= 1000),
    ]
    for flag, ok in checks:
        if not ok:
            bound = (
                "between 0 and 1000"
                if flag == "--batch-wait-ms"
                else (">= 1" if flag in ("--queue-size", "--max-batch", "--max-beam") else "> 0")
            )
            raise ConfigError(f"{flag} must be {bound}")
    if (args.alpha is not None or args.beta is not None) and not args.lm:
        raise ConfigError("--alpha and --beta weight a language model: add --lm")
    return Limits(
        int(args.max_upload_mb * MB),
        args.max_audio_s,
        args.timeout_s,
        args.queue_size,
        args.max_batch,
        args.batch_wait_ms,
        args.max_beam,
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    import uvicorn

    limits = limits_from_args(args)
    if not is_loopback(args.host):
        log.warning(
            "binding to %s: the server is reachable from other machines, with no "
            "authentication and no TLS; put it behind a reverse proxy",
            args.host,
        )
    backend = open_backend(args.model, args.lm, args.alpha, args.beta, args.which)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port}/"

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if self.started:  # listening, the model warm: the one line on stdout
                print(f"speech-rnn serve: {args.model} on {url}", flush=True)

    app = create_app(backend, limits)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=args.access_log,
        timeout_graceful_shutdown=5,
    )
    server = Server(config)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot listen, after logging why
        server.started = False
    if not server.started:
        print(
            f"speech-rnn serve: error: could not listen on {args.host}:{args.port} "
            "(see the message above)",
            file=sys.stderr,
        )
        return 2
    return 0
