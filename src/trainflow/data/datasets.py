"""Datasets: read a raw data file, validate it with its pandera schema, describe it.

``dataset.name`` in params.yaml selects a registered class; it is constructed as
``Cls(config)`` and offers ``load(root)`` (the validated frame) and ``info(frame)`` (what the
rest of the pipeline needs to know: task, columns, classes, image shape). Paths in configs are
relative to the project root.

Built in: ``digits`` (the embedded handwritten digits), and ``csv`` / ``parquet`` for a user's
own table with a header. A classification label may be whole numbers or names (``setosa``);
either way ``DatasetInfo.classes`` lists them in class-index order, the encoding every later
stage uses (class ``i`` is ``classes[i]``), saved in ``data/prepared/info.json`` and in each
model snapshot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandas.api.types import is_numeric_dtype

from trainflow.components.base import Task
from trainflow.components.datasets import CsvConfig, DigitsConfig, ParquetConfig, TableConfig
from trainflow.data import schemas
from trainflow.data.read import Locate, read_csv, read_parquet
from trainflow.data.validate import validate_cast
from trainflow.errors import DataError

__all__ = ["CsvConfig", "DatasetInfo", "DigitsConfig", "ParquetConfig", "TableConfig"]
TASKS: tuple[str, ...] = ("classification", "regression", "forecasting")
# A class label: a whole number, or a name such as "setosa".
Label = int | str


@dataclass(frozen=True)
class DatasetInfo:
    """What the pipeline needs to know about a prepared dataset; saved as ``info.json``.

    ``classes`` is the label encoding: class index ``i`` (a model output, a target) stands for
    the label ``classes[i]``, all whole numbers or all names. A forecasting data set's feature
    columns are the encoded inputs of each step and its label column the series' value column.
    """

    task: Task
    feature_columns: tuple[str, ...]
    label_column: str
    classes: tuple[Label, ...] = ()
    image_shape: tuple[int, ...] | None = None

    @property
    def num_features(self) -> int:
        return len(self.feature_columns)

    @property
    def num_outputs(self) -> int:
        """Model outputs: one logit per class for classification, one value for regression."""
        return len(self.classes) if self.task == "classification" else 1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe data; :meth:`from_dict` is its inverse."""
        return {
            "task": self.task,
            "feature_columns": list(self.feature_columns),
            "label_column": self.label_column,
            "classes": list(self.classes),
            "image_shape": list(self.image_shape) if self.image_shape is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetInfo:
        """Rebuild from :meth:`to_dict` output; anything malformed is a DataError."""
        try:
            task = data["task"]
            if task not in TASKS:
                raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
            features = tuple(_strings(data["feature_columns"], "feature_columns"))
            label = data["label_column"]
            if not isinstance(label, str):
                raise ValueError(f"label_column must be a string, got {label!r}")
            classes = tuple(_labels(data.get("classes", []), "classes"))
            shape = data.get("image_shape")
            image_shape = None if shape is None else tuple(_ints(shape, "image_shape"))
        except KeyError as error:
            raise DataError(f"dataset info: missing key {error.args[0]!r}") from None
        except (TypeError, ValueError) as error:
            raise DataError(f"dataset info: {error}") from None
        return cls(task, features, label, classes, image_shape)


def _strings(values: Any, key: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise ValueError(f"{key} must be a list of strings, got {values!r}")
    return values


def _labels(values: Any, key: str) -> list[Label]:
    """Class labels: a list of all whole numbers or all non-empty names, none repeated."""
    if isinstance(values, list) and values and all(isinstance(value, str) and value for value in values):
        if len(set(values)) != len(values):
            raise ValueError(f"{key} must not repeat a label, got {values!r}")
        return values
    if isinstance(values, list) and any(isinstance(value, str) for value in values):
        raise ValueError(f"{key} must be all whole numbers or all non-empty names, got {values!r}")
    return _ints(values, key)


def _ints(values: Any, key: str) -> list[int]:
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{key} must be a list of integers, got {values!r}")
    return values


class Dataset(ABC):
    """A registered dataset: built from its config, it loads and describes one data file."""

    def __init__(self, config: Any) -> None:
        self.config = config

    @property
    def source(self) -> str:
        """The data file as the user named it (relative to the project root), for messages."""
        return str(self.config.path)

    @abstractmethod
    def schema(self, columns: Sequence[str]) -> pa.DataFrameSchema:
        """The schema a file with these columns (its header) must pass."""

    @abstractmethod
    def load(self, root: Path) -> pd.DataFrame:
        """Read ``root / config.path``, validate it, and return the validated frame."""

    @abstractmethod
    def info(self, frame: pd.DataFrame) -> DatasetInfo:
        """Describe the validated frame."""


# ---------------------------------------------------------------------------------------------
# digits


class DigitsDataset(Dataset):
    """1797 images of 8x8 pixels (0..16) with labels 0..9: UCI optical recognition of digits."""

    config: DigitsConfig

    def schema(self, columns: Sequence[str] = ()) -> pa.DataFrameSchema:
        return schemas.digits_schema()

    def load(self, root: Path) -> pd.DataFrame:
        names = (*schemas.DIGITS_FEATURES, schemas.DIGITS_LABEL)
        frame, locate = read_csv(Path(root) / self.config.path, self.source, names=names)
        schema = self.schema(names)
        return validate_cast(frame, schema, self.source, locate=locate)

    def info(self, frame: pd.DataFrame) -> DatasetInfo:
        return DatasetInfo(
            task="classification",
            feature_columns=schemas.DIGITS_FEATURES,
            label_column=schemas.DIGITS_LABEL,
            classes=schemas.DIGITS_CLASSES,
            image_shape=(1, 8, 8),
        )


# ---------------------------------------------------------------------------------------------
# csv and parquet: a user's own table


class TableDataset(Dataset):
    """Numeric feature columns and a label column, from a file with named columns."""

    config: TableConfig
    # Whether the label column holds names; decided by :meth:`load` from the file.
    label_names: bool = False

    @abstractmethod
    def read(self, path: Path) -> tuple[pd.DataFrame, Locate]:
        """The raw frame in the file and a locator naming its rows in messages."""

    def features(self, columns: Sequence[str]) -> tuple[str, ...]:
        """The feature columns: as configured, or every column of the file but the label."""
        if self.config.feature_columns:
            return self.config.feature_columns
        return tuple(str(column) for column in columns if column != self.config.label_column)

    def schema(self, columns: Sequence[str]) -> pa.DataFrameSchema:
        config = self.config
        return schemas.table_schema(
            self.features(columns),
            config.label_column,
            config.task,
            config.classes,
            select=bool(config.feature_columns),
            label_names=self.label_names,
        )

    def names_labels(self, frame: pd.DataFrame) -> bool:
        """Whether the label column holds class names rather than numbers.

        Names when ``classes`` lists names, or when no value of the column is a number; a column
        of numbers with a few stray words stays numeric, so the words are reported by row.
        """
        config = self.config
        if config.task != "classification":
            return False
        if any(isinstance(label, str) for label in config.classes):
            return True
        if config.label_column not in frame.columns or is_numeric_dtype(frame[config.label_column]):
            return False
        values = frame[config.label_column].dropna()
        return len(values) > 0 and bool(pd.to_numeric(values, errors="coerce").isna().all())

    def load(self, root: Path) -> pd.DataFrame:
        frame, locate = self.read(Path(root) / self.config.path)
        features = self.features(list(frame.columns))
        if not features:
            raise DataError(
                f"{self.source}: no feature columns: the file holds only {', '.join(map(str, frame.columns))}; "
                f"dataset.label_column is {self.config.label_column!r}"
            )
        self.label_names = self.names_labels(frame)
        schema = self.schema(list(frame.columns))
        validated = validate_cast(frame, schema, self.source, locate=locate)
        wanted = [*features, self.config.label_column]
        return validated if list(validated.columns) == wanted else validated[wanted]  # no copy when in order

    def info(self, frame: pd.DataFrame) -> DatasetInfo:
        config = self.config
        features = self.features([column for column in frame.columns])
        if config.task == "regression":
            return DatasetInfo("regression", features, config.label_column)
        labels = frame[config.label_column].to_numpy()
        found: tuple[Label, ...]
        if self.label_names:
            found = tuple(sorted({str(label) for label in labels}))
        else:
            found = tuple(int(label) for label in np.unique(labels))
        classes = config.classes or found
        if len(classes) < 2:
            raise DataError(
                f"{self.source}: column {config.label_column}: only one class ({classes[0]}) in the data; "
                "classification needs at least 2 (or set dataset.task: regression)"
            )
        return DatasetInfo("classification", features, config.label_column, classes)


class CsvDataset(TableDataset):
    """A user's CSV file with a header."""

    def read(self, path: Path) -> tuple[pd.DataFrame, Locate]:
        return read_csv(path, self.source)


class ParquetDataset(TableDataset):
    """A user's parquet file."""

    def read(self, path: Path) -> tuple[pd.DataFrame, Locate]:
        return read_parquet(path, self.source)
