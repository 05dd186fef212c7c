"""Config classes of the built-in models (``model.name``); implementations in trainflow.models."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.components.base import STRICT, ComponentConfig, PositiveInt


@dataclass(frozen=True, config=STRICT)
class MLPConfig(ComponentConfig):
    """A multi-layer perceptron: a Linear -> activation -> dropout block per hidden size."""

    name: str = "mlp"
    hidden_sizes: tuple[PositiveInt, ...] = (256, 256)
    activation: Literal["relu", "gelu", "tanh"] = "relu"
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


@dataclass(frozen=True, config=STRICT)
class CNNConfig(ComponentConfig):
    """A small CNN for images: one conv block per entry of ``channels``, then a two-layer head."""

    needs_images: ClassVar[bool] = True
    name: str = "cnn"
    channels: tuple[PositiveInt, ...] = (16, 32)
    kernel_size: Annotated[int, Field(ge=1, le=7)] = 3
    hidden_size: PositiveInt = 64
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


registry.models.declare("mlp", MLPConfig, "trainflow.models.mlp:MLP")
registry.models.declare("cnn", CNNConfig, "trainflow.models.cnn:CNN")
