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
import warnings
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
from pyarrow import csv as pyarrow_csv

from trainflow.errors import DataError

Locate = Callable[[int], str]

# Field separators a CSV file may use, and how much of the file decides which one it does.
DELIMITERS = ",;\t|"
SNIFF_BYTES = 8192
# How much of a file one streaming step reads.
CHUNK_BYTES = 1 << 20
# How much of a file one batch of pyarrow's streaming CSV reader parses.
BLOCK_BYTES = 1 << 18
# How many failing rows a message shows.
MAX_EXAMPLES = 5


def row_number(position: int) -> str:
    """The default locator: ``row 3`` for the fourth row of a frame."""
    return f"row {position}"


def read_bytes(path: Path, source: str, *, limit: int = -1) -> bytes:
    """The bytes of ``path`` (the first ``limit`` of them when given); a missing, unreadable or
    empty file is a DataError naming ``source``."""
    try:
        with open(path, "rb") as file:
            data = file.read(limit)
    except FileNotFoundError:
        raise DataError(f"{source}: file not found; check dataset.path (relative to the project root)") from None
    except IsADirectoryError:
        raise DataError(f"{source}: is a folder, not a file; point dataset.path at the data file") from None
    except OSError as error:
        raise DataError(f"{source}: cannot read the file ({error.strerror or error})") from None
    if not data:
        raise DataError(f"{source}: file is empty (0 bytes)")
    return data


def _chunks(path: Path, source: str) -> Iterator[bytes]:
    """The file's bytes (gunzipped when its name ends in ``.gz``) in pieces of about
    :data:`CHUNK_BYTES`; a truncated or corrupt archive is a DataError naming ``source``."""
    gz = Path(path).suffix == ".gz"
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as file:
            while piece := file.read(CHUNK_BYTES):
                yield piece
    except EOFError:
        raise DataError(
            f"{source}: truncated gzip file (the compressed data ends early); replace it with a complete copy"
        ) from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{source}: corrupt gzip file ({error}); replace it with a good copy") from None
    except OSError as error:
        raise DataError(f"{source}: cannot read the file ({error.strerror or error})") from None


def _texts(path: Path, source: str) -> Iterator[str]:
    """The file as UTF-8 text (a leading byte-order mark dropped), in pieces that end at a line
    break; a byte that is not UTF-8 is a DataError naming its offset in the (gunzipped) data."""
    offset = 0  # of ``rest`` in the data
    rest = b""
    for piece in _chunks(path, source):
        data = rest + piece
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data  # no line break yet: read on
            continue
        rest = data[cut:]
        yield _decode(data[:cut], source, offset, first=offset == 0)
        offset += cut
    if rest:
        yield _decode(rest, source, offset, first=offset == 0)
    elif offset == 0:
        raise DataError(f"{source}: file is empty once decompressed")


def _decode(data: bytes, source: str, offset: int, *, first: bool) -> str:
    """``data`` (at ``offset`` in the file) as UTF-8 text; a leading BOM dropped when ``first``."""
    try:
        return data.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{source}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {offset + error.start}); "
            "is it a binary file?"
        ) from None


def read_csv(path: Path, source: str, *, names: Sequence[str] | None = None) -> tuple[pd.DataFrame, Locate]:
    """Read a CSV file (gzip-compressed when its name ends in ``.gz``) into a frame.

    With ``names`` the file has no header and its columns get these names; without, the first
    line is the header. The field separator (``,``, ``;``, tab or ``|``) is detected from the
    start of the file (:func:`detect_delimiter`). Every row must have as many fields as the
    header (or ``names``): pandas would silently pad a short row with NaN. Returns the frame,
    values as pandas infers them (the schema checks them; a file of whole numbers only has each
    column in the narrowest integer dtype that holds it, int8 for digits), and a locator naming
    a row by its line in the file.

    The file is streamed twice and never held whole: one pass checks the text (UTF-8, field
    counts) piece by piece, then pyarrow's streaming reader (a file of whole numbers) or pandas'
    C parser reads the file itself, so the peak memory is the frame plus a piece of the file,
    and the time is linear in the rows.
    """
    read_bytes(path, source, limit=1)  # a missing, unreadable or empty file, named
    texts = _texts(path, source)
    start = _sample(texts)
    delimiter = detect_delimiter(start)
    header, lines = _scan_fields(_chain(start, texts), source, names, delimiter)
    frame = _read_integers(path, header, len(lines), delimiter, skip=0 if names else 1)
    if frame is None:
        frame = _read_pandas(path, source, delimiter, names)
    if list(frame.columns) != header or len(frame) != len(lines):
        # pandas and the csv module disagree on some row; fall back to row positions.
        return frame, row_number
    return frame, lambda position: f"line {lines[position]}"


