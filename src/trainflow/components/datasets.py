"""Config classes of the built-in datasets (``dataset.name``); implementations in trainflow.data.datasets."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator
from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.components.base import CLASSIFICATION, STRICT, ComponentConfig, Task

IMPLEMENTATION = "trainflow.data.datasets"


@dataclass(frozen=True, config=STRICT)
class DigitsConfig(ComponentConfig):
    """The handwritten digits (8x8 images, 10 classes): CSV without header, pixels then label."""

    task: ClassVar[Task] = CLASSIFICATION
    images: ClassVar[bool] = True  # rows are 8x8 single-channel images
    path: str = "data/raw/digits.csv.gz"


@dataclass(frozen=True, config=STRICT)
class TableConfig(ComponentConfig):
    """A user's table with a header.

    ``feature_columns`` empty means every column but the label; when listed, other columns are
    dropped. ``classes`` empty means the sorted distinct labels found; when listed (whole
    numbers or names, in the order that becomes the class index), a label outside them is a
    data error. A label column is read as names when ``classes`` lists names or when none of
    its values is a number. Rows are plain feature vectors, never images.
    """

    images: ClassVar[bool] = False
    path: str
    label_column: str = "label"
    task: Task = CLASSIFICATION
    feature_columns: tuple[str, ...] = ()
    classes: tuple[int | str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> TableConfig:
        if not self.path:
            raise ValueError("path must name the data file (relative to the project root)")
        if self.label_column in self.feature_columns:
            raise ValueError(f"label_column {self.label_column!r} must not be one of feature_columns")
        for key, values in (("feature_columns", self.feature_columns), ("classes", self.classes)):
            repeated = sorted({str(v) for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"{key} lists {', '.join(repeated)} more than once")
        if any(isinstance(c, str) for c in self.classes) and not all(isinstance(c, str) and c for c in self.classes):
            raise ValueError("classes must be all whole numbers or all non-empty names, not a mix")
        if self.classes and self.task != CLASSIFICATION:
            raise ValueError("classes apply only to task: classification")
        if self.task == CLASSIFICATION and len(self.classes) == 1:
            raise ValueError("classes must list at least 2 classes (or be empty to infer them)")
        return self


@dataclass(frozen=True, config=STRICT)
class CsvConfig(TableConfig):
    """A CSV file with a header (gzip-compressed when the name ends in ``.gz``)."""


@dataclass(frozen=True, config=STRICT)
class ParquetConfig(TableConfig):
    """A parquet file."""


registry.datasets.declare("digits", DigitsConfig, f"{IMPLEMENTATION}:DigitsDataset")
registry.datasets.declare("csv", CsvConfig, f"{IMPLEMENTATION}:CsvDataset")
registry.datasets.declare("parquet", ParquetConfig, f"{IMPLEMENTATION}:ParquetDataset")


def dataset_task(config: object) -> str | None:
    """The task a dataset config states (its ``task`` field or class attribute), None if unknown."""
    task = getattr(config, "task", None)
    return task if isinstance(task, str) else None
