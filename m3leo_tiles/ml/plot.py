"""Figures: one sample (TorchGeo's `plot(sample)`), and predictions next to labels.

WorldCover colours are the product's legend (ESA WorldCover v200 product user manual).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .spec import ESAWC_CODES, IGNORE_INDEX, DataSpec  # noqa: E402

#: a torch tensor (torch is not imported here) or anything np.asarray takes
ArrayOrTensor = Any

ESAWC_COLOURS = ("#006400", "#ffbb22", "#ffff4c", "#f096ff", "#fa0000", "#b4b4b4", "#f0f0f0",
                 "#0064c8", "#0096a0", "#00cf75", "#fae6a0")


def class_cmap(codes: Sequence[int]) -> ListedColormap:
    if tuple(codes) == ESAWC_CODES:
        return ListedColormap(ESAWC_COLOURS)
    tab20 = plt.get_cmap("tab20")
    assert isinstance(tab20, ListedColormap)  # a qualitative map: a list of 20 colours
    return ListedColormap(np.asarray(tab20.colors)[:len(codes)])


def _np(x: ArrayOrTensor) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def label_image(mask: np.ndarray) -> np.ma.MaskedArray:
    return np.ma.masked_equal(mask.astype(np.int64), IGNORE_INDEX)


def show_label(ax: Axes, y: np.ndarray, spec: DataSpec, title: str) -> None:
    t = spec.target
    if t is not None and t.task == "segmentation":
        k = len(t.class_codes)
        ax.imshow(label_image(y), cmap=class_cmap(t.class_codes), vmin=-0.5, vmax=k - 0.5,
                  interpolation="nearest")
    else:
        ax.imshow(y, cmap="viridis", interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def show_channel(ax: Axes, x: np.ndarray, title: str) -> None:
    finite = x[np.isfinite(x)]
    lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
    ax.imshow(np.ma.masked_invalid(x), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def plot_sample(sample: dict, channels: Sequence[str], spec: DataSpec, prediction: ArrayOrTensor | None = None,
                suptitle: str | None = None) -> Figure:
    """Every input channel (first 8), the label and an optional prediction, one row."""
    image = _np(sample["image"])
    if image.ndim == 4:
        image = image.reshape(-1, *image.shape[-2:])
    shown = list(range(min(len(channels), 8)))
    label = sample.get("mask", sample.get("target"))
    n = len(shown) + (label is not None) + (prediction is not None)
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.5), squeeze=False)
    for ax, c in zip(axes[0][:len(shown)], shown, strict=True):
        show_channel(ax, image[c], channels[c])
    j = len(shown)
    if label is not None:
        show_label(axes[0][j], _np(label), spec, "label")
        j += 1
    if prediction is not None:
        show_label(axes[0][j], _np(prediction), spec, "prediction")
    fig.suptitle(suptitle or f"{sample.get('tile', '')} ({sample.get('region', '')})", fontsize=9)
    fig.tight_layout()
    return fig


def predictions_figure(rows: Sequence[dict], runs: Sequence[str], spec: DataSpec) -> Figure:
    """rows: {'title', 'input', 'label', 'pred': {run: array}} -> input | label | each run."""
    ncol = 2 + len(runs)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.3 * ncol, 2.4 * len(rows)),
                             squeeze=False)
    for r, row in enumerate(rows):
        show_channel(axes[r][0], row["input"], f"{row['title']}\n{row['input_name']}")
        show_label(axes[r][1], row["label"], spec, "label")
        for c, run in enumerate(runs):
            if run in row["pred"]:
                show_label(axes[r][2 + c], row["pred"][run], spec, run)
            else:
                axes[r][2 + c].axis("off")
    fig.tight_layout()
    return fig
