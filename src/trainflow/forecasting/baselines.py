"""The forecasting baselines, on exactly the origins and horizon the model is scored on.

Each function returns forecasts of shape ``(len(origins), H)`` in the data's scale; row ``i``
forecasts weeks ``o .. o+H-1`` for ``o = origins[i]`` and uses history before ``o`` only.
``filled`` is the forward-filled series (inputs), ``values`` the raw one with NaN for missing
weeks (used where a baseline averages observed values).

Holt-Winters (additive trend and season, statsmodels ``ExponentialSmoothing``) is estimated
ONCE, on the filled history before the first origin (smoothing parameters and initial level,
trend and seasons, ``initialization_method="estimated"``). Its state is then carried to each
later origin without re-estimation: the model is re-filtered over the filled series with those
parameters fixed (``fit(optimized=False, ...)`` with ``initialization_method="known"``), and
the forecast from origin ``o`` is read from the states after week ``o-1``, which are the states
statsmodels would reach on ``filled[:o]`` alone (the recursion only looks back). One estimate
per distinct history is kept in memory, so the val and test spans at several horizons cost
two estimations in all.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

BASELINES = ("naive", "seasonal_naive", "seasonal_naive_drift", "holt_winters")


def _origins(origins: Sequence[int], m: int) -> np.ndarray:
    starts = np.asarray(origins, dtype=np.int64).reshape(-1)
    if starts.size and starts.min() < m:
        raise ValueError(f"every origin needs {m} weeks of history, the first is at {starts.min()}")
    return starts


def naive(filled: np.ndarray, origins: Sequence[int], horizon: int) -> np.ndarray:
    """The last filled value before each origin (week ``o-1``), repeated over the horizon."""
    series = np.asarray(filled, dtype=float)
    starts = _origins(origins, 1)
    return np.repeat(series[starts - 1].reshape(-1, 1), horizon, axis=1)


def _seasonal_positions(starts: np.ndarray, horizon: int, m: int) -> np.ndarray:
    """Index of last season's week for each target: ``t - m`` within a season, repeating the
    last observed season beyond it, so no target ever reads a week at or after its origin."""
    return starts.reshape(-1, 1) - m + (np.arange(horizon) % m)


def seasonal_naive(filled: np.ndarray, origins: Sequence[int], horizon: int, m: int = 52) -> np.ndarray:
    """The filled value ``m`` weeks before each target week."""
    series = np.asarray(filled, dtype=float)
    starts = _origins(origins, m)
    return series[_seasonal_positions(starts, horizon, m)]


def seasonal_naive_drift(
    values: np.ndarray, filled: np.ndarray, origins: Sequence[int], horizon: int, m: int = 52
) -> np.ndarray:
    """Seasonal naive plus the change of level over the last season: the mean of the observed
    values in weeks ``o-m .. o-1`` minus that in weeks ``o-2m .. o-m-1`` (NaN weeks skipped;
    no drift where either season has no observed week)."""
    series = np.asarray(values, dtype=float)
    starts = _origins(origins, 2 * m)
    drift = np.zeros(starts.size)
    for row, origin in enumerate(starts):
        recent, earlier = series[origin - m : origin], series[origin - 2 * m : origin - m]
        if (~np.isnan(recent)).any() and (~np.isnan(earlier)).any():
            drift[row] = np.nanmean(recent) - np.nanmean(earlier)
    return seasonal_naive(filled, starts, horizon, m) + drift.reshape(-1, 1)


@functools.lru_cache(maxsize=8)
def _holt_winters_params(history: bytes, m: int) -> tuple[float, float, float, float, float, tuple[float, ...]]:
    """Estimated (alpha, beta, gamma, initial level, initial trend, initial seasons) on ``history``."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    model = ExponentialSmoothing(
        np.frombuffer(history, dtype=float),
        trend="add",
        seasonal="add",
        seasonal_periods=m,
        initialization_method="estimated",
    )
    params = model.fit().params
    return (
        float(params["smoothing_level"]),
        float(params["smoothing_trend"]),
        float(params["smoothing_seasonal"]),
        float(params["initial_level"]),
        float(params["initial_trend"]),
        tuple(float(s) for s in params["initial_seasons"]),
    )


def holt_winters(filled: np.ndarray, origins: Sequence[int], horizon: int, m: int = 52) -> np.ndarray:
    """Additive Holt-Winters, estimated once before the first origin and re-filtered with fixed
    parameters to each later one (module docstring). Beyond one season the last season's
    components repeat (as statsmodels forecasts)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    series = np.asarray(filled, dtype=float)
    starts = _origins(origins, 2 * m)
    if starts.size == 0:
        return np.empty((0, horizon))
    first, last = int(starts.min()), int(starts.max())
    alpha, beta, gamma, level0, trend0, seasons0 = _holt_winters_params(
        np.ascontiguousarray(series[:first]).tobytes(), m
    )
    model = ExponentialSmoothing(
        series[:last],
        trend="add",
        seasonal="add",
        seasonal_periods=m,
        initialization_method="known",
        initial_level=level0,
        initial_trend=trend0,
        initial_seasonal=np.asarray(seasons0),
    )
    states = model.fit(optimized=False, smoothing_level=alpha, smoothing_trend=beta, smoothing_seasonal=gamma)
    level, trend, season = np.asarray(states.level), np.asarray(states.trend), np.asarray(states.season)
    steps = np.arange(1, horizon + 1)
    end = (starts - 1).reshape(-1, 1)  # the states after week o-1
    return level[end] + steps * trend[end] + season[end - m + 1 + (steps - 1) % m]


def all_baselines(
    values: np.ndarray, filled: np.ndarray, origins: Sequence[int], horizon: int, m: int = 52
) -> dict[str, np.ndarray]:
    """Every baseline's forecasts on the same origins, keyed by the names in :data:`BASELINES`."""
    return {
        "naive": naive(filled, origins, horizon),
        "seasonal_naive": seasonal_naive(filled, origins, horizon, m),
        "seasonal_naive_drift": seasonal_naive_drift(values, filled, origins, horizon, m),
        "holt_winters": holt_winters(filled, origins, horizon, m),
    }
