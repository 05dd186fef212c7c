"""Prepared data: the validated dataset split into train/val/test, written as parquet.

``data/prepared/`` holds ``train.parquet``, ``val.parquet``, ``test.parquet`` (the dataset's
columns; the index ``row`` is the row's position in the raw file), ``info.json``
(:class:`DatasetInfo`) and ``report.json`` (rows and class counts per split, the checks that
passed, the config that made it). The same config and data give bit-identical files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet as pq

from trainflow import registry
from trainflow.config import Config, to_dict
from trainflow.data import schemas
from trainflow.data.datasets import Dataset, DatasetInfo
from trainflow.data.json_file import read_json
from trainflow.data.split import random_split, stratified_split
from trainflow.errors import DataError
from trainflow.io import atomic_write_json, replace_dir

SPLITS = ("train", "val", "test")
INFO_FILE = "info.json"
REPORT_FILE = "report.json"
INDEX_NAME = "row"
RUN_PREPARE = "run the prepare stage first (`trainflow prepare`)"
# Rows of a split written at once (one parquet row group): about 34 MB of float64 for 65 columns.
WRITE_ROWS = 1 << 16


class Splits(Mapping[str, pd.DataFrame]):
    """The three splits of one frame, by row positions: each split's frame is taken when asked
    for (a fresh copy every time, each column in the dtype it stands for, as written), so the
    frame is not held again three times over, and :func:`write_prepared` writes a split a
    slice of rows at a time without taking it whole."""

    def __init__(self, frame: pd.DataFrame, rows: Mapping[str, np.ndarray]) -> None:
        self.frame = frame
        self.rows = dict(rows)

    def __getitem__(self, name: str) -> pd.DataFrame:
        return schemas.as_stored(self.frame.iloc[self.rows[name]])

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def pieces(self, name: str, size: int) -> Iterator[pd.DataFrame]:
        """Split ``name`` in frames of at most ``size`` rows, in order, each column as held."""
        rows = self.rows[name]
        if len(rows) <= size:
            yield self.frame.iloc[rows]
            return
        for start in range(0, len(rows), size):
            yield self.frame.iloc[rows[start : start + size]]


@dataclass
class PreparedData:
    """The three splits, what they hold, and the report written beside them."""

    splits: Mapping[str, pd.DataFrame]
    info: DatasetInfo
    report: dict[str, Any]


def build_dataset(config: Config) -> Dataset:
    """The dataset object ``config.dataset`` selects."""
    return registry.datasets.build(config.dataset)


def load_dataset(config: Config, root: Path) -> tuple[pd.DataFrame, DatasetInfo, list[str]]:
    """Read and validate the dataset file: the frame, its info, and the checks it passed."""
    dataset = build_dataset(config)
    frame = dataset.load(Path(root))
    schema = dataset.schema(list(frame.columns)) if hasattr(dataset, "schema") else None
    checks = schemas.describe_schema(schema) if schema is not None else []
    return frame, dataset.info(frame), checks


def split_dataset(config: Config, frame: pd.DataFrame, info: DatasetInfo, checks: list[str]) -> PreparedData:
    """Split a validated frame by ``config.seed`` and ``config.data`` fractions (pure)."""
    data = config.data
    labels = frame[info.label_column].to_numpy()
    if info.task == "classification":
        indices = stratified_split(labels, data.val_fraction, data.test_fraction, config.seed)
    else:
        indices = random_split(len(frame), data.val_fraction, data.test_fraction, config.seed)
    frame = frame.reset_index(drop=True).rename_axis(INDEX_NAME)
    rows = dict(zip(SPLITS, indices, strict=True))
    report: dict[str, Any] = {
        "dataset": to_dict(config.dataset),
        "seed": config.seed,
        "val_fraction": data.val_fraction,
        "test_fraction": data.test_fraction,
        "rows": {"total": len(frame), **{name: len(positions) for name, positions in rows.items()}},
        "checks_passed": checks,
    }
    if info.task == "classification":
        report["class_counts"] = {name: _class_counts(labels[positions], info) for name, positions in rows.items()}
    return PreparedData(Splits(frame, rows), info, report)


def _class_counts(labels: np.ndarray, info: DatasetInfo) -> dict[str, int]:
    return {str(label): int(np.count_nonzero(labels == label)) for label in info.classes}


def prepare_dataset(config: Config, root: Path) -> PreparedData:
    """Load, validate and split the dataset ``config`` selects; reads only the dataset file."""
    return split_dataset(config, *load_dataset(config, root))


def write_prepared(prepared: PreparedData, folder: Path) -> None:
    """Write the splits, info.json and report.json; ``folder`` is replaced whole or not at all.

    Each split is written :data:`WRITE_ROWS` rows at a time (one parquet row group each), every
    column in the dtype it stands for (:func:`~trainflow.data.schemas.as_stored`), so a large
    split is never held whole at 8 bytes a value; a split of fewer rows is one row group, the
    file pandas' ``to_parquet`` writes.
    """
    splits = prepared.splits
    with replace_dir(Path(folder)) as staging:
        for name in SPLITS:
            pieces = splits.pieces(name, WRITE_ROWS) if isinstance(splits, Splits) else iter([splits[name]])
            _write_parquet(pieces, staging / f"{name}.parquet")
        atomic_write_json(staging / INFO_FILE, prepared.info.to_dict())
        atomic_write_json(staging / REPORT_FILE, prepared.report)


def _write_parquet(pieces: Iterator[pd.DataFrame], path: Path) -> None:
    """One parquet file of the frames ``pieces`` (the index kept), one row group each."""
    writer: pq.ParquetWriter | None = None
    try:
        for piece in pieces:
            table = pyarrow.Table.from_pandas(
                schemas.as_stored(piece), preserve_index=True, schema=writer.schema if writer else None
            )
            writer = writer or pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
            del table
    finally:
        if writer is not None:
            writer.close()


def read_split(folder: Path, name: str) -> pd.DataFrame:
    """One prepared split; a missing or unreadable file is a DataError saying to run prepare."""
    path = Path(folder) / f"{name}.parquet"
    if not path.is_file():
        raise DataError(f"{path}: not found; {RUN_PREPARE}")
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except (OSError, ValueError, pyarrow.ArrowException) as error:
        raise DataError(f"{path}: not a readable parquet file ({error}); {RUN_PREPARE} again") from None


def read_info(folder: Path) -> DatasetInfo:
    """The prepared dataset's :class:`DatasetInfo` from ``info.json``."""
    path = Path(folder) / INFO_FILE
    data = read_json(path, missing=RUN_PREPARE, again=f"{RUN_PREPARE} again")
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object; {RUN_PREPARE} again")
    try:
        return DatasetInfo.from_dict(data)
    except DataError as error:
        raise DataError(f"{path}: {error}; {RUN_PREPARE} again") from None


