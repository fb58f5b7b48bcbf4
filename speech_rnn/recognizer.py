"""Transcription: load a trained run folder and turn audio into text, words and times.

    from speech_rnn import load_model
    recognizer = load_model("runs/demo")
    result = recognizer.transcribe("clip.wav")      # or a float32 numpy array
    print(result.text, result.words[0].start, result.words[0].confidence)

The recognizer uses the run's own config, vocabulary and feature statistics, and the same
:class:`~speech_rnn.features.FeatureExtractor` as training. Audio of any length is
streamed and cut on silence into chunks of at most 30 s (:mod:`speech_rnn.longform`); the
chunks, and many short files (:meth:`SpeechRecognizer.transcribe_many`), are run through
the model in batches of similar length. Decoding is greedy, beam search, or beam search
with a word n-gram language model (:mod:`speech_rnn.lm`). A run folder that carries its own
LM (``lm.arpa`` + ``lm.json``, see ``speech-rnn lm attach``) decodes with it and its tuned
weights by default: ``load_model(run, use_lm=False)`` (CLI ``--no-lm``) or ``beam_width=1``
decodes greedily instead, and an explicit ``lm`` replaces it.

Word times come from the decoded path: each emitted character occupies a run of output
frames (greedy: the argmax runs; beam search: a forced alignment of the best beam), and one
output frame is ``frame_step_ms * stride`` of audio. A character CTC model emits a word's
letters in a short burst that often lags the spoken word, so the word's span is then moved
onto the speech region of the audio (energy over the noise floor) that the burst belongs to
(:func:`speech_rnn.timing.snap_to_speech`); with no speech region near it, the word keeps
its emission frames. A word's confidence is the lowest, over its characters, of the
character's peak posterior probability on its frames.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import audio_duration, load_audio, resample_checked
from .config import Config
from .decoding import (
    DecodingOptions,
    Hypothesis,
    beam_decode,
    decoding_options,
    greedy_decode,
    log_softmax,
    prefix_beam_search,
)
from .errors import AudioError, RunFolderError, SpeechRnnError
from .features import FeatureExtractor, FeatureStats, feature_dim
from .inference import make_forward
from .lm import NgramLM
from .longform import (
    ChunkOptions,
    array_blocks,
    group_segments,
    iter_chunks,
    owned,
    split_at_gaps,
    stream_audio,
)
from .runfolder import RunFolder, load_keras_safe, read_lm_settings
from .text import Vocabulary
from .timing import snap_to_speech, speech_activity, word_confidence, word_items

# Short files per model call. On 2 cores, 400 kathleen files: 32 ran 1.3x faster than 8
# when both were graphs; with batches of 8 now under XLA, 353-361x vs 338-349x realtime.
DEFAULT_BATCH_SIZE = 32
# Chunks of a long file per model call: 8 x 30 s keeps its audio in flight near 15 MB.
DEFAULT_CHUNK_BATCH = 8
DEFAULT_CHUNKING = ChunkOptions()
# Pauses between the letters of one word, at a chunk edge, longer than this split it (the
# digits model's letters are at most 1 window apart on 41 s of connected digits).
MAX_GAP_IN_WORD_WINDOWS = 4


@dataclass(frozen=True)
class Word:
    start: float  # seconds from the start of the audio
    end: float  # seconds
    word: str
    confidence: float  # [0, 1]: min over characters of the peak posterior


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcription:
    text: str
    duration: float  # seconds of audio
    segments: tuple  # Segment
    words: tuple  # Word
    options: DecodingOptions


class SpeechRecognizer:
    """A loaded run: config + vocabulary + feature statistics + acoustic model."""

    def __init__(self, run_dir, which: str = "best", use_lm: bool = True):
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
        self.sample_rate = self.config.audio.sample_rate
        self.extractor = FeatureExtractor(self.config.features, self.sample_rate, stats)
        self.model_path = run.model_path(which)
        self.acoustic_model = load_keras_safe(self.model_path)
        expected = (self.vocab.num_classes,)
        if tuple(self.acoustic_model.output.shape[-1:]) != expected:
            raise RunFolderError(
                f"{self.model_path}: model has "
                f"{self.acoustic_model.output.shape[-1]} output classes, "
                f"vocabulary needs {self.vocab.num_classes}"
            )
        self.forward = make_forward(self.acoustic_model)
        self._trace_feature_graphs()
        fc = self.config.features
        self.seconds_per_window = fc.frame_step_ms * fc.stride / 1000.0
        self.window_samples = self.extractor.frame_step * fc.stride  # chunk starts align to it
        self.space_id = self.vocab.chars.index(" ") if " " in self.vocab.chars else -1
        self.max_lag_frames = int(round(0.3 / self.seconds_per_window))
        self._lms = {}
        # the run's own LM and tuned weights: the default decoding unless switched off
        self.run_lm = read_lm_settings(run) if use_lm else None

    # -- model ------------------------------------------------------------------------------
    def load_waveform(self, audio, sample_rate: int | None = None) -> np.ndarray:
        """A path or an array as a mono float32 waveform at the model's rate (arrays are at
        ``sample_rate``, by default the model's). See :func:`waveform_from_array` for the
        arrays accepted."""
        sr = self.sample_rate
        if isinstance(audio, (str, Path)):
            return load_audio(audio, sr)
        rate = sr if sample_rate is None else sample_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise AudioError("<array>", f"sample_rate must be a positive integer, got {rate!r}")
        waveform = waveform_from_array(audio)
        return resample_checked("<array>", waveform, int(rate), sr)

    def _trace_feature_graphs(self):
        # Traced once for any length: eager feature ops cost more than the model on short
        # files.
        import tensorflow as tf

        self._windows = tf.function(
            self.extractor.__call__, input_signature=[tf.TensorSpec([None], tf.float32)]
        )

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """The model's input windows [T, D] for one waveform at the model's rate."""
        return self._windows(np.asarray(waveform, np.float32)).numpy()

    def logits(self, waveform: np.ndarray) -> np.ndarray:
        """Per-window logits [T, classes] for one waveform at the model's rate."""
        windows = self.features(waveform)
        return self.forward(windows[np.newaxis], [len(windows)]).numpy()[0, : len(windows)]

    def batch_logits(self, waveforms) -> list:
        """Logits for several waveforms in one padded batch (padding is masked)."""
        if len(waveforms) == 1:
            return [self.logits(waveforms[0])]
        windows = [self.features(w) for w in waveforms]
        lengths = np.array([len(w) for w in windows], np.int32)
        batch = np.zeros((len(windows), lengths.max(), windows[0].shape[1]), np.float32)
        for i, w in enumerate(windows):
            batch[i, : len(w)] = w
        out = self.forward(batch, lengths).numpy()
        return [out[i, :n] for i, n in enumerate(lengths)]

    # -- decoding ---------------------------------------------------------------------------
    def decoding_options(
        self, beam_width: int = 0, lm=None, alpha=None, beta=None
    ) -> DecodingOptions:
        """Validated options (:func:`decoding.decoding_options`); the LM file, if any, is
        loaded (once) here, so that a bad one fails before any audio is decoded. Without
        ``lm``, a run that carries its own LM uses it (with its tuned alpha, beta and beam,
        each replaced by an explicit value) unless ``beam_width`` is 1 (greedy)."""
        if lm is None and self.run_lm is not None and (beam_width or 0) != 1:
            lm = self.run.lm
            alpha = self.run_lm["alpha"] if alpha is None else alpha
            beta = self.run_lm["beta"] if beta is None else beta
            beam_width = beam_width or self.run_lm["beam_width"]
        options = decoding_options(beam_width, lm, alpha, beta)
        if options.lm:
            self.language_model(options.lm)
        return options

    def language_model(self, path):
        key = str(Path(path).resolve())
        if key not in self._lms:
            self._lms[key] = NgramLM.load(path)
        return self._lms[key]

    def decode(self, logits: np.ndarray, options: DecodingOptions) -> Hypothesis:
        blank = self.vocab.blank_id
        if options.lm:
            return prefix_beam_search(
                logits,
                blank,
                self.vocab.chars,
                options.beam_width,
                self.language_model(options.lm),
                options.alpha,
                options.beta,
            )
        if options.beam_width > 1:
            return beam_decode(logits[np.newaxis], [len(logits)], blank, options.beam_width)[0]
        return greedy_decode(logits, len(logits), blank)

    def words(
        self,
        hyp: Hypothesis,
        logits: np.ndarray,
        offset: float = 0.0,
        limit: float | None = None,
        audio: np.ndarray | None = None,
    ) -> list:
        """The hypothesis' words with times in seconds (``offset`` added, capped at
        ``limit``) and confidences. With the ``audio`` the logits came from, word spans
        are snapped to its speech activity (:func:`timing.snap_to_speech`)."""
        probs = np.exp(log_softmax(np.asarray(logits, np.float64)))
        ends = hyp.ends or hyp.frames
        step = self.seconds_per_window
        items = word_items(hyp.ids, hyp.frames, ends, self.space_id)
        spans = [(w[0][1], w[-1][2]) for w in items]
        if audio is not None and spans:
            regions = speech_activity(audio, int(round(step * self.sample_rate)), len(logits))
            spans = snap_to_speech(spans, regions, self.max_lag_frames)
        else:
            spans = [(first, last + 1) for first, last in spans]
        out = []
        for word, (first, stop) in zip(items, spans, strict=True):
            start, end = offset + first * step, offset + stop * step
            if limit is not None:
                end = min(end, limit)
                start = min(start, end)
            out.append(
                Word(
                    round(start, 3),
                    round(end, 3),
                    "".join(self.vocab.chars[label] for label, _, _ in word),
                    round(word_confidence(probs, word), 4),
                )
            )
        return out

    def _result(self, words, duration: float, options: DecodingOptions) -> Transcription:
        segments = tuple(Segment(s, e, t) for s, e, t in group_segments(words))
        return Transcription(
            " ".join(w.word for w in words), round(duration, 3), segments, tuple(words), options
        )

    def _run_chunks(self, chunks, options: DecodingOptions) -> list:
        sr = self.sample_rate
        out = []
        for chunk, logits in zip(chunks, self.batch_logits([c.audio for c in chunks]), strict=True):
            hyp = self.decode(logits, options)
            if chunk.start > 0 or chunk.core_end < chunk.start + len(chunk.audio):
                # a word cut in half at the chunk's edge must not swallow its neighbour
                edges = [
                    (chunk.core_start - chunk.start) // self.window_samples,
                    (chunk.core_end - chunk.start) // self.window_samples,
                ]
                ids, frames, ends = split_at_gaps(
                    hyp.ids,
                    hyp.frames,
                    hyp.ends or hyp.frames,
                    self.space_id,
                    edges,
                    MAX_GAP_IN_WORD_WINDOWS,
                )
                hyp = dataclasses.replace(hyp, ids=ids, frames=frames, ends=ends)
            words = self.words(
                hyp, logits, chunk.start / sr, (chunk.start + len(chunk.audio)) / sr, chunk.audio
            )
            out.extend(owned(words, chunk, sr))
        return out

    def _transcribe_blocks(self, blocks, options, batch_size, chunking) -> Transcription:
        words, batch, end = [], [], 0
        for chunk in iter_chunks(blocks, self.sample_rate, chunking, self.window_samples):
            batch.append(chunk)
            end = chunk.core_end
            if len(batch) >= batch_size:
                words.extend(self._run_chunks(batch, options))
                batch = []
        if batch:
            words.extend(self._run_chunks(batch, options))
        return self._result(words, end / self.sample_rate, options)

    # -- public -----------------------------------------------------------------------------
    def transcribe(
        self,
        audio,
        beam_width: int = 0,
        sample_rate: int | None = None,
        *,
        lm=None,
        alpha: float | None = None,
        beta: float | None = None,
        batch_size: int = DEFAULT_CHUNK_BATCH,
        chunking: ChunkOptions = DEFAULT_CHUNKING,
    ) -> Transcription:
        """Transcribe a file path or a waveform array (``sample_rate`` defaults to the
        model's rate for arrays). Audio longer than ``chunking.max_chunk_s`` is streamed
        and cut on silence; ``batch_size`` chunks go through the model at a time."""
        options = self.decoding_options(beam_width, lm, alpha, beta)
        if isinstance(audio, (str, Path)) and audio_duration(audio) > chunking.max_chunk_s:
            blocks = stream_audio(audio, self.sample_rate, chunking.block_s)
            return self._transcribe_blocks(blocks, options, batch_size, chunking)
        waveform = self.load_waveform(audio, sample_rate)
        blocks = array_blocks(waveform, self.sample_rate, chunking.block_s)
        return self._transcribe_blocks(blocks, options, batch_size, chunking)

    def transcribe_many(
        self,
        paths,
        beam_width: int = 0,
        *,
        lm=None,
        alpha=None,
        beta=None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        chunking: ChunkOptions = DEFAULT_CHUNKING,
    ):
        """Transcribe many files; yields ``(index, path, Transcription or SpeechRnnError)``
        as each file finishes (not in input order). Files up to ``chunking.max_chunk_s``
        are sorted by duration and run ``batch_size`` at a time; longer ones are streamed,
        their chunks at most ``DEFAULT_CHUNK_BATCH`` at a time so that memory stays flat.
        A file that fails yields its error and the others go on."""
        options = self.decoding_options(beam_width, lm, alpha, beta)
        short, long = [], []
        for index, path in enumerate(paths):
            try:
                duration = audio_duration(path)
            except SpeechRnnError as e:
                yield index, path, e
                continue
            (short if duration <= chunking.max_chunk_s else long).append((duration, index, path))
        short.sort(key=lambda item: item[0])
        for first in range(0, len(short), batch_size):
            loaded = []
            for _, index, path in short[first : first + batch_size]:
                try:
                    loaded.append((index, path, self.load_waveform(path, None)))
                except SpeechRnnError as e:
                    yield index, path, e
            if not loaded:
                continue
            all_logits = self.batch_logits([w for _, _, w in loaded])
            for (index, path, waveform), logits in zip(loaded, all_logits, strict=True):
                duration = len(waveform) / self.sample_rate
                words = self.words(self.decode(logits, options), logits, 0.0, duration, waveform)
                yield index, path, self._result(words, duration, options)
        for _, index, path in long:
            try:
                blocks = stream_audio(path, self.sample_rate, chunking.block_s)
                result = self._transcribe_blocks(
                    blocks, options, min(batch_size, DEFAULT_CHUNK_BATCH), chunking
                )
            except SpeechRnnError as e:
                yield index, path, e
                continue
            yield index, path, result

    def transcribe_waveforms(
        self, waveforms, options=None, *, chunking: ChunkOptions = DEFAULT_CHUNKING
    ) -> list:
        """Transcribe several waveforms (1-D float32 at :attr:`sample_rate`) together, in
        input order: those up to ``chunking.max_chunk_s`` go through the model in one
        padded batch and are decoded one by one, as :meth:`transcribe_many` does with
        files; longer ones are cut on silence, as :meth:`transcribe` does. ``options``: one
        :class:`DecodingOptions` for all (from :meth:`decoding_options`; default greedy)
        or a sequence with one per waveform."""
        waveforms = [self.load_waveform(w) for w in waveforms]
        if options is None or isinstance(options, DecodingOptions):
            options = [options or DecodingOptions()] * len(waveforms)
        elif len(options) != len(waveforms):
            raise ValueError(f"{len(options)} decoding options for {len(waveforms)} waveforms")
        out = [None] * len(waveforms)
        short = [
            i for i, w in enumerate(waveforms) if len(w) <= chunking.max_chunk_s * self.sample_rate
        ]
        if short:
            for i, logits in zip(
                short, self.batch_logits([waveforms[i] for i in short]), strict=True
            ):
                duration = len(waveforms[i]) / self.sample_rate
                words = self.words(
                    self.decode(logits, options[i]), logits, 0.0, duration, waveforms[i]
                )
                out[i] = self._result(words, duration, options[i])
        for i, waveform in enumerate(waveforms):
            if out[i] is None:
                blocks = array_blocks(waveform, self.sample_rate, chunking.block_s)
                out[i] = self._transcribe_blocks(blocks, options[i], DEFAULT_CHUNK_BATCH, chunking)
        return out


