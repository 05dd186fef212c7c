"""Forecast metrics over the non-missing targets: MAE, RMSE, sMAPE (percent) and MASE.

MASE divides the MAE by the in-sample seasonal-naive MAE over the train span
(:func:`seasonal_naive_scale`), so a MASE below 1 beats last season's value on the data the
model learned from, and values are comparable across series and horizons.
"""

from __future__ import annotations

import numpy as np


def seasonal_naive_scale(values: np.ndarray, train_end: int, m: int = 52) -> float:
    """Mean ``|y[t] - y[t-m]|`` for ``t`` in ``[m, train_end)`` over pairs where both exist."""
    series = np.asarray(values, dtype=float)[:train_end]
    differences = np.abs(series[m:] - series[:-m]) if series.size > m else np.empty(0)
    differences = differences[~np.isnan(differences)]
    if differences.size == 0:
        raise ValueError(f"the train span ({train_end} steps) has no observed pair {m} steps apart")
    return float(differences.mean())


def forecast_metrics(actual: np.ndarray, forecast: np.ndarray, scale: float) -> dict[str, float]:
    """``{"mae", "rmse", "smape", "mase"}`` over the targets whose actual value is present.

    sMAPE is ``200 * |f - a| / (|a| + |f|)`` averaged, in percent, with 0/0 taken as 0. A
    forecast must exist wherever the actual does; with no target present every value is NaN.
    """
    target = np.asarray(actual, dtype=float)
    predicted = np.asarray(forecast, dtype=float)
    if target.shape != predicted.shape:
        raise ValueError(f"actual {target.shape} and forecast {predicted.shape} differ in shape")
    present = ~np.isnan(target)
    target, predicted = target[present], predicted[present]
    if np.isnan(predicted).any():
        raise ValueError("the forecast is NaN where the actual value is present")
    if target.size == 0:
        return {"mae": float("nan"), "rmse": float("nan"), "smape": float("nan"), "mase": float("nan")}
    error = np.abs(predicted - target)
    denominator = np.abs(target) + np.abs(predicted)
    ratio = np.divide(error, denominator, out=np.zeros_like(error), where=denominator > 0)
    mae = float(error.mean())
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "smape": float(200.0 * ratio.mean()),
        "mase": mae / scale,
    }
