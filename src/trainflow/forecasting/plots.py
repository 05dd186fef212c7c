"""PNG plots of forecasts: the test span with the actual series and forecasts, MAE by lead time.

Built like every other package plot (:mod:`trainflow.results.plots`): matplotlib's object API
on the Agg canvas under the default style, written by :func:`~trainflow.results.plots.save_png`
without varying metadata, so the same forecasts give the same PNG bytes on every run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.style
import numpy as np

from trainflow.results.plots import new_figure, save_png


def plot_forecasts(
    path: Path,
    dates: np.ndarray,
    actual: np.ndarray,
    forecasts_by_name: Mapping[str, np.ndarray],
    origins: Sequence[int],
    horizon: int,
) -> None:
    """The span covered by ``origins`` (weeks ``origins[0] .. origins[-1]+horizon-1``): the actual
    series (``dates`` and ``actual`` over the whole series, NaN gaps shown as gaps) and each named
    forecast, shape ``(len(origins), horizon)``, drawn origin by origin with a marker at each
    origin. Pass the model and the best baseline; the names are the legend, in the given order."""
    starts = np.asarray(origins, dtype=np.int64)
    if starts.size == 0:
        raise ValueError("plot_forecasts needs at least one origin")
    when = np.asarray(dates)
    series = np.asarray(actual, dtype=float)
    span = slice(int(starts[0]), int(starts[-1]) + horizon)
    with matplotlib.style.context("default"):
        figure = new_figure(10.0, 4.5)
        axes = figure.add_subplot()
        axes.plot(when[span], series[span], color="black", linewidth=1.2, label="actual")
        for colour, (name, forecast) in enumerate(forecasts_by_name.items()):
            rows = np.asarray(forecast, dtype=float)
            if rows.shape != (starts.size, horizon):
                raise ValueError(f"forecast {name!r} has shape {rows.shape}, expected {(starts.size, horizon)}")
            for row, origin in enumerate(starts):
                weeks = when[origin : origin + horizon]
                axes.plot(weeks, rows[row], color=f"C{colour}", linewidth=1.0, label=name if row == 0 else None)
                axes.plot(weeks[:1], rows[row, :1], color=f"C{colour}", marker="o", markersize=2)
        axes.set_xlabel("week")
        axes.set_ylabel("value")
        axes.set_title(f"forecasts, horizon {horizon}, {starts.size} origins")
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize=8)
    save_png(figure, Path(path))


def plot_mae_by_lead(path: Path, errors_by_name: Mapping[str, np.ndarray]) -> None:
    """Mean absolute error at each lead time (1 .. H) per name. Each value is an array of
    errors (forecast - actual, or their absolute values), shape ``(origins, H)``, NaN where the
    target is missing (skipped); a 1-D array is taken as one row (already the MAE per lead)."""
    with matplotlib.style.context("default"):
        figure = new_figure(7.0, 4.0)
        axes = figure.add_subplot()
        for name, errors in errors_by_name.items():
            table = np.abs(np.atleast_2d(np.asarray(errors, dtype=float)))
            present = (~np.isnan(table)).sum(axis=0)
            total = np.nansum(table, axis=0)
            mae = np.divide(total, present, out=np.full(total.shape, np.nan), where=present > 0)
            axes.plot(np.arange(1, mae.size + 1), mae, marker="o", markersize=3, label=name)
        axes.set_xlabel("lead time (steps ahead)")
        axes.set_ylabel("MAE")
        axes.set_title("MAE by lead time")
        axes.grid(alpha=0.3)
        if errors_by_name:
            axes.legend(loc="best", fontsize=8)
    save_png(figure, Path(path))
