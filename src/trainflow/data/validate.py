"""From a file on disk to a frame that passed its schema, or a DataError saying what is wrong.

Reading and validating are one job: a user hands over a file, and gets back either trusted
data or a short report that names the file, the column, the check and the rows at fault.
No pandas, pandera, gzip or pyarrow traceback ever reaches the user.

Rows are reported the way the user finds them: ``line N`` of a CSV file (header and blank
lines counted, as an editor shows them), ``row N`` (from 0) of a parquet file.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import pyarrow

from trainflow.errors import DataError

Locate = Callable[[int], str]

# How many failed checks a report lists, and how many failing rows per check it shows.
MAX_REPORT_LINES = 20
MAX_EXAMPLES = 5
# Field separators a CSV file may use, and how much of the file decides which one it does.
DELIMITERS = ",;\t|"
SNIFF_BYTES = 8192


def row_number(position: int) -> str:
    """The default locator: ``row 3`` for the fourth row of a frame."""
    return f"row {position}"


# ---------------------------------------------------------------------------------------------
# Reading


def read_bytes(path: Path, source: str) -> bytes:
    """The bytes of ``path``; a missing, unreadable or empty file is a DataError naming ``source``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{source}: file not found; check dataset.path (relative to the project root)") from None
    except IsADirectoryError:
        raise DataError(f"{source}: is a folder, not a file; point dataset.path at the data file") from None
    except OSError as error:
        raise DataError(f"{source}: cannot read the file ({error.strerror or error})") from None
    if not data:
        raise DataError(f"{source}: file is empty (0 bytes)")
    return data


def decompress(data: bytes, source: str) -> bytes:
    """Gunzip ``data``; a truncated or corrupt archive is a DataError naming ``source``."""
    try:
        plain = gzip.decompress(data)
    except EOFError:
        raise DataError(
            f"{source}: truncated gzip file (the compressed data ends early); replace it with a complete copy"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{source}: corrupt gzip file ({error}); replace it with a good copy") from None
    if not plain:
        raise DataError(f"{source}: file is empty once decompressed")
    return plain


def decode_text(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark is dropped)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{source}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); is it a binary file?"
        ) from None


def read_csv(path: Path, source: str, *, names: Sequence[str] | None = None) -> tuple[pd.DataFrame, Locate]:
    """Read a CSV file (gzip-compressed when its name ends in ``.gz``) into a frame.

    With ``names`` the file has no header and its columns get these names; without, the first
    line is the header. The field separator (``,``, ``;``, tab or ``|``) is detected from the
    start of the file (:func:`detect_delimiter`). Every row must have as many fields as the
    header (or ``names``): pandas would silently pad a short row with NaN. Returns the frame,
    values as pandas infers them (the schema checks them), and a locator naming a row by its
    line in the file.
    """
    data = read_bytes(path, source)
    if Path(path).suffix == ".gz":
        data = decompress(data, source)
    text = decode_text(data, source)
    delimiter = detect_delimiter(text)
    header, lines = _scan_fields(text, source, names, delimiter)
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=delimiter, header=None if names else 0, names=list(names) if names else None
        )
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{source}: cannot parse as CSV ({_first_line(error)})") from None
    if list(frame.columns) != header or len(frame) != len(lines):
        # pandas and the csv module disagree on some row; fall back to row positions.
        return frame, row_number
    return frame, lambda position: f"line {lines[position]}"


def detect_delimiter(text: str) -> str:
    """The field separator of a CSV text: ``,`` unless the first lines are consistently split by
    ``;``, tab or ``|`` instead (European spreadsheets write ``;``), judged by csv.Sniffer on
    the first :data:`SNIFF_BYTES` characters (whole lines only)."""
    sample = text[:SNIFF_BYTES]
    if len(text) > SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines or "," in lines[0]:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _scan_fields(
    text: str, source: str, names: Sequence[str] | None, delimiter: str = ","
) -> tuple[list[str], list[int]]:
    """The header and the line number of each data row, after checking every row's field count."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = list(names) if names else None
    lines: list[int] = []
    bad: list[tuple[int, int]] = []
    try:
        for row in reader:
            if not row:
                continue  # a blank line, which pandas skips too
            if header is None:
                header = row
                continue
            if len(row) != len(header):
                bad.append((reader.line_num, len(row)))
            else:
                lines.append(reader.line_num)
    except csv.Error as error:
        raise DataError(f"{source}: line {reader.line_num}: cannot parse as CSV ({error})") from None
    if header is None:
        raise DataError(f"{source}: file has no rows (only blank lines)")
    if bad:
        examples = ", ".join(f"line {line} has {count}" for line, count in bad[:MAX_EXAMPLES])
        more = ", ..." if len(bad) > MAX_EXAMPLES else ""
        raise DataError(f"{source}: {len(bad)} row(s) do not have the {len(header)} fields expected: {examples}{more}")
    if not lines:
        what = "a header but no data rows" if names is None else "no data rows"
        raise DataError(f"{source}: file has {what}")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataError(f"{source}: duplicate column name(s) in the header: {', '.join(duplicates)}")
    return header, lines


def read_parquet(path: Path, source: str) -> tuple[pd.DataFrame, Locate]:
    """Read a parquet file into a frame with a fresh 0-based index; rows are named ``row N``."""
    data = read_bytes(path, source)
    try:
        frame = pd.read_parquet(io.BytesIO(data), engine="pyarrow")
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        raise DataError(f"{source}: not a readable parquet file ({_first_line(error)})") from None
    if len(frame) == 0:
        raise DataError(f"{source}: file has no data rows")
    return frame.reset_index(drop=True), row_number


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# ---------------------------------------------------------------------------------------------
# Validating


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
        raise DataError(f"{source}: 1 check(s) failed\n  {_first_line(error)}") from None


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
