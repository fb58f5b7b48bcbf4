"""Transcription: load a trained run folder and turn audio into text, words and times.

    from speech_rnn import load_model
    recognizer = load_model("runs/demo")
    result = recognizer.transcribe("clip.wav")      # or a float32 numpy array
    print(result.text, result.words[0].start)

The recognizer uses the run's own config, vocabulary and feature statistics, and the same
:class:`~speech_rnn.features.FeatureExtractor` as training.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import load_audio, resample
from .config import Config
from .decoding import DecodingOptions, Hypothesis, beam_decode, greedy_decode, log_softmax
from .errors import AudioError, RunFolderError
from .features import FeatureExtractor, FeatureStats, feature_dim
from .runfolder import RunFolder, load_keras_safe
from .text import Vocabulary


@dataclass(frozen=True)
class Word:
    start: float                  # seconds
    end: float                    # seconds
    word: str
    confidence: float             # geometric mean of the word's character posteriors, [0, 1]


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcription:
    text: str
    duration: float               # seconds of audio
    segments: tuple               # Segment
    words: tuple                  # Word
    options: DecodingOptions


class SpeechRecognizer:
    """A loaded run: config + vocabulary + feature statistics + acoustic model."""

    def __init__(self, run_dir, which: str = "best"):
        from .evaluate import make_forward
        run = RunFolder(run_dir)
        if not run.root.is_dir():
            raise RunFolderError(f"{run.root}: run folder not found")
        if not run.exists():
            raise RunFolderError(f"{run.root}: not a run folder (no config.json)")
        self.run = run
        self.config = Config.load(run.config)
        self.vocab = Vocabulary.load(run.vocab)
        stats = None
        if self.config.features.normalization == "global":
            stats = FeatureStats.load(run.feature_stats, feature_dim(self.config.features))
        self.extractor = FeatureExtractor(self.config.features, self.config.audio.sample_rate,
                                          stats)
        self.model_path = run.model_path(which)
        self.acoustic_model = load_keras_safe(self.model_path)
        expected = (self.vocab.num_classes,)
        if tuple(self.acoustic_model.output.shape[-1:]) != expected:
            raise RunFolderError(f"{self.model_path}: model has "
                                 f"{self.acoustic_model.output.shape[-1]} output classes, "
                                 f"vocabulary needs {self.vocab.num_classes}")
        self.forward = make_forward(self.acoustic_model)
        fc = self.config.features
        self.seconds_per_window = fc.frame_step_ms * fc.stride / 1000.0

    # -- core -------------------------------------------------------------------------
    def _waveform(self, audio, sample_rate):
        sr = self.config.audio.sample_rate
        if isinstance(audio, (str, Path)):
            return load_audio(audio, sr)
        waveform = np.asarray(audio, dtype=np.float32)
        if waveform.ndim == 2:  # [samples, channels]
            waveform = waveform.mean(axis=1)
        if waveform.ndim != 1 or waveform.size == 0:
            raise AudioError("<array>", "expected a non-empty 1-D (or [samples, channels]) array")
        if not np.isfinite(waveform).all():
            raise AudioError("<array>", "audio contains NaN or infinite samples")
        return resample(waveform, sample_rate or sr, sr)

    def logits(self, waveform: np.ndarray) -> np.ndarray:
        """Per-window logits [T, classes] for one 16 kHz waveform."""
        import tensorflow as tf
        windows = self.extractor(tf.constant(waveform))
        out = self.forward(windows[tf.newaxis], tf.shape(windows)[:1])
        return out[0].numpy()

    def transcribe(self, audio, beam_width: int = 0, sample_rate: int | None = None) -> Transcription:
        """Transcribe a file path or a waveform array (``sample_rate`` defaults to the
        model's rate for arrays)."""
        waveform = self._waveform(audio, sample_rate)
        logits = self.logits(waveform)
        options = DecodingOptions(beam_width=beam_width)
        if options.method == "beam":
            hyp = beam_decode(logits[np.newaxis], [len(logits)], self.vocab.blank_id,
                              beam_width)[0]
        else:
            hyp = greedy_decode(logits, len(logits), self.vocab.blank_id)
        duration = len(waveform) / self.config.audio.sample_rate
        return self._result(hyp, logits, duration, options)

    def _result(self, hyp: Hypothesis, logits, duration, options) -> Transcription:
        words = self._words(hyp, logits, duration)
        text = " ".join(w.word for w in words)
        segments = (Segment(0.0, duration, text),) if text else ()
        return Transcription(text, duration, segments, tuple(words), options)

    def _words(self, hyp: Hypothesis, logits, duration):
        """Group emitted characters into words at spaces; times from emission frames."""
        probs = np.exp(log_softmax(np.asarray(logits, np.float64)))
        space = self.vocab.chars.index(" ") if " " in self.vocab.chars else -1
        words, current = [], []
        for label, frame in list(zip(hyp.ids, hyp.frames)) + [(space, None)]:
            if label == space:
                if current:
                    chars = "".join(self.vocab.chars[i] for i, _ in current)
                    post = [probs[f, i] for i, f in current]
                    conf = float(np.exp(np.mean(np.log(np.maximum(post, 1e-12)))))
                    start = current[0][1] * self.seconds_per_window
                    end = min(duration, (current[-1][1] + 1) * self.seconds_per_window)
                    words.append(Word(round(start, 3), round(end, 3), chars, round(conf, 4)))
                current = []
            else:
                current.append((label, frame))
        return words


def load_model(run_dir, which: str = "best") -> SpeechRecognizer:
    """Load a run folder for transcription (``which``: "best" by dev WER, or "last")."""
    return SpeechRecognizer(run_dir, which=which)
