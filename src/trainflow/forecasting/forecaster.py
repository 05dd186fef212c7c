"""A trained forecasting model ready for new history: validate, encode, forecast, decode.

A :class:`Forecaster` is what :func:`trainflow.load_model` returns for a forecasting project or
package. ``forecast(history)`` takes a series with the training data's date and value columns
(a frame, or a CSV/parquet file), validated like the training series (dates one step apart,
values in range; missing values allowed and forward-filled), and returns the next
``forecast`` steps after its last date: ``date, lead, forecast`` in the series' units. It
follows the evaluate stage step for step (the same encoder, the window of the last
``context`` steps, decoding with the train span's scale), so the history up to a test origin
gives the evaluate stage's forecast from that origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from trainflow.data.datasets import DatasetInfo
from trainflow.errors import DataError
from trainflow.forecasting.encoders import ForecastEncoder
from trainflow.forecasting.prepared import SERIES_SCHEMA_FORMAT as SCHEMA_FORMAT
from trainflow.forecasting.series import FREQUENCIES, Series, read_series, series_from_frame

SCHEMA_KEYS = ("date_column", "value_column", "frequency", "season_length", "context", "forecast")


def check_series_schema(record: Any, source: str) -> dict[str, Any]:
    """``input_schema.json`` of a forecaster, checked: what :class:`Forecaster` needs of it."""
    if not isinstance(record, dict) or record.get("format") != SCHEMA_FORMAT:
        raise DataError(f"{source}: input_schema.json is not a series schema ({SCHEMA_FORMAT})")
    missing = [key for key in SCHEMA_KEYS if key not in record]
    if missing:
        raise DataError(f"{source}: input_schema.json lacks {', '.join(missing)}")
    if record["frequency"] not in FREQUENCIES:
        raise DataError(f"{source}: input_schema.json: frequency {record['frequency']!r}; valid: D, W")
    for key in ("season_length", "context", "forecast"):
        value = record[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DataError(f"{source}: input_schema.json: {key} must be a positive integer, got {value!r}")
    return dict(record)


@dataclass
class Forecaster:
    """Forecasts the steps after a given history with a trained window model and its encoder."""

    model: nn.Module
    encoder: ForecastEncoder
    info: DatasetInfo
    inputs: Mapping[str, Any]  # the series schema (see trainflow.forecasting.package)
    batch_size: int
    experiment_id: str
    source: str
    threads: int = 0

    def __post_init__(self) -> None:
        self.model.eval()

    @property
    def task(self) -> str:
        return "forecasting"

    @property
    def context(self) -> int:
        return int(self.inputs["context"])

    @property
    def steps(self) -> int:
        """How many steps one forecast covers (the longest horizon)."""
        return int(self.inputs["forecast"])

    def history(self, data: pd.DataFrame | str | Path, source: str = "input") -> Series:
        """``data`` (a frame or a CSV/parquet file) validated as a series of the training kind."""
        schema = self.inputs
        options = {
            "date_column": str(schema["date_column"]),
            "value_column": str(schema["value_column"]),
            "date_format": schema.get("date_format"),
            "frequency": str(schema["frequency"]),
            "season_length": int(schema["season_length"]),
            "value_range": None,
        }
        if isinstance(data, pd.DataFrame):
            return series_from_frame(data, source, **options)
        return read_series(data, **options)

    def forecast(self, data: pd.DataFrame | str | Path, source: str = "input") -> pd.DataFrame:
        """The next :attr:`steps` steps after ``data``'s last date: ``date, lead, forecast``."""
        series = self.history(data, source)
        if len(series) < self.context:
            raise DataError(
                f"{source}: {len(series)} steps of history; the model needs at least {self.context} (its context)"
            )
        encoded = self.encoder.encode(series.values, series.dates)[-self.context :][None]
        with torch.no_grad():
            scaled = self.model(torch.from_numpy(np.ascontiguousarray(encoded, dtype=np.float32))).numpy()
        values = self.encoder.decode(scaled[0, : self.steps])
        step = pd.Timedelta(days=FREQUENCIES[series.frequency])
        last = pd.Timestamp(series.dates[-1])
        return pd.DataFrame(
            {
                "date": pd.DatetimeIndex([last + step * lead for lead in range(1, self.steps + 1)]),
                "lead": np.arange(1, self.steps + 1),
                "forecast": values,
            }
        )

    def __repr__(self) -> str:
        return (
            f"Forecaster({self.info.label_column!r}: {self.context} steps -> {self.steps} steps, "
            f"experiment {self.experiment_id}, from {self.source})"
        )


def forecast_command(
    forecaster: Forecaster, input_path: str, output: str | None, *, score: bool = False
) -> dict[str, Any]:
    """``trainflow predict HISTORY --model M [--output F]`` for a forecasting model: the forecast
    of the steps after the history's last date, as parquet (``.parquet``) or CSV (else; stdout
    without ``--output``), written atomically."""
    import io
    import sys

    from trainflow.io import atomic_write_bytes

    if score:
        raise DataError("--score: a forecasting model is scored by the evaluate stage's protocol, not on new history")
    frame = forecaster.forecast(Path(input_path), source=input_path)
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    if output is None:
        sys.stdout.write(frame.to_csv(index=False, lineterminator="\n"))
    elif output.endswith((".parquet", ".pq")):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, engine="pyarrow", index=False)
        atomic_write_bytes(Path(output), buffer.getvalue())
    else:
        atomic_write_bytes(Path(output), frame.to_csv(index=False, lineterminator="\n").encode())
    say = sys.stderr if output is None else sys.stdout
    print(
        f"predict: {forecaster.steps} steps from {frame['date'].iloc[0]} after the history in {input_path} -> "
        f"{output or 'stdout'} (experiment {forecaster.experiment_id}, {forecaster.source})",
        file=say,
        flush=True,
    )
    return {"rows": len(frame), "output": output or "-", "metrics": {}}
