"""The HTTP server behind ``speech-rnn serve``: a Starlette app run by uvicorn.

Routes::

    POST /v1/transcribe   audio as the raw body or a multipart file field; query options
                          beam=N, lm=true|false, timestamps=true|false
                          -> the JSON of ``speech-rnn transcribe -f json``
    GET  /v1/model        what the model is: sample rate, vocabulary, features, source
    GET  /v1/stats        counters: requests, batches, largest batch, rejections
    GET  /health          {"status": "ok"}
    GET  /                the web page (upload a file or record from the microphone)

Requests are batched: a :class:`Batcher` takes the requests that arrive within a short
window (``batch_wait_ms``, at most ``max_batch``) and runs them through the model as one
padded batch on its single model thread, then decodes each with its own options. Memory
is bounded: at most ``queue_size`` requests may be waiting (uploading, decoding or queued)
beside the batch being computed; one more gets 503. Uploads are read as a stream and
refused (413) once they pass ``max_upload_bytes``, and audio longer than ``max_audio_s``
is refused (413) from its header before it is decoded. Audio is decoded from the
request's bytes in memory; no file on the server is ever opened by a name a client gave.

The model sits behind a small interface (:class:`Backend`): ``options(beam, use_lm)``,
``transcribe_batch(waveforms, options) -> list of Transcription dicts`` and ``info()``.
:class:`RunBackend` serves a trained run folder; an export-folder backend can be added
beside it.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np

from .. import __version__
from ..audio import resample
from ..errors import AudioError, ConfigError, RunFolderError, SpeechRnnError
from ..log import logger as log
from ..recognizer import load_model
from ..runfolder import RunFolder
from ..writers import transcription_dict

MB = 1024 * 1024
MULTIPART_SLACK = 64 * 1024  # multipart boundaries and part headers beside the file
STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server (see ``speech-rnn serve --help``)."""

    max_upload_bytes: int = 20 * MB
    max_audio_s: float = 120.0
    timeout_s: float = 60.0
    queue_size: int = 64
    max_batch: int = 16
    batch_wait_ms: float = 10.0
    max_beam: int = 64

    def check(self) -> None:
        if self.max_upload_bytes < 1:
            raise ConfigError("the upload limit must be positive")
        if not self.max_audio_s > 0:
            raise ConfigError("the audio duration limit must be positive")
        if not self.timeout_s > 0:
            raise ConfigError("the request timeout must be positive")
        if self.queue_size < 1:
            raise ConfigError("the queue size must be >= 1")
        if self.max_batch < 1:
            raise ConfigError("the largest batch must be >= 1")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ConfigError("the batch wait must be between 0 and 1000 ms")
        if self.max_beam < 1:
            raise ConfigError("the largest beam must be >= 1")


