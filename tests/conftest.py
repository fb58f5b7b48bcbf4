"""Shared fixtures: real speech (../shared/data, or the small committed copy in
tests/fixtures/speech), and small runs trained once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Two test processes (pytest-xdist, pyproject.toml) share the cores: one thread each for
# TensorFlow's kernels, and in the children they start, instead of one per core each, which
# oversubscribes the machine. Tests that set threads themselves (--threads) still do.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
# Inference as a TensorFlow graph, here and in the children: XLA (the default on CPUs)
# compiles each new padded length once, which the suite's many short decodes of many
# lengths never win back (a third of the CPU time of the transcription tests,
# docs/testing.md). XLA's own results are tested against the graph in test_model.py and
# test_transcribe.py, which turn it back on.
os.environ.setdefault("SPEECH_RNN_INFERENCE_XLA", "0")

REPO = Path(__file__).resolve().parents[1]
FIXTURE_SPEECH = REPO / "tests" / "fixtures" / "speech"


def _full_shared_folder() -> Path | None:
    """The full shared speech data: $SPEECH_RNN_SHARED_DATA if set (a value that is not a
    folder, such as ``none``, means "no shared data: use the fixtures"), else ../shared/data
    beside the project if it is there."""
    env = os.environ.get("SPEECH_RNN_SHARED_DATA")
    folder = Path(env) if env else REPO.parent / "shared" / "data"
    return folder if (folder / "kathleen").is_dir() and (folder / "fsdd").is_dir() else None


FULL_SHARED = _full_shared_folder()
SHARED = FULL_SHARED or FIXTURE_SPEECH  # what shared_data() returns


def run_cli(*args, timeout=300, **kwargs):
    """Run the installed ``speech-rnn`` console script (or the module) as a user would."""
    import shutil
    import subprocess
    import sys

    exe = shutil.which("speech-rnn")
    command = [exe] if exe else [sys.executable, "-m", "speech_rnn.cli"]
    return subprocess.run(
        command + [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        **kwargs,
    )


@dataclass(frozen=True)
class CliResult:
    """What :func:`cli` returns: the fields of ``subprocess.CompletedProcess`` tests read."""

    returncode: int
    stdout: str
    stderr: str


def cli(*args) -> CliResult:
    """Run ``speech-rnn ARGS`` in this process, through ``main()`` as the console script
    does, with stdout and stderr captured (argparse's own exit becomes its status). For
    tests where a separate process is not the point: each one costs 6-12 s of CPU to import
    TensorFlow on these machines (docs/testing.md). Start-up, crashes, signals and the
    script itself are tested through :func:`run_cli`."""
    import contextlib
    import io

    from speech_rnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse: --help, a bad flag
            code = e.code if isinstance(e.code, int) else 1
    return CliResult(code, out.getvalue(), err.getvalue())


def pytest_report_header(config):
    if FULL_SHARED:
        return f"speech data: {FULL_SHARED} (full shared data)"
    return (
        f"speech data: {FIXTURE_SPEECH} (committed fixtures; the tests that need the full "
        "shared data skip)"
    )


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now (for a test's own cluster)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shared_data() -> Path:
    """A folder with ``kathleen/`` and ``fsdd/``: the full shared data when present, else the
    committed subset (tests/fixtures/speech, see its README.md)."""
    return SHARED


def full_shared_data(why: str) -> Path:
    """The full shared data, or skip saying ``why`` the committed fixtures are not enough."""
    if FULL_SHARED is None:
        pytest.skip(
            f"needs the full shared speech data: {why} (put it at ../shared/data or set "
            "SPEECH_RNN_SHARED_DATA)"
        )
    return FULL_SHARED


def short_kathleen_clips(count: int, max_seconds: float = 2.6):
    """The first ``count`` kathleen clips shorter than ``max_seconds``, as Utterances."""
    from speech_rnn.audio import audio_duration
    from speech_rnn.manifest import Utterance

    out = []
    for flac in sorted((shared_data() / "kathleen").glob("*.flac")):
        duration = audio_duration(flac)
        if duration < max_seconds:
            text = flac.with_suffix(".txt").read_text(encoding="utf-8").strip()
            out.append(Utterance(str(flac), duration, text, id=flac.stem))
            if len(out) == count:
                return out
    # The fixtures hold exactly what the tests ask for: a new request needs them rebuilt.
    pytest.fail(
        f"only {len(out)} kathleen clips under {max_seconds} s in {shared_data()}, {count} "
        "asked for: add the request to tests/fixtures/make_speech_fixtures.py and rerun it"
    )


@pytest.fixture(scope="session")
def kathleen_dir() -> Path:
    return shared_data() / "kathleen"


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    return shared_data() / "fsdd"


TINY_TRAIN = [
    "model.lstm_layers=1",
    "model.lstm_units=16",
    "train.batch_size=4",
    "train.jit_compile=false",
    "train.log_samples=1",
    "train.pictures_every=0",  # pictures are tested in test_monitor.py and test_training.py
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny model trained for one epoch on four real clips: for tests that need any run
    folder (loading, transcription, error handling), not a good one."""
    from speech_rnn.config import Config
    from speech_rnn.manifest import write_manifest
    from speech_rnn.train import train

    root = tmp_path_factory.mktemp("tiny_run")
    write_manifest(short_kathleen_clips(4, max_seconds=3.0), root / "train.jsonl")
    config = Config().with_overrides(TINY_TRAIN + ["train.epochs=1"])
    train(root / "train.jsonl", root / "train.jsonl", root / "run", config, verbose=0)
    return root / "run"


# -- a real browser: Debian's Chromium (never a downloaded build) --------------------------------
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path():
    """Chromium's executable ($SPEECH_RNN_CHROMIUM, chromium, chromium-browser), or None."""
    import shutil

    for candidate in (os.environ.get("SPEECH_RNN_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def need_chromium() -> str:
    """Chromium's path, or skip with how to get it (no test downloads a browser)."""
    path = chromium_path()
    if path is None:
        pytest.skip(
            "no Chromium here (apt-get install chromium, or set SPEECH_RNN_CHROMIUM); "
            "browser tests never download one"
        )
    pytest.importorskip("playwright.sync_api", reason="the playwright package drives the browser")
    return path


# -- the order of the files: the slowest first ---------------------------------------------------
# pytest-xdist (--dist loadfile) hands each process one file at a time in collection order
# (--no-loadscope-reorder in pyproject.toml; its default order, most tests first, put these
# few-test, long files last, where one of them alone kept a process busy after the other
# had finished). Seconds per file in a whole run on an idle 2-core machine (2026-12-03,
# --durations=0, summed per file, rounded): only the order matters. Files not listed
# follow, in collection order.
SLOW_FILES = {
    "test_distributed.py": 240,
    "test_training.py": 170,
    "test_faults.py": 155,
    "test_featurestore.py": 130,
    "test_cli.py": 95,
    "test_levers.py": 75,
    "test_bench.py": 60,
    "test_demo.py": 60,
    "test_serve.py": 45,
    "test_transcribe.py": 40,
    "test_export.py": 40,
    "test_monitor.py": 40,
    "test_notebook.py": 35,
    "test_longform.py": 30,
}


def pytest_collection_modifyitems(config, items):
    """The files of SLOW_FILES first, slowest first (a stable sort: the tests of a file
    keep their order)."""
    items.sort(key=lambda item: -SLOW_FILES.get(item.path.name, 0))


def pytest_configure(config):
    """The coverage floor ([tool.coverage.report] fail_under in pyproject.toml) is for the
    whole suite. A run of some files, or with -k, -m or --deselect, still reports coverage but
    does not fail on it, unless --cov-fail-under is given on the command line."""
    cov = config.pluginmanager.get_plugin("_cov")
    if cov is None or getattr(cov, "_disabled", False):
        return
    asked = any(str(a).startswith("--cov-fail-under") for a in config.invocation_params.args)
    whole = (
        config.args_source is pytest.Config.ArgsSource.TESTPATHS
        and not config.option.keyword
        and not config.option.markexpr
        and not config.option.deselect
    )
    if not whole and not asked:
        cov.options.cov_fail_under = None
