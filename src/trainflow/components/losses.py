"""Config classes of the built-in losses (``loss.name``), each bound to the task it fits.

Implementations in trainflow.losses. Config validation refuses a loss whose task is not the
data set's (cross-entropy on a regression), before any stage runs.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.components.base import CLASSIFICATION, REGRESSION, STRICT, ComponentConfig

IMPLEMENTATION = "trainflow.losses"


@dataclass(frozen=True, config=STRICT)
class CrossEntropyConfig(ComponentConfig):
    name: str = "cross_entropy"
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0


@dataclass(frozen=True, config=STRICT)
class RegressionLossConfig(ComponentConfig):
    name: str = "mse"
    reduction: Literal["mean", "sum"] = "mean"


@dataclass(frozen=True, config=STRICT)
class HuberConfig(ComponentConfig):
    name: str = "huber"
    delta: Annotated[float, Field(gt=0)] = 1.0


registry.losses.declare("cross_entropy", CrossEntropyConfig, f"{IMPLEMENTATION}:cross_entropy", CLASSIFICATION)
registry.losses.declare("mse", RegressionLossConfig, f"{IMPLEMENTATION}:mse", REGRESSION)
registry.losses.declare("l1", RegressionLossConfig, f"{IMPLEMENTATION}:l1", REGRESSION)
registry.losses.declare("huber", HuberConfig, f"{IMPLEMENTATION}:huber", REGRESSION)
