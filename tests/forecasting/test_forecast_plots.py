"""Forecast plots are PNG files with the same bytes for the same data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainflow.forecasting.baselines import all_baselines
from trainflow.forecasting.plots import plot_forecasts, plot_mae_by_lead
from trainflow.forecasting.protocol import forecast_targets, forward_fill, origins

from .test_protocol import CO2

PNG = b"\x89PNG\r\n\x1a\n"


def co2_forecasts(horizon: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], list[int]]:
    frame = pd.read_csv(CO2)
    values = frame["co2"].to_numpy(dtype=float)
    dates = pd.to_datetime(frame["date"].astype(str), format="%Y%m%d").to_numpy()
    starts = origins(2076, values.size, horizon)
    forecasts = all_baselines(values, forward_fill(values), starts, horizon)
    return dates, values, {"naive": forecasts["naive"], "holt_winters": forecasts["holt_winters"]}, starts


def test_plot_forecasts_is_a_reproducible_png(tmp_path: Path) -> None:
    dates, values, forecasts, starts = co2_forecasts(13)
    plot_forecasts(tmp_path / "a.png", dates, values, forecasts, starts, 13)
    plot_forecasts(tmp_path / "b.png", dates, values, forecasts, starts, 13)
    first = (tmp_path / "a.png").read_bytes()
    assert first.startswith(PNG) and first == (tmp_path / "b.png").read_bytes()
    shifted = {name: f + 1.0 for name, f in forecasts.items()}
    plot_forecasts(tmp_path / "c.png", dates, values, shifted, starts, 13)
    assert (tmp_path / "c.png").read_bytes() != first


def test_plot_forecasts_rejects_a_forecast_of_the_wrong_shape(tmp_path: Path) -> None:
    dates, values, forecasts, starts = co2_forecasts(4)
    with pytest.raises(ValueError, match="naive"):
        plot_forecasts(tmp_path / "a.png", dates, values, {"naive": forecasts["naive"][:, :2]}, starts, 4)
    with pytest.raises(ValueError):
        plot_forecasts(tmp_path / "a.png", dates, values, forecasts, [], 4)


def test_plot_mae_by_lead_is_a_reproducible_png(tmp_path: Path) -> None:
    _, values, forecasts, starts = co2_forecasts(52)
    actual = forecast_targets(values, starts, 52)  # has missing weeks: skipped
    errors = {name: f - actual for name, f in forecasts.items()}
    plot_mae_by_lead(tmp_path / "a.png", errors)
    plot_mae_by_lead(tmp_path / "b.png", errors)
    first = (tmp_path / "a.png").read_bytes()
    assert first.startswith(PNG) and first == (tmp_path / "b.png").read_bytes()
    plot_mae_by_lead(tmp_path / "c.png", {name: e * 2 for name, e in errors.items()})
    assert (tmp_path / "c.png").read_bytes() != first
