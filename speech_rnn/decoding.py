"""CTC decoding of the model's logits: greedy (best path), beam search, and a CTC prefix
beam search that scores whole words with an n-gram language model.

Every decoder returns, per utterance, a :class:`Hypothesis`: the label ids, the output
frame at which each one starts (``frames``) and the last frame of its run (``ends``), which
the transcriber turns into word timestamps.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

LN10 = math.log(10.0)


@dataclass(frozen=True)
class DecodingOptions:
    """How logits become text. ``beam_width`` 0 or 1 is greedy; with ``lm`` (an ARPA file)
    the prefix beam search adds ``alpha`` x LM log-probability (natural log) and ``beta``
    per word to each hypothesis' acoustic log-probability."""

    beam_width: int = 0
    lm: str | None = None
    alpha: float = 0.5
    beta: float = 1.0

    @property
    def method(self) -> str:
        if self.lm:
            return "beam+lm"
        return "beam" if self.beam_width > 1 else "greedy"


DEFAULT_LM_BEAM = 16


def decoding_options(
    beam_width: int | None = 0, lm=None, alpha: float | None = None, beta: float | None = None
) -> DecodingOptions:
    """The one place decoding options are checked: ``alpha``/``beta`` weight an ``lm``; an
    ``lm`` needs a beam (:data:`DEFAULT_LM_BEAM` when ``beam_width`` is 0 or None)."""
    beam_width = beam_width or 0
    if beam_width < 0:
        raise ConfigError(f"--beam must be >= 0 (beam_width), got {beam_width}")
    if lm is None:
        if alpha is not None or beta is not None:
            raise ConfigError("alpha and beta weight a language model: give lm too (add --lm)")
        return DecodingOptions(beam_width=beam_width)
    if beam_width == 1:
        raise ConfigError(
            "a language model (lm, --lm) needs beam search: --beam >= 2 (or leave it out)"
        )
    defaults = DecodingOptions()
    return DecodingOptions(
        beam_width or DEFAULT_LM_BEAM,
        str(lm),
        defaults.alpha if alpha is None else float(alpha),
        defaults.beta if beta is None else float(beta),
    )


@dataclass(frozen=True)
class Hypothesis:
    ids: tuple  # emitted label ids
    frames: tuple  # output frame at which each emitted id starts
    log_prob: float  # log probability of the path (greedy) or beam score
    ends: tuple = ()  # last output frame of each emitted id's run


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


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
    run_starts = np.flatnonzero(starts)
    run_ends = np.append(run_starts[1:], length) - 1
    keep = best[run_starts] != blank_id
    return Hypothesis(
        tuple(int(i) for i in best[run_starts[keep]]),
        tuple(int(f) for f in run_starts[keep]),
        score,
        tuple(int(f) for f in run_ends[keep]),
    )


def beam_decode(logits: np.ndarray, lengths, blank_id: int, beam_width: int) -> list:
    """Beam search over a batch [B, T, C] with ``tf.nn.ctc_beam_search_decoder`` (which wants
    the blank as the last class, as ours is). Emission frames are recovered by aligning
    the best beam's labels to the frames with the Viterbi path constrained to that label."""
    import tensorflow as tf

    if blank_id != logits.shape[-1] - 1:
        raise ValueError("beam search needs the blank as the last class")
    decoded, scores = tf.nn.ctc_beam_search_decoder(
        tf.transpose(tf.constant(logits, tf.float32), [1, 0, 2]),
        tf.constant(np.asarray(lengths, np.int32)),
        beam_width=beam_width,
        top_paths=1,
    )
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    out = []
    for b, length in enumerate(lengths):
        ids = tuple(int(i) for i in dense[b] if i >= 0) if dense.size else ()
        starts, ends = align_spans(logits[b, :length], ids, blank_id)
        out.append(Hypothesis(ids, starts, float(scores.numpy()[b, 0]), ends))
    return out


def align_spans(logits: np.ndarray, ids, blank_id: int) -> tuple:
    """Forced alignment: ``(starts, ends)``, the first and last frame each label of ``ids``
    occupies on the most likely CTC path that emits exactly ``ids``."""
    if not ids:
        return (), ()
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
        state -= int(back[t, state])
    starts, ends = [], []
    for k in range(len(ids)):
        hits = np.flatnonzero(path == 2 * k + 1)
        starts.append(int(hits[0]) if len(hits) else 0)
        ends.append(int(hits[-1]) if len(hits) else 0)
    return tuple(starts), tuple(ends)


