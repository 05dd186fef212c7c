"""A small convolutional network for small single-channel images such as 8x8 digits.

Rows arrive as flat feature vectors; the CNN reshapes them to ``image_shape`` (C, H, W) given
by the data set, so the same prepared data feeds the MLP and the CNN.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainflow.components.models import CNNConfig
from trainflow.errors import ConfigError

__all__ = ["CNN", "CNNConfig"]


class CNN(nn.Module):
    """conv(3x3, same padding) -> ReLU per entry of ``channels``, then global average pooling
    and a two-layer head. Padding keeps the spatial size, so any image size works."""

    def __init__(
        self, config: CNNConfig, in_features: int, num_outputs: int, image_shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__()
        if image_shape is None or len(image_shape) != 3 or math.prod(image_shape) != in_features:
            raise ConfigError(
                f"model.name: cnn needs a data set of images (channels, height, width), got "
                f"image_shape={image_shape} for {in_features} features; use model.name: mlp for tabular data"
            )
        self.image_shape = tuple(image_shape)
        layers: list[nn.Module] = []
        channels = image_shape[0]
        for out_channels in config.channels:
            layers += [nn.Conv2d(channels, out_channels, config.kernel_size, padding="same"), nn.ReLU()]
            channels = out_channels
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        head: list[nn.Module] = [nn.Linear(channels, config.hidden_size), nn.ReLU()]
        if config.dropout:
            head.append(nn.Dropout(config.dropout))
        head.append(nn.Linear(config.hidden_size, num_outputs))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.image_shape)
        return self.head(self.features(x))
