"""The forecasting encoder: fitted on train only, causal, reversible, stored as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trainflow.forecasting.encoders import FEATURES, ForecastEncoder

DATES = np.datetime64("2000-01-01", "ns") + np.arange(300) * np.timedelta64(7, "D")


def series(seed: int = 0) -> np.ndarray:
    values = 350 + 0.03 * np.arange(300) + 3 * np.sin(np.arange(300) * 2 * np.pi / 52.18)
    values = values + np.random.default_rng(seed).normal(0, 0.3, 300)
    values[[5, 6, 100]] = np.nan
    return values


def test_decode_inverts_scale_and_encode_value_column() -> None:
    values = series()
    encoder = ForecastEncoder.fit(values, DATES, 200)
    observed = ~np.isnan(values)
    np.testing.assert_allclose(encoder.decode(encoder.scale(values))[observed], values[observed], rtol=0, atol=1e-9)
    encoded = encoder.encode(values, DATES)
    assert encoded.shape == (300, len(FEATURES)) and encoded.dtype == np.float32
    filled = values.copy()
    filled[[5, 6]] = values[4]
    filled[100] = values[99]
    np.testing.assert_allclose(encoder.decode_inputs(encoded), filled, atol=1e-3)
    assert encoded[[5, 6, 100], FEATURES.index("missing")].tolist() == [1, 1, 1]


def test_the_fit_sees_the_train_span_only() -> None:
    values = series()
    changed = values.copy()
    changed[200:] += 1000.0  # val/test values must not move the encoder
    assert ForecastEncoder.fit(values, DATES, 200) == ForecastEncoder.fit(changed, DATES, 200)
    train = values[:200][~np.isnan(values[:200])]
    assert ForecastEncoder.fit(values, DATES, 200).mean == pytest.approx(train.mean())


def test_encoding_is_causal() -> None:
    """Row t depends on values up to t only, so a window before an origin holds no later value."""
    values = series()
    encoder = ForecastEncoder.fit(values, DATES, 200)
    changed = values.copy()
    changed[150:] = np.nan
    np.testing.assert_array_equal(encoder.encode(values, DATES)[:150], encoder.encode(changed, DATES)[:150])


def test_season_features_follow_the_calendar() -> None:
    encoder = ForecastEncoder.fit(series(), DATES, 200)
    encoded = encoder.encode(series(), DATES)
    sin, cos = encoded[:, FEATURES.index("season_sin")], encoded[:, FEATURES.index("season_cos")]
    np.testing.assert_allclose(sin**2 + cos**2, 1.0, atol=1e-5)
    # the same week of two years has (nearly) the same phase
    assert abs(float(sin[0] - sin[52])) < 0.05 and abs(float(cos[0] - cos[52])) < 0.05


def test_json_round_trip_and_refusal(tmp_path: Path) -> None:
    encoder = ForecastEncoder.fit(series(), DATES, 200)
    encoder.save(tmp_path / "encoder.json")
    assert json.loads((tmp_path / "encoder.json").read_text())["kind"] == "forecast_standard"
    assert ForecastEncoder.load(tmp_path / "encoder.json") == encoder
    with pytest.raises(ValueError, match="not a forecast_standard"):
        ForecastEncoder.from_json('{"kind": "standard", "mean": 1}')
