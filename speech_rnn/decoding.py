"""CTC decoding of the model's logits: greedy (best path) and beam search.

Both return, per utterance, the label ids and the output frame at which each one was
emitted (the first frame of its run), which the transcriber turns into timestamps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DecodingOptions:
    beam_width: int = 0           # 0 or 1: greedy; otherwise CTC prefix beam search

    @property
    def method(self) -> str:
        return "beam" if self.beam_width > 1 else "greedy"


@dataclass(frozen=True)
class Hypothesis:
    ids: tuple                    # emitted label ids
    frames: tuple                 # output frame of each emitted id
    log_prob: float               # log probability of the path (greedy) or beam score


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def greedy_decode(logits: np.ndarray, length: int, blank_id: int) -> Hypothesis:
    """Best path: argmax per frame, merge repeats, drop blanks. ``logits`` is [T, C]."""
    logits = np.asarray(logits[:length])
    if length == 0:
        return Hypothesis((), (), 0.0)
    best = logits.argmax(axis=-1)
    log_probs = log_softmax(logits)
    score = float(log_probs[np.arange(length), best].sum())
    starts = np.ones(length, dtype=bool)
    starts[1:] = best[1:] != best[:-1]
    keep = starts & (best != blank_id)
    frames = np.flatnonzero(keep)
    return Hypothesis(tuple(int(i) for i in best[frames]), tuple(int(f) for f in frames), score)


def beam_decode(logits: np.ndarray, lengths, blank_id: int, beam_width: int) -> list:
    """Beam search over a batch [B, T, C] with ``tf.nn.ctc_beam_search_decoder`` (which wants
    the blank as the last class, as ours is). Emission frames are recovered by aligning
    the best beam's labels to the frames with the Viterbi path constrained to that label."""
    import tensorflow as tf
    if blank_id != logits.shape[-1] - 1:
        raise ValueError("beam search needs the blank as the last class")
    decoded, scores = tf.nn.ctc_beam_search_decoder(
        tf.transpose(tf.constant(logits, tf.float32), [1, 0, 2]),
        tf.constant(np.asarray(lengths, np.int32)), beam_width=beam_width, top_paths=1)
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    out = []
    for b, length in enumerate(lengths):
        ids = tuple(int(i) for i in dense[b] if i >= 0) if dense.size else ()
        frames = align_frames(logits[b, :length], ids, blank_id)
        out.append(Hypothesis(ids, frames, float(scores.numpy()[b, 0])))
    return out


def align_frames(logits: np.ndarray, ids, blank_id: int) -> tuple:
    """Forced alignment (Viterbi over the CTC topology): the frame at which each label of
    ``ids`` starts on the most likely path that emits exactly ``ids``."""
    if not ids:
        return ()
    log_probs = log_softmax(np.asarray(logits, np.float64))
    steps = len(log_probs)
    ext = [blank_id]
    for i in ids:
        ext += [i, blank_id]
    states = len(ext)
    neg = -np.inf
    score = np.full(states, neg)
    score[0] = log_probs[0, ext[0]]
    if states > 1:
        score[1] = log_probs[0, ext[1]]
    back = np.zeros((steps, states), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    ext_arr = np.asarray(ext)
    can_skip = np.zeros(states, dtype=bool)
    can_skip[2:] = (ext_arr[2:] != blank_id) & (ext_arr[2:] != ext_arr[:-2])
    for t in range(1, steps):
        stay = score
        step1 = np.concatenate([[neg], score[:-1]])
        step2 = np.where(can_skip, np.concatenate([[neg, neg], score[:-2]]), neg)
        stacked = np.stack([stay, step1, step2])
        back[t] = stacked.argmax(axis=0)
        score = stacked.max(axis=0) + log_probs[t, ext_arr]
    end = states - 1 if states < 2 or score[states - 1] >= score[states - 2] else states - 2
    path = np.empty(steps, dtype=np.int64)
    state = end
    for t in range(steps - 1, -1, -1):
        path[t] = state
        state -= back[t, state]
    frames = []
    for k in range(len(ids)):
        hits = np.flatnonzero(path == 2 * k + 1)
        frames.append(int(hits[0]) if len(hits) else 0)
    return tuple(frames)
