"""Decode a set of utterances with a model and score it (WER/CER with jiwer)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .decoding import beam_decode, greedy_decode
from .scoring import Scores, score, utterance_report


@dataclass(frozen=True)
class DecodedSet:
    ids: tuple
    references: tuple
    hypotheses: tuple
    scores: Scores
    loss: float = float("nan")    # mean CTC loss per utterance, when asked for


def make_forward(acoustic_model):
    """A traced inference call that accepts any batch and length without retracing."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, None, acoustic_model.input[0].shape[-1]],
                                                tf.float32),
                                  tf.TensorSpec([None], tf.int32)])
    def forward(features, lengths):
        return acoustic_model([features, lengths], training=False)
    return forward


def decode_dataset(forward, dataset, examples, vocab, beam_width: int = 0,
                   progress: bool = False, with_loss: bool = False) -> DecodedSet:
    """Run ``forward`` over a pipeline dataset (from :func:`pipeline.make_dataset` with
    ``training=False``) and decode every example; results come back in example order."""
    from tqdm import tqdm
    hyps = [None] * len(examples)
    loss_sum, loss_count = 0.0, 0
    for batch in tqdm(dataset, desc="decoding", unit="batch", disable=not progress, leave=False):
        logits_tensor = forward(batch["features"], batch["feature_lengths"])
        if with_loss:
            from .trainer import ctc_loss
            losses = ctc_loss(batch, logits_tensor, vocab.blank_id).numpy()
            loss_sum, loss_count = loss_sum + float(losses.sum()), loss_count + len(losses)
        logits = logits_tensor.numpy()
        lengths = batch["feature_lengths"].numpy()
        indices = batch["index"].numpy()
        if beam_width > 1:
            decoded = beam_decode(logits, lengths, vocab.blank_id, beam_width)
        else:
            decoded = [greedy_decode(logits[b], lengths[b], vocab.blank_id)
                       for b in range(len(lengths))]
        for b, index in enumerate(indices):
            hyps[index] = vocab.decode(decoded[b].ids)
    missing = [i for i, h in enumerate(hyps) if h is None]
    for i in missing:  # audio that failed to decode at run time counts as all-deleted
        hyps[i] = ""
    refs = [e.text for e in examples]
    ids = [e.utterance.key for e in examples]
    loss = loss_sum / loss_count if loss_count else float("nan")
    return DecodedSet(tuple(ids), tuple(refs), tuple(hyps), score(refs, hyps), loss)


def evaluation_report(decoded: DecodedSet, extra: dict | None = None) -> dict:
    report = {"wer": decoded.scores.wer, "cer": decoded.scores.cer,
              "utterances": decoded.scores.utterances}
    report.update(extra or {})
    report.update(utterance_report(decoded.ids, decoded.references, decoded.hypotheses))
    return report


def format_report(report: dict) -> str:
    lines = [f"WER {100 * report['wer']:.2f}%  CER {100 * report['cer']:.2f}%  "
             f"over {report['utterances']} utterances"]
    for group in ("best", "median", "worst"):
        lines.append(f"{group}:")
        for row in report[group]:
            lines.append(f"  [{100 * row['wer']:5.1f}% WER] {row['id']}")
            lines.append(f"      ref: {row['reference']}")
            lines.append(f"      hyp: {row['hypothesis']}")
    return "\n".join(lines)


def evaluate_run(run_dir, manifest, beam_width: int = 0, which: str = "best",
                 batch_size: int = 16, out=None, log=print) -> dict:
    """Evaluate a trained run on a manifest; write a JSON report; return it."""
    from .fileio import atomic_write_json
    from .manifest import read_manifest
    from .pipeline import make_dataset
    from .preflight import check_utterances
    from .transcribe import load_model

    model = load_model(run_dir, which=which)
    problems = []
    utterances = read_manifest(manifest, problems=problems)
    result = check_utterances(utterances, model.vocab, model.config, enforce_duration=False)
    problems.extend(result.problems)
    for p in problems[:5]:
        log(f"skipped: {p}")
    if len(problems) > 5:
        log(f"... {len(problems) - 5} more skipped")
    examples = result.examples
    if not examples:
        from .errors import ManifestError
        raise ManifestError(manifest, "no usable utterances to evaluate")
    dataset = make_dataset(examples, model.config, model.extractor, training=False,
                           batch_size=batch_size)
    decoded = decode_dataset(model.forward, dataset, examples, model.vocab, beam_width,
                             progress=True)
    report = evaluation_report(decoded, {
        "run": str(run_dir), "model": str(model.model_path), "manifest": str(manifest),
        "decoding": "beam" if beam_width > 1 else "greedy", "beam_width": beam_width,
        "skipped": len(problems)})
    out = Path(out) if out else Path(run_dir) / f"eval_{Path(manifest).stem}_" \
        f"{'beam' + str(beam_width) if beam_width > 1 else 'greedy'}.json"
    atomic_write_json(out, report)
    log(format_report(report))
    log(f"report: {out}")
    return report
