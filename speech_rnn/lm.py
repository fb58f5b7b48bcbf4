"""Word n-gram language models: build an ARPA file from text, load one, tune its weights.

Building (``speech-rnn lm build``) counts n-grams itself and smooths them with interpolated
modified Kneser-Ney (Chen & Goodman):

* The highest order uses raw counts; a lower-order n-gram uses its continuation count,
  the number of distinct words seen before it, except n-grams that start with ``<s>``,
  which nothing can precede, and keep their raw counts.
* Each order n has three discounts D1, D2, D3+ from its count-of-counts n1..n4:
  ``Y = n1 / (n1 + 2 n2)``, ``Dk = k - (k + 1) Y n(k+1) / nk``. When a small corpus makes
  them undefined or out of range, the fixed fallback (0.5, 1.0, 1.5) is used.
* ``p(w | h) = max(c(hw) - D(c(hw)), 0) / c(h.) + gamma(h) p(w | h')`` with
  ``gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / c(h.)``; the unigram level
  interpolates with the uniform distribution over the vocabulary (``</s>`` and ``<unk>``
  included, ``<s>`` never predicted).

Because the model is interpolated, the ARPA back-off weight of a context is exactly its
``gamma(h)``, and every listed probability is the full interpolated one; so the standard
ARPA back-off rule reproduces the model for unseen n-grams and every context's
distribution sums to one. Text is normalized like transcripts (lowercase, numbers spelled
out, punctuation dropped), one sentence per line.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from .decoding import greedy_decode, prefix_beam_search
from .errors import SpeechRnnError
from .fileio import atomic_write_text
from .log import logger
from .manifest import read_manifest
from .scoring import score
from .text import DEFAULT_TEXT, normalize_text

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
NO_PROB = -99.0  # log10 probability written for <s>


class LanguageModelError(SpeechRnnError):
    """An LM text or ARPA file cannot be used."""


# -- building ----------------------------------------------------------------------------------
def read_sentences(path, normalize: bool = True) -> list:
    """One sentence per non-empty line, as word lists (normalized like transcripts)."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise LanguageModelError(f"{path}: cannot read text ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise LanguageModelError(f"{path}: not UTF-8 text (byte {e.start})") from None
    sentences = []
    for line in text.splitlines():
        words = (normalize_text(line) if normalize else line).split()
        if words:
            sentences.append(words)
    if not sentences:
        raise LanguageModelError(f"{path}: no text to count")
    return sentences


def manifest_sentences(paths, text_config=None) -> list:
    """The transcripts of manifest(s) as word lists, normalized like training targets
    (``text_config``: the run's, by default the project's); unusable lines are skipped."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    sentences = []
    for path in paths:
        for utt in read_manifest(path, problems=[], check_files=False):
            try:
                words = normalize_text(utt.text, text_config or DEFAULT_TEXT).split()
            except SpeechRnnError:
                continue
            if words:
                sentences.append(words)
    if not sentences:
        raise LanguageModelError(f"{', '.join(map(str, paths))}: no transcripts to count")
    return sentences


def sentence_overlap(lm_sentences, other_sentences) -> tuple:
    """(how many of ``other_sentences`` occur verbatim in ``lm_sentences``, how many there
    are): a test set whose sentences are in the LM's text is not a fair test."""
    known = {tuple(s) for s in lm_sentences}
    return sum(tuple(s) in known for s in other_sentences), len(other_sentences)


