"""What every component config shares: strict frozen pydantic dataclasses with a ``name``.

Kept apart from :mod:`trainflow.config` so that the component config modules and the
experiment config can both build on it without importing each other.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass

STRICT = ConfigDict(extra="forbid")

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]
Task = Literal["classification", "regression", "forecasting"]
CLASSIFICATION: Task = "classification"
REGRESSION: Task = "regression"
FORECASTING: Task = "forecasting"


@dataclass(frozen=True, config=STRICT)
class ComponentConfig:
    """Base of every registered component's config: ``name`` selects the component."""

    name: str
