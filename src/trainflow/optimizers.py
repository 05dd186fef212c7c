"""Optimizers (``train.optimizer.name``) and learning-rate schedulers (``train.scheduler.name``).

Optimizers are built as ``registry.optimizers.build(cfg, params=model.parameters())``.
Schedulers are built as ``registry.schedulers.build(cfg, optimizer=..., steps_per_epoch=...,
max_epochs=..., interval="epoch"|"step")``; their length is counted in the unit they are
stepped in (``train.scheduler_interval``). ``none`` gives no scheduler.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch.optim.lr_scheduler import LRScheduler

from trainflow import registry
from trainflow.config import STRICT, ComponentConfig, NonNegativeFloat, NonNegativeInt, PositiveInt

LearningRate = Annotated[float, Field(gt=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]
Params = Iterable[torch.nn.Parameter] | Iterable[dict]


@dataclass(frozen=True, config=STRICT)
class AdamConfig(ComponentConfig):
    name: str = "adam"
    lr: LearningRate = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: Annotated[float, Field(gt=0)] = 1e-8
    weight_decay: NonNegativeFloat = 0.0


@dataclass(frozen=True, config=STRICT)
class AdamWConfig(AdamConfig):
    name: str = "adamw"
    weight_decay: NonNegativeFloat = 0.01


@dataclass(frozen=True, config=STRICT)
class SGDConfig(ComponentConfig):
    name: str = "sgd"
    lr: LearningRate = 0.01
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = False
    weight_decay: NonNegativeFloat = 0.0


@registry.optimizers.register("adam", AdamConfig)
def adam(config: AdamConfig, params: Params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


@registry.optimizers.register("adamw", AdamWConfig)
def adamw(config: AdamWConfig, params: Params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


@registry.optimizers.register("sgd", SGDConfig)
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


@dataclass(frozen=True, config=STRICT)
class NoSchedulerConfig(ComponentConfig):
    name: str = "none"


@dataclass(frozen=True, config=STRICT)
class CosineConfig(ComponentConfig):
    name: str = "cosine"
    eta_min: NonNegativeFloat = 0.0


@dataclass(frozen=True, config=STRICT)
class StepConfig(ComponentConfig):
    name: str = "step"
    step_size: PositiveInt = 10
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1


@dataclass(frozen=True, config=STRICT)
class OneCycleConfig(ComponentConfig):
    name: str = "onecycle"
    max_lr: LearningRate = 0.01
    pct_start: Annotated[float, Field(gt=0, lt=1)] = 0.3


@dataclass(frozen=True, config=STRICT)
class LinearWarmupConfig(ComponentConfig):
    name: str = "linear_warmup"
    warmup: NonNegativeInt = 5
    start_factor: Annotated[float, Field(gt=0, le=1)] = 0.1


@registry.schedulers.register("none", NoSchedulerConfig)
def no_scheduler(config: NoSchedulerConfig, optimizer: torch.optim.Optimizer, **_: object) -> None:
    return None


@registry.schedulers.register("cosine", CosineConfig)
def cosine(
    config: CosineConfig,
    optimizer: torch.optim.Optimizer,
    steps_per_epoch: int,
    max_epochs: int,
    interval: str = "epoch",
) -> LRScheduler:
    total = _length(steps_per_epoch, max_epochs, interval)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=config.eta_min)


@registry.schedulers.register("step", StepConfig)
def step(config: StepConfig, optimizer: torch.optim.Optimizer, **_: object) -> LRScheduler:
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)


@registry.schedulers.register("onecycle", OneCycleConfig)
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


@registry.schedulers.register("linear_warmup", LinearWarmupConfig)
def linear_warmup(config: LinearWarmupConfig, optimizer: torch.optim.Optimizer, **_: object) -> LRScheduler:
    return torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=config.start_factor, end_factor=1.0, total_iters=max(1, config.warmup)
    )
