"""``speech-rnn export``: the checked-in digits model exported once (SavedModel, TFLite float32
and dynamic-range int8), then loaded by a fresh Python process that never imports
speech_rnn, on real connected-digit clips built from FSDD test recordings. The float32
artefacts must give exactly the text of ``load_model(...).transcribe(...)`` (greedy)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import cli

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURE_MODEL = HERE / "fixtures" / "digits_model"
CLIP_COUNT = 4


def export_cli(*args, timeout=600):
    """``python -m speech_rnn.cli export ...`` with this checkout's package first on the
    path (the console script may belong to another checkout)."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [str(REPO)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
        ),
    )
    return subprocess.run(
        [sys.executable, "-m", "speech_rnn.cli", "export", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory, fsdd_dir):
    """Connected digits from FSDD test takes, written at 16 kHz (float WAV) so that the
    exported models and ``transcribe`` read the very same samples; and their manifest."""
    import soundfile
    from fixtures.digits import SAMPLE_RATE, connected_digits

    from speech_rnn.audio import resample

    folder = tmp_path_factory.mktemp("clips")
    paths, rows = [], []
    for i, utt in enumerate(connected_digits(fsdd_dir, "test", CLIP_COUNT, seed=21)):
        path = folder / f"digits_{i}.wav"
        audio = resample(utt.audio, SAMPLE_RATE, 16000)
        soundfile.write(str(path), audio, 16000, subtype="FLOAT")
        paths.append(path)
        rows.append({"audio_filepath": str(path), "duration": len(audio) / 16000, "text": utt.text})
    (folder / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths


@pytest.fixture(scope="module")
def exported(tmp_path_factory, clips):
    if not (FIXTURE_MODEL / "best.keras").is_file():
        pytest.skip("fixture model missing: run tests/fixtures/make_digits_model.py")
    out = tmp_path_factory.mktemp("export") / "digits"
    proc = export_cli(
        "--model",
        FIXTURE_MODEL,
        "--out",
        out,
        "--quantize",
        "dynamic",
        "--eval-manifest",
        clips[0].parent / "clips.jsonl",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "model_dynamic.tflite" in proc.stdout and "WER" in proc.stdout
    return out


@pytest.fixture(scope="module")
def keras_texts(clips):
    from speech_rnn import load_model

    recognizer = load_model(FIXTURE_MODEL)
    return [recognizer.transcribe(path).text for path in clips]


# The client: numpy, soundfile and TensorFlow only. Prints one JSON object.
CLIENT = r"""
import json, sys
import numpy as np
import soundfile
import tensorflow as tf

export_dir, paths = sys.argv[1], sys.argv[2:]
meta = json.load(open(f"{export_dir}/model.json"))
chars = meta["vocabulary"]["chars"]
rate = meta["sample_rate"]
waves = []
for p in paths:
    audio, sr = soundfile.read(p, dtype="float32")
    assert sr == rate, (p, sr)
    waves.append(audio)
out = {}

loaded = tf.saved_model.load(f"{export_dir}/saved_model")
single = loaded.signatures["serving_default"]
out["savedmodel"] = [single(waveform=tf.constant(w))["text"].numpy().decode() for w in waves]
sm_logits = [single(waveform=tf.constant(w))["logits"].numpy() for w in waves]
batch = np.zeros((len(waves), max(map(len, waves))), np.float32)
for i, w in enumerate(waves):
    batch[i, :len(w)] = w
got = loaded.signatures["transcribe_batch"](
    waveforms=tf.constant(batch), lengths=tf.constant([len(w) for w in waves], tf.int32))
out["savedmodel_batch"] = [t.decode() for t in got["text"].numpy()]
out["batch_logits_length"] = got["logits_length"].numpy().tolist()
out["single_logits_length"] = [int(single(waveform=tf.constant(w))["logits_length"])
                               for w in waves]
try:
    single(waveform=tf.constant(batch))
    out["rank2_savedmodel"] = "accepted"
except tf.errors.InvalidArgumentError as e:
    out["rank2_savedmodel"] = str(e)

for name in ("tflite", "tflite_dynamic"):
    path = f"{export_dir}/{meta['artefacts'][name]['path']}"
    runner = tf.lite.Interpreter(model_path=path, num_threads=1).get_signature_runner(
        "serving_default")
    results = [runner(waveform=w) for w in waves]
    out[name] = ["".join(chars[i] for i in r["labels"]) for r in results]
    out[name + "_logits_diff"] = max(float(np.abs(r["logits"] - s).max())
                                     for r, s in zip(results, sm_logits))

# The raw interpreter API (as in docs/deploy.md): one interpreter, resized between two
# different lengths; output indices by name from the signature.
interpreter = tf.lite.Interpreter(model_path=f"{export_dir}/model.tflite", num_threads=1)
index = interpreter.get_input_details()[0]["index"]
outputs = {name: d["index"] for name, d in
           interpreter.get_signature_runner("serving_default").get_output_details().items()}
resized = []
for w in (waves[0], waves[1][:len(waves[1]) // 2]):
    interpreter.resize_tensor_input(index, [len(w)])
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, w)
    interpreter.invoke()
    labels = interpreter.get_tensor(outputs["labels"])
    resized.append([len(w), list(interpreter.get_tensor(outputs["logits"]).shape),
                    "".join(chars[i] for i in labels)])
out["resized"] = resized
out["outputs"] = sorted(outputs)
out["tflite_half_clip"] = "".join(chars[i] for i in tf.lite.Interpreter(
    model_path=f"{export_dir}/model.tflite").get_signature_runner("serving_default")(
    waveform=waves[1][:len(waves[1]) // 2])["labels"])
out["speech_rnn_imported"] = "speech_rnn" in sys.modules
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def client(exported, clips, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("client")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT, str(exported), *map(str, clips)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_export_folder_and_model_json(exported):
    meta = json.loads((exported / "model.json").read_text())
    assert (exported / "saved_model" / "saved_model.pb").is_file()
    assert meta["sample_rate"] == 16000
    assert meta["vocabulary"]["blank_index"] == len(meta["vocabulary"]["chars"])
    assert meta["features"]["fft_length"] == 512
    assert meta["source_run"] == str(FIXTURE_MODEL.resolve())
    assert meta["evaluation"]["manifest"].endswith("clips.jsonl")
    scores = {}
    for name in ("savedmodel", "tflite", "tflite_dynamic"):
        info = meta["artefacts"][name]
        assert info["bytes"] > 0 and info["utterances"] == CLIP_COUNT
        scores[name] = (info["wer"], info["cer"])
    assert scores["savedmodel"] == scores["tflite"]  # same texts, same scores
    assert meta["artefacts"]["tflite_dynamic"]["bytes"] < meta["artefacts"]["tflite"]["bytes"] / 2


def test_tflite_is_builtin_only_with_fused_lstms(exported):
    from speech_rnn.deploy.export import model_ops

    for name in ("model.tflite", "model_dynamic.tflite"):
        ops = model_ops((exported / name).read_bytes())
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops, ops
        assert "RFFT2D" in ops, ops
        assert not [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "WHILE")], ops
    meta = json.loads((exported / "model.json").read_text())
    assert meta["artefacts"]["tflite"]["select_tf_ops"] == []


def test_fresh_process_never_imports_speech_rnn(client):
    assert client["speech_rnn_imported"] is False


def test_tflite_logits_match_the_savedmodel(client):
    # float32: rounding only (with the converter's cell_clip=10 left in, up to 0.08).
    assert client["tflite_logits_diff"] < 1e-3
    assert client["tflite_dynamic_logits_diff"] < 1.0


def test_fused_lstms_do_not_clip_cells(exported):
    from tensorflow.lite.python import schema_py_generated as schema

    data = bytearray((exported / "model.tflite").read_bytes())
    model = schema.Model.GetRootAsModel(data, 0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    clips = []
    graph = model.Subgraphs(0)
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = codes[op.OpcodeIndex()]
        if (
            max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            == schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
        ):
            options = schema.UnidirectionalSequenceLSTMOptions()
            options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            clips.append(options.CellClip())
    assert clips == [0.0] * 4  # 2 layers x 2 directions


def test_float32_artefacts_match_transcribe(client, keras_texts):
    assert all(keras_texts), keras_texts
    assert client["savedmodel"] == keras_texts
    assert client["tflite"] == keras_texts
    assert client["savedmodel_batch"] == keras_texts
    assert client["batch_logits_length"] == client["single_logits_length"]


def test_dynamic_quantized_tflite_stays_close(client, keras_texts):
    from speech_rnn.scoring import score

    # int8 LSTM weights may change a letter now and then (docs/deploy.md: 99/100 texts
    # equal on 100 held-out utterances); with an int8 front end it was 52/100.
    assert score(keras_texts, client["tflite_dynamic"]).cer < 0.05, client["tflite_dynamic"]


def test_dynamic_model_keeps_the_front_end_float(exported):
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(exported / "model_dynamic.tflite"))
    weights = {tuple(t["shape"]): t["dtype"] for t in interpreter.get_tensor_details()}
    assert weights[(40, 257)] == np.float32  # mel filterbank [mel, fft bins]
    assert weights[(26, 40)] == np.float32  # DCT [mfcc, mel]
    assert weights[(17, 128)] == np.int8  # output layer [classes, 2 x units]


def test_tflite_resizes_between_lengths(client):
    (n0, shape0, text0), (n1, shape1, text1) = client["resized"]
    assert n0 != n1 and shape0 != shape1
    assert text0 == client["tflite"][0]  # the signature runner's text
    assert text1 == client["tflite_half_clip"]
    from speech_rnn.config import Config
    from speech_rnn.features import num_windows

    features = Config.load(FIXTURE_MODEL / "config.json").features
    assert shape0[0] == num_windows(n0, features, 16000)
    assert shape1[0] == num_windows(n1, features, 16000)
    assert sorted(client["outputs"]) == ["labels", "logits", "logits_length"]


def test_rank2_waveform_is_rejected_by_name(client):
    assert "Shape of tensor waveform" in client["rank2_savedmodel"]
    assert "not compatible with expected shape [?]" in client["rank2_savedmodel"]


def test_greedy_labels_trim_and_collapse_spaces():
    import tensorflow as tf

    from speech_rnn.deploy.graph import greedy_labels

    blank, space = 3, 0
    # argmax path (- is blank): - " " a a - " " " " a b - " " " " b b " " - " " - " " - b
    # CTC collapse: " a ab  b  b"; spaces trimmed and runs of them joined: "a ab b b"
    path = [
        blank,
        0,
        1,
        1,
        blank,
        0,
        0,
        1,
        2,
        blank,
        0,
        blank,
        0,
        2,
        2,
        0,
        blank,
        0,
        blank,
        0,
        blank,
        2,
    ]
    labels = greedy_labels(tf.one_hot(path, 4), blank, space).numpy().tolist()
    assert "".join(" ab"[i] for i in labels) == "a ab b b"
    trailing = greedy_labels(tf.one_hot([1, 0, blank, 0], 4), blank, space).numpy().tolist()
    assert trailing == [1]
    assert greedy_labels(tf.one_hot([blank, 0, blank], 4), blank, space).numpy().size == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "savedmodel", "--quantize", "dynamic"], "--quantize applies to TFLite"),
        (["--format", "onnx"], "invalid choice"),
    ],
)
def test_bad_flag_combinations_are_one_line(tmp_path, args, message):
    proc = cli("export", "--model", FIXTURE_MODEL, "--out", tmp_path / "out", *args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_run_and_busy_folder_name_the_path(tmp_path):
    missing = cli("export", "--model", tmp_path / "nope", "--out", tmp_path / "out")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().count("\n") == 0
    assert f"{tmp_path / 'nope'}: run folder not found" in missing.stderr
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    proc = cli("export", "--model", FIXTURE_MODEL, "--out", busy)
    assert proc.returncode == 2 and f"{busy}: folder is not empty" in proc.stderr
    assert (busy / "keep.txt").read_text() == "x"


def test_cli_registers_export_without_importing_tensorflow():
    code = (
        "import sys; from speech_rnn.cli import build_parser; "
        "help = build_parser().format_help(); "
        "print('export' in help, 'tensorflow' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO, env=env
    )
    assert proc.stdout.split() == ["True", "False"], proc.stderr[-2000:]
