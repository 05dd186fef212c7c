"""Reading a data file into a raw frame, or a DataError that names the file and what is wrong.

CSV (gzip-compressed or not, with the delimiter detected) and parquet. Rows are named the way
the user finds them: ``line N`` of a CSV file (header and blank lines counted, as an editor
shows them), ``row N`` (from 0) of a parquet file; the locator returned with each frame does
that for :func:`trainflow.data.validate.validate`. No gzip, pandas or pyarrow traceback reaches
the user.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pyarrow

from trainflow.errors import DataError

Locate = Callable[[int], str]

# Field separators a CSV file may use, and how much of the file decides which one it does.
DELIMITERS = ",;\t|"
SNIFF_BYTES = 8192
# How many failing rows a message shows.
MAX_EXAMPLES = 5


def row_number(position: int) -> str:
    """The default locator: ``row 3`` for the fourth row of a frame."""
    return f"row {position}"


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
        raise DataError(f"{source}: cannot parse as CSV ({first_line(error)})") from None
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
        raise DataError(f"{source}: not a readable parquet file ({first_line(error)})") from None
    if len(frame) == 0:
        raise DataError(f"{source}: file has no data rows")
    return frame.reset_index(drop=True), row_number


def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
