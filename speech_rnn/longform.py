"""Long audio in flat memory: stream the file, cut it on silence, stitch the words back.

* :func:`stream_audio` reads a file block by block (soundfile) and resamples each block
  with a streaming soxr resampler, so no more than a block of the file is in memory; the
  samples are the same as :func:`speech_rnn.audio.load_audio` would return for the file.
* :func:`iter_chunks` cuts the stream into chunks of at most ``max_chunk_s`` seconds. The
  cut is placed by an energy voice-activity rule: frame energies (10 ms) are smoothed over
  ``min_silence_s``, and the cut goes in the *latest* smoothed window, between
  ``min_chunk_s`` and ``max_chunk_s`` into the chunk, whose energy is within
  ``quiet_db`` of the quietest one (inside that window, at its quietest 10 ms frame). With
  any pause in the range, that is a pause; in continuous sound it is the quietest moment.
* Each chunk is given up to ``overlap_s`` of audio on both sides as context for the
  model (its edges, too, in the quietest spot between 0.1 s and ``overlap_s`` from the
  cut, and its start on the model's window grid, so its frames are the whole file's), but
  *owns* only its core span: a word belongs to the chunk whose core holds its midpoint
  (:func:`owned`), so words are neither lost nor repeated at the cuts. A "word" at a core
  edge with a pause between its letters (a half word at the chunk's edge run into the
  next one) is split first (:func:`split_at_gaps`).

Audio no longer than ``max_chunk_s`` is a single chunk: exactly the whole clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import check_file, load_audio, unreadable
from .errors import AudioError


@dataclass(frozen=True)
class ChunkOptions:
    max_chunk_s: float = 30.0  # the longest core span a chunk may have
    min_chunk_s: float = 15.0  # cuts are looked for between min and max
    overlap_s: float = 0.5  # context added on each side of a cut
    min_silence_s: float = 0.15  # energy smoothing window: the pause length looked for
    quiet_db: float = 3.0  # a window this close to the quietest one counts as quiet
    block_s: float = 10.0  # seconds read from a file at a time

    def __post_init__(self):
        if not 0 < self.min_chunk_s <= self.max_chunk_s:
            raise ValueError("need 0 < min_chunk_s <= max_chunk_s")
        if self.overlap_s < 0 or self.overlap_s * 2 >= self.min_chunk_s:
            raise ValueError("overlap_s must be >= 0 and well below min_chunk_s")


@dataclass(frozen=True)
class Chunk:
    audio: np.ndarray  # samples [start, start + len(audio)) of the stream
    start: int  # stream position (samples) of audio[0]
    core_start: int  # the span (samples) whose words this chunk keeps
    core_end: int
    index: int = 0


# -- reading ------------------------------------------------------------------------------------
def stream_audio(path, sample_rate: int, block_s: float = 10.0):
    """Yield mono float32 blocks of ``path`` at ``sample_rate``. Formats libsndfile cannot
    open (some mp3/m4a) are decoded whole through :func:`speech_rnn.audio.load_audio`."""
    import soundfile
    import soxr

    path = Path(path)
    try:
        check_file(path)
        f = soundfile.SoundFile(str(path))
    except OSError as e:
        raise unreadable(path, e) from None
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        yield load_audio(path, sample_rate)
        return
    with f:
        rate, expected = f.samplerate, f.frames
        stream = (
            soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
            if rate != sample_rate
            else None
        )
        block = max(1, int(block_s * rate))
        read = 0
        while True:
            try:
                data = f.read(block, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as e:
                raise AudioError(path, f"unreadable audio ({e})") from None
            read += len(data)
            last = len(data) < block or (expected > 0 and read >= expected)
            if data.size and not np.isfinite(data).all():
                raise AudioError(path, "audio contains NaN or infinite samples")
            mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
            mono = np.ascontiguousarray(mono, dtype=np.float32)
            if stream is not None:
                mono = stream.resample_chunk(mono, last=last)
            if mono.size:
                yield mono
            if last:
                break
    if read == 0:
        raise AudioError(path, "no audio samples")
    if expected > 0 and read < expected:
        raise AudioError(
            path, f"truncated audio: header promises {expected} frames, file holds {read}"
        )


def array_blocks(waveform: np.ndarray, sample_rate: int, block_s: float = 10.0):
    """An in-memory waveform as the same kind of block stream (views, no copies)."""
    step = max(1, int(block_s * sample_rate))
    for i in range(0, len(waveform), step):
        yield waveform[i : i + step]


# -- cutting ------------------------------------------------------------------------------------
def frame_energy_db(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean-square energy in dB of consecutive ``frame``-sample frames (the tail dropped)."""
    usable = len(samples) // frame * frame
    frames = samples[:usable].reshape(-1, frame).astype(np.float64)
    return 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-10)


