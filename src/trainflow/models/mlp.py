"""A multi-layer perceptron: Linear -> activation -> dropout, repeated, then a linear head."""

from __future__ import annotations

import torch
from torch import nn

from trainflow.components.models import MLPConfig

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}

__all__ = ["MLP", "MLPConfig"]


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
