"""Pictures for TensorBoard a person can read: arrays in, RGB ``uint8`` arrays out.

* :func:`clip_figure`: a clip's log-mel spectrogram (perceptual colour map, seconds on the
  x-axis, mel band on the y-axis) above its CTC posteriorgram (character posteriors over
  the model's output frames, blank as its own row, the greedy path marked), titled with
  the reference and the hypothesis.
* :func:`spectrogram_figure`: a log-mel spectrogram alone (a SpecAugment-ed example).
* :func:`posteriorgram_image`: the posteriorgram without axes, one pixel column per output
  frame, for exact inspection (and tests).

Pure functions of numpy arrays; matplotlib (Agg backend) is imported only when drawing,
so that importing :mod:`speech_rnn` does not load it.
"""

from __future__ import annotations

import numpy as np

COLORMAP = "magma"
ROW_PIXELS = 6  # height of one class row in :func:`posteriorgram_image`


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of [T, C] logits, in float64."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _colormap(name: str = COLORMAP):
    import matplotlib

    return matplotlib.colormaps[name]


def colorize(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """[H, W] values -> [H, W, 3] uint8 through the perceptual colour map."""
    values = np.asarray(values, np.float64)
    lo = float(np.min(values)) if lo is None else lo
    hi = float(np.max(values)) if hi is None else hi
    scaled = np.clip((values - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return (_colormap()(scaled)[..., :3] * 255).round().astype(np.uint8)


def posteriorgram_image(posteriors: np.ndarray, row_pixels: int = ROW_PIXELS) -> np.ndarray:
    """[T, C] posteriors -> [C * row_pixels, T, 3] uint8: one column per output frame, one
    band per class (class 0 at the top, the blank last), the greedy path (argmax per
    frame) outlined in cyan."""
    posteriors = np.asarray(posteriors)
    image = colorize(np.repeat(posteriors.T, row_pixels, axis=0), 0.0, 1.0)
    best = posteriors.argmax(axis=1)
    for t, c in enumerate(best):
        top, bottom = c * row_pixels, (c + 1) * row_pixels - 1
        image[top, t] = image[bottom, t] = (0, 255, 255)
    return image


def _figure_to_rgb(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def _new_figure(rows: int, width_in: float, heights):
    # A bare Figure drawn by the Agg canvas: no pyplot, no global backend, no GUI, and
    # safe in a background thread.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, sum(heights)), dpi=100, layout="constrained")
    axes = fig.subplots(rows, 1, height_ratios=heights, squeeze=False)[:, 0]
    return fig, axes


def _draw_spectrogram(ax, log_mel: np.ndarray, frame_step_s: float, cmap: str) -> None:
    log_mel = np.asarray(log_mel, np.float64)
    lo, hi = np.percentile(log_mel, [2, 99.5])
    seconds = log_mel.shape[0] * frame_step_s
    im = ax.imshow(
        log_mel.T,
        origin="lower",
        aspect="auto",
        cmap=cmap,
        vmin=lo,
        vmax=hi,
        extent=(0.0, seconds, 0, log_mel.shape[1]),
        interpolation="nearest",
    )
    ax.set_ylabel("mel band")
    ax.set_xlabel("time (s)")
    ax.figure.colorbar(im, ax=ax, label="log power", pad=0.01)


def spectrogram_figure(
    log_mel: np.ndarray, frame_step_s: float, title: str = "", cmap: str = COLORMAP
) -> np.ndarray:
    """[frames, mel] log-mel -> RGB uint8 picture with axes in seconds and mel bands."""
    fig, (ax,) = _new_figure(1, 8.0, [2.6])
    _draw_spectrogram(ax, log_mel, frame_step_s, cmap)
    if title:
        ax.set_title(title, fontsize=9, loc="left")
    return _figure_to_rgb(fig)


def clip_figure(
    log_mel: np.ndarray,
    frame_step_s: float,
    posteriors: np.ndarray,
    output_step_s: float,
    symbols,
    reference: str = "",
    hypothesis: str = "",
    cmap: str = COLORMAP,
) -> np.ndarray:
    """Spectrogram above posteriorgram, on one time axis (seconds).

    ``log_mel``: [frames, mel]; ``posteriors``: [T, C] softmax outputs for the same clip,
    one row every ``output_step_s`` seconds; ``symbols``: C labels for the classes (the
    blank included, e.g. ``"_"``)."""
    posteriors = np.asarray(posteriors, np.float64)
    symbols = [("␣" if s == " " else s) for s in symbols]
    classes = posteriors.shape[1]
    fig, (top, bottom) = _new_figure(2, 8.0, [2.4, max(2.2, 0.12 * classes + 0.8)])
    _draw_spectrogram(top, log_mel, frame_step_s, cmap)
    top.set_xlabel("")
    top.set_title(f"ref: {reference}\nhyp: {hypothesis}", fontsize=9, loc="left")
    frames = posteriors.shape[0]
    seconds = frames * output_step_s
    im = bottom.imshow(
        posteriors.T,
        origin="upper",
        aspect="auto",
        cmap=cmap,
        vmin=0.0,
        vmax=1.0,
        extent=(0.0, seconds, classes - 0.5, -0.5),
        interpolation="nearest",
    )
    best = posteriors.argmax(axis=1)
    centres = (np.arange(frames) + 0.5) * output_step_s
    bottom.plot(centres, best, ".", color="cyan", markersize=3, label="greedy path")
    bottom.set_yticks(range(classes))
    bottom.set_yticklabels(symbols, fontsize=6)
    bottom.set_xlim(top.get_xlim())
    bottom.set_xlabel("time (s)")
    bottom.set_ylabel("class (blank last)")
    bottom.legend(loc="upper right", fontsize=7, framealpha=0.6)
    fig.colorbar(im, ax=bottom, label="posterior", pad=0.01)
    return _figure_to_rgb(fig)
