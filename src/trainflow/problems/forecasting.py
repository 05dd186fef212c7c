"""The forecasting problem type: window batches, a masked loss, scaled multi-step outputs.

Batches are ``(x, y)`` like any supervised batch, so the Trainer's loaders, DDP sharding and
resume need nothing new: ``x [N, context, F]`` encoded windows and ``y [N, horizon]`` scaled
targets with NaN where a target step is missing or lies outside the window's span (see
:mod:`trainflow.forecasting.windows`). The loss and the metrics see the observed target steps
only (the mask is ``~isnan(y)``), so a missing week, or one outside the span, never moves the
weights or a score; no NaN reaches the criterion.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from trainflow.problems.base import Problem, ProblemConfig

MaskedLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def observed(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(targets with NaN as 0, mask of the observed steps)``."""
    mask = ~torch.isnan(targets)
    return torch.where(mask, targets, torch.zeros_like(targets)), mask


class ForecastingProblem(Problem):
    """``criterion(model(x), y, mask)``: a masked loss of the scaled forecasts."""

    def __init__(self, config: ProblemConfig | None = None, *, criterion: MaskedLoss) -> None:
        self.config = config
        self.criterion = criterion

    def compute_loss(self, model: Callable[[Any], Any], batch: Any) -> tuple[torch.Tensor, Any]:
        inputs, targets = batch
        outputs = model(inputs)
        filled, mask = observed(targets)
        return self.criterion(outputs, filled, mask), outputs

    def metric_inputs(self, outputs: Any, batch: Any) -> tuple[Any, Any]:
        mask = ~torch.isnan(batch[1])
        return outputs[mask], batch[1][mask]

    def batch_size(self, batch: Any) -> int:
        return int((~torch.isnan(batch[1])).sum())
