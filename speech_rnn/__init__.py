"""speech_rnn: end-to-end speech recognition on Keras 3 / TensorFlow.

Public API::

    import speech_rnn
    model = speech_rnn.load_model("runs/NAME")         # a SpeechRecognizer
    result = model.transcribe("clip.wav")              # a Transcription
    print(result.text, result.words[0].start)
    speech_rnn.transcribe("runs/NAME", "clip.wav")     # one-shot

Importing this package does not import TensorFlow; that happens on first use. The names
below are loaded on first access, so ``import speech_rnn`` stays fast.
"""

__version__ = "0.1.0"

__all__ = [
    "load_model",
    "transcribe",
    "SpeechRecognizer",
    "Transcription",
    "Segment",
    "Word",
    "DecodingOptions",
    "__version__",
]

# Public name -> the module that defines it (imported on first access).
_EXPORTS = {
    "load_model": "recognizer",
    "SpeechRecognizer": "recognizer",
    "Transcription": "recognizer",
    "Segment": "recognizer",
    "Word": "recognizer",
    "DecodingOptions": "decoding",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def transcribe(run_dir, audio, **kwargs):
    """One-shot: load ``run_dir`` and transcribe ``audio`` (a path or an array); keyword
    arguments go to :meth:`SpeechRecognizer.transcribe`."""
    from .recognizer import load_model

    return load_model(run_dir).transcribe(audio, **kwargs)
