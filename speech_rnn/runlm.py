"""A run folder's own language model: ``lm.arpa`` counted from the training transcripts and
``lm.json`` with the decoding weights tuned on dev (``speech-rnn lm attach``, and the demo).

Only the given training text is counted, never dev or test; the sentence overlap of every
checked manifest with that text is measured and saved, so a test score that an LM inflated
by memorized test sentences shows. Once attached, ``transcribe`` and ``evaluate`` (and
``load_model``) decode with the LM unless told ``--no-lm`` / ``use_lm=False``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import Config
from .decoding import DEFAULT_LM_BEAM, DecodingOptions
from .errors import RunFolderError
from .fileio import atomic_write_json
from .lm import build_arpa_from_sentences, manifest_sentences, sentence_overlap, tune
from .log import logger
from .recognizer import load_model
from .runfolder import RunFolder

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
DEFAULT_BETAS = (0.0, 0.5, 1.0, 2.0, 3.0)


def attach_lm(
    run_dir,
    text_manifests,
    dev_manifest=None,
    check_manifests=(),
    order: int = 3,
    alphas=DEFAULT_ALPHAS,
    betas=DEFAULT_BETAS,
    beam_width: int = DEFAULT_LM_BEAM,
    which: str = "best",
) -> dict:
    """Count ``text_manifests``' transcripts into ``run_dir/lm.arpa``; tune alpha/beta on
    ``dev_manifest`` (else keep the decoder's defaults); measure the overlap of ``dev`` and
    ``check_manifests`` sentences with the LM text; write ``lm.json``; return its content."""
    run = RunFolder(run_dir)
    if not run.exists():
        raise RunFolderError(f"{run.root}: not a run folder (no config.json)")
    if isinstance(text_manifests, (str, Path)):
        text_manifests = [text_manifests]
    config = Config.load(run.config)
    sentences = manifest_sentences(text_manifests, config.text)
    overlap = {}
    for path in ([dev_manifest] if dev_manifest else []) + list(check_manifests):
        shared, total = sentence_overlap(sentences, manifest_sentences(path, config.text))
        overlap[str(path)] = {"sentences": total, "in_lm_text": shared}
        if shared:  # callers print the counts; a leak is also a warning
            logger.warning(f"{path}: {shared} of {total} sentences also in the LM's training text")
    building = run.root / f".lm.{os.getpid()}.arpa"
    try:
        report = build_arpa_from_sentences(sentences, building, order)
        defaults = DecodingOptions()
        settings = {
            "alpha": defaults.alpha,
            "beta": defaults.beta,
            "beam_width": beam_width,
            "tuned_on": None,
        }
        if dev_manifest:
            recognizer = load_model(run.root, which=which, use_lm=False)
            result = tune(
                recognizer, dev_manifest, building, alphas, betas, beam_width, search="coordinate"
            )
            settings.update(
                alpha=result.alpha,
                beta=result.beta,
                tuned_on=str(dev_manifest),
                dev_wer=result.wer,
                dev_cer=result.cer,
                dev_greedy_wer=result.greedy_wer,
                model=str(recognizer.model_path),
            )
        settings.update(
            order=order,
            text_from=[str(p) for p in text_manifests],
            sentences=report.sentences,
            words=report.words,
            ngrams=list(report.ngrams),
            overlap=overlap,
        )
        run.lm_settings.unlink(missing_ok=True)  # never an old lm.json beside a new lm.arpa
        os.replace(building, run.lm)
    finally:
        building.unlink(missing_ok=True)
    atomic_write_json(run.lm_settings, settings)
    logger.info(
        f"{run.lm}: order {order}, {report.sentences} sentences; alpha {settings['alpha']:g} "
        f"beta {settings['beta']:g} beam {beam_width}"
    )
    return settings
