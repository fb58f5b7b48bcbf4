"""``speech-rnn serve``: the HTTP API on the checked-in digits model, served by a real
uvicorn on a free localhost port (raw and multipart uploads equal ``transcribe -f json``;
concurrent requests are batched; limits give 413/503/504/400 and the server goes on), the
command line, and the web page in a real headless Chromium (Debian's, through Playwright)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile

httpx = pytest.importorskip("httpx", reason="httpx is needed to call the server")
pytest.importorskip("starlette", reason="starlette is needed for speech-rnn serve")
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is needed for speech-rnn serve")

from conftest import CHROMIUM_ARGS, need_chromium

from speech_rnn.cli import main
from speech_rnn.decoding import DecodingOptions
from speech_rnn.deploy.serve_cli import is_loopback
from speech_rnn.deploy.server import Limits, RunBackend, create_app

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURE_MODEL = HERE / "fixtures" / "digits_model"


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def backend():
    if not (FIXTURE_MODEL / "best.keras").is_file():
        pytest.skip("fixture model missing: run tests/fixtures/make_digits_model.py")
    return RunBackend(FIXTURE_MODEL)


@pytest.fixture(scope="module")
def clips(fsdd_dir, tmp_path_factory):
    """Twelve connected-digit utterances (FSDD test speakers) as 8 kHz WAV files."""
    from fixtures.digits import connected_digits

    folder = tmp_path_factory.mktemp("serve_clips")
    paths = []
    for i, utt in enumerate(connected_digits(fsdd_dir, "test", 12, seed=3)):
        paths.append(folder / f"digits{i:02d}.wav")
        soundfile.write(str(paths[-1]), utt.audio, 8000, subtype="PCM_16")
    return paths


def noise_wav(seconds: float, rate: int = 8000, seed: int = 0) -> bytes:
    """Faint noise as WAV bytes: for limits and errors, where the words do not matter."""
    audio = np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.01
    buffer = io.BytesIO()
    soundfile.write(buffer, audio.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class GatedBackend:
    """The real backend, whose model thread waits for ``gate`` before each batch: a
    deterministic busy server."""

    def __init__(self, inner):
        self.inner = inner
        self.gate = threading.Event()
        self.sample_rate, self.has_lm = inner.sample_rate, inner.has_lm

    def info(self):
        return self.inner.info()

    def options(self, beam, use_lm):
        return self.inner.options(beam, use_lm)

    def transcribe_batch(self, waveforms, options):
        assert self.gate.wait(60), "test gate never opened"
        return self.inner.transcribe_batch(waveforms, options)


@contextlib.contextmanager
def serving(backend, limits=None, warm_up=True):
    """A uvicorn server for ``backend`` on a free localhost port, in a thread: its URL."""
    app = create_app(backend, limits or Limits(), warm_up=warm_up)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_for(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def stats(url):
    return httpx.get(f"{url}/v1/stats").json()


def cli_json(path, capsys):
    """What ``speech-rnn transcribe FILE --model digits -f json`` prints (this checkout)."""
    capsys.readouterr()
    assert main(["transcribe", str(path), "--model", str(FIXTURE_MODEL), "-f", "json"]) == 0
    return json.loads(capsys.readouterr().out)


# -- the recognizer's batch method the server uses ---------------------------------------------
def test_transcribe_waveforms_equals_one_by_one(backend, clips):
    from speech_rnn.audio import load_audio

    r = backend.recognizer
    waves = [load_audio(p, r.sample_rate) for p in clips[:5]]
    long = np.concatenate([waves[0]] * int(np.ceil(35 * r.sample_rate / len(waves[0]))))
    waves.append(long)  # over 30 s: cut on silence, like transcribe()
    options = [DecodingOptions()] * 5 + [DecodingOptions(beam_width=4)]
    together = r.transcribe_waveforms(waves, options)
    assert len(together) == 6
    for wave, opts, got in zip(waves, options, together):
        alone = r.transcribe(wave, opts.beam_width)
        assert got.text == alone.text and got.options == opts
        assert [(w.word, w.start, w.end) for w in got.words] == [
            (w.word, w.start, w.end) for w in alone.words
        ]
        assert [w.confidence for w in got.words] == pytest.approx(
            [w.confidence for w in alone.words], abs=2e-3
        )
    assert together[-1].duration > 30
    assert r.transcribe_waveforms([waves[1]]) == [r.transcribe(waves[1])]
    with pytest.raises(ValueError, match="2 decoding options for 1"):
        r.transcribe_waveforms([waves[0]], [DecodingOptions()] * 2)


# -- the API ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(backend):
    with serving(backend) as url:
        yield url


def test_raw_and_multipart_uploads_equal_transcribe_json(server, clips, capsys):
    for path in clips[:3]:
        expected = cli_json(path, capsys)
        assert expected["text"]
        raw = httpx.post(
            f"{server}/v1/transcribe",
            content=path.read_bytes(),
            headers={"Content-Type": "audio/wav"},
            timeout=60,
        )
        assert raw.status_code == 200, raw.text
        assert raw.json() == {**expected, "file": "-"}
        form = httpx.post(
            f"{server}/v1/transcribe",
            files={"file": (path.name, path.read_bytes(), "audio/wav")},
            timeout=60,
        )
        assert form.status_code == 200, form.text
        assert form.json() == {**expected, "file": path.name}


def test_other_formats_and_query_options(server, clips, capsys):
    path = clips[0]
    audio, rate = soundfile.read(str(path), dtype="float32")
    expected = cli_json(path, capsys)["text"]
    for fmt, subtype in [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", "MPEG_LAYER_III")]:
        buffer = io.BytesIO()
        soundfile.write(buffer, audio, rate, format=fmt, subtype=subtype)
        reply = httpx.post(f"{server}/v1/transcribe", content=buffer.getvalue(), timeout=60)
        assert reply.status_code == 200, (fmt, reply.text)
        if fmt == "FLAC":  # lossless: the same words
            assert reply.json()["text"] == expected
    beam = httpx.post(
        f"{server}/v1/transcribe?beam=8&timestamps=false", content=path.read_bytes(), timeout=60
    ).json()
    assert beam["options"]["method"] == "beam" and beam["options"]["beam_width"] == 8
    assert "words" not in beam and "segments" not in beam and beam["text"]


def test_health_model_and_page(server):
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    info = httpx.get(f"{server}/v1/model").json()
    assert info["sample_rate"] == 16000 and info["source"] == "run"
    assert info["run"] == str(FIXTURE_MODEL.resolve())
    assert info["vocabulary"] == json.loads((FIXTURE_MODEL / "vocab.json").read_text())["chars"]
    assert info["features"]["stride"] == 3 and info["language_model"] is None
    from speech_rnn import __version__

    assert info["version"] == __version__
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and 'id="file"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "MediaRecorder" in httpx.get(f"{server}/app.js").text
    missing = httpx.get(f"{server}/static/../../config.json")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = httpx.get(f"{server}/v1/transcribe")
    assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]


@pytest.mark.parametrize(
    "query, message",
    [
        ("beam=x", "beam takes a whole number"),
        ("beam=-1", "between 0 and 64"),
        ("beam=1000", "between 0 and 64"),
        ("lm=true", "this server has none"),
        ("lm=/etc/passwd", "never a client's file"),
        ("timestamps=maybe", "timestamps takes true or false"),
        ("path=/etc/passwd", "unknown option 'path'"),
    ],
)
def test_bad_options_are_400(server, query, message):
    reply = httpx.post(f"{server}/v1/transcribe?{query}", content=noise_wav(0.5))
    assert reply.status_code == 400 and message in reply.json()["error"]


def test_bad_audio_is_400_and_the_server_goes_on(server):
    nan = io.BytesIO()
    soundfile.write(nan, np.full(800, np.nan, np.float32), 8000, format="WAV", subtype="FLOAT")
    cases = [
        (b"", "empty upload"),
        (b"RIFF....WAVEnot really", "unreadable audio"),
        (b"\x00" * 5000, "unreadable audio"),
        (nan.getvalue(), "NaN"),
    ]
    for body, message in cases:
        reply = httpx.post(f"{server}/v1/transcribe", content=body)
        assert reply.status_code == 400, reply.text
        assert message in reply.json()["error"] and "BytesIO" not in reply.json()["error"]
    form = httpx.post(f"{server}/v1/transcribe", data={"note": "no file"})
    assert form.status_code == 400
    good = httpx.post(f"{server}/v1/transcribe", content=noise_wav(1.0), timeout=60)
    assert good.status_code == 200 and good.json()["duration"] == 1.0


def test_size_and_duration_limits_are_413(backend):
    limits = Limits(max_upload_bytes=100_000, max_audio_s=2.0)
    with serving(backend, limits) as url:
        big = noise_wav(8.0)  # 128 kB
        reply = httpx.post(f"{url}/v1/transcribe", content=big)
        assert reply.status_code == 413 and "limit of 0.095" in reply.json()["error"]

        def chunks():  # no Content-Length: refused while streaming
            for i in range(0, len(big), 8192):
                yield big[i : i + 8192]

        reply = httpx.post(f"{url}/v1/transcribe", content=chunks())
        assert reply.status_code == 413 and "upload larger" in reply.json()["error"]
        reply = httpx.post(f"{url}/v1/transcribe", files={"file": ("big.wav", big)})
        assert reply.status_code == 413
        long = noise_wav(3.0)  # 48 kB, under the size limit
        reply = httpx.post(f"{url}/v1/transcribe", files={"file": ("long.wav", long)})
        assert reply.status_code == 413
        assert reply.json()["error"] == "long.wav: audio is 3.0 s long, the limit is 2 s"
        assert httpx.post(f"{url}/v1/transcribe", content=noise_wav(1.5)).status_code == 200


def test_concurrent_requests_are_batched_with_distinct_results(backend, clips):
    gated = GatedBackend(backend)
    alone = [backend.recognizer.transcribe(p) for p in clips[:8]]
    assert len({r.text for r in alone}) > 4
    with serving(gated, Limits(max_batch=8, batch_wait_ms=5), warm_up=False) as url:
        client = httpx.Client(timeout=120)
        with ThreadPoolExecutor(9) as pool:
            plug = pool.submit(client.post, f"{url}/v1/transcribe", content=noise_wav(1.0))
            wait_for(lambda: stats(url)["batches"] == 1)  # the model thread is busy
            replies = [
                pool.submit(client.post, f"{url}/v1/transcribe", content=p.read_bytes())
                for p in clips[:8]
            ]
            wait_for(lambda: stats(url)["waiting"] == 8)
            gated.gate.set()
            assert plug.result().status_code == 200
            replies = [r.result() for r in replies]
        counters = stats(url)
    for reply, expected in zip(replies, alone):
        assert reply.status_code == 200, reply.text
        got = reply.json()
        assert got["text"] == expected.text
        assert [(w["word"], w["start"], w["end"]) for w in got["words"]] == [
            (w.word, w.start, w.end) for w in expected.words
        ]
    assert counters["batches"] == 2 and counters["max_batch_seen"] == 8
    assert counters["requests"] == 9 and counters["waiting"] == 0


def test_full_queue_is_503_timeout_is_504_then_serving_again(backend):
    gated = GatedBackend(backend)
    limits = Limits(queue_size=1, max_batch=1, timeout_s=3.0)
    with serving(gated, limits, warm_up=False) as url:
        client = httpx.Client(timeout=60)
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(client.post, f"{url}/v1/transcribe", content=noise_wav(1.0))
            wait_for(lambda: stats(url)["batches"] == 1)  # in the (blocked) model thread
            second = pool.submit(client.post, f"{url}/v1/transcribe", content=noise_wav(1.0))
            wait_for(lambda: stats(url)["waiting"] == 1)  # queued: the queue is full
            third = client.post(f"{url}/v1/transcribe", content=noise_wav(1.0))
            assert third.status_code == 503 and "server busy" in third.json()["error"]
            for reply in (first.result(), second.result()):
                assert reply.status_code == 504
                assert reply.json()["error"] == "no result within the 3 s request timeout"
        gated.gate.set()
        again = client.post(f"{url}/v1/transcribe", content=noise_wav(1.0))
        assert again.status_code == 200
        counters = stats(url)
        assert counters["rejected_queue_full"] == 1 and counters["timeouts"] == 2
        assert counters["waiting"] == 0


def test_lm_given_to_the_server(backend, clips, tmp_path):
    from speech_rnn.lm import build_arpa

    rng = np.random.default_rng(0)
    (tmp_path / "text.txt").write_text(
        "\n".join(" ".join(str(d) for d in rng.integers(0, 10, 4)) for _ in range(300))
    )
    build_arpa(tmp_path / "text.txt", tmp_path / "digits.arpa", order=3)
    with_lm = RunBackend(FIXTURE_MODEL, lm=tmp_path / "digits.arpa")
    with serving(with_lm, warm_up=False) as url:
        assert httpx.get(f"{url}/v1/model").json()["language_model"] == "digits.arpa"
        reply = httpx.post(
            f"{url}/v1/transcribe?lm=true", content=clips[0].read_bytes(), timeout=60
        ).json()
        assert reply["options"]["method"] == "beam+lm" and reply["options"]["beam_width"] == 16
        assert set(reply["text"].split()) <= {
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
        }
        assert (
            httpx.post(
                f"{url}/v1/transcribe?lm=true&beam=1", content=clips[0].read_bytes()
            ).status_code
            == 400
        )


# -- the command -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "0"], "--port must be between 1 and 65535"),
        (["--queue-size", "0"], "--queue-size must be >= 1"),
        (["--max-upload-mb", "-1"], "--max-upload-mb must be > 0"),
        (["--batch-wait-ms", "5000"], "--batch-wait-ms must be between 0 and 1000"),
        (["--alpha", "0.3"], "add --lm"),
    ],
)
def test_cli_checks_flags(args, message, capsys):
    assert main(["serve", "--model", str(FIXTURE_MODEL)] + args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_cli_refuses_what_is_not_a_run_folder(tmp_path, capsys):
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "model.json").write_text("{}")
    for folder, message in [
        (tmp_path, "not a run folder (no config.json)"),
        (tmp_path / "export", "export folders cannot be served yet"),
        (tmp_path / "missing", "no such folder"),
    ]:
        assert main(["serve", "--model", str(folder)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_every_flag_has_help():
    import argparse

    from speech_rnn.deploy.serve_cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for action in parser._actions:
        assert action.help, action.dest
    args = parser.parse_args(["--model", "run"])
    assert args.host == "127.0.0.1" and args.port == 8080


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_until_stopped(backend, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "speech_rnn.cli",
            "serve",
            "--model",
            str(FIXTURE_MODEL),
            "--port",
            str(port),
            "--threads",
            "1",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert f"on http://127.0.0.1:{port}/" in line, (line, process.stderr.read())
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), 30)
        reply = httpx.post(f"http://127.0.0.1:{port}/v1/transcribe", content=noise_wav(1.0))
        assert reply.status_code == 200 and reply.json()["file"] == "-"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM: the usual status of a killed process
    assert "Finished server process" in err and process.returncode in (0, -15), err


def _answers(url) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.HTTPError:
        return False


# -- the web page in a real browser ------------------------------------------------------------
@pytest.fixture
def browser_page(tmp_path):
    executable = need_chromium()
    from playwright import sync_api

    fake_mic = tmp_path / "mic.wav"
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS
            + [
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_mic}",
            ],
        )
        try:
            page = context.new_page()
            page.fake_mic = fake_mic
            yield page
        finally:
            context.close()


def test_web_page_upload_and_record_in_chromium(browser_page, server, clips, backend):
    page = browser_page
    clip = clips[2]
    expected = backend.recognizer.transcribe(clip)
    shutil.copy(clip, page.fake_mic)  # what the fake microphone plays
    page.goto(f"{server}/")
    page.wait_for_selector("#model-info:has-text('16000 Hz')")
    page.set_input_files("#file", str(clip))
    page.wait_for_selector("#transcript[data-state=done]", timeout=60_000)
    assert page.inner_text("#transcript").split() == expected.text.split()
    spans = page.query_selector_all("#transcript .word")
    assert [s.inner_text() for s in spans] == [w.word for w in expected.words]
    first = expected.words[0]
    assert spans[0].get_attribute("title").startswith(f"{first.start:.2f}–{first.end:.2f} s")
    shades = {s.evaluate("e => getComputedStyle(e).backgroundColor") for s in spans}
    assert all(shade.startswith("rgba(255, 152, 0") for shade in shades)
    assert clip.name in page.inner_text("#status")

    # Record from the (fake) microphone: MediaRecorder -> WebAudio -> 16 kHz WAV -> server.
    page.evaluate("document.getElementById('transcript').dataset.state = 'empty'")
    page.click("#record")
    page.wait_for_selector("#record:has-text('Stop')")
    page.wait_for_timeout(1500)
    page.click("#record")
    page.wait_for_selector("#transcript[data-state=done]", timeout=60_000)
    assert "recording:" in page.inner_text("#status")


# -- the load benchmark ----------------------------------------------------------------------
def test_load_benchmark_runs_and_reports(clips, tmp_path, capsys):
    from speech_rnn.deploy import bench_serve

    code = bench_serve.main(
        [
            "--model",
            str(FIXTURE_MODEL),
            "--clips",
            str(clips[0].parent),
            "--clients",
            "3",
            "--seconds",
            "2",
            "--warmup-s",
            "0",
            "--max-clips",
            "4",
            "--threads",
            "1",
            "--json",
            str(tmp_path / "bench.json"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "| sequential | 1 |" in out and "| concurrent | 3 |" in out
    report = json.loads((tmp_path / "bench.json").read_text())
    for row in report["rows"]:
        assert row["errors"] == 0 and row["requests"] > 0
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["rss_peak_mb"] >= row["rss_start_mb"] > 0
    assert report["clips"] == 4 and report["server_stats"]["requests"] > 0
