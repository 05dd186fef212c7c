"""Score a CSV or parquet file chunk by chunk and write the predictions as parquet or CSV.

Memory stays bounded by the chunk size, whatever the file's size: parquet is read a record
batch at a time, CSV with pandas' chunked reader, and the output is appended chunk by chunk
(to a temporary file renamed into place at the end, so a failed run leaves no half file).
Chunks hold a whole number of batches, so batches are the ones a single pass would make and
the predictions are bit-identical to scoring the whole table at once.

A CSV without a header (as the digits file) is read by position: its fields are the
features in training order, optionally followed by the label.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from trainflow.data.read import detect_delimiter
from trainflow.errors import DataError
from trainflow.predictor import TARGET, Predictor

CHUNK_ROWS = 16_384  # rows read, checked and scored at a time: bounds memory
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")


@dataclass
class ScoreReport:
    """What one scoring run did: rows scored, where they went, metrics when ``--score``."""

    rows: int = 0
    chunks: int = 0
    output: str = "-"
    metrics: dict[str, Any] = field(default_factory=dict)


def _kind(path: Path, role: str) -> str:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    valid = ", ".join((*PARQUET_SUFFIXES, *CSV_SUFFIXES))
    raise DataError(f"{path}: unknown {role} format; the file name must end in one of {valid}")


def chunk_rows(batch_size: int, wanted: int = CHUNK_ROWS) -> int:
    """``wanted`` rounded up to a whole number of batches (so chunks never split a batch)."""
    return max(1, -(-wanted // batch_size)) * batch_size


def _check_columns(columns: list[str], predictor: Predictor, source: str, score: bool) -> list[str]:
    """The columns to read; a missing feature or an unexpected column is a one-line DataError."""
    features = predictor.feature_columns
    label = predictor.info.label_column
    missing = [name for name in features if name not in columns]
    extra = [name for name in columns if name not in features and name != label]
    if missing or extra:
        parts = [f"missing column(s) {_some(missing)}"] if missing else []
        parts += [f"unexpected column(s) {_some(extra)}"] if extra else []
        what = "; ".join(parts)
        raise DataError(
            f"{source}: {what}; the model takes the {len(features)} columns {features[0]}..{features[-1]}"
            f" (the label column {label!r} may be present)"
        )
    if score and label not in columns:
        raise DataError(f"{source}: no label column {label!r}; --score needs it (or leave out --score)")
    return [*features, *([label] if score else [])]


def _some(names: list[Any], shown: int = 5) -> str:
    """The first ``shown`` names, then ``...`` when there are more."""
    return ", ".join(map(str, names[:shown])) + (" ..." if len(names) > shown else "")


def _open_text(path: Path, mode: str = "r") -> Any:
    """A text file, gzip-compressed when its name ends in ``.gz``; the caller closes it."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, mode + "t", newline="")
    return open(path, mode, newline="")


def _csv_layout(path: Path, predictor: Predictor, source: str) -> tuple[str, list[str] | None]:
    """The delimiter and, for a file without a header, the names of its columns by position."""
    try:
        with _open_text(path) as file:
            sample = file.read(1 << 16)
    except FileNotFoundError:
        raise DataError(f"{source}: not found") from None
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise DataError(f"{source}: unreadable ({error})") from None
    delimiter = detect_delimiter(sample)
    first = next(csv.reader(io.StringIO(sample), delimiter=delimiter), None)
    if not first:
        raise DataError(f"{source}: file has no rows")
    features = predictor.feature_columns
    if any(name in features for name in first):
        return delimiter, None
    try:
        [float(value) for value in first[: len(features)]]  # a label after the features may be a name
    except ValueError:
        return delimiter, None  # a header naming other columns: _check_columns reports them
    if len(first) == len(features):
        return delimiter, features
    if len(first) == len(features) + 1:
        return delimiter, [*features, predictor.info.label_column]
    raise DataError(
        f"{source}: no header and {len(first)} fields per row; a file without a header needs the "
        f"{len(features)} features in training order, optionally followed by the label"
    )


