"""The model's input schema: what a table must hold to be scored, as plain data and as pandera.

The result package carries it as ``input_schema.json``, so a package validates new data the
way the prepare stage validated the training data, without the project or its data set code:
the feature columns in order, each one's dtype (``int64`` for whole numbers, else
``float64``), its declared range (``[low, high]`` from the training schema, or null) and the
range seen on the train split. The label is described too, so ``--score`` can check it.

:func:`describe_inputs` derives it from the training schema (the dataset's pandera schema);
:func:`feature_schema` turns it back into a pandera schema of the features alone (the
training schema minus the label), :func:`label_schema` into one for the label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from trainflow.data import schemas
from trainflow.errors import DataError
from trainflow.paths import INPUT_SCHEMA_FILE  # noqa: F401  (re-exported: the file these records go in)

FORMAT = "trainflow.inputs/1"
# The name schemas.in_range gives its check: "in_range(0, 16)".
_RANGE = re.compile(r"^in_range\((?P<low>[^,]+), (?P<high>[^)]+)\)$")


def _declared_range(column: pa.Column) -> list[float] | None:
    """``[low, high]`` of the column's range check in the training schema, or None."""
    for check in column.checks:
        match = _RANGE.match(str(check.name or ""))
        if match:
            return [float(match["low"]), float(match["high"])]
    return None


def _is_whole(column: pa.Column | None) -> bool:
    return bool(column is not None and (column.metadata or {}).get(schemas.INTEGER))


def describe_inputs(
    training_schema: pa.DataFrameSchema | None,
    feature_columns: Sequence[str],
    label_column: str,
    task: str,
    classes: Sequence[int | str],
    train: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The input schema as JSON-safe data.

    ``training_schema`` is the data set's pandera schema (None for a data set whose schema
    is unknown: every feature is then a finite float); ``train`` the prepared train split,
    whose per-feature minimum and maximum are recorded.
    """
    columns = []
    for name in feature_columns:
        column = training_schema.columns.get(name) if training_schema is not None else None
        entry: dict[str, Any] = {
            "name": name,
            "dtype": "int64" if _is_whole(column) else "float64",
            "range": _declared_range(column) if column is not None else None,
        }
        if train is not None and name in train.columns:
            values = train[name].to_numpy(dtype=np.float64)
            entry["train_min"], entry["train_max"] = float(values.min()), float(values.max())
        columns.append(entry)
    label = {"name": label_column, "task": task, "classes": list(classes)}
    return {"format": FORMAT, "columns": columns, "label": label}


def check_description(data: Any, source: str) -> dict[str, Any]:
    """``data`` if it is a well-formed input schema; else a DataError naming ``source``."""
    ok = (
        isinstance(data, dict)
        and data.get("format") == FORMAT
        and isinstance(data.get("columns"), list)
        and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in data["columns"])
        and all(c.get("dtype") in ("int64", "float64") for c in data["columns"])
        and isinstance(data.get("label"), dict)
        and isinstance(data["label"].get("name"), str)
    )
    if not ok:
        raise DataError(f"{source}: not a trainflow input schema ({FORMAT} with columns and label expected)")
    for column in data["columns"]:
        bounds = column.get("range")
        if bounds is not None and not (
            isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, int | float) for b in bounds)
        ):
            raise DataError(f"{source}: column {column['name']}: range must be [low, high] or null")
    return data


def feature_names(description: Mapping[str, Any]) -> list[str]:
    return [column["name"] for column in description["columns"]]


def feature_schema(description: Mapping[str, Any]) -> pa.DataFrameSchema:
    """The training schema minus the label: exactly the feature columns, each checked as in training."""
    columns = {}
    for column in description["columns"]:
        bounds = column.get("range")
        checks = [schemas.in_range(bounds[0], bounds[1])] if bounds is not None else []
        columns[column["name"]] = schemas.number_column(*checks, whole=column["dtype"] == "int64")
    return pa.DataFrameSchema(columns, checks=[schemas.non_empty()], strict=True, ordered=False, name="inputs")


def label_schema(description: Mapping[str, Any]) -> pa.DataFrameSchema:
    """The label column alone, checked as in training (a class of ``classes``, or a number)."""
    label = description["label"]
    classes = list(label.get("classes") or [])
    names = any(isinstance(c, str) for c in classes)
    schema = schemas.table_schema([], label["name"], label["task"], classes, label_names=names)
    return pa.DataFrameSchema(schema.columns, strict=True, name="label")
