"""The reversible forecasting encoder: target scaling and time features, fitted on train only.

After tsdm's recipe ``x = encoder.encode(x); yhat = model(x); yhat = encoder.decode(yhat)``:
:meth:`ForecastEncoder.encode` turns a series into model inputs, one row per step: the
forward-filled target standardized with the train span's mean and standard deviation, a
missing-value indicator, the season position as sin/cos (of the date's fraction of a year,
so 52.18 weeks a year do not drift), and the time as a float (years, standardized over train).
:meth:`ForecastEncoder.decode` maps scaled forecasts back to the series' units. The fitted
state is a small JSON document (never pickle).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from trainflow.forecasting.protocol import forward_fill

FEATURES = ("value", "missing", "season_sin", "season_cos", "time")
DAYS_PER_YEAR = 365.25


def years(dates: np.ndarray) -> np.ndarray:
    """Dates as float years since 1970-01-01."""
    days = (np.asarray(dates, dtype="datetime64[ns]") - np.datetime64("1970-01-01", "ns")) / np.timedelta64(1, "D")
    return days / DAYS_PER_YEAR


@dataclass(frozen=True)
class ForecastEncoder:
    """Fitted scaling of the target (``mean``, ``std``) and of the time feature (``time_mean``, ``time_std``)."""

    mean: float
    std: float
    time_mean: float
    time_std: float

    @classmethod
    def fit(cls, values: np.ndarray, dates: np.ndarray, train_end: int) -> ForecastEncoder:
        """Fit on steps ``[0, train_end)`` only (the observed values among them)."""
        train = np.asarray(values, dtype=float)[:train_end]
        observed = train[~np.isnan(train)]
        if observed.size < 2:
            raise ValueError(f"the train span has {observed.size} observed values; at least 2 are needed")
        time = years(dates[:train_end])
        return cls(float(observed.mean()), float(observed.std()) or 1.0, float(time.mean()), float(time.std()) or 1.0)

    def scale(self, values: np.ndarray) -> np.ndarray:
        """Standardized target values (NaN stays NaN)."""
        return (np.asarray(values, dtype=float) - self.mean) / self.std

    def decode(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled values back in the series' units: the inverse of :meth:`scale`."""
        return np.asarray(scaled, dtype=float) * self.std + self.mean

    def encode(self, values: np.ndarray, dates: np.ndarray) -> np.ndarray:
        """Model inputs ``[T, len(FEATURES)]`` (float32): scaled forward-filled value, missing
        indicator, season sin/cos and scaled time. Leading missing values are filled with the
        train mean (scaled 0)."""
        values = np.asarray(values, dtype=float)
        filled = np.nan_to_num(self.scale(forward_fill(values)), nan=0.0)
        phase = 2 * np.pi * (years(dates) % 1.0)
        time = (years(dates) - self.time_mean) / self.time_std
        columns = (filled, np.isnan(values).astype(float), np.sin(phase), np.cos(phase), time)
        return np.stack(columns, axis=1).astype(np.float32)

    def decode_inputs(self, encoded: np.ndarray) -> np.ndarray:
        """The forward-filled series back from :meth:`encode`'s value column."""
        return self.decode(np.asarray(encoded)[:, FEATURES.index("value")])

    def to_json(self) -> str:
        return json.dumps({"kind": "forecast_standard", **asdict(self)}, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ForecastEncoder:
        state = json.loads(text)
        if state.pop("kind", None) != "forecast_standard":
            raise ValueError("not a forecast_standard encoder document")
        return cls(**{key: float(value) for key, value in state.items()})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ForecastEncoder:
        return cls.from_json(Path(path).read_text())
