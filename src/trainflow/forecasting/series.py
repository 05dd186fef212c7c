"""Reading and validating a regular time series (the embedded ``co2`` set or a user's own file).

A series is one value column indexed by dates at a fixed frequency. Reading checks, through a
pandera schema, that the dates parse, are strictly increasing and exactly one step apart (no
silently skipped weeks: a missing week is a row with an empty value), and that the values lie
in a plausible range; the number of missing values is reported, never hidden, because the
protocol forward-fills inputs and drops missing targets from the loss and the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from trainflow.errors import ConfigError, DataError

CO2_PATH = "data/raw/co2_weekly_maunaloa.csv"
CO2_DATE_FORMAT = "%Y%m%d"  # the embedded file's dates: 19580329
CO2_RANGE = (250.0, 450.0)  # ppm: pre-industrial ~280, 2001 ~372; anything outside is a unit or parse error
FREQUENCIES = {"D": 1, "W": 7}  # days per step of the frequencies a series may have


@dataclass(frozen=True)
class Series:
    """One validated series: ``dates`` (datetime64[ns]) and float ``values`` (NaN where missing)."""

    dates: np.ndarray
    values: np.ndarray
    frequency: str
    season_length: int

    def __len__(self) -> int:
        return len(self.values)

    @property
    def missing(self) -> int:
        """How many steps have no observed value."""
        return int(np.isnan(self.values).sum())


def series_schema(value_column: str, low: float | None, high: float | None, step_days: int) -> pa.DataFrameSchema:
    """The schema of a series frame: a date column one ``step_days`` apart and a bounded value column."""
    checks = [pa.Check.in_range(low, high, ignore_na=True)] if low is not None and high is not None else []

    def regular(frame: pd.DataFrame) -> bool:
        steps = frame["date"].diff().dropna()
        return bool((steps == pd.Timedelta(days=step_days)).all())

    return pa.DataFrameSchema(
        {
            "date": pa.Column("datetime64[ns]", nullable=False, unique=True),
            value_column: pa.Column(float, checks=checks, nullable=True),
        },
        checks=[pa.Check(regular, name=f"every step {step_days} day(s) apart, in order")],
        strict=True,
    )


def read_series(
    path: str | Path,
    *,
    date_column: str = "date",
    value_column: str = "co2",
    date_format: str | None = CO2_DATE_FORMAT,
    frequency: str = "W",
    season_length: int = 52,
    value_range: tuple[float, float] | None = CO2_RANGE,
) -> Series:
    """Read a CSV or parquet series file and validate it.

    A bad file (missing, unreadable, a column absent, a failed check) is a DataError naming the
    file, the column and the check; an unsupported ``frequency`` is a ConfigError."""
    path = Path(path)
    if frequency not in FREQUENCIES:
        raise ConfigError(f"frequency: {frequency!r} is not supported; valid: {', '.join(FREQUENCIES)}")
    if not path.is_file():
        raise DataError(f"{path}: no such series file")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={date_column: str})
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(
            f"{path}: not a readable {'parquet' if path.suffix == '.parquet' else 'CSV'} file ({error})"
        ) from None
    return series_from_frame(
        frame,
        str(path),
        date_column=date_column,
        value_column=value_column,
        date_format=date_format,
        frequency=frequency,
        season_length=season_length,
        value_range=value_range,
    )


def series_from_frame(
    frame: pd.DataFrame,
    source: str,
    *,
    date_column: str = "date",
    value_column: str = "co2",
    date_format: str | None = CO2_DATE_FORMAT,
    frequency: str = "W",
    season_length: int = 52,
    value_range: tuple[float, float] | None = CO2_RANGE,
) -> Series:
    """Validate a frame with a date and a value column into a :class:`Series` (see
    :func:`read_series`); ``source`` names it in errors."""
    if frequency not in FREQUENCIES:
        raise ConfigError(f"frequency: {frequency!r} is not supported; valid: {', '.join(FREQUENCIES)}")
    missing_columns = [c for c in (date_column, value_column) if c not in frame.columns]
    if missing_columns:
        raise DataError(f"{source}: no column {missing_columns[0]!r}; columns: {', '.join(map(str, frame.columns))}")
    frame = frame[[date_column, value_column]].rename(columns={date_column: "date"})
    try:
        if frame["date"].dtype.kind != "M":
            frame["date"] = pd.to_datetime(frame["date"].astype(str), format=date_format)
        frame["date"] = frame["date"].astype("datetime64[ns]")
        frame[value_column] = pd.to_numeric(frame[value_column]).astype(float)
    except (ValueError, TypeError) as error:
        raise DataError(f"{source}: {error}") from None
    low, high = value_range if value_range is not None else (None, None)
    try:
        series_schema(value_column, low, high, FREQUENCIES[frequency]).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as error:
        raise DataError(
            f"{source}: {_failure(error.failure_cases, frame, date_column, FREQUENCIES[frequency])}"
        ) from None
    return Series(frame["date"].to_numpy(), frame[value_column].to_numpy(float), frequency, season_length)


def _failure(cases: pd.DataFrame, frame: pd.DataFrame, date_column: str, step_days: int) -> str:
    """The first failed check, in the user's column names: for the regular-steps check, the
    two dates on either side of the first gap."""
    first = cases.iloc[0]
    column = first["column"]
    if not isinstance(column, str):  # the frame-wide check: steps one apart, in order
        dates = pd.DatetimeIndex(frame["date"])
        steps = dates[1:] - dates[:-1]
        bad = int(np.flatnonzero(steps != pd.Timedelta(days=step_days))[0]) + 1
        days = (dates[bad] - dates[bad - 1]).days
        what = f"by {days} day(s), not {step_days}" if days > 0 else "out of order"
        return (
            f"column {date_column!r}: {dates[bad].date()} follows {dates[bad - 1].date()} {what} "
            "(a missing step is a row with an empty value)"
        )
    value = first["failure_case"]
    value = value.item() if hasattr(value, "item") else value
    name = date_column if column == "date" else column
    return f"column {name!r} fails {first['check']} (e.g. {value!r})"


def read_co2(root: str | Path = ".") -> Series:
    """The embedded weekly Mauna Loa CO2 series (ppm), 1958-2001."""
    return read_series(Path(root) / CO2_PATH)


def series_from_config(config: object, root: str | Path = ".") -> Series:
    """The series a ``co2`` or ``timeseries`` dataset config names, read and validated."""
    path = Path(root) / str(config.path)
    if not hasattr(config, "value_column"):
        return read_series(path)
    return read_series(
        path,
        date_column=config.date_column,
        value_column=config.value_column,
        date_format=config.date_format,
        frequency=config.frequency,
        season_length=config.season_length,
        value_range=config.value_range,
    )
