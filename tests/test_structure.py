"""The package's shape: no import cycles, the core never imports its tooling, private APIs in
one place, and a public API that keeps working (no TensorFlow start-up to import it)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys

import numpy as np
from conftest import REPO

FIXTURE_MODEL = REPO / "tests" / "fixtures" / "digits_model"


def _import_graph_script():
    spec = importlib.util.spec_from_file_location(
        "import_graph", REPO / "scripts" / "import_graph.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycles_and_the_core_never_imports_tooling():
    script = _import_graph_script()
    graph = script.import_graph()
    assert "speech_rnn.recognizer" in graph and "speech_rnn.bench.suite" in graph
    assert script.cycles(graph) == []
    assert script.core_to_tooling(graph) == []
    assert script.main([]) == 0


def test_the_checks_catch_a_cycle_and_a_core_import_of_tooling():
    script = _import_graph_script()
    graph = {
        "speech_rnn.a": {"speech_rnn.b"},
        "speech_rnn.b": {"speech_rnn.a"},
        "speech_rnn.c": {"speech_rnn.bench.suite"},
        "speech_rnn.bench.suite": set(),
        "speech_rnn.cli": {"speech_rnn.bench.suite"},
    }
    assert script.cycles(graph) == [["speech_rnn.a", "speech_rnn.b"]]
    assert script.core_to_tooling(graph) == [("speech_rnn.c", "speech_rnn.bench.suite")]


def _own_modules():
    return sorted((REPO / "speech_rnn").rglob("*.py"))


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in _own_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("speech_rnn")
            ):
                offenders += [
                    f"{path.name}: {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert offenders == []


def test_private_keras_and_tensorflow_apis_only_in_compat():
    offenders = [
        p.name
        for p in _own_modules()
        if p.name != "compat.py"
        and (
            "keras.src" in p.read_text(encoding="utf-8")
            or "tensorflow.python" in p.read_text(encoding="utf-8")
        )
    ]
    assert offenders == []


def test_importing_the_package_and_the_cli_does_not_start_tensorflow():
    code = (
        "import sys, speech_rnn, speech_rnn.cli, speech_rnn.recognizer, speech_rnn.train\n"
        "speech_rnn.Transcription, speech_rnn.DecodingOptions\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_public_api_exports_and_one_shot_transcribe_works_twice():
    import speech_rnn
    from speech_rnn.recognizer import SpeechRecognizer, Transcription

    assert set(speech_rnn.__all__) >= {
        "load_model",
        "transcribe",
        "Transcription",
        "Word",
        "Segment",
        "DecodingOptions",
        "SpeechRecognizer",
    }
    assert speech_rnn.SpeechRecognizer is SpeechRecognizer
    rng = np.random.default_rng(0)
    audio = (0.01 * rng.standard_normal(8000)).astype(np.float32)
    first = speech_rnn.transcribe(FIXTURE_MODEL, audio, sample_rate=8000)
    # loading the recognizer used to replace the package's transcribe with a submodule
    assert callable(speech_rnn.transcribe)
    second = speech_rnn.transcribe(FIXTURE_MODEL, audio, sample_rate=8000)
    assert isinstance(first, Transcription) and first == second
