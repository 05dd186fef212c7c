"""Window forecasting models: ``[N, context, F]`` inputs to ``[N, horizon]`` scaled forecasts.

Every model forecasts relative to the last observed (forward-filled) value of the window, as
NLinear does: it subtracts that level from the value channel and adds it back to the output,
so a model with zero weights is the naive forecast and a level shift between train and test
does not move the inputs out of the range seen in training.

- :class:`LinearWindow`: NLinear (one linear map from the context to the horizon) or DLinear
  (a moving-average trend and the remainder, each mapped linearly), plus a linear map of the
  season features at the origin (the phase the forecast starts from).
- :class:`WindowMLP`: an MLP on the flattened window.
- :class:`WindowGRU`: a GRU over the window, its last state mapped to the horizon.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainflow.forecasting.encoders import FEATURES

VALUE = FEATURES.index("value")
SEASON = [FEATURES.index("season_sin"), FEATURES.index("season_cos")]


def _level(x: torch.Tensor) -> torch.Tensor:
    """The last value of the window's value channel, ``[N, 1]``."""
    return x[:, -1, VALUE : VALUE + 1]


def _relative(x: torch.Tensor) -> torch.Tensor:
    """The window with the value channel taken relative to its last value."""
    values = x[:, :, VALUE] - x[:, -1:, VALUE]
    return torch.cat([values.unsqueeze(-1), x[:, :, VALUE + 1 :]], dim=-1)


class LinearWindow(nn.Module):
    """NLinear / DLinear over the value channel, with the origin's season phase as extra input."""

    def __init__(self, config: Any, *, context: int = 104, horizon: int = 52, **_: Any) -> None:
        super().__init__()
        self.kind = config.kind
        self.kernel = config.trend_window
        self.value = nn.Linear(context, horizon)
        self.trend = nn.Linear(context, horizon) if self.kind == "dlinear" else None
        self.season = nn.Linear(len(SEASON), horizon)
        for layer in (self.value, self.trend, self.season):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = x[:, :, VALUE] - x[:, -1:, VALUE]
        phase = self.season(x[:, -1, SEASON])
        if self.trend is None:
            return _level(x) + self.value(values) + phase
        padded = torch.cat(
            [values[:, :1].expand(-1, self.kernel // 2), values, values[:, -1:].expand(-1, self.kernel // 2)], 1
        )
        trend = padded.unfold(1, self.kernel, 1).mean(-1)[:, : values.shape[1]]
        return _level(x) + self.trend(trend) + self.value(values - trend) + phase


class WindowMLP(nn.Module):
    """An MLP from the flattened relative window to the horizon."""

    def __init__(
        self, config: Any, *, context: int = 104, horizon: int = 52, in_features: int = len(FEATURES), **_: Any
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = context * in_features
        for size in config.hidden_sizes:
            layers += [nn.Linear(width, size), nn.GELU(), nn.Dropout(config.dropout)]
            width = size
        layers.append(nn.Linear(width, horizon))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _level(x) + self.net(_relative(x).flatten(1))


class WindowGRU(nn.Module):
    """A GRU over the relative window; its last hidden state maps to the horizon."""

    def __init__(self, config: Any, *, horizon: int = 52, in_features: int = len(FEATURES), **_: Any) -> None:
        super().__init__()
        self.gru = nn.GRU(in_features, config.hidden_size, num_layers=config.num_layers, batch_first=True)
        self.head = nn.Linear(config.hidden_size, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(_relative(x))
        return _level(x) + self.head(states[:, -1])