def read_chunks(path: Path, predictor: Predictor, rows: int, score: bool = False) -> Iterator[pd.DataFrame]:
    """The input's columns the model needs, ``rows`` at a time, index counting rows from 0."""
    source = str(path)
    if not path.is_file():
        raise DataError(f"{source}: not found")
    if _kind(path, "input") == "parquet":
        try:
            file = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as error:
            raise DataError(f"{source}: not a readable parquet file ({str(error)[:200]})") from None
        needed = _check_columns(list(file.schema_arrow.names), predictor, source, score)
        start = 0
        for batch in file.iter_batches(batch_size=rows, columns=needed):
            frame = batch.to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
        return
    delimiter, names = _csv_layout(path, predictor, source)
    header = None if names else 0
    try:
        reader = pd.read_csv(path, sep=delimiter, header=header, names=names, chunksize=rows)
        with reader:
            needed: list[str] | None = None
            for frame in reader:
                if needed is None:
                    needed = _check_columns([str(c) for c in frame.columns], predictor, source, score)
                yield frame[needed]
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{source}: cannot parse as CSV ({str(error).strip().splitlines()[0][:200]})") from None


class _Writer:
    """Appends prediction chunks to a parquet or CSV file (or stdout for ``None``)."""

    def __init__(self, output: Path | None) -> None:
        self.output = output
        self.kind = _kind(output, "output") if output is not None else "csv"
        self.tmp: Path | None = None
        self._parquet: pq.ParquetWriter | None = None
        self._text: Any = None
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            suffix = ".tmp.gz" if output.name.lower().endswith(".gz") else ".tmp"  # compressed like the output
            fd, name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=suffix, dir=output.parent)
            os.close(fd)
            self.tmp = Path(name)

    def write(self, frame: pd.DataFrame) -> None:
        if self.kind == "parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table)
            return
        first = self._text is None
        if first:
            self._text = sys.stdout if self.tmp is None else _open_text(self.tmp, "w")
        frame.to_csv(self._text, index=False, header=first, lineterminator="\n")

    def close(self, ok: bool) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._text is not None and self._text is not sys.stdout:
            self._text.close()
        if self.tmp is None:
            return
        if ok and self.output is not None:
            os.replace(self.tmp, self.output)
        else:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


def score_file(
    predictor: Predictor, input_path: Path, output: Path | None = None, *, score: bool = False, rows: int = CHUNK_ROWS
) -> ScoreReport:
    """Score ``input_path`` into ``output`` (parquet or CSV by suffix; stdout CSV for None).

    Columns: ``row`` (0-based position in the input), ``prediction``, ``prob_<label>`` per
    class; with ``score`` also ``target`` (the label) and metrics in the report.
    """
    from trainflow.results.evaluate import evaluate_split, scalar_metrics

    input_path = Path(input_path)
    output = Path(output) if output is not None else None
    report = ScoreReport(output=str(output) if output is not None else "-")
    size = chunk_rows(predictor.batch_size, rows)
    outputs: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    writer = _Writer(output)
    ok = False
    try:
        for chunk in read_chunks(input_path, predictor, size, score):
            locate = _locator(chunk.index.start if isinstance(chunk.index, pd.RangeIndex) else 0)
            features = predictor.features(chunk, str(input_path), locate=locate)
            result = predictor.outputs(features)
            frame = pd.DataFrame({"row": pd.Series(chunk.index.to_numpy(), dtype="int64")})
            if score:
                y = predictor.targets(chunk, str(input_path), locate=locate)
                frame[TARGET] = chunk[predictor.info.label_column].to_numpy()
                outputs.append(result)
                targets.append(torch.from_numpy(y))
            for name, values in predictor.columns_of(result).items():
                frame[name] = values
            writer.write(frame)
            report.rows += len(frame)
            report.chunks += 1
        if report.rows == 0:
            raise DataError(f"{input_path}: file has no data rows")
        ok = True
    finally:
        writer.close(ok)
    if score:
        metrics, _ = evaluate_split(torch.cat(outputs), torch.cat(targets), predictor.info)
        report.metrics = scalar_metrics(metrics)
    return report


def _locator(start: int) -> Any:
    """Names a row of a chunk by its 0-based position in the whole input."""
    return lambda position: f"row {start + position}"
