"""The prepare and fit_encoder stages of a forecasting run, and reading what they wrote.

``data/prepared/`` of a forecasting run holds the whole validated series, never shuffled:

- ``series.parquet``: ``date`` and the value column, one row per step, missing values empty;
- ``info.json``: the :class:`~trainflow.data.datasets.DatasetInfo` (task ``forecasting``; the
  feature columns are the encoded inputs of each step, the label column the value column);
- ``report.json``: the protocol's split (steps, missing values and first/last date of train,
  val and test), the frequency and season length, and the checks the series passed.

The split is by time (:func:`~trainflow.forecasting.protocol.time_split`): test is the last
``dataset.test`` steps, validation the ``dataset.val`` before them. ``data/encoders/encoder.json``
is the :class:`~trainflow.forecasting.encoders.ForecastEncoder` fitted on the train span only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow

from trainflow import registry
from trainflow.config import Config, to_dict
from trainflow.data.datasets import DatasetInfo
from trainflow.data.prepare import INFO_FILE, REPORT_FILE, RUN_PREPARE, read_info
from trainflow.encoders import ENCODER_FILE
from trainflow.errors import DataError
from trainflow.forecasting.encoders import FEATURES, ForecastEncoder
from trainflow.forecasting.protocol import time_split
from trainflow.forecasting.series import CO2_DATE_FORMAT, Series
from trainflow.io import atomic_write_json, atomic_write_text, replace_dir
from trainflow.paths import ProjectPaths

SERIES_FILE = "series.parquet"
SPANS = ("train", "val", "test")
RUN_FIT_ENCODER = "run the fit-encoder stage (`trainflow fit-encoder`)"
SERIES_SCHEMA_FORMAT = "trainflow.series/1"  # input_schema.json of a forecaster


@dataclass(frozen=True)
class PreparedSeries:
    """The prepared series with its protocol split: train ``[0, train_end)``, val
    ``[train_end, val_end)``, test ``[val_end, len)``."""

    series: Series
    info: DatasetInfo
    train_end: int
    val_end: int

    def spans(self) -> dict[str, tuple[int, int]]:
        """``{"train": (0, train_end), "val": (...), "test": (...)}``."""
        n = len(self.series)
        return {"train": (0, self.train_end), "val": (self.train_end, self.val_end), "test": (self.val_end, n)}


def split_series(config: Config, series: Series) -> tuple[int, int]:
    """``(train_end, val_end)`` of ``series`` under ``config.dataset``'s protocol; a series too
    short for it is a DataError naming the keys."""
    dataset = config.dataset
    try:
        train_end, val_end = time_split(len(series), test=dataset.test, val=dataset.val)
    except ValueError as error:
        raise DataError(f"dataset {dataset.name}: {error}; lower dataset.test / dataset.val") from None
    if train_end <= dataset.context:
        raise DataError(
            f"dataset {dataset.name}: the train span has {train_end} steps, not more than "
            f"dataset.context={dataset.context}; lower dataset.context, dataset.test or dataset.val"
        )
    if train_end < 2 * series.season_length:
        raise DataError(
            f"dataset {dataset.name}: the train span has {train_end} steps, fewer than two seasons "
            f"(2 x season_length {series.season_length}) that the seasonal baselines and MASE need; "
            "lower dataset.test or dataset.val"
        )
    return train_end, val_end


def series_info(config: Config) -> DatasetInfo:
    """The DatasetInfo of a forecasting data set: encoded features per step, the value column."""
    return DatasetInfo("forecasting", FEATURES, str(getattr(config.dataset, "value_column", "co2")))


def _span_report(series: Series, start: int, end: int) -> dict[str, Any]:
    dates = pd.DatetimeIndex(series.dates[start:end])
    return {
        "steps": end - start,
        "missing": int(np.isnan(series.values[start:end]).sum()),
        "first": dates[0].date().isoformat(),
        "last": dates[-1].date().isoformat(),
    }


def prepare_series(config: Config, paths: ProjectPaths) -> dict[str, Any]:
    """The prepare stage for a forecasting data set: read and validate the series, write
    ``data/prepared/`` whole (or, on any error, leave it as it was)."""
    dataset = config.dataset
    print(f"prepare: reading series {dataset.name} {dataset.path}", flush=True)
    series: Series = registry.datasets.get(dataset.name).factory(dataset, paths.root)
    train_end, val_end = split_series(config, series)
    spans = {"train": (0, train_end), "val": (train_end, val_end), "test": (val_end, len(series))}
    report = {
        "dataset": {**to_dict(dataset), "path": str(dataset.path)},
        "frequency": series.frequency,
        "season_length": series.season_length,
        "rows": {"total": len(series), **{name: end - start for name, (start, end) in spans.items()}},
        "missing": series.missing,
        "spans": {name: _span_report(series, start, end) for name, (start, end) in spans.items()},
        "checks_passed": ["dates parse", "dates unique and one step apart, in order", "values in range"],
    }
    rows = report["rows"]
    print(
        f"prepare: {len(series)} steps ({series.missing} missing), split by time: train {rows['train']} / "
        f"val {rows['val']} / test {rows['test']}",
        flush=True,
    )
    frame = pd.DataFrame({"date": series.dates, series_info(config).label_column: series.values})
    with replace_dir(paths.prepared) as staging:
        frame.to_parquet(staging / SERIES_FILE, engine="pyarrow", index=False)
        atomic_write_json(staging / INFO_FILE, series_info(config).to_dict())
        atomic_write_json(staging / REPORT_FILE, report)
    print(f"prepare: wrote {paths.prepared}", flush=True)
    return {"dataset": dataset.name, "rows": dict(rows)}


def read_prepared_series(config: Config, paths: ProjectPaths) -> PreparedSeries:
    """The series the prepare stage wrote, split by ``config``'s protocol."""
    info = read_info(paths.prepared)
    if info.task != "forecasting":
        raise DataError(f"{paths.prepared}: holds a {info.task} data set, not a series; {RUN_PREPARE} again")
    path = paths.prepared / SERIES_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found; {RUN_PREPARE}")
    try:
        frame = pd.read_parquet(path, engine="pyarrow")
        dates = frame["date"].to_numpy(dtype="datetime64[ns]")
        values = frame[info.label_column].to_numpy(dtype=float)
    except (OSError, ValueError, KeyError, TypeError, pyarrow.ArrowException) as error:
        raise DataError(f"{path}: not a readable prepared series ({error}); {RUN_PREPARE} again") from None
    dataset = config.dataset
    series = Series(dates, values, str(dataset.frequency), int(dataset.season_length))
    train_end, val_end = split_series(config, series)
    return PreparedSeries(series, info, train_end, val_end)


