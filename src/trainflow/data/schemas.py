"""Pandera schemas: what a data file must hold before any of it is used.

Every schema pins the exact columns (a missing or an extra column fails), reads every value
as a number (a string in a numeric column fails, naming its row), and checks that no value is
missing or infinite, that ranges and label sets hold, and that the file has rows at all.

Numeric columns are declared ``float64`` with ``coerce=True`` so one lazy validation reports
strings, NaN, inf and out-of-range values together; integer columns add an ``integer`` check
and are cast to ``int64`` by :func:`cast_integers` once validation has passed.

The value checks below look only at values that parse as finite numbers: a value that is not a
number is reported once, by the coercion, and a missing or infinite one once, by
``not_nullable`` or ``finite``, instead of again by every range check.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd
import pandera.pandas as pa

DIGITS_PIXELS = 64
DIGITS_FEATURES = tuple(f"pixel_{i}" for i in range(DIGITS_PIXELS))
DIGITS_LABEL = "label"
DIGITS_CLASSES = tuple(range(10))
DIGITS_MAX_PIXEL = 16

# Metadata key marking a column whose validated values are cast to int64.
INTEGER = "integer"
# ``frame.attrs`` key: the dtype a column held narrower than validated stands for (see stored_dtypes).
STORED_DTYPES = "trainflow.stored_dtypes"


def _numbers(series: pd.Series) -> pd.Series:
    """``series`` as float64; values that are not numbers become NaN (reported by the coercion)."""
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _judged(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The numbers in ``series`` and a mask of those that a value check should judge (finite)."""
    numbers = _numbers(series)
    return numbers, pd.Series(np.isfinite(numbers.to_numpy()), index=series.index)


def finite() -> pa.Check:
    """No +inf or -inf."""
    return pa.Check(lambda s: ~np.isinf(_numbers(s)), name="finite")


def integer() -> pa.Check:
    """Whole numbers only (3.0 passes, 3.5 fails)."""

    def check(series: pd.Series) -> pd.Series:
        numbers, judged = _judged(series)
        return ~judged | (numbers == np.floor(numbers))

    return pa.Check(check, name="integer")


def in_range(low: float, high: float) -> pa.Check:
    """``low <= value <= high``."""

    def check(series: pd.Series) -> pd.Series:
        numbers, judged = _judged(series)
        return ~judged | numbers.between(low, high)

    return pa.Check(check, name=f"in_range({low}, {high})")


def one_of(allowed: Sequence[int]) -> pa.Check:
    """The value is one of ``allowed`` (the class set)."""
    allowed = tuple(allowed)

    def check(series: pd.Series) -> pd.Series:
        numbers, judged = _judged(series)
        return ~judged | numbers.isin(allowed)

    return pa.Check(check, name=f"isin({_describe_set(allowed)})")


def one_of_names(allowed: Sequence[str]) -> pa.Check:
    """The value is one of the class names ``allowed`` (a missing value is left to ``not_nullable``)."""
    allowed = tuple(allowed)
    return pa.Check(lambda s: s.isna() | s.isin(allowed), name=f"isin({', '.join(allowed)})")


def named() -> pa.Check:
    """A class name: text that is not blank."""
    return pa.Check(lambda s: s.isna() | s.map(lambda v: isinstance(v, str) and bool(v.strip())), name="non_blank_name")


def non_empty() -> pa.Check:
    """The frame has at least one row."""
    return pa.Check(lambda frame: len(frame) > 0, name="non_empty")


def _describe_set(values: Sequence[int]) -> str:
    """``0..9`` for a run of consecutive integers, else the values listed."""
    values = tuple(values)
    if len(values) > 2 and values == tuple(range(values[0], values[0] + len(values))):
        return f"{values[0]}..{values[-1]}"
    return ", ".join(str(value) for value in values)


def number_column(*checks: pa.Check, whole: bool = False) -> pa.Column:
    """A required numeric column: no missing value, finite, plus ``checks``."""
    all_checks = [finite(), *([integer()] if whole else []), *checks]
    return pa.Column("float64", checks=all_checks, coerce=True, nullable=False, metadata={INTEGER: whole})


def digits_schema() -> pa.DataFrameSchema:
    """The digits file: ``pixel_0..pixel_63`` (whole numbers 0..16) then ``label`` (0..9), in order."""
    columns = {name: number_column(in_range(0, DIGITS_MAX_PIXEL), whole=True) for name in DIGITS_FEATURES}
    columns[DIGITS_LABEL] = number_column(one_of(DIGITS_CLASSES), whole=True)
    return pa.DataFrameSchema(columns, checks=[non_empty()], strict=True, ordered=True, name="digits")


