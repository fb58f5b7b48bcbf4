"""speech_rnn: end-to-end speech recognition on Keras 3 / TensorFlow.

Public API::

    from speech_rnn import load_model
    model = load_model("runs/NAME")
    result = model.transcribe("clip.wav")
    print(result.text)

Importing this package does not import TensorFlow; that happens on first use.
"""
__version__ = "0.1.0"

__all__ = ["load_model", "transcribe", "__version__"]


def load_model(run_dir, **kwargs):
    """Load a trained run folder; see :func:`speech_rnn.transcribe.load_model`."""
    from .transcribe import load_model as _load_model
    return _load_model(run_dir, **kwargs)


def transcribe(run_dir, audio, **kwargs):
    """One-shot: load ``run_dir`` and transcribe ``audio`` (path or array)."""
    return load_model(run_dir).transcribe(audio, **kwargs)
