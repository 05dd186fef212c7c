"""The forecasting problem type: window batches, a masked loss, scaled multi-step outputs.

Batches are dicts ``{"x": [N, context, F], "y": [N, horizon], "mask": [N, horizon]}`` (see
:mod:`trainflow.forecasting.windows`); the loss and the metrics see the masked-in target steps
only, so a missing week, or one outside the window's span, never moves the weights or a score.
:class:`WindowBatches` feeds windows to the unchanged Trainer, reshuffled per epoch from a
seed (``set_epoch``) so that a resumed epoch sees the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch

from trainflow import registry
from trainflow.forecasting.losses import masked_mse
from trainflow.forecasting.windows import Windows
from trainflow.problems.base import Problem, ProblemConfig

MaskedLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@registry.problems.register("forecasting", ProblemConfig)
class ForecastingProblem(Problem):
    """``criterion(model(x), y, mask)``: a masked loss of the scaled forecasts."""

    def __init__(self, config: ProblemConfig | None = None, *, criterion: MaskedLoss = masked_mse) -> None:
        self.config = config
        self.criterion = criterion

    def compute_loss(self, model: Callable[[Any], Any], batch: Any) -> tuple[torch.Tensor, Any]:
        outputs = model(batch["x"])
        return self.criterion(outputs, batch["y"], batch["mask"]), outputs

    def metric_inputs(self, outputs: Any, batch: Any) -> tuple[Any, Any]:
        return outputs[batch["mask"]], batch["y"][batch["mask"]]

    def batch_size(self, batch: Any) -> int:
        return int(batch["mask"].sum())


class WindowBatches:
    """Dict batches of :class:`Windows`, shuffled per epoch from ``seed`` (or in order)."""

    def __init__(self, windows: Windows, batch_size: int, *, shuffle: bool = True, seed: int = 0) -> None:
        self.x = torch.from_numpy(windows.x)
        self.y = torch.from_numpy(windows.y)
        self.mask = torch.from_numpy(windows.mask)
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        if self.shuffle:
            order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(len(self.x))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield {"x": self.x[index], "y": self.y[index], "mask": self.mask[index]}
