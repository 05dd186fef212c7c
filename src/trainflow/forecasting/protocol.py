"""The forecasting evaluation protocol: time split, forecast origins and their targets.

A weekly series is a 1-D float array ``values`` with NaN for missing weeks. Inputs are
forward-filled (:func:`forward_fill`); targets keep their NaN so that missing weeks are
excluded from every metric. The split is by time, never shuffled: test is the last ``test``
weeks, validation the ``val`` weeks before them, train the rest. For a horizon ``H`` the
origins of a span are ``o = start + k*H`` while ``o + H <= end``: each origin's forecast covers
weeks ``o .. o+H-1`` from history before ``o``, and the windows tile the span without overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def forward_fill(values: np.ndarray) -> np.ndarray:
    """``values`` with each NaN replaced by the last value before it (leading NaNs stay NaN)."""
    series = np.asarray(values, dtype=float)
    if series.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {series.shape}")
    positions = np.where(np.isnan(series), 0, np.arange(series.size))
    np.maximum.accumulate(positions, out=positions)
    filled = series[positions]
    return filled


def time_split(n: int, test: int = 208, val: int = 208) -> tuple[int, int]:
    """Index boundaries ``(train_end, val_end)``: train ``[0, train_end)``, val ``[train_end,
    val_end)``, test ``[val_end, n)``; test is the last ``test`` steps, val the ``val`` before."""
    if test < 1 or val < 1:
        raise ValueError(f"test and val must be at least 1 step, got test={test}, val={val}")
    if n <= test + val:
        raise ValueError(f"a series of {n} steps leaves no train span for test={test} and val={val}")
    return n - test - val, n - test


def origins(start: int, end: int, horizon: int) -> list[int]:
    """Forecast origins ``start + k*horizon`` for k = 0, 1, ... while ``origin + horizon <= end``."""
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    return list(range(start, end - horizon + 1, horizon))


def forecast_targets(values: np.ndarray, origins: Sequence[int], horizon: int) -> np.ndarray:
    """The actual values of weeks ``o .. o+horizon-1`` for each origin, shape ``(len(origins),
    horizon)``, NaN where a week is missing."""
    series = np.asarray(values, dtype=float)
    starts = np.asarray(origins, dtype=np.int64).reshape(-1, 1)
    if starts.size and (starts.min() < 0 or starts.max() + horizon > series.size):
        raise ValueError(f"origins must lie in [0, {series.size - horizon}] for horizon {horizon}")
    return series[starts + np.arange(horizon)].reshape(starts.shape[0], horizon)