def find_cut(samples: np.ndarray, lo: int, hi: int, sample_rate: int, options: ChunkOptions) -> int:
    """The cut position (an index into ``samples``) in ``[lo, hi)``: see the module text."""
    frame = max(1, sample_rate // 100)
    energy = frame_energy_db(samples[lo:hi], frame)
    if len(energy) == 0:
        return hi
    width = max(1, min(len(energy), int(round(options.min_silence_s * 100))))
    smooth = np.convolve(energy, np.ones(width) / width, mode="valid")
    quiet = np.flatnonzero(smooth <= smooth.min() + options.quiet_db)
    first = int(quiet[-1])  # window [first, first + width)
    best = first + int(np.argmin(energy[first : first + width]))
    return lo + best * frame + frame // 2


def iter_chunks(blocks, sample_rate: int, options: ChunkOptions = ChunkOptions(), align: int = 1):
    """Cut a stream of sample blocks into :class:`Chunk` objects, holding at most about
    ``max_chunk_s + 2 * overlap_s + block_s`` seconds of audio at a time.

    Every chunk starts at a multiple of ``align`` samples (the recognizer passes the
    samples per model window): the chunk's feature frames then fall on the same grid as
    the whole file's, and the model sees the same windows at a cut as without one."""
    align = max(1, int(align))
    max_len = int(options.max_chunk_s * sample_rate)
    min_len = int(options.min_chunk_s * sample_rate)
    overlap = int(options.overlap_s * sample_rate) // align * align
    pending = []  # blocks not yet joined
    buffer = np.zeros(0, np.float32)
    buffer_start = 0  # stream position of buffer[0]
    core_start = 0
    index = 0

    margin = min(overlap, int(0.1 * sample_rate))  # context kept at least, past a cut
    next_begin = 0  # stream position where the next chunk's audio starts

    def take_cut():
        nonlocal buffer, buffer_start, core_start, index, next_begin
        lo = core_start - buffer_start + min_len
        hi = core_start - buffer_start + max_len
        cut = find_cut(buffer, lo, hi, sample_rate, options)
        # on the window grid (buffer_start is on it, as every chunk start is)
        cut = (buffer_start + cut) // align * align - buffer_start
        # The context edges go in quiet spots too (between ``margin`` and ``overlap`` from
        # the cut): a word cut in half at a chunk's edge is decoded as garbage that can
        # merge with the next word and pull it out of the core it belongs to.
        end = cut + overlap
        if overlap > margin:
            end = find_cut(buffer, cut + margin, cut + overlap, sample_rate, options)
        begin = next_begin - buffer_start
        chunk = Chunk(
            buffer[begin:end].copy(),
            buffer_start + begin,
            core_start,
            buffer_start + cut,
            index,
        )
        index += 1
        core_start = buffer_start + cut
        following = cut - overlap
        if overlap > margin:
            following = find_cut(buffer, cut - overlap, cut - margin, sample_rate, options)
        next_begin = max(buffer_start, (buffer_start + following) // align * align)
        drop = next_begin - buffer_start
        buffer, buffer_start = buffer[drop:], buffer_start + drop
        return chunk

    for block in blocks:
        pending.append(np.asarray(block, np.float32))
        available = buffer_start + len(buffer) + sum(len(b) for b in pending)
        if available - core_start < max_len + overlap:
            continue
        buffer = np.concatenate([buffer, *pending])
        pending = []
        while buffer_start + len(buffer) - core_start >= max_len + overlap:
            yield take_cut()
    if pending:
        buffer = np.concatenate([buffer, *pending])
    total = buffer_start + len(buffer)
    while total - core_start > max_len:
        yield take_cut()
    begin = next_begin - buffer_start
    if total > core_start or index == 0:
        yield Chunk(buffer[begin:].copy(), buffer_start + begin, core_start, total, index)


# -- stitching ----------------------------------------------------------------------------------
def split_at_gaps(ids, frames, ends, space_id: int, edges, max_gap: int) -> tuple:
    """Labels with a space inserted wherever a word that spans one of the ``edges``
    (frames) has a pause of more than ``max_gap`` frames between two of its characters.

    A character model emits a word's letters in one burst (one frame apart on the digits
    model); a longer pause inside a "word" at a chunk edge is the tail of a word cut in half
    by the chunk's start (or end) run together with the next word ("nive" + "two"). Split,
    each part is owned by the chunk whose core holds it; joined, the merged word's span
    falls outside the core and the real word is lost. Returns (ids, frames, ends)."""
    if space_id < 0:
        return tuple(ids), tuple(frames), tuple(ends)
    out_ids, out_frames, out_ends = [], [], []
    word = []  # positions of the current word's labels

    def flush():
        if word:
            first, last = frames[word[0]], ends[word[-1]]
            crosses = any(first <= e <= last for e in edges)
            for k, pos in enumerate(word):
                if crosses and k and frames[pos] - ends[word[k - 1]] > max_gap:
                    out_ids.append(space_id)
                    out_frames.append(ends[word[k - 1]] + 1)
                    out_ends.append(frames[pos] - 1)
                out_ids.append(ids[pos])
                out_frames.append(frames[pos])
                out_ends.append(ends[pos])
            word.clear()

    for pos, label in enumerate(ids):
        if label == space_id:
            flush()
            out_ids.append(label)
            out_frames.append(frames[pos])
            out_ends.append(ends[pos])
        else:
            word.append(pos)
    flush()
    return tuple(out_ids), tuple(out_frames), tuple(out_ends)


def owned(words, chunk: Chunk, sample_rate: int) -> list:
    """The words (already in stream time, seconds) whose midpoint lies in the chunk's core."""
    lo, hi = chunk.core_start / sample_rate, chunk.core_end / sample_rate
    return [w for w in words if lo <= (w.start + w.end) / 2 < hi]


def group_segments(
    words, max_gap_s: float = 0.6, max_segment_s: float = 8.0, max_chars: int = 80
) -> list:
    """Split a word sequence into segments (subtitle cues) at pauses of ``max_gap_s`` or
    more, and before a segment would pass ``max_segment_s`` or ``max_chars``. Returns
    ``(start, end, text)`` tuples."""
    segments, current = [], []
    for word in words:
        if current:
            text_len = sum(len(w.word) + 1 for w in current) + len(word.word)
            if (
                word.start - current[-1].end >= max_gap_s
                or word.end - current[0].start > max_segment_s
                or text_len > max_chars
            ):
                segments.append(current)
                current = []
        current.append(word)
    if current:
        segments.append(current)
    return [(seg[0].start, seg[-1].end, " ".join(w.word for w in seg)) for seg in segments]