# -- prefix beam search with a word language model --------------------------------------------
class _Prefixes:
    """Every prefix the search has made, as a tree: node 0 is the empty prefix; a node is
    (parent, label). Per node it keeps the word-level state the LM needs."""

    def __init__(self):
        self.parent = [-1]
        self.label = [-1]
        self.children = [{}]
        self.lm_score = [0.0]  # natural-log LM score of the completed words
        self.words = [0]  # completed words
        self.context = [()]  # the completed words (the LM keeps what it needs)
        self.partial = [""]  # characters of the word being spelled

    def child(self, node: int, label: int, char: str, lm, alpha: float) -> int:
        found = self.children[node].get(label)
        if found is not None:
            return found
        new = len(self.parent)
        self.parent.append(node)
        self.label.append(label)
        self.children.append({})
        lm_score, words, context, partial = (
            self.lm_score[node],
            self.words[node],
            self.context[node],
            self.partial[node],
        )
        if char == " ":
            if partial:
                if lm is not None:
                    lm_score += alpha * LN10 * lm.log10_prob(partial, context)
                    context = lm.trim_context(context + (partial,))
                words += 1
            partial = ""
        else:
            partial += char
        self.lm_score.append(lm_score)
        self.words.append(words)
        self.context.append(context)
        self.partial.append(partial)
        self.children[node][label] = new
        return new

    def labels(self, node: int) -> tuple:
        out = []
        while node > 0:
            out.append(self.label[node])
            node = self.parent[node]
        return tuple(reversed(out))


def _accumulate(beams: dict, node: int, pb: float, pnb: float) -> None:
    old = beams.get(node)
    if old is None:
        beams[node] = (pb, pnb)
    else:
        beams[node] = (_logaddexp(old[0], pb), _logaddexp(old[1], pnb))


def prefix_beam_search(
    logits: np.ndarray,
    blank_id: int,
    chars,
    beam_width: int = 16,
    lm=None,
    alpha: float = 0.5,
    beta: float = 1.0,
    prune_log_prob: float = math.log(1e-3),
    unk_penalty: float = -10.0,
) -> Hypothesis:
    """CTC prefix beam search over one utterance's logits [T, C].

    A prefix's score is its acoustic log-probability (blank- and label-ending paths summed)
    plus, when ``lm`` is given (see :class:`speech_rnn.lm.NgramLM`), ``alpha`` times the
    natural-log LM probability of its completed words (the first one after ``<s>``) and ``beta`` per completed word. A
    word is complete when a space follows it or the utterance ends (then ``</s>`` is scored
    too). A partial word that no vocabulary word starts with costs ``unk_penalty`` (natural
    log), so spellings that lead nowhere drop out early. Without ``lm`` this is plain CTC
    prefix beam search (``beta`` still rewards words). Labels with log-probability below
    ``prune_log_prob`` at a frame are not tried there. Start/end frames come from a forced
    alignment of the best prefix.
    """
    log_probs = log_softmax(np.asarray(logits, np.float64))
    steps = len(log_probs)
    chars = tuple(chars)
    tree = _Prefixes()
    if lm is not None:
        tree.context[0] = lm.start()  # the first word is scored after <s>
    neg = -math.inf
    beams = {0: (0.0, neg)}  # node -> (log p ending in blank, log p ending in a label)

    def rank(node, pb, pnb):
        score = _logaddexp(pb, pnb) + tree.lm_score[node] + beta * tree.words[node]
        if lm is not None and tree.partial[node] and not lm.is_prefix(tree.partial[node]):
            score += unk_penalty
        return score

    for t in range(steps):
        row = log_probs[t].tolist()
        candidates = [
            int(c) for c in np.flatnonzero(log_probs[t] >= prune_log_prob) if c != blank_id
        ]
        blank = row[blank_id]
        nxt = {}
        add = functools.partial(_accumulate, nxt)

        for node, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            add(node, total + blank, neg)
            last = tree.label[node]
            if last >= 0 and pnb > neg:
                add(node, neg, pnb + row[last])  # the last label's run goes on
            for c in candidates:
                new = tree.child(node, c, chars[c], lm, alpha)
                if c == last:
                    if pb > neg:
                        add(new, neg, pb + row[c])  # a repeat needs a blank between
                else:
                    add(new, neg, total + row[c])
        ranked = sorted(nxt.items(), key=lambda kv: rank(kv[0], *kv[1]), reverse=True)
        beams = dict(ranked[:beam_width])

    best_node, best_score = 0, neg
    for node, (pb, pnb) in beams.items():
        score = _logaddexp(pb, pnb) + tree.lm_score[node] + beta * tree.words[node]
        partial, context = tree.partial[node], tree.context[node]
        if partial:
            score += beta
            if lm is not None:
                score += alpha * LN10 * lm.log10_prob(partial, context)
                context = lm.trim_context(context + (partial,))
        if lm is not None:
            score += alpha * LN10 * lm.log10_prob("</s>", context)
        if score > best_score:
            best_node, best_score = node, score
    ids = tree.labels(best_node)
    starts, ends = align_spans(log_probs, ids, blank_id) if steps else ((), ())
    return Hypothesis(ids, starts, float(best_score), ends)
