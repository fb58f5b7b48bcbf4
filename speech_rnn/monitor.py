"""What a person watching a run sees in TensorBoard beyond the scalars.

* :class:`ClipPictures`: for the same few dev clips at every evaluation, the log-mel
  spectrogram above the CTC posteriorgram (greedy path marked, reference and hypothesis as
  the title), plus the bare posteriorgram (one pixel column per output frame); once per
  epoch one SpecAugment-ed training example. The model runs on the training thread (a few
  short clips); the drawing and the summary writing run in one background thread, and the
  time each evaluation's drawing took is kept (``render_seconds``) and logged at debug.
* :func:`write_hparams` / :func:`write_hparam_metrics`: the run's settings and its results
  for TensorBoard's HParams dashboard (``tensorboard --logdir runs`` compares runs).
* :func:`run_summary`: the closing text summary (command, data, stop reason, best model).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .audio import load_audio
from .errors import AudioError
from .features import spec_augment
from .log import logger
from .pictures import clip_figure, posteriorgram_image, softmax, spectrogram_figure

BLANK_SYMBOL = "_"

# Metrics on the HParams dashboard: (group (sub-folder of tensorboard/), tag, title).
HPARAM_METRICS = (
    ("", "best_dev_wer", "best dev WER"),
    ("", "best_dev_cer", "best dev CER"),
    ("", "steps", "optimizer steps"),
    ("", "audio_seconds_per_second", "audio-seconds per second"),
    ("dev", "wer", "dev WER (latest)"),
    ("dev", "cer", "dev CER (latest)"),
)


def greedy_text(posteriors: np.ndarray, vocab) -> str:
    """Best path: argmax per frame, repeats merged, blanks dropped."""
    best = np.asarray(posteriors).argmax(axis=1)
    ids = [
        int(c) for i, c in enumerate(best) if c != vocab.blank_id and (i == 0 or c != best[i - 1])
    ]
    return vocab.decode(ids)


class ClipPictures:
    """Spectrogram + posteriorgram pictures of fixed clips, drawn off the training thread."""

    def __init__(self, dev_writer, train_writer, config, extractor, vocab, forward):
        self.dev_writer, self.train_writer = dev_writer, train_writer
        self.config, self.extractor, self.vocab, self.forward = config, extractor, vocab, forward
        self.frame_step_s = config.features.frame_step_ms / 1000.0
        self.output_step_s = self.frame_step_s * config.features.stride
        self.symbols = list(vocab.chars) + [BLANK_SYMBOL]
        self.render_seconds: list = []  # drawing, per evaluation (background thread)
        self.forward_seconds: list = []  # model pass, per evaluation (training thread)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="speech_rnn_pictures")
        self._pending: list = []
        self._clips: dict = {}

    # -- inputs (training thread) -------------------------------------------------------
    def _clip(self, example):
        """(log-mel [frames, mel], windows [T, D]) of an example, computed once."""
        import tensorflow as tf

        key = example.utterance.audio_filepath
        if key not in self._clips:
            try:
                waveform = load_audio(key, self.config.audio.sample_rate)
            except AudioError:  # broke after the pre-flight check: nothing to show
                self._clips[key] = None
                return None
            log_mel = self.extractor.log_mel(tf.constant(waveform))
            windows = self.extractor.windows_from_log_mel(log_mel)
            self._clips[key] = (log_mel.numpy(), windows.numpy())
        return self._clips[key]

    def evaluation(self, step: int, examples) -> None:
        """Posteriorgrams of ``examples`` with the current weights, written at ``step``. The
        model pass runs here, on the training thread; its time is kept in
        ``forward_seconds``."""
        started = time.perf_counter()
        items = []
        for i, example in enumerate(examples):
            clip = self._clip(example)
            if clip is None:
                continue
            log_mel, windows = clip
            frames = len(windows)
            logits = np.asarray(self.forward(windows[np.newaxis], np.array([frames], np.int32)))
            posteriors = softmax(logits[0, :frames])
            items.append((i, example.text, log_mel, posteriors))
        self.forward_seconds.append(time.perf_counter() - started)
        self._submit(self._draw_clips, step, items)

    def specaugment(self, step: int, epoch: int, example, index: int) -> None:
        """One training example with this epoch's SpecAugment masks (as the pipeline draws
        them for it), written at ``step``."""
        import tensorflow as tf

        clip = self._clip(example)
        if clip is None or not self.config.specaugment.enabled:
            return
        seed = tf.constant([self.config.train.seed + 7919 * epoch, index], tf.int64)
        masked = spec_augment(tf.constant(clip[0]), self.config.specaugment, seed).numpy()
        self._submit(self._draw_specaugment, step, epoch, example.text, masked)

    def spectrograms(self, examples) -> None:
        """The clips' log-mel spectrograms, once per run (step 0)."""
        items = []
        for i, example in enumerate(examples):
            clip = self._clip(example)
            if clip is not None:
                items.append((i, example.text, clip[0]))
        self._submit(self._draw_spectrograms, items)

    # -- drawing (background thread) -----------------------------------------------------
    def _submit(self, fn, *args) -> None:
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._executor.submit(self._guarded, fn, *args))

    @staticmethod
    def _guarded(fn, *args):
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - a picture must never stop training
            logger.warning(f"TensorBoard picture not written: {type(e).__name__}: {e}")

    def _draw_clips(self, step: int, items) -> None:
        import tensorflow as tf

        started = time.perf_counter()
        drawn = []
        for i, text, log_mel, posteriors in items:
            hypothesis = greedy_text(posteriors, self.vocab)
            figure = clip_figure(
                log_mel,
                self.frame_step_s,
                posteriors,
                self.output_step_s,
                self.symbols,
                reference=text,
                hypothesis=hypothesis or "(empty)",
            )
            drawn.append((i, text, hypothesis, figure, posteriorgram_image(posteriors)))
        seconds = time.perf_counter() - started
        self.render_seconds.append(seconds)
        logger.debug(
            f"step {step}: {len(drawn)} posteriorgram picture(s) drawn in {seconds:.3f} s "
            f"(background thread; model pass {self.forward_seconds[-1]:.3f} s on the training "
            "thread)"
        )
        with self.dev_writer.as_default(step=step):
            for i, text, hypothesis, figure, frames in drawn:
                description = f"ref: {text}  \nhyp: {hypothesis}"
                tf.summary.image(f"posteriorgram_{i}", figure[np.newaxis], description=description)
                tf.summary.image(
                    f"posteriorgram_frames_{i}",
                    frames[np.newaxis],
                    description=f"one column per output frame, blank last; {description}",
                )
        self.dev_writer.flush()

    def _draw_specaugment(self, step: int, epoch: int, text: str, masked) -> None:
        import tensorflow as tf

        figure = spectrogram_figure(
            masked, self.frame_step_s, f"epoch {epoch + 1}, SpecAugment-ed: {text}"
        )
        with self.train_writer.as_default(step=step):
            tf.summary.image("specaugment", figure[np.newaxis], description=text)
        self.train_writer.flush()

    def _draw_spectrograms(self, items) -> None:
        import tensorflow as tf

        drawn = [(i, text, spectrogram_figure(m, self.frame_step_s, text)) for i, text, m in items]
        with self.dev_writer.as_default(step=0):
            for i, text, figure in drawn:
                tf.summary.image(f"spectrogram_{i}", figure[np.newaxis], description=text)
        self.dev_writer.flush()

    def wait(self) -> None:
        """Until every submitted picture is written."""
        for future in self._pending:
            future.result()
        self._pending = []

    def close(self) -> None:
        self.wait()
        self._executor.shutdown(wait=True)