def table_schema(
    feature_columns: Sequence[str],
    label_column: str,
    task: str,
    classes: Sequence[int | str] = (),
    *,
    select: bool = False,
    label_names: bool = False,
) -> pa.DataFrameSchema:
    """A user's table: numeric features and a label, whole-numbered (and in ``classes``) for classification.

    With ``label_names`` the classification label is a class name (text, one of ``classes`` when
    listed) instead of a whole number. With ``select`` the file may hold other columns, which
    are dropped; without it the file must hold exactly ``feature_columns`` and
    ``label_column``. The order is not checked: columns are used by name.
    """
    columns: dict[str, pa.Column] = {name: number_column() for name in feature_columns}
    if task == "classification" and label_names:
        names = [one_of_names([str(c) for c in classes])] if classes else []
        columns[label_column] = pa.Column(checks=[named(), *names], nullable=False, metadata={INTEGER: False})
    elif task == "classification":
        label_checks = [one_of(classes)] if classes else []  # type: ignore[arg-type]
        columns[label_column] = number_column(*label_checks, whole=True)
    else:
        columns[label_column] = number_column()
    return pa.DataFrameSchema(
        columns,
        checks=[non_empty()],
        strict="filter" if select else True,
        ordered=False,
        name="table",
    )


def cast_integers(frame: pd.DataFrame, schema: pa.DataFrameSchema, *, keep: Collection[str] = ()) -> pd.DataFrame:
    """Cast the validated columns the schema marks as whole numbers to int64 (but those in ``keep``)."""
    whole = [
        name for name, column in schema.columns.items() if (column.metadata or {}).get(INTEGER) and name not in keep
    ]
    return frame.astype(dict.fromkeys(whole, "int64")) if whole else frame


def stored_dtypes(frame: pd.DataFrame) -> dict[str, str]:
    """The dtype each column held narrower than validated stands for (``frame.attrs``, set by
    :func:`~trainflow.data.validate.validate_cast`): ``{"p0": "float64", "label": "int64"}``."""
    return dict(frame.attrs.get(STORED_DTYPES, {}))


def as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every column in the dtype it stands for (:func:`stored_dtypes`), without
    the record: the values the schema's coercion and :func:`cast_integers` would have given."""
    dtypes = {name: dtype for name, dtype in stored_dtypes(frame).items() if name in frame.columns}
    out = frame.astype(dtypes) if dtypes else frame.copy(deep=False)
    out.attrs = {}
    return out


def describe_schema(schema: pa.DataFrameSchema) -> list[str]:
    """The checks a schema runs, one line per run of columns with the same checks (for report.json)."""
    names = ", ".join(_runs(list(schema.columns)))
    if schema.strict == "filter":
        lines = [f"columns: {names} present (others dropped)"]
    else:
        lines = [f"columns: exactly {names}" + (" in this order" if schema.ordered else "")]
    lines += [f"table: {check.name}" for check in schema.checks]
    groups: list[tuple[list[str], str]] = []
    for name, column in schema.columns.items():
        kind = ["number"] if column.dtype is not None else []
        checks = [*kind, "not_nullable", *(check.name for check in column.checks)]
        signature = ", ".join(checks)
        if groups and groups[-1][1] == signature:
            groups[-1][0].append(name)
        else:
            groups.append(([name], signature))
    lines += [f"{', '.join(_runs(names))}: {signature}" for names, signature in groups]
    return lines


def _runs(names: list[str]) -> list[str]:
    """Names with runs like ``pixel_0, pixel_1, ..., pixel_63`` shortened to ``pixel_0..pixel_63``."""
    out: list[str] = []
    run: list[str] = []

    def close() -> None:
        out.extend([f"{run[0]}..{run[-1]}"] if len(run) > 2 else run)
        run.clear()

    for name in names:
        if run and _successor(run[-1]) == name:
            run.append(name)
        else:
            close()
            run.append(name)
    close()
    return out


def _successor(name: str) -> str | None:
    """``pixel_7`` -> ``pixel_8``; None for a name that does not end in a number."""
    prefix = name.rstrip("0123456789")
    digits = name[len(prefix) :]
    return f"{prefix}{int(digits) + 1}" if digits else None