def modified_kn_discounts(count_of_counts) -> tuple:
    """(D1, D2, D3+) from n1..n4, or the fallback when they are undefined or out of range."""
    n1, n2, n3, n4 = (count_of_counts.get(k, 0) for k in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        return FALLBACK_DISCOUNTS
    y = n1 / (n1 + 2 * n2)
    d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if all(0 < dk < k for dk, k in zip(d, (1, 2, 3), strict=True)):
        return d
    return FALLBACK_DISCOUNTS


def adjusted_counts(sentences, order: int) -> list:
    """Per order (index 0 = unigrams), a Counter of n-gram -> Kneser-Ney adjusted count."""
    raw = [Counter() for _ in range(order)]
    for words in sentences:
        padded = (BOS, *words, EOS)
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                raw[n - 1][padded[i : i + n]] += 1
    adjusted = [Counter() for _ in range(order)]
    adjusted[order - 1] = raw[order - 1]
    for n in range(order - 1, 0, -1):  # n-grams of length n, from (n+1)-grams
        for gram in raw[n]:  # each distinct left word counts once
            adjusted[n - 1][gram[1:]] += 1
        for gram, count in raw[n - 1].items():
            if gram[0] == BOS:
                adjusted[n - 1][gram] = count
    del adjusted[0][(BOS,)]
    return adjusted


def kneser_ney(sentences, order: int = 3, discounts=None) -> dict:
    """Interpolated modified Kneser-Ney: ``{ngram: (log10 prob, log10 backoff)}``.

    ``discounts`` fixes (D1, D2, D3+) for every order (with ``(D, D, D)``: interpolated
    Kneser-Ney with one discount); by default they are estimated per order."""
    if order < 1:
        raise LanguageModelError("the order must be at least 1")
    counts = adjusted_counts(sentences, order)
    vocab = sorted({g[0] for g in counts[0]} | {EOS, UNK})
    prob = {}
    gamma = {}
    for n in range(1, order + 1):
        table = counts[n - 1]
        d = (
            tuple(discounts)
            if discounts
            else modified_kn_discounts(Counter(c for c in table.values() if c <= 4))
        )
        totals, followers = defaultdict(int), defaultdict(lambda: [0, 0, 0])
        for gram, count in table.items():
            totals[gram[:-1]] += count
            followers[gram[:-1]][min(count, 3) - 1] += 1
        for context, total in totals.items():
            f = followers[context]
            gamma[context] = (d[0] * f[0] + d[1] * f[1] + d[2] * f[2]) / total
        grams = list(table) + ([(w,) for w in vocab if (w,) not in table] if n == 1 else [])
        for gram in grams:
            count = table.get(gram, 0)
            context = gram[:-1]
            discounted = max(count - (d[min(count, 3) - 1] if count else 0.0), 0.0)
            lower = 1.0 / len(vocab) if n == 1 else prob[gram[1:]]
            prob[gram] = discounted / totals[context] + gamma[context] * lower
    model = {}
    for gram, p in prob.items():
        bow = gamma.get(gram) if len(gram) < order else None
        model[gram] = (math.log10(p), math.log10(bow) if bow else 0.0)
    if order > 1:
        model[(BOS,)] = (NO_PROB, math.log10(gamma[(BOS,)]) if gamma.get((BOS,)) else 0.0)
    else:
        model[(BOS,)] = (NO_PROB, 0.0)
    return model


def write_arpa(model: dict, path) -> None:
    order = max(len(g) for g in model)
    by_order = [sorted(g for g in model if len(g) == n) for n in range(1, order + 1)]
    lines = ["\\data\\"] + [f"ngram {n + 1}={len(grams)}" for n, grams in enumerate(by_order)]
    for n, grams in enumerate(by_order, start=1):
        lines += ["", f"\\{n}-grams:"]
        for gram in grams:
            logp, bow = model[gram]
            line = f"{logp:.7g}\t{' '.join(gram)}"
            if n < order and bow != 0.0:
                line += f"\t{bow:.7g}"
            lines.append(line)
    lines += ["", "\\end\\", ""]
    atomic_write_text(path, "\n".join(lines))


@dataclass(frozen=True)
class BuildReport:
    path: str
    order: int
    sentences: int
    words: int  # running words in the text
    ngrams: tuple  # n-grams per order


def build_arpa(
    text_paths, out_path, order: int = 3, discounts=None, normalize: bool = True
) -> BuildReport:
    """Count the text file(s) (one sentence per line) and write an ARPA model."""
    if isinstance(text_paths, (str, Path)):
        text_paths = [text_paths]
    sentences = [s for path in text_paths for s in read_sentences(path, normalize)]
    return build_arpa_from_sentences(sentences, out_path, order, discounts)


def build_arpa_from_sentences(sentences, out_path, order: int = 3, discounts=None) -> BuildReport:
    """Count word lists (already normalized) and write an ARPA model."""
    model = kneser_ney(sentences, order, discounts)
    write_arpa(model, out_path)
    per_order = Counter(len(g) for g in model)
    return BuildReport(
        str(out_path),
        order,
        len(sentences),
        sum(map(len, sentences)),
        tuple(per_order[n] for n in range(1, order + 1)),
    )


# -- loading and scoring -----------------------------------------------------------------------
class NgramLM:
    """An ARPA back-off model, scored the standard way: the longest listed n-gram, plus the
    back-off weights of the longer contexts that were not listed. Words outside the
    vocabulary are scored as ``<unk>``."""

    def __init__(self, model: dict, path: str = "<memory>"):
        self.path = str(path)
        self.order = max(len(g) for g in model)
        self.probs = {g: lp for g, (lp, _) in model.items()}
        self.bows = {g: bow for g, (_, bow) in model.items() if bow}
        self.vocabulary = frozenset(g[0] for g in model if len(g) == 1)
        if UNK not in self.vocabulary:
            raise LanguageModelError(f"{path}: the model has no <unk> unigram")
        self._prefixes = {
            w[:i] for w in self.vocabulary - {BOS, EOS, UNK} for i in range(1, len(w) + 1)
        }
        self._cache = {}

    @classmethod
    def load(cls, path) -> NgramLM:
        return cls(read_arpa(path), path)

    def start(self) -> tuple:
        """The context of the first word of an utterance."""
        return (BOS,)

    def trim_context(self, context: tuple) -> tuple:
        return tuple(context[-(self.order - 1) :]) if self.order > 1 else ()

    def is_prefix(self, partial: str) -> bool:
        """Whether some vocabulary word starts with ``partial``."""
        return partial in self._prefixes

    def log10_prob(self, word: str, context=()) -> float:
        context = self.trim_context(tuple(context))
        key = (context, word)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        vocab = self.vocabulary
        word_ = word if word in vocab else UNK
        ctx = tuple(w if w in vocab else UNK for w in context)
        backoff = 0.0
        result = None
        for k in range(len(ctx), -1, -1):
            history = ctx[len(ctx) - k :]
            lp = self.probs.get(history + (word_,))
            if lp is not None:
                result = lp + backoff
                break
            backoff += self.bows.get(history, 0.0)
        if result is None:  # only when <unk> itself is missing; excluded in __init__
            result = NO_PROB
        self._cache[key] = result
        return result

    def sentence_log10_prob(self, words) -> float:
        context, total = self.start(), 0.0
        for word in list(words) + [EOS]:
            total += self.log10_prob(word, context)
            context = self.trim_context(context + (word,))
        return total


def read_arpa(path) -> dict:
    """``{ngram: (log10 prob, log10 backoff)}`` from an ARPA file."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise LanguageModelError(f"{path}: cannot read the language model ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise LanguageModelError(f"{path}: not UTF-8 text (byte {e.start})") from None
    model, expected, section = {}, {}, None
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "\\data\\":
            section = "data"
        elif line == "\\end\\":
            break
        elif line.startswith("\\") and line.endswith("-grams:"):
            try:
                section = int(line[1 : -len("-grams:")])
            except ValueError:
                raise LanguageModelError(f"{path}:{number}: bad section {line!r}") from None
        elif section == "data" and line.startswith("ngram "):
            n, _, count = line[len("ngram ") :].partition("=")
            expected[int(n)] = int(count)
        elif isinstance(section, int):
            parts = line.split()
            if len(parts) not in (section + 1, section + 2):
                raise LanguageModelError(f"{path}:{number}: expected {section} words")
            try:
                logp = float(parts[0])
                bow = float(parts[section + 1]) if len(parts) == section + 2 else 0.0
            except ValueError:
                raise LanguageModelError(f"{path}:{number}: bad number") from None
            model[tuple(parts[1 : section + 1])] = (logp, bow)
        else:
            raise LanguageModelError(f"{path}:{number}: not ARPA format")
    if not expected or not model:
        raise LanguageModelError(f"{path}: not an ARPA file (no \\data\\ section or n-grams)")
    found = Counter(len(g) for g in model)
    for n, count in expected.items():
        if found[n] != count:
            raise LanguageModelError(
                f"{path}: header promises {count} {n}-grams, file holds {found[n]}"
            )
    return model


# -- tuning ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TuneResult:
    alpha: float
    beta: float
    wer: float
    cer: float
    greedy_wer: float  # the same set decoded without the LM, for comparison
    beam_width: int
    grid: tuple  # (alpha, beta, wer, cer) for every point tried


def tune(
    recognizer,
    manifest,
    lm_path,
    alphas=(0.0, 0.25, 0.5, 0.75, 1.0, 1.5),
    betas=(0.0, 0.5, 1.0, 2.0, 3.0),
    beam_width: int = 16,
    *,
    search: str = "grid",
) -> TuneResult:
    """Search ``alpha`` and ``beta`` for ``lm_path`` on ``manifest``: the logits are
    computed once, then each pair tried decodes the whole set; lowest WER (then CER) wins.
    ``search="grid"`` tries every pair; ``"coordinate"`` the best alpha at the middle beta,
    then the best beta at that alpha, and so on until neither moves (about half the
    pairs of the default 6 x 5 grid: each pair is a beam search over the whole set)."""
    if search not in ("grid", "coordinate"):
        raise ValueError(f"search must be 'grid' or 'coordinate', got {search!r}")

    lm = NgramLM.load(lm_path)
    problems = []
    utterances = read_manifest(manifest, problems=problems)
    for p in problems[:5]:
        logger.warning(f"skipped: {p}")
    refs, all_logits = [], []
    for utt in utterances:
        try:
            ref = normalize_text(utt.text, recognizer.config.text)
            waveform = recognizer.load_waveform(utt.audio_filepath) if ref else None
        except SpeechRnnError as e:
            logger.warning(f"skipped: {e}")
            continue
        if waveform is not None:
            refs.append(ref)
            all_logits.append(recognizer.logits(waveform))
    if not refs:
        raise LanguageModelError(f"{manifest}: no usable utterances to tune on")
    vocab = recognizer.vocab
    greedy = [vocab.decode(greedy_decode(x, len(x), vocab.blank_id).ids) for x in all_logits]
    greedy_wer = score(refs, [" ".join(h.split()) for h in greedy]).wer
    logger.info(f"greedy: WER {100 * greedy_wer:.2f}% over {len(refs)} utterances")
    tried = {}

    def try_pair(alpha, beta):
        if (alpha, beta) not in tried:
            hyps = [
                " ".join(
                    vocab.decode(
                        prefix_beam_search(
                            x, vocab.blank_id, vocab.chars, beam_width, lm, alpha, beta
                        ).ids
                    ).split()
                )
                for x in all_logits
            ]
            s = score(refs, hyps)
            tried[(alpha, beta)] = (float(alpha), float(beta), s.wer, s.cer)
            logger.info(
                f"alpha {alpha:<5g} beta {beta:<5g} WER {100 * s.wer:6.2f}%  "
                f"CER {100 * s.cer:6.2f}%"
            )
        return tried[(alpha, beta)]

    if search == "grid":
        for alpha in alphas:
            for beta in betas:
                try_pair(alpha, beta)
    else:
        coordinate_search(try_pair, list(alphas), list(betas))
    grid = list(tried.values())
    best = min(grid, key=_tune_rank)
    return TuneResult(best[0], best[1], best[2], best[3], greedy_wer, beam_width, tuple(grid))


def _tune_rank(row):
    alpha, beta, wer, cer = row
    return (wer, cer, alpha, beta)


def coordinate_search(try_pair, alphas, betas):
    """Alternate the best alpha at the current beta and the best beta at that alpha,
    starting from the middle beta, until a round moves neither."""
    beta, alpha = betas[len(betas) // 2], None
    while True:
        best_alpha = min((try_pair(a, beta) for a in alphas), key=_tune_rank)[0]
        best_beta = min((try_pair(best_alpha, b) for b in betas), key=_tune_rank)[1]
        if (best_alpha, best_beta) == (alpha, beta):
            return
        alpha, beta = best_alpha, best_beta
