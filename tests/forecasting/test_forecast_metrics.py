"""Forecast metrics against hand computations; missing targets change no metric."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainflow.forecasting.metrics import forecast_metrics, seasonal_naive_scale

NAN = float("nan")


def test_metrics_by_hand_over_present_targets() -> None:
    # present pairs (a, f): (1, 2), (3, 1), (0, 0); absolute errors 1, 2, 0
    metrics = forecast_metrics(np.array([1.0, NAN, 3.0, 0.0]), np.array([2.0, 100.0, 1.0, 0.0]), scale=2.0)
    assert metrics["mae"] == pytest.approx(1.0)
    assert metrics["rmse"] == pytest.approx(math.sqrt(5 / 3))
    assert metrics["smape"] == pytest.approx(200 * (1 / 3 + 2 / 4 + 0) / 3)  # 0/0 counts as 0
    assert metrics["mase"] == pytest.approx(0.5)


def test_a_missing_target_changes_no_metric() -> None:
    actual = np.array([[1.0, 2.0], [NAN, 4.0]])
    base = forecast_metrics(actual, np.array([[1.5, 2.0], [0.0, 3.0]]), scale=1.0)
    other = forecast_metrics(actual, np.array([[1.5, 2.0], [1e6, 3.0]]), scale=1.0)
    assert base == other
    reduced = forecast_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]), scale=1.0)
    assert base == pytest.approx(reduced)


def test_no_present_target_gives_nan_and_a_missing_forecast_is_an_error() -> None:
    assert all(math.isnan(v) for v in forecast_metrics(np.array([NAN]), np.array([1.0]), 1.0).values())
    with pytest.raises(ValueError, match="NaN"):
        forecast_metrics(np.array([1.0]), np.array([NAN]), 1.0)
    with pytest.raises(ValueError, match="shape"):
        forecast_metrics(np.array([1.0, 2.0]), np.array([1.0]), 1.0)


def test_seasonal_naive_scale_uses_train_pairs_where_both_exist() -> None:
    values = np.array([1.0, 2.0, NAN, 4.0, 3.0, 2.0, 5.0, NAN, 100.0, 100.0])
    # train = first 8; pairs t=4..7 with m=4: |3-1|=2, |2-2|=0, (5, NaN) and (NaN, 4) skipped
    assert seasonal_naive_scale(values, train_end=8, m=4) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        seasonal_naive_scale(values, train_end=4, m=4)
