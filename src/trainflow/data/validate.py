"""Validating a raw frame against its pandera schema: a trusted frame, or a short DataError
report naming the file, the column, the check and the rows at fault (read by
:mod:`trainflow.data.read`, which also names the rows the way the user finds them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from trainflow.data import schemas
from trainflow.data.read import MAX_EXAMPLES, Locate, detect_delimiter, first_line, read_csv, read_parquet, row_number
from trainflow.errors import DataError

# Re-exported for callers that read through this module.
__all__ = [
    "Locate",
    "detect_delimiter",
    "failure_report",
    "read_csv",
    "read_parquet",
    "row_number",
    "validate",
    "validate_cast",
]

# How many failed checks a report lists (MAX_EXAMPLES: failing rows shown per check).
MAX_REPORT_LINES = 20
# Rows above which a frame is validated a slice of this many rows at a time.
CHUNK_ROWS = 100_000


def validate(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str, *, locate: Locate = row_number
) -> pd.DataFrame:
    """Validate ``frame`` against ``schema`` lazily, so one run reports every failed check.

    Returns the validated (coerced) frame. On failure raises DataError with a short report:
    ``<source>: N check(s) failed`` then one line per failed check naming the column, the check
    and the number of failing rows, with the first few rows (``locate(position)``) and values.
    """
    try:
        return schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        raise DataError(failure_report(errors.failure_cases, source, frame.index, locate)) from None
    except pa.errors.SchemaError as error:
        raise DataError(f"{source}: 1 check(s) failed\n  {first_line(error)}") from None


def validate_cast(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str, *, locate: Locate = row_number
) -> pd.DataFrame:
    """:func:`validate` then :func:`~trainflow.data.schemas.cast_integers`, in bounded memory.

    A frame of more than :data:`CHUNK_ROWS` rows is checked a slice at a time, so pandera's
    copies are of one slice; the result is then ``frame`` with each column cast as the schema
    coerces it (a whole-number column that pandas already read as int64, within the range where
    float64 holds every integer, is kept as it is: the same values, without two casts). Such a
    ``frame`` is cast in place (its columns replaced), so it is not held twice. A slice
    that fails is reported as :func:`validate` reports the whole frame: the same message.

    A column of such a frame that the reader holds as a narrow integer (int8, int16, int32,
    which float64 holds exactly) is kept narrow instead of widened to float64 or int64: the
    dtype it stands for is recorded in :func:`~trainflow.data.schemas.stored_dtypes` and applied
    when the prepared data is written (:func:`~trainflow.data.schemas.as_stored`), a slice at a
    time, so a file of small numbers is never held at 8 bytes a value.
    """
    if len(frame) <= CHUNK_ROWS:
        return schemas.cast_integers(validate(frame, schema, source, locate=locate), schema)
    for start in range(0, len(frame), CHUNK_ROWS):
        try:
            schema.validate(frame.iloc[start : start + CHUNK_ROWS], lazy=True)
        except (pa.errors.SchemaErrors, pa.errors.SchemaError):
            return schemas.cast_integers(validate(frame, schema, source, locate=locate), schema)
    if schema.strict == "filter":
        for name in [name for name in frame.columns if name not in schema.columns]:
            del frame[name]
    casts, stored = {}, {}
    for name, column in schema.columns.items():
        whole = bool((column.metadata or {}).get(schemas.INTEGER))
        coerced = str(column.dtype) if column.dtype is not None and column.coerce else None
        if coerced == "float64" and _narrow_integer(frame[name].dtype):
            stored[name] = "int64" if whole else coerced
            continue
        if whole and frame[name].dtype == np.int64 and _exact_in_float(frame[name]):
            continue
        if coerced is not None:
            casts[name] = coerced
    for name, dtype in casts.items():
        frame[name] = frame[name].astype(dtype)  # in place: a column read on its own is freed once cast
    frame = schemas.cast_integers(frame, schema, keep=stored)
    if stored:
        frame.attrs[schemas.STORED_DTYPES] = {**schemas.stored_dtypes(frame), **stored}
    return frame


def _narrow_integer(dtype: Any) -> bool:
    """Whether ``dtype`` is a numpy signed integer narrower than int64 (every value exact in float64)."""
    return isinstance(dtype, np.dtype) and dtype.kind == "i" and dtype.itemsize < 8


def _exact_in_float(series: pd.Series) -> bool:
    """Whether every int64 value survives a round trip through float64 (|value| <= 2**53)."""
    values = series.to_numpy()
    return len(values) == 0 or bool(max(-int(values.min()), int(values.max())) <= 2**53)


def failure_report(cases: pd.DataFrame, source: str, index: pd.Index, locate: Locate = row_number) -> str:
    """Pandera's failure cases as the report :func:`validate` raises (see there)."""
    lines = _table_lines(cases) + _column_lines(cases, index, locate)
    shown = lines[:MAX_REPORT_LINES]
    if len(lines) > MAX_REPORT_LINES:
        shown.append(f"... and {len(lines) - MAX_REPORT_LINES} more failed check(s)")
    return "\n".join([f"{source}: {len(lines)} check(s) failed", *(f"  {line}" for line in shown)])


