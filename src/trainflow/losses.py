"""Losses selected by ``loss.name``: cross-entropy for classification; MSE, L1, Huber for regression.

Regression models output ``[N, 1]``; the regression losses flatten it to match ``[N]`` targets.
"""

from __future__ import annotations

import torch
from torch import nn

from trainflow.components.base import Task
from trainflow.components.losses import CrossEntropyConfig, HuberConfig, RegressionLossConfig
from trainflow.errors import ConfigError

__all__ = [
    "CrossEntropyConfig",
    "FlatRegressionLoss",
    "HuberConfig",
    "RegressionLossConfig",
    "cross_entropy",
    "huber",
    "l1",
    "mse",
]


def _require_task(name: str, wanted: Task, task: Task) -> None:
    if task != wanted:
        valid = "cross_entropy" if task == "classification" else "mse, l1, huber"
        raise ConfigError(f"loss.name: {name!r} is a {wanted} loss but the data set is {task}; valid: {valid}")


def cross_entropy(config: CrossEntropyConfig, task: Task = "classification") -> nn.Module:
    _require_task(config.name, "classification", task)
    return nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)


class FlatRegressionLoss(nn.Module):
    """Applies ``loss`` to ``output.reshape(-1)`` so ``[N, 1]`` outputs match ``[N]`` targets."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(output.reshape(-1), target.reshape(-1).to(output.dtype))


def mse(config: RegressionLossConfig, task: Task = "regression") -> nn.Module:
    _require_task(config.name, "regression", task)
    return FlatRegressionLoss(nn.MSELoss(reduction=config.reduction))


def l1(config: RegressionLossConfig, task: Task = "regression") -> nn.Module:
    _require_task(config.name, "regression", task)
    return FlatRegressionLoss(nn.L1Loss(reduction=config.reduction))


def huber(config: HuberConfig, task: Task = "regression") -> nn.Module:
    _require_task(config.name, "regression", task)
    return FlatRegressionLoss(nn.HuberLoss(delta=config.delta))
