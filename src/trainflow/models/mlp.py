"""A multi-layer perceptron: Linear -> activation -> dropout, repeated, then a linear head."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch import nn

from trainflow import registry
from trainflow.config import STRICT, ComponentConfig, PositiveInt

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


@dataclass(frozen=True, config=STRICT)
class MLPConfig(ComponentConfig):
    name: str = "mlp"
    hidden_sizes: tuple[PositiveInt, ...] = (256, 256)
    activation: Literal["relu", "gelu", "tanh"] = "relu"
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


@registry.models.register("mlp", MLPConfig)
class MLP(nn.Module):
    """Flattens its input, so it also takes image-shaped batches."""

    def __init__(
        self, config: MLPConfig, in_features: int, num_outputs: int, image_shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for hidden in config.hidden_sizes:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[config.activation]()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            width = hidden
        layers.append(nn.Linear(width, num_outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
