"""Word and character error rates with jiwer, and the per-utterance report."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    wer: float
    cer: float
    utterances: int


def score(references, hypotheses) -> Scores:
    """Corpus-level WER and CER (edits over reference length, as jiwer computes them)."""
    import jiwer

    references = list(references)
    hypotheses = list(hypotheses)
    if not references:
        return Scores(float("nan"), float("nan"), 0)
    # jiwer rejects empty references; an empty reference cannot pass pre-flight anyway.
    return Scores(
        float(jiwer.wer(references, hypotheses)),
        float(jiwer.cer(references, hypotheses)),
        len(references),
    )


def utterance_report(ids, references, hypotheses, top: int = 3) -> dict:
    """Per-utterance WER, and the best, median and worst utterances."""
    import jiwer

    rows = []
    # ``ids`` may be a prefix of the others (a few samples of a scored set).
    for utt_id, ref, hyp in zip(ids, references, hypotheses, strict=False):
        rows.append(
            {
                "id": utt_id,
                "reference": ref,
                "hypothesis": hyp,
                "wer": float(jiwer.wer(ref, hyp)),
                "cer": float(jiwer.cer(ref, hyp)),
            }
        )
    ranked = sorted(rows, key=lambda r: (r["wer"], r["cer"], r["id"]))
    mid = len(ranked) // 2
    return {
        "best": ranked[:top],
        "median": ranked[max(0, mid - top // 2) : mid - top // 2 + top],
        "worst": ranked[::-1][:top],
        "per_utterance": rows,
    }