def read_prepared(folder: Path) -> tuple[dict[str, pd.DataFrame], DatasetInfo]:
    """All three splits and the info, as :func:`write_prepared` wrote them."""
    info = read_info(folder)
    return {name: read_split(folder, name) for name in SPLITS}, info


def to_arrays(frame: pd.DataFrame, info: DatasetInfo) -> tuple[np.ndarray, np.ndarray]:
    """Features ``float32 [N, F]`` and labels ``[N]``.

    For classification the labels are class indices, int64: the position of each label in
    ``info.classes`` (the digit itself for digits, ``1`` for ``versicolor`` when the classes are
    ``setosa, versicolor, virginica``), as cross-entropy and the metrics expect.
    For regression they are the values, float32.
    """
    missing = [column for column in (*info.feature_columns, info.label_column) if column not in frame.columns]
    if missing:
        raise DataError(f"prepared data lacks column(s) {', '.join(missing)}; {RUN_PREPARE} again")
    features = frame.loc[:, list(info.feature_columns)].to_numpy(dtype=np.float32)
    labels = frame[info.label_column].to_numpy()
    if info.task == "regression":
        return features, labels.astype(np.float32)
    if not info.classes:
        raise DataError(f"dataset info lists no classes for a classification task; {RUN_PREPARE} again")
    positions = pd.Index(list(info.classes), dtype=object).get_indexer(pd.Index(labels, dtype=object))
    unknown = positions < 0
    if unknown.any():
        found = set(labels[unknown].tolist())
        try:
            shown = sorted(found)
        except TypeError:  # numbers and names mixed
            shown = sorted(found, key=str)
        raise DataError(
            f"column {info.label_column}: label(s) {shown} not in the classes {list(info.classes)}; {RUN_PREPARE} again"
        )
    return features, positions.astype(np.int64)
