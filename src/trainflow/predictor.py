"""A trained model ready to score raw tables: validate, encode, run in batches, name the outputs.

A :class:`Predictor` is what :func:`trainflow.load_model` returns. It holds the model, the
fitted encoder, the data set info (task, features, label classes) and the input schema, so
``predict(frame)`` takes the same raw columns the training data had. Scoring follows the
evaluate stage step for step (features as float32, the encoder, the same batch size, softmax
of the float logits), so the project's test split scored here gives the evaluate stage's
predictions bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from torch import nn
from torch.nn import functional

from trainflow.data.datasets import DatasetInfo
from trainflow.data.read import Locate, row_number
from trainflow.data.schemas import cast_integers
from trainflow.data.validate import validate
from trainflow.encoders import Encoder
from trainflow.errors import DataError
from trainflow.results.evaluate import INDEX_COLUMN
from trainflow.results.evaluate import predict as run_batches
from trainflow.results.input_schema import feature_names, feature_schema, label_schema

PREDICTION = "prediction"
TARGET = "target"


def probability_column(label: Any) -> str:
    """The column holding the probability of class ``label`` (as in the package's prediction files)."""
    return f"prob_{label}"


def _validated(frame: pd.DataFrame, schema: Any, source: str, locate: Locate) -> pd.DataFrame:
    """``frame`` validated by ``schema``; the prepare stage's failure report, as one line."""
    try:
        return validate(frame, schema, source, locate=locate)
    except DataError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise DataError(lines[0] + (": " + "; ".join(lines[1:]) if len(lines) > 1 else "")) from None


@dataclass
class Predictor:
    """Scores raw feature tables with a trained model and its fitted encoder.

    ``inputs`` is the input schema (:mod:`trainflow.results.input_schema`); ``batch_size``
    the training batch size, which the evaluate stage uses too; ``source`` says where the
    model came from (for messages).
    """

    model: nn.Module
    encoder: Encoder
    info: DatasetInfo
    inputs: Mapping[str, Any]
    batch_size: int
    experiment_id: str
    source: str
    threads: int = 0  # the training thread count (0: torch's default); the CLI applies it

    def __post_init__(self) -> None:
        self.model.eval()
        self._features = feature_names(self.inputs)
        self._schema = feature_schema(self.inputs)
        if self._features != list(self.info.feature_columns):
            raise DataError(f"{self.source}: the input schema's columns differ from the model's features")

    @property
    def task(self) -> str:
        return self.info.task

    @property
    def feature_columns(self) -> list[str]:
        return list(self._features)

    @property
    def classes(self) -> list[Any]:
        """The class labels in output order (classification), else []."""
        return list(self.info.classes)

    @property
    def columns(self) -> list[str]:
        """The columns :meth:`predict_frame` returns (without ``row`` and ``target``)."""
        if self.task == "classification":
            return [PREDICTION, *(probability_column(label) for label in self.classes)]
        return [PREDICTION]

    # -- steps -------------------------------------------------------------------------------

    def features(self, frame: pd.DataFrame, source: str = "input", locate: Locate = row_number) -> np.ndarray:
        """The validated feature columns of ``frame`` as float32 ``[N, F]``.

        The label column, when present, is left out; any other extra or missing column, a
        value that is not a number, missing, infinite or outside the training range is a
        DataError (the prepare stage's report, naming columns and rows).
        """
        label = self.info.label_column
        given = frame.drop(columns=[label]) if label in frame.columns else frame
        checked = self._checked_numbers(given)
        if checked is not None:
            return checked.astype(np.float32)
        validated = cast_integers(_validated(given, self._schema, source, locate), self._schema)
        return validated.loc[:, self._features].to_numpy(dtype=np.float32)

    def _checked_numbers(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The features as float64 when ``frame`` holds exactly them, all numeric, and they pass
        every check of the schema (finite, whole where integer, in range); else None.

        The same checks as the pandera schema, vectorized over the whole chunk: the common case
        costs a few numpy passes, and anything that fails goes to pandera for its report.
        """
        if len(frame) == 0 or len(frame.columns) != len(self._features) or set(frame.columns) != set(self._features):
            return None
        values = frame.loc[:, self._features]
        if not all(is_numeric_dtype(dtype) and not is_bool_dtype(dtype) for dtype in values.dtypes):
            return None
        x = values.to_numpy(dtype=np.float64)
        if not np.isfinite(x).all():
            return None
        columns = self.inputs["columns"]
        whole = [i for i, column in enumerate(columns) if column["dtype"] == "int64"]
        if whole and not (x[:, whole] == np.floor(x[:, whole])).all():
            return None
        for i, column in enumerate(columns):
            bounds = column.get("range")
            if bounds is not None and not ((x[:, i] >= bounds[0]) & (x[:, i] <= bounds[1])).all():
                return None
        return x

    def targets(self, frame: pd.DataFrame, source: str = "input", locate: Locate = row_number) -> np.ndarray:
        """The label column as class indices (classification) or float32 values, validated."""
        label = self.info.label_column
        if label not in frame.columns:
            raise DataError(f"{source}: no label column {label!r}; --score needs it (or leave out --score)")
        schema = label_schema(self.inputs)
        column = _validated(frame[[label]], schema, source, locate)[label]
        if self.task == "regression":
            return column.to_numpy(dtype=np.float32)
        classes = self.classes
        values = column.astype("int64") if not any(isinstance(c, str) for c in classes) else column.astype(str)
        positions = pd.Index(classes, dtype=object).get_indexer(pd.Index(values.to_numpy(), dtype=object))
        if (positions < 0).any():
            raise DataError(f"{source}: column {label}: labels outside the classes {classes}")
        return positions.astype(np.int64)

    def outputs(self, features: np.ndarray) -> torch.Tensor:
        """The model's raw outputs (logits, or values) for raw float32 features, in batches."""
        with torch.inference_mode():
            return run_batches(self.model, torch.from_numpy(self.encoder.encode(features)), self.batch_size)

    def columns_of(self, outputs: torch.Tensor) -> dict[str, np.ndarray]:
        """``prediction`` (class labels or values) and ``prob_<label>`` columns for raw outputs."""
        if self.task != "classification":
            return {PREDICTION: outputs.float().reshape(-1).numpy()}
        logits = outputs.float()
        classes = self.classes
        labels = np.asarray(classes, dtype=object if any(isinstance(c, str) for c in classes) else np.int64)
        probabilities = functional.softmax(logits, dim=1).numpy()
        columns: dict[str, np.ndarray] = {PREDICTION: labels[logits.argmax(dim=1).numpy()]}
        for i, label in enumerate(classes):
            columns[probability_column(label)] = probabilities[:, i]
        return columns

    # -- the API -----------------------------------------------------------------------------

    def predict_frame(self, frame: pd.DataFrame, *, first_row: int = 0) -> pd.DataFrame:
        """``row`` (position in the input, from ``first_row``), ``prediction`` and ``prob_<label>``."""
        columns = self.columns_of(self.outputs(self.features(frame)))
        rows = pd.Series(np.arange(first_row, first_row + len(frame)), dtype="int64")
        return pd.DataFrame({INDEX_COLUMN: rows, **columns})

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """The predicted class label (its name when the labels have names), or the predicted value."""
        return self.columns_of(self.outputs(self.features(frame)))[PREDICTION]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities ``[N, C]``, columns in :attr:`classes` order (classification only)."""
        if self.task != "classification":
            raise DataError(f"{self.source}: predict_proba is for classification; this model is a {self.task} model")
        with torch.inference_mode():
            return functional.softmax(self.outputs(self.features(frame)).float(), dim=1).numpy()

    def __repr__(self) -> str:
        target = f"{len(self.classes)} classes" if self.classes else "a value"
        return (
            f"Predictor({self.task}: {len(self._features)} features -> {target}; "
            f"experiment {self.experiment_id} from {self.source})"
        )