def fit_series_encoder(config: Config, paths: ProjectPaths) -> dict[str, Any]:
    """The fit_encoder stage for a series: fit on the train span only, write ``data/encoders/``."""
    prepared = read_prepared_series(config, paths)
    series = prepared.series
    print(f"fit-encoder: fitting {config.encoder.name} on the train span ({prepared.train_end} steps)", flush=True)
    try:
        encoder = ForecastEncoder.fit(series.values, series.dates, prepared.train_end)
    except ValueError as error:
        raise DataError(f"{paths.prepared / SERIES_FILE}: {error}") from None
    path = paths.encoders / ENCODER_FILE
    with replace_dir(paths.encoders) as staging:
        atomic_write_text(staging / ENCODER_FILE, encoder.to_json() + "\n")
    print(f"fit-encoder: wrote {path}", flush=True)
    return {"encoder": config.encoder.name, "rows": prepared.train_end, "features": len(FEATURES), "path": str(path)}


def load_series_encoder(path: Path) -> ForecastEncoder:
    """The encoder :func:`fit_series_encoder` wrote; a missing or malformed file is a DataError."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise DataError(f"{path}: not found; {RUN_FIT_ENCODER}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable ({error}); {RUN_FIT_ENCODER} again") from None
    try:
        if not isinstance(json.loads(text), dict):
            raise ValueError("expected a JSON object")
        encoder = ForecastEncoder.from_json(text)
    except (ValueError, TypeError, AttributeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a forecast_standard encoder ({error}); {RUN_FIT_ENCODER} again") from None
    values = (encoder.mean, encoder.std, encoder.time_mean, encoder.time_std)
    if not all(np.isfinite(values)) or encoder.std <= 0 or encoder.time_std <= 0:
        raise DataError(f"{path}: the encoder holds a non-finite or non-positive scale; {RUN_FIT_ENCODER} again")
    return encoder


def series_schema_record(config: Config, prepared: PreparedSeries) -> dict[str, Any]:
    """``input_schema.json`` of a forecaster: the series it reads, and how much history it needs."""
    dataset, series = config.dataset, prepared.series
    observed = series.values[: prepared.train_end]
    observed = observed[~np.isnan(observed)]
    return {
        "format": SERIES_SCHEMA_FORMAT,
        "task": "forecasting",
        "date_column": str(getattr(dataset, "date_column", "date")),
        "value_column": prepared.info.label_column,
        "date_format": getattr(dataset, "date_format", CO2_DATE_FORMAT),
        "frequency": series.frequency,
        "season_length": series.season_length,
        "context": dataset.context,
        "forecast": dataset.forecast,
        "horizons": list(dataset.horizons),
        "train_range": [float(observed.min()), float(observed.max())],
    }