MAX_CHANNELS = 8
_PCM_SCALE = {
    np.dtype(np.int16): 32768.0,
    np.dtype(np.int32): 2147483648.0,
    np.dtype(np.int8): 128.0,
}


def waveform_from_array(audio) -> np.ndarray:
    """A mono float32 waveform from an array of samples, or an AudioError.

    * float arrays are used as they are (samples in [-1, 1]);
    * integer PCM is scaled to [-1, 1): int16 (what ``scipy.io.wavfile.read`` returns) by
      1/32768, int32 by 1/2**31, int8 by 1/128, uint8 as offset binary ((x - 128) / 128);
      any other type (int64 from a Python list, bool, complex) is refused;
    * 2-D arrays are ``[samples, channels]`` or ``[channels, samples]``: the shorter axis
      is the channel axis, and it must hold at most 8 channels (otherwise, or with both
      axes equal, the layout is ambiguous and refused); channels are averaged.
    """
    array = np.asarray(audio)
    if array.dtype.kind == "f":
        waveform = array.astype(np.float32, copy=False)
    elif array.dtype in _PCM_SCALE:
        waveform = (array.astype(np.float32) / _PCM_SCALE[array.dtype]).astype(np.float32)
    elif array.dtype == np.uint8:
        waveform = (array.astype(np.float32) - 128.0) / 128.0
    else:
        raise AudioError(
            "<array>",
            f"unsupported sample type {array.dtype}: pass float samples in [-1, 1] "
            "or int16/int32/int8/uint8 PCM",
        )
    if waveform.ndim == 2:
        rows, cols = waveform.shape
        if (rows == cols and rows > 1) or min(rows, cols) > MAX_CHANNELS:
            raise AudioError(
                "<array>",
                f"ambiguous shape {waveform.shape}: pass [samples] or [samples, channels] "
                f"with at most {MAX_CHANNELS} channels",
            )
        waveform = waveform.mean(axis=1 if cols < rows else 0)
    if waveform.ndim != 1 or waveform.size == 0:
        raise AudioError(
            "<array>",
            f"expected a non-empty 1-D (or [samples, channels]) array, got shape {array.shape}",
        )
    if not np.isfinite(waveform).all():
        raise AudioError("<array>", "audio contains NaN or infinite samples")
    return np.ascontiguousarray(waveform, dtype=np.float32)


def load_model(run_dir, which: str = "best", use_lm: bool = True) -> SpeechRecognizer:
    """Load a run folder for transcription (``which``: "best" by dev WER, or "last").
    ``use_lm``: decode with the run's own language model when it carries one (default)."""
    return SpeechRecognizer(run_dir, which=which, use_lm=use_lm)
