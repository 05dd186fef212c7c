"""Optimizers (``train.optimizer.name``) and learning-rate schedulers (``train.scheduler.name``).

Optimizers are built as ``registry.optimizers.build(cfg, params=model.parameters())``.
Schedulers are built as ``registry.schedulers.build(cfg, optimizer=..., steps_per_epoch=...,
max_epochs=..., interval="epoch"|"step")``; their length is counted in the unit they are
stepped in (``train.scheduler_interval``). ``none`` gives no scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.lr_scheduler import LRScheduler

from trainflow.components.optimizers import (
    AdamConfig,
    AdamWConfig,
    CosineConfig,
    LinearWarmupConfig,
    NoSchedulerConfig,
    OneCycleConfig,
    SGDConfig,
    StepConfig,
)

__all__ = [
    "AdamConfig",
    "AdamWConfig",
    "CosineConfig",
    "LinearWarmupConfig",
    "NoSchedulerConfig",
    "OneCycleConfig",
    "SGDConfig",
    "StepConfig",
]
Params = Iterable[torch.nn.Parameter] | Iterable[dict]


def adam(config: AdamConfig, params: Params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


def adamw(config: AdamWConfig, params: Params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


def sgd(config: SGDConfig, params: Params) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )


# --- schedulers -------------------------------------------------------------------------------


def _length(steps_per_epoch: int, max_epochs: int, interval: str) -> int:
    """How many times the scheduler will be stepped over the whole run."""
    return max(1, max_epochs * steps_per_epoch if interval == "step" else max_epochs)


def no_scheduler(config: NoSchedulerConfig, optimizer: torch.optim.Optimizer, **_: object) -> None:
    return None


def cosine(
    config: CosineConfig,
    optimizer: torch.optim.Optimizer,
    steps_per_epoch: int,
    max_epochs: int,
    interval: str = "epoch",
) -> LRScheduler:
    total = _length(steps_per_epoch, max_epochs, interval)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=config.eta_min)


def step(config: StepConfig, optimizer: torch.optim.Optimizer, **_: object) -> LRScheduler:
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)


def onecycle(
    config: OneCycleConfig,
    optimizer: torch.optim.Optimizer,
    steps_per_epoch: int,
    max_epochs: int,
    interval: str = "step",
) -> LRScheduler:
    total = _length(steps_per_epoch, max_epochs, interval)
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.max_lr, total_steps=total, pct_start=config.pct_start
    )


def linear_warmup(config: LinearWarmupConfig, optimizer: torch.optim.Optimizer, **_: object) -> LRScheduler:
    return torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=config.start_factor, end_factor=1.0, total_iters=max(1, config.warmup)
    )
