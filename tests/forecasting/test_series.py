"""Reading series: the embedded co2 set validates; bad dates, gaps and implausible values are refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainflow.components.forecasting import CO2Config, TimeseriesConfig
from trainflow.errors import DataError
from trainflow.forecasting.series import read_co2, read_series, series_from_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_embedded_co2_series_is_weekly_with_its_missing_weeks_reported() -> None:
    series = read_co2(ROOT)
    assert len(series) == 2284 and series.missing == 59
    assert str(series.dates[0])[:10] == "1958-03-29" and str(series.dates[-1])[:10] == "2001-12-29"
    assert np.all(np.diff(series.dates) == np.timedelta64(7, "D"))
    assert np.nanmin(series.values) > 300 and np.nanmax(series.values) < 380
    assert series_from_config(CO2Config(name="co2"), ROOT).missing == 59


def write(path: Path, rows: list[str], header: str = "date,co2") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_skipped_week_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", ["20000101,370.0", "20000108,370.1", "20000122,370.3"])
    with pytest.raises(DataError, match=r"column 'date': 2000-01-22 follows 2000-01-08 by 14 day\(s\), not 7"):
        read_series(path)


def test_dates_that_do_not_parse_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", ["20000101,370.0", "2000-01-08,370.1"])
    with pytest.raises(DataError, match=r"s\.csv"):
        read_series(path)


def test_values_outside_the_plausible_ppm_range_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", ["20000101,370.0", "20000108,3701.0"])
    with pytest.raises(DataError, match=r"column 'co2' fails in_range.*3701"):
        read_series(path)


def test_a_users_daily_series_with_missing_values(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv", ["2020-01-01,1.5", "2020-01-02,", "2020-01-03,2.5"], header="day,load")
    config = TimeseriesConfig(name="timeseries", path="s.csv", date_column="day", value_column="load", frequency="D")
    series = series_from_config(config, tmp_path)
    assert series.missing == 1 and series.frequency == "D" and len(series) == 3
    with pytest.raises(DataError, match=r"no column 'value'"):
        read_series(path, date_column="day", value_column="value", date_format=None)


def test_timeseries_params_are_validated() -> None:
    with pytest.raises(ValueError, match="path must name"):
        TimeseriesConfig(name="timeseries")
    with pytest.raises(ValueError, match="frequency"):
        TimeseriesConfig(name="timeseries", path="s.csv", frequency="M")  # type: ignore[arg-type]
    assert CO2Config(name="co2", horizons=(4, 300)).protocol_problem() == (
        "dataset.horizons",
        "the longest horizon (300) must fit in test (208 steps)",
    )
    with pytest.raises(ValueError, match="each once"):
        CO2Config(name="co2", horizons=(4, 4))
