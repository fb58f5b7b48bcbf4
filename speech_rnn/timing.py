"""Word timing and confidence from a decoded CTC path.

Each emitted character occupies a run of output frames (greedy: the argmax runs; beam
search: a forced alignment of the best beam). A character CTC model emits a word's letters
in a short burst that often lags the spoken word, so a word's span is moved onto the
speech region of the audio (energy over the noise floor) that the burst belongs to
(:func:`snap_to_speech`); with no speech region near it, the word keeps its emission
frames. A word's confidence is the lowest, over its characters, of the character's peak
posterior probability on its frames (:func:`word_confidence`).
"""

from __future__ import annotations

import numpy as np


def word_items(ids, starts, ends, space_id: int):
    """Split emitted labels at spaces: a list of words, each a list of
    ``(label, start_frame, end_frame)``."""
    words, current = [], []
    for label, start, end in zip(ids, starts, ends, strict=True):
        if label == space_id:
            if current:
                words.append(current)
            current = []
        else:
            current.append((label, start, end))
    if current:
        words.append(current)
    return words


def word_confidence(probs: np.ndarray, items) -> float:
    """The lowest, over the word's characters, of the character's highest posterior on the
    frames it occupies: a word is as sure as its least sure letter."""
    peaks = [float(probs[start : end + 1, label].max()) for label, start, end in items]
    return float(min(peaks)) if peaks else 0.0


# -- word boundaries from speech activity -------------------------------------------------------
PEAK_RANGE_DB = 40.0  # frames this far below the loudest (98th percentile) are never speech


def speech_activity(
    audio: np.ndarray,
    samples_per_frame: int,
    frames: int,
    rise_db: float = 6.0,
    gap_frames: int = 3,
) -> list:
    """Speech regions ``[(start, end)]`` (end exclusive) on a grid of ``frames`` frames of
    ``samples_per_frame`` samples: frames whose energy is ``rise_db`` over the noise floor
    (the 10th percentile frame) and within ``PEAK_RANGE_DB`` of the loudest, with dips of
    up to ``gap_frames`` inside a word (stop closures) bridged."""
    padded = np.zeros(frames * samples_per_frame, np.float64)
    usable = min(len(audio), len(padded))
    padded[:usable] = audio[:usable]
    db = 10.0 * np.log10(np.mean(padded.reshape(frames, -1) ** 2, axis=1) + 1e-10)
    real = db[: max(1, usable // samples_per_frame)]
    floor, peak = np.percentile(real, [10, 98])
    active = db > max(floor + rise_db, peak - PEAK_RANGE_DB)
    regions, start = [], None
    for k, on in enumerate(np.append(active, False)):
        if on and start is None:
            start = k
        elif not on and start is not None:
            if regions and start - regions[-1][1] <= gap_frames:
                start = regions.pop()[0]
            regions.append((start, k))
            start = None
    return regions


def snap_to_speech(spans, regions, max_lag: int = 10) -> list:
    """Word spans ``[(first, last)]`` (frames of the word's emitted characters, in order)
    moved onto the speech regions they were emitted from. A CTC model emits a word's
    characters in a burst that can lag the spoken word (often at its very end, or just
    after it): a word's region is the one holding its first emitted frame, else the latest
    one that ended at most ``max_lag`` frames before it, else the one holding its last.
    The word then spans its region; words sharing a region split it between their
    emissions. Words with no region keep their emission frames. Returns ``[(start, end)]``
    frames, end exclusive."""

    def holding(frame):
        for r, (lo, hi) in enumerate(regions):
            if lo <= frame < hi:
                return r
        return None

    anchors = []
    for first, last in spans:
        r = holding(first)
        if r is None:
            before = [r for r, (_, hi) in enumerate(regions) if first - max_lag <= hi <= first]
            r = before[-1] if before else holding(last)
        if r is not None and anchors and anchors[-1] is not None and r < anchors[-1]:
            r = anchors[-1]
        anchors.append(r)
    out = []
    for i, ((first, last), r) in enumerate(zip(spans, anchors, strict=True)):
        if r is None:
            start, end = first, last + 1
        else:
            start, end = regions[r]
            if i > 0 and anchors[i - 1] == r:
                start = (spans[i - 1][1] + 1 + first) // 2
            if i + 1 < len(spans) and anchors[i + 1] == r:
                end = (last + 1 + spans[i + 1][0]) // 2
        if out:
            start = max(start, out[-1][1])
        out.append((start, max(end, start + 1)))
    return out