def _read_pandas(path: Path, source: str, delimiter: str, names: Sequence[str] | None) -> pd.DataFrame:
    """The frame pandas' C parser reads from the file (values as pandas infers them)."""
    try:
        with warnings.catch_warnings():
            # A column of numbers and words in a large file: the schema reports the words by line.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            return pd.read_csv(
                path,
                sep=delimiter,
                header=None if names else 0,
                names=list(names) if names else None,
                encoding="utf-8-sig",
                compression="gzip" if Path(path).suffix == ".gz" else None,
            )
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{source}: cannot parse as CSV ({first_line(error)})") from None


def _read_integers(path: Path, header: list[str], rows: int, delimiter: str, *, skip: int) -> pd.DataFrame | None:
    """The frame of a file whose every value is a whole number, each column in the narrowest
    signed integer dtype that holds its values (int8 for digits' 0..16: an eighth of int64);
    None for any other file, which pandas then reads.

    pyarrow's streaming CSV reader parses the file batch by batch and each batch is copied into
    one array a column (widened, rarely, when a batch holds a value the dtype so far does not),
    so the frame is never held twice nor as int64. The values are the ones pandas would read:
    the schema's checks and casts see the same numbers, and :func:`~trainflow.data.validate.
    validate_cast` records the dtype each column is written as.
    """
    values = [np.empty(rows, dtype=np.int8) for _ in header]  # one array a column: each freed alone
    limits = np.array([_limits(np.dtype(np.int8))] * len(header), dtype=np.int64).T  # [low, high] by column
    done = 0
    try:
        reader = pyarrow_csv.open_csv(
            path,
            read_options=pyarrow_csv.ReadOptions(column_names=header, skip_rows=skip, block_size=BLOCK_BYTES),
            parse_options=pyarrow_csv.ParseOptions(delimiter=delimiter),
        )
        if any(field.type != pyarrow.int64() for field in reader.schema):
            return None
        for batch in reader:
            if done + batch.num_rows > rows or any(column.null_count for column in batch.columns):
                return None
            pieces = [column.to_numpy() for column in batch.columns]
            if batch.num_rows:
                stacked = np.stack(pieces)  # one min and max per batch, not per column
                low, high = stacked.min(axis=1), stacked.max(axis=1)
                for index in np.flatnonzero((low < limits[0]) | (high > limits[1])):
                    values[index] = _widened(values[index], int(low[index]), int(high[index]))
                    limits[:, index] = _limits(values[index].dtype)
            for index, piece in enumerate(pieces):
                values[index][done : done + batch.num_rows] = piece
            done += batch.num_rows
    except (OSError, ValueError, pyarrow.ArrowException):
        return None
    if done != rows:
        return None
    return pd.DataFrame(dict(zip(header, values, strict=True)), copy=False)


# Signed integer dtypes from the narrowest: a column read from a file takes the first that fits.
INTEGER_DTYPES = tuple(np.dtype(name) for name in ("int8", "int16", "int32", "int64"))


def _widened(values: np.ndarray, low: int, high: int) -> np.ndarray:
    """``values`` in the narrowest dtype (not narrower than its own) that holds ``low..high``."""
    dtype = next(d for d in INTEGER_DTYPES if d.itemsize >= values.itemsize and _holds(d, low, high))
    return values if dtype == values.dtype else values.astype(dtype)


def _limits(dtype: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _holds(dtype: np.dtype, low: int, high: int) -> bool:
    least, most = _limits(dtype)
    return least <= low and high <= most


def _sample(texts: Iterator[str]) -> str:
    """The first pieces of ``texts``, enough for :func:`detect_delimiter` (over SNIFF_BYTES or all)."""
    sample = ""
    for text in texts:
        sample += text
        if len(sample) > SNIFF_BYTES:
            break
    return sample


def _chain(start: str, texts: Iterator[str]) -> Iterator[str]:
    """The lines of ``start`` then of ``texts`` (split at ``\\n`` only, as a text file is)."""
    yield from io.StringIO(start)
    for text in texts:
        yield from io.StringIO(text)


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
    lines_in: Iterable[str], source: str, names: Sequence[str] | None, delimiter: str = ","
) -> tuple[list[str], array[int]]:
    """The header and the line number of each data row, after checking every row's field count."""
    reader = csv.reader(lines_in, delimiter=delimiter)
    header: list[str] | None = list(names) if names else None
    lines: array[int] = array("q")
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