_TABLE_WORDING = {
    "column_in_dataframe": "missing column(s)",
    "column_in_schema": "unexpected column(s)",
    "column_ordered": "column(s) out of order",
}


def _table_lines(cases: pd.DataFrame) -> list[str]:
    """Failures of the table as a whole: missing, extra or misordered columns, no rows."""
    table = cases[cases["column"].isna() | (cases["schema_context"] == "DataFrameSchema")]
    checks = list(dict.fromkeys(table["check"]))
    if {"column_in_dataframe", "column_in_schema"} & set(checks):
        # With a column missing or extra the order is wrong by consequence; report the cause only.
        checks = [check for check in checks if check != "column_ordered"]
    lines = []
    for check in checks:
        values = [str(value) for value in table.loc[table["check"] == check, "failure_case"]]
        if check in _TABLE_WORDING:
            lines.append(f"columns: {check}: {_TABLE_WORDING[check]}: {', '.join(dict.fromkeys(values))}")
        else:
            lines.append(f"table: {check} failed")
    return lines


def _column_lines(cases: pd.DataFrame, index: pd.Index, locate: Locate) -> list[str]:
    """One line per (column, check) that failed, with the failing row count and examples."""
    columns = cases[cases["column"].notna() & (cases["schema_context"] != "DataFrameSchema")]
    lines = []
    for column in dict.fromkeys(columns["column"]):
        own = columns[columns["column"] == column]
        checks = list(dict.fromkeys(own["check"]))
        if any(str(check).startswith("coerce_dtype") for check in checks):
            # Values that are not numbers fail the coercion and then the dtype check: report once.
            checks = [check for check in checks if not str(check).startswith("dtype(")]
        for check in checks:
            failed = own[own["check"] == check]
            lines.append(f"{column}: {_wording(str(check))}{_rows(failed, index, locate)}")
    return lines


def _wording(check: str) -> str:
    if check.startswith("coerce_dtype"):
        return f"{check} (not a number)"
    if check == "not_nullable":
        return "not_nullable (missing value)"
    return check


def _rows(failed: pd.DataFrame, index: pd.Index, locate: Locate) -> str:
    """`` failed for 3 row(s): line 2 (17), line 9 (-1), ...`` or the column-wide failure."""
    rows = failed[failed["index"].notna()]
    if rows.empty:
        return f" failed ({', '.join(_value(value) for value in failed['failure_case'])})"
    examples = []
    for label, value in zip(rows["index"][:MAX_EXAMPLES], rows["failure_case"][:MAX_EXAMPLES], strict=True):
        examples.append(f"{_where(label, index, locate)} ({_value(value)})")
    more = ", ..." if len(rows) > MAX_EXAMPLES else ""
    return f" failed for {len(rows)} row(s): {', '.join(examples)}{more}"


def _where(label: Any, index: pd.Index, locate: Locate) -> str:
    try:
        return locate(int(index.get_loc(label)))
    except (KeyError, TypeError):
        return f"row {label}"


def _value(value: Any) -> str:
    """A failing value as the user wrote it: ``17`` rather than ``17.0``, strings quoted."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return repr(value)
    return str(value)