class Problem(Exception):
    """A request that fails with an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# -- backends --------------------------------------------------------------------------------
class Backend(Protocol):
    """What the server needs from a model."""

    sample_rate: int
    has_lm: bool

    def info(self) -> dict: ...

    def options(self, beam: int, use_lm: bool):
        """Validated decoding options (raise ConfigError), passed back to transcribe_batch."""

    def transcribe_batch(self, waveforms, options) -> list:
        """One Transcription dict (``writers.transcription_dict``) per waveform (1-D
        float32 at ``sample_rate``), with one options object each, in order."""


class RunBackend:
    """A trained run folder, through :class:`~speech_rnn.recognizer.SpeechRecognizer`."""

    def __init__(self, run_dir, lm=None, alpha=None, beta=None, which: str = "best"):

        run = RunFolder(run_dir)
        if not run.exists():
            raise RunFolderError(f"{run_dir}: not a run folder (no config.json)")
        self.recognizer = load_model(run_dir, which=which)
        self.sample_rate = self.recognizer.sample_rate
        self.lm, self.alpha, self.beta = (str(lm) if lm else None), alpha, beta
        self.has_lm = self.lm is not None
        if self.lm is None and (alpha is not None or beta is not None):
            raise ConfigError("--alpha and --beta weight a language model: add --lm")
        if self.lm:
            self.recognizer.decoding_options(0, self.lm, alpha, beta)  # loads it once

    def info(self) -> dict:

        r = self.recognizer
        return {
            "source": "run",
            "run": str(r.run.root.resolve()),
            "model_file": r.model_path.name,
            "sample_rate": r.sample_rate,
            "vocabulary": list(r.vocab.chars),
            "blank_id": r.vocab.blank_id,
            "features": asdict(r.config.features),
            "seconds_per_output_frame": r.seconds_per_window,
            "language_model": Path(self.lm).name if self.lm else None,
            "version": __version__,
        }

    def options(self, beam: int, use_lm: bool):
        if use_lm:
            return self.recognizer.decoding_options(beam, self.lm, self.alpha, self.beta)
        return self.recognizer.decoding_options(beam)

    def transcribe_batch(self, waveforms, options) -> list:

        results = self.recognizer.transcribe_waveforms(waveforms, options)
        return [transcription_dict(r) for r in results]


def open_backend(model, lm=None, alpha=None, beta=None, which: str = "best") -> Backend:
    """The backend for ``--model``: a run folder (config.json). An export folder
    (model.json) is recognised and refused with a one-line error until its backend lands."""
    path = Path(model)
    if not path.is_dir():
        raise RunFolderError(f"{model}: no such folder (give a trained run folder)")
    if (path / "config.json").is_file():
        return RunBackend(path, lm, alpha, beta, which)
    if (path / "model.json").is_file():
        raise RunFolderError(
            f"{model}: export folders cannot be served yet; give the run "
            "folder it was exported from"
        )
    raise RunFolderError(
        f"{model}: not a run folder (no config.json) or export folder (no model.json)"
    )


# -- audio from bytes ------------------------------------------------------------------------
def decode_upload(data: bytes, name: str, sample_rate: int, max_audio_s: float) -> np.ndarray:
    """Mono float32 at ``sample_rate`` from an uploaded file's bytes (wav, flac, ogg, mp3:
    whatever libsndfile reads). Raises AudioError (400) or Problem 413 (too long: checked
    on the header before decoding, and again after)."""
    import soundfile

    if not data:
        raise AudioError(name, "empty upload (0 bytes)")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            expected, rate = f.frames, f.samplerate
            if rate <= 0:
                raise AudioError(name, f"invalid sample rate {rate}")
            if expected > 0 and expected / rate > max_audio_s:
                raise Problem(
                    413,
                    f"{name}: audio is {expected / rate:.1f} s long, the "
                    f"limit is {max_audio_s:g} s",
                )
            samples = f.read(dtype="float32", always_2d=True)
    except (AudioError, Problem):
        raise
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        first = re.sub(r"^Error opening <[^>]*>: ", "", first).strip().rstrip(".")
        raise AudioError(name, f"unreadable audio ({first}); send wav, flac, ogg or mp3") from None
    if expected > 0 and len(samples) < expected:
        raise AudioError(
            name, f"truncated audio: header promises {expected} frames, upload holds {len(samples)}"
        )
    if samples.size == 0:
        raise AudioError(name, "no audio samples")
    if len(samples) / rate > max_audio_s:
        raise Problem(
            413,
            f"{name}: audio is {len(samples) / rate:.1f} s long, the limit is {max_audio_s:g} s",
        )
    if not np.isfinite(samples).all():
        raise AudioError(name, "audio contains NaN or infinite samples")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return resample(np.ascontiguousarray(mono, np.float32), rate, sample_rate)


# -- batching --------------------------------------------------------------------------------
class Ticket:
    """A request admitted to the server, counted as waiting until its batch starts."""

    __slots__ = ("future", "options", "waiting", "waveform")

    def __init__(self):
        self.waiting = True
        self.future = None
        self.waveform = None
        self.options = None


class Batcher:
    """Dynamic batching: one model thread; requests wait at most ``batch_wait_ms`` for
    others to join them, up to ``max_batch`` per model call."""

    def __init__(self, backend: Backend, limits: Limits):
        self.backend = backend
        self.limits = limits
        self.waiting = 0
        self.stats = {
            "requests": 0,
            "batches": 0,
            "max_batch_seen": 0,
            "audio_seconds": 0.0,
            "rejected_queue_full": 0,
            "timeouts": 0,
            "errors": 0,
        }
        self._executor = None
        self._queue = None
        self._arrived = None
        self._task = None

    async def start(self):
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="speech-rnn-model")
        self._queue = asyncio.Queue()  # bounded by admission: at most queue_size items
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self):
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def admit(self) -> Ticket:
        if self.waiting >= self.limits.queue_size:
            self.stats["rejected_queue_full"] += 1
            raise Problem(
                503,
                f"server busy: {self.waiting} requests are already waiting "
                f"(queue size {self.limits.queue_size}); retry shortly",
            )
        self.waiting += 1
        return Ticket()

    def leave(self, ticket: Ticket) -> None:
        if ticket.waiting:
            ticket.waiting = False
            self.waiting -= 1

    async def submit(self, ticket: Ticket, waveform, options):
        ticket.future = asyncio.get_running_loop().create_future()
        ticket.waveform, ticket.options = waveform, options
        self._queue.put_nowait(ticket)
        self._arrived.set()
        return await ticket.future

    async def run_in_model_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _collect(self) -> list:
        batch = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.batch_wait_ms / 1000
        while len(batch) < self.limits.max_batch:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return batch

    async def _loop(self):
        while True:
            batch = await self._collect()
            for ticket in batch:
                self.leave(ticket)
            batch = [t for t in batch if not t.future.done()]  # timed out meanwhile
            if not batch:
                continue
            self.stats["batches"] += 1
            self.stats["max_batch_seen"] = max(self.stats["max_batch_seen"], len(batch))
            waveforms = [t.waveform for t in batch]
            try:
                results = await self.run_in_model_thread(
                    self.backend.transcribe_batch, waveforms, [t.options for t in batch]
                )
            except Exception as e:  # noqa: BLE001 - every request in the batch must be answered
                log.exception("batch of %d failed", len(batch))
                for t in batch:
                    if not t.future.done():
                        t.future.set_exception(e)
                continue
            for t, result in zip(batch, results, strict=True):
                self.stats["requests"] += 1
                self.stats["audio_seconds"] += result.get("duration", 0.0)
                if not t.future.done():
                    t.future.set_result(result)
                t.waveform = None


# -- the app ---------------------------------------------------------------------------------
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
QUERY_OPTIONS = ("beam", "lm", "timestamps")


def _flag(params, name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None:
        return default
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    if name == "lm":
        raise Problem(
            400,
            "lm takes true or false: the server decodes only with the "
            "language model it was started with, never a client's file",
        )
    raise Problem(400, f"{name} takes true or false, got {value!r}")


def parse_options(params, limits: Limits):
    """(beam, use_lm, timestamps) from the query string."""
    unknown = sorted(set(params.keys()) - set(QUERY_OPTIONS))
    if unknown:
        raise Problem(400, f"unknown option {unknown[0]!r}; options are {', '.join(QUERY_OPTIONS)}")
    beam = 0
    if params.get("beam") not in (None, ""):
        try:
            beam = int(params["beam"])
        except ValueError:
            raise Problem(400, f"beam takes a whole number, got {params['beam']!r}") from None
        if not 0 <= beam <= limits.max_beam:
            raise Problem(400, f"beam must be between 0 and {limits.max_beam}, got {beam}")
    return beam, _flag(params, "lm", False), _flag(params, "timestamps", True)


class UploadTooLarge(Exception):
    pass


def _limited_request(request, limit: int):
    """The request with a body that raises UploadTooLarge past ``limit`` bytes, as it
    streams in."""
    from starlette.requests import Request

    received = 0

    async def receive():
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise UploadTooLarge()
        return message

    return Request(request.scope, receive)


async def read_upload(request, limits: Limits):
    """(name, bytes) of the uploaded audio: the raw body, or the file field of a
    multipart form. 413 as soon as the body passes the limit."""
    too_large = Problem(413, f"upload larger than the limit of {limits.max_upload_bytes / MB:g} MB")
    content_type = request.headers.get("content-type", "")
    multipart = content_type.lower().startswith("multipart/form-data")
    limit = limits.max_upload_bytes + (MULTIPART_SLACK if multipart else 0)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    limited = _limited_request(request, limit)
    try:
        if not multipart:
            chunks = [chunk async for chunk in limited.stream()]
            return "-", b"".join(chunks)
        form = await limited.form(max_files=1, max_fields=4)
        try:
            files = [
                (key, value) for key, value in form.multi_items() if not isinstance(value, str)
            ]
            if not files:
                raise Problem(
                    400,
                    "multipart upload holds no file field (send the audio "
                    "as a file, e.g. curl -F file=@clip.wav)",
                )
            upload = files[0][1]
            data = await upload.read()
            if len(data) > limits.max_upload_bytes:
                raise too_large
            return Path(upload.filename or "-").name or "-", data
        finally:
            await form.close()
    except UploadTooLarge:
        raise too_large from None


def create_app(backend: Backend, limits: Limits = Limits(), *, warm_up: bool = True):
    """The Starlette app serving ``backend``; with ``warm_up``, its startup runs one second
    of silence through the model (tracing the feature graph, compiling the first shape)."""
    from contextlib import asynccontextmanager

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    limits.check()
    batcher = Batcher(backend, limits)
    pages = {
        route: (resources.files(__package__).joinpath("static", name).read_bytes(), kind)
        for route, (name, kind) in STATIC_FILES.items()
    }
    info = backend.info()

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message, "status": status}, status_code=status)

    async def transcribe(request):
        started = time.perf_counter()
        try:
            beam, use_lm, timestamps = parse_options(request.query_params, limits)
            if use_lm and not backend.has_lm:
                raise Problem(
                    400,
                    "lm=true needs a language model, and this server has "
                    "none (start it with --lm ARPA)",
                )
            try:
                options = backend.options(beam, use_lm)
            except ConfigError as e:
                raise Problem(400, str(e)) from None
            ticket = batcher.admit()
            try:
                name, result = await asyncio.wait_for(
                    _transcribe(request, ticket, options), limits.timeout_s
                )
            except asyncio.TimeoutError:
                batcher.stats["timeouts"] += 1
                raise Problem(
                    504, f"no result within the {limits.timeout_s:g} s request timeout"
                ) from None
            finally:
                batcher.leave(ticket)
                ticket.waveform = None  # a timed-out ticket may sit in the queue a while
        except Problem as p:
            log.info("POST /v1/transcribe %d: %s", p.status, p.message)
            return error(p.status, p.message)
        except SpeechRnnError as e:
            log.info("POST /v1/transcribe 400: %s", e)
            return error(400, str(e))
        except Exception:  # noqa: BLE001 - a bug: logged, answered 500, server keeps serving
            batcher.stats["errors"] += 1
            log.exception("POST /v1/transcribe failed")
            return error(500, "internal error while transcribing (see the server log)")
        body = {"file": name, **result}
        if not timestamps:
            body.pop("words", None)
            body.pop("segments", None)
        log.debug(
            "transcribed %s (%.2f s audio) in %.3f s",
            name,
            result["duration"],
            time.perf_counter() - started,
        )
        return JSONResponse(body)

    async def _transcribe(request, ticket, options):
        name, data = await read_upload(request, limits)
        waveform = await run_in_threadpool(
            decode_upload, data, name, backend.sample_rate, limits.max_audio_s
        )
        del data
        return name, await batcher.submit(ticket, waveform, options)

    async def health(request):
        return JSONResponse({"status": "ok"})

    async def model(request):
        return JSONResponse(info)

    async def stats(request):
        return JSONResponse({**batcher.stats, "waiting": batcher.waiting, "limits": asdict(limits)})

    async def page(request):
        body, kind = pages[request.url.path]
        return Response(
            body,
            media_type=kind,
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",
            },
        )

    async def http_error(request, exc):
        response = error(exc.status_code, exc.detail)
        response.headers.update(exc.headers or {})  # e.g. Allow on 405
        return response

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        if warm_up:  # trace the feature graph and compile the model's first shapes
            rate = backend.sample_rate
            silence = np.zeros(rate, np.float32)
            await batcher.run_in_model_thread(
                backend.transcribe_batch, [silence], [backend.options(0, False)]
            )
        try:
            yield
        finally:
            await batcher.stop()

    routes = [
        Route("/v1/transcribe", transcribe, methods=["POST"]),
        Route("/v1/model", model, methods=["GET"]),
        Route("/v1/stats", stats, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    routes += [Route(path, page, methods=["GET"]) for path in STATIC_FILES]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )
    app.state.batcher = batcher
    return app
