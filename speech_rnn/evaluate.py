"""Decode a set of utterances with a model and score it (WER/CER with jiwer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .decoding import beam_decode, greedy_decode
from .errors import ManifestError
from .fileio import atomic_write_json
from .log import logger
from .manifest import read_manifest
from .pipeline import make_dataset
from .preflight import check_utterances
from .recognizer import load_model
from .scoring import Scores, score, utterance_report


@dataclass(frozen=True)
class DecodedSet:
    ids: tuple
    references: tuple
    hypotheses: tuple
    scores: Scores
    loss: float = float("nan")  # mean CTC loss per utterance, when asked for
    skipped: tuple = ()  # ids of examples whose audio failed to decode at run time


def decode_dataset(
    forward,
    dataset,
    examples,
    vocab,
    beam_width: int = 0,
    progress: bool = False,
    loss_fn=None,
    decoder=None,
) -> DecodedSet:
    """Run ``forward`` over a pipeline dataset (from :func:`pipeline.make_dataset` with
    ``training=False``) and decode every example; results come back in example order.
    ``loss_fn`` ((batch, logits) -> per-utterance CTC losses, e.g.
    :func:`trainer.ctc_loss_graph`) adds the mean loss. ``decoder`` (logits [T, C] ->
    Hypothesis) replaces greedy/beam decoding, e.g. beam search with a language model."""
    from tqdm import tqdm

    hyps = [None] * len(examples)
    loss_sum, loss_count = 0.0, 0
    for batch in tqdm(dataset, desc="decoding", unit="batch", disable=not progress, leave=False):
        logits_tensor = forward(batch["features"], batch["feature_lengths"])
        if loss_fn is not None:
            losses = loss_fn(batch, logits_tensor).numpy()
            loss_sum, loss_count = loss_sum + float(losses.sum()), loss_count + len(losses)
        logits = logits_tensor.numpy()
        lengths = batch["feature_lengths"].numpy()
        indices = batch["index"].numpy()
        if decoder is not None:
            decoded = [decoder(logits[b, : lengths[b]]) for b in range(len(lengths))]
        elif beam_width > 1:
            decoded = beam_decode(logits, lengths, vocab.blank_id, beam_width)
        else:
            decoded = [
                greedy_decode(logits[b], lengths[b], vocab.blank_id) for b in range(len(lengths))
            ]
        for b, index in enumerate(indices):
            hyps[index] = vocab.decode(decoded[b].ids)
    # Audio that failed to decode at run time (the pipeline logged and dropped it) is
    # skipped, not scored as an empty hypothesis.
    kept = [i for i, h in enumerate(hyps) if h is not None]
    skipped = tuple(examples[i].utterance.key for i, h in enumerate(hyps) if h is None)
    refs = [examples[i].text for i in kept]
    ids = [examples[i].utterance.key for i in kept]
    hyps = [hyps[i] for i in kept]
    loss = loss_sum / loss_count if loss_count else float("nan")
    return DecodedSet(tuple(ids), tuple(refs), tuple(hyps), score(refs, hyps), loss, skipped)


def evaluation_report(decoded: DecodedSet, extra: dict | None = None) -> dict:
    report = {
        "wer": decoded.scores.wer,
        "cer": decoded.scores.cer,
        "utterances": decoded.scores.utterances,
    }
    report.update(extra or {})
    report.update(utterance_report(decoded.ids, decoded.references, decoded.hypotheses))
    return report


def format_report(report: dict) -> str:
    lines = [
        f"WER {100 * report['wer']:.2f}%  CER {100 * report['cer']:.2f}%  "
        f"over {report['utterances']} utterances"
        + (
            f"  ({report['decoding']}, model + decoding RTF {report['model_and_decoding_rtf']:.4f})"
            if "decoding" in report
            else ""
        )
    ]
    for group in ("best", "median", "worst"):
        lines.append(f"{group}:")
        for row in report[group]:
            lines.append(f"  [{100 * row['wer']:5.1f}% WER] {row['id']}")
            lines.append(f"      ref: {row['reference']}")
            lines.append(f"      hyp: {row['hypothesis']}")
    return "\n".join(lines)


def evaluate_run(
    run_dir,
    manifest,
    beam_width: int = 0,
    which: str = "best",
    batch_size: int = 16,
    out=None,
    lm=None,
    alpha=None,
    beta=None,
    use_lm: bool = True,
    progress: bool = True,
) -> dict:
    """Evaluate a trained run on a manifest (greedy, beam, or beam with the word LM ``lm``,
    by default the run's own LM if it carries one and ``use_lm``); write a JSON report with
    WER, CER and the decoding real-time factor; return it. ``progress``: a progress bar."""
    import time

    model = load_model(run_dir, which=which, use_lm=use_lm)
    problems = []
    utterances = read_manifest(manifest, problems=problems)
    result = check_utterances(utterances, model.vocab, model.config, enforce_duration=False)
    problems.extend(result.problems)
    for p in problems[:5]:
        logger.warning(f"skipped: {p}")
    if len(problems) > 5:
        logger.warning(f"... {len(problems) - 5} more skipped")
    examples = result.examples
    if not examples:
        raise ManifestError(manifest, "no usable utterances to evaluate")
    dataset = make_dataset(
        examples, model.config, model.extractor, training=False, batch_size=batch_size
    )
    options = model.decoding_options(beam_width, lm, alpha, beta)
    decoder = (lambda logits: model.decode(logits, options)) if options.lm else None
    list(dataset)  # decode the audio once, so the timing below is the model and decoding
    started = time.perf_counter()
    decoded = decode_dataset(
        model.forward,
        dataset,
        examples,
        model.vocab,
        options.beam_width,
        progress=progress,
        decoder=decoder,
    )
    seconds = time.perf_counter() - started
    if decoded.skipped:
        logger.warning(
            "skipped %d utterance(s) whose audio failed to decode: %s",
            len(decoded.skipped),
            ", ".join(decoded.skipped[:5]) + (" ..." if len(decoded.skipped) > 5 else ""),
        )
    if not decoded.ids:
        raise ManifestError(manifest, "no utterance could be decoded")
    skipped_keys = set(decoded.skipped)
    audio = sum(e.utterance.duration for e in examples if e.utterance.key not in skipped_keys)
    method = "beam+lm" if options.lm else "beam" if options.beam_width > 1 else "greedy"
    report = evaluation_report(
        decoded,
        {
            "run": str(run_dir),
            "model": str(model.model_path),
            "manifest": str(manifest),
            "decoding": method,
            "beam_width": options.beam_width,
            "lm": options.lm,
            "alpha": options.alpha if options.lm else None,
            "beta": options.beta if options.lm else None,
            "model_and_decoding_rtf": seconds / audio,
            "skipped": len(problems) + len(decoded.skipped),
        },
    )
    tag = method + (str(options.beam_width) if options.beam_width > 1 else "")
    out = Path(out) if out else Path(run_dir) / f"eval_{Path(manifest).stem}_{tag}.json"
    atomic_write_json(out, report)
    logger.info("report: %s", out)
    return report
