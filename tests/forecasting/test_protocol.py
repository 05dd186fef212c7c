"""The forecasting protocol: forward fill, the time split, origins and their targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainflow.forecasting.protocol import forecast_targets, forward_fill, origins, time_split

CO2 = Path(__file__).resolve().parents[2] / "data" / "raw" / "co2_weekly_maunaloa.csv"  # the registered copy
NAN = float("nan")


def co2_values() -> np.ndarray:
    return pd.read_csv(CO2)["co2"].to_numpy(dtype=float)


def test_forward_fill_carries_the_last_value_and_keeps_leading_gaps() -> None:
    filled = forward_fill(np.array([NAN, 1.0, NAN, NAN, 3.0, NAN]))
    np.testing.assert_array_equal(filled, [NAN, 1.0, 1.0, 1.0, 3.0, 3.0])


def test_forward_fill_leaves_its_input_alone() -> None:
    values = np.array([1.0, NAN, 2.0])
    forward_fill(values)
    assert np.isnan(values[1])


def test_time_split_puts_test_last_and_val_before_it() -> None:
    assert time_split(10, test=3, val=2) == (5, 7)
    assert time_split(2284) == (1868, 2076)


@pytest.mark.parametrize(("n", "test", "val"), [(416, 208, 208), (10, 0, 2), (10, 3, 0)])
def test_time_split_rejects_spans_that_leave_nothing(n: int, test: int, val: int) -> None:
    with pytest.raises(ValueError):
        time_split(n, test=test, val=val)


def test_origins_tile_the_span_while_the_window_fits() -> None:
    assert origins(10, 20, 4) == [10, 14]  # 18 + 4 > 20
    assert origins(10, 20, 5) == [10, 15]  # 15 + 5 == 20 fits
    assert origins(10, 13, 4) == []
    assert origins(2076, 2284, 52) == [2076, 2128, 2180, 2232]


def test_co2_split_and_origin_counts() -> None:
    values = co2_values()
    assert values.size == 2284 and int(np.isnan(values).sum()) == 59
    train_end, val_end = time_split(values.size)
    assert [len(origins(val_end, values.size, h)) for h in (4, 13, 52)] == [52, 16, 4]
    assert [len(origins(train_end, val_end, h)) for h in (4, 13, 52)] == [52, 16, 4]


def test_forecast_targets_are_the_next_weeks_with_gaps_kept() -> None:
    values = np.array([0.0, 1.0, 2.0, NAN, 4.0, 5.0, 6.0])
    targets = forecast_targets(values, [1, 4], 3)
    np.testing.assert_array_equal(targets, [[1.0, 2.0, NAN], [4.0, 5.0, 6.0]])
    assert forecast_targets(values, [], 3).shape == (0, 3)
    with pytest.raises(ValueError):
        forecast_targets(values, [5], 3)