# -- HParams ---------------------------------------------------------------------------------
def _simple(value):
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def flat_hparams(config, data: dict) -> dict:
    """``section.key`` -> bool/int/float/str for every config value, plus ``data.*``, sorted
    by name (as the dashboard lists them)."""
    out = {
        f"{section}.{key}": _simple(value)
        for section, values in config.to_dict().items()
        if isinstance(values, dict)
        for key, value in values.items()
    }
    out.update({f"data.{key}": _simple(value) for key, value in data.items()})
    return dict(sorted(out.items()))


def write_hparams(writer, trial_id: str, hparams: dict) -> None:
    """The experiment's metric list and this run's settings (``tensorboard/`` itself)."""
    from tensorboard.plugins.hparams import api as hp

    metrics = [
        hp.Metric(tag, group=group or None, display_name=title)
        for group, tag, title in HPARAM_METRICS
    ]
    with writer.as_default(step=0):
        hp.hparams_config(hparams=[hp.HParam(name) for name in hparams], metrics=metrics)
        hp.hparams(hparams, trial_id=trial_id)
    writer.flush()


def write_hparam_metrics(writer, step: int, values: dict) -> None:
    """The run-level metrics (``best_dev_wer`` ...) as scalars the dashboard reads."""
    import tensorflow as tf

    with writer.as_default(step=step):
        for tag, value in values.items():
            if value is not None and np.isfinite(value):
                tf.summary.scalar(tag, float(value))
    writer.flush()


def run_summary(command: str, data: dict, metrics: dict, best: dict | None, run_root) -> str:
    """Markdown for the closing text summary."""
    best_wer = metrics.get("best_dev_wer")
    lines = [
        f"**command:** `{command}`",
        "",
        f"**run folder:** `{run_root}`",
        "",
        f"**data:** {data.get('train_hours', 0):.3f} h training "
        f"({data.get('train_utterances', 0)} utterances from "
        f"{data.get('train_manifests', '')}), {data.get('dev_hours', 0):.3f} h dev "
        f"({data.get('dev_utterances', 0)} utterances)",
        "",
        f"**stop reason:** {metrics.get('stop_reason', '')}",
        "",
        f"**steps:** {metrics.get('steps')}, epochs completed {metrics.get('epochs_completed')}",
        "",
        "**best dev WER:** "
        + ("n/a (no dev set)" if best_wer is None else f"{100 * best_wer:.2f}%"),
        "",
    ]
    if best:
        lines.append(
            f"**best.keras:** from step {best['step']} (epoch {best['epoch']}), dev WER "
            f"{100 * best['dev_wer']:.2f}%, CER {100 * best['dev_cer']:.2f}%"
        )
    else:
        lines.append("**best.keras:** the last weights (no evaluation chose it)")
    return "\n".join(lines)
