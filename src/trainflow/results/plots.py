"""PNG plots for result packages: confusion matrix, learning curves, regression diagnostics.

Figures are built with matplotlib's object API on the Agg canvas (no pyplot, no display, no
global figure state) under matplotlib's default style, so a user's matplotlibrc cannot change
them. :func:`save_png` writes without the "Software" text chunk and at a fixed dpi, so the same
data gives the same bytes on every run: two packages built from the same run are identical.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib.style
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from trainflow.io import atomic_write_bytes

DPI = 100
# Counts are written into the cells up to this many classes; beyond, the colours alone show it.
ANNOTATE_MAX_CLASSES = 30
# History columns plotted as learning curves.
CURVE_PREFIXES = ("train_", "val_", "test_", "train/", "val/", "test/")


def new_figure(width: float, height: float) -> Figure:
    """A figure drawn by the Agg canvas at the package's DPI (no pyplot state, so no global figures)."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    """The figure as PNG bytes: fixed dpi, no metadata that varies between runs or versions."""
    buffer = io.BytesIO()
    with matplotlib.style.context("default"):  # some settings are read when drawing, not when building
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def save_png(figure: Figure, path: Path) -> None:
    """Write ``figure`` to ``path`` as a deterministic PNG, atomically."""
    atomic_write_bytes(Path(path), png_bytes(figure))


def confusion_matrix_figure(matrix: Sequence[Sequence[int]], labels: Sequence[object], title: str) -> Figure:
    """Counts of (actual row, predicted column), darker for more, with the counts written in."""
    counts = np.asarray(matrix, dtype=np.int64)
    size = max(4.0, 0.45 * len(labels) + 2.0)
    with matplotlib.style.context("default"):
        figure = new_figure(size + 1.0, size)
        axes = figure.add_subplot()
        image = axes.imshow(counts, cmap="Blues", vmin=0, vmax=max(int(counts.max(initial=0)), 1))
        figure.colorbar(image, ax=axes, shrink=0.8, label="samples")
        ticks = np.arange(len(labels))
        axes.set_xticks(ticks, [str(label) for label in labels])
        axes.set_yticks(ticks, [str(label) for label in labels])
        axes.set_xlabel("predicted")
        axes.set_ylabel("actual")
        axes.set_title(title)
        if len(labels) <= ANNOTATE_MAX_CLASSES:
            threshold = counts.max(initial=0) / 2
            for (row, column), count in np.ndenumerate(counts):
                colour = "white" if count > threshold else "black"
                axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    return figure


def learning_curve_figure(history: pd.DataFrame) -> Figure:
    """Losses (left) and the other logged metrics (right) per epoch, from the train history.

    ``history`` has an ``epoch`` column and ``train_loss``, ``val_loss``, ``val_<metric>``
    (``train_<metric>`` too, when logged; ``val/<metric>`` is read the same way); other columns
    (learning rate, time) are ignored.
    """
    if "epoch" not in history.columns:
        raise ValueError(f"history has no 'epoch' column (columns: {', '.join(map(str, history.columns))})")
    curves = [c for c in history.columns if str(c).startswith(CURVE_PREFIXES)]
    losses = [c for c in curves if str(c).endswith("loss")]
    others = [c for c in curves if c not in losses]
    with matplotlib.style.context("default"):
        figure = new_figure(10.0, 4.0)
        loss_axes, metric_axes = figure.subplots(1, 2)
        for axes, columns, label in ((loss_axes, losses, "loss"), (metric_axes, others, "metric")):
            for column in columns:
                axes.plot(history["epoch"], history[column], marker="o", markersize=3, label=str(column))
            axes.set_xlabel("epoch")
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.set_ylabel(label)
            axes.grid(alpha=0.3)
            if columns:
                axes.legend(loc="best", fontsize=8)
        loss_axes.set_title("loss")
        metric_axes.set_title("metrics")
    return figure


def predicted_vs_actual_figure(target: Sequence[float], prediction: Sequence[float], title: str) -> Figure:
    """Each sample's prediction against its actual value; on the diagonal is a perfect fit."""
    actual, predicted = np.asarray(target, dtype=float), np.asarray(prediction, dtype=float)
    both = np.concatenate([actual, predicted])
    low, high = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    with matplotlib.style.context("default"):
        figure = new_figure(5.0, 5.0)
        axes = figure.add_subplot()
        axes.scatter(actual, predicted, s=8, alpha=0.6)
        axes.plot([low, high], [low, high], color="black", linewidth=1, label="predicted = actual")
        axes.set_xlabel("actual")
        axes.set_ylabel("predicted")
        axes.set_title(title)
        axes.legend(loc="best", fontsize=8)
        axes.grid(alpha=0.3)
    return figure


def residuals_figure(target: Sequence[float], prediction: Sequence[float], title: str) -> Figure:
    """Residuals (predicted - actual) against the prediction (left) and their histogram (right)."""
    actual, predicted = np.asarray(target, dtype=float), np.asarray(prediction, dtype=float)
    residual = predicted - actual
    with matplotlib.style.context("default"):
        figure = new_figure(10.0, 4.0)
        scatter_axes, histogram_axes = figure.subplots(1, 2)
        scatter_axes.scatter(predicted, residual, s=8, alpha=0.6)
        scatter_axes.axhline(0.0, color="black", linewidth=1)
        scatter_axes.set_xlabel("predicted")
        scatter_axes.set_ylabel("residual (predicted - actual)")
        scatter_axes.grid(alpha=0.3)
        histogram_axes.hist(residual, bins=30)
        histogram_axes.set_xlabel("residual (predicted - actual)")
        histogram_axes.set_ylabel("samples")
        histogram_axes.grid(alpha=0.3)
        figure.suptitle(title)
    return figure
