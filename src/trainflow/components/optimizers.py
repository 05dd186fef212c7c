"""Config classes of the built-in optimizers (``train.optimizer.name``) and learning-rate
schedulers (``train.scheduler.name``); implementations in trainflow.optimizers."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.components.base import STRICT, ComponentConfig, NonNegativeFloat, NonNegativeInt, PositiveInt

IMPLEMENTATION = "trainflow.optimizers"
LearningRate = Annotated[float, Field(gt=0)]
Beta = Annotated[float, Field(ge=0, lt=1)]


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


for _name, _config_class in (("adam", AdamConfig), ("adamw", AdamWConfig), ("sgd", SGDConfig)):
    registry.optimizers.declare(_name, _config_class, f"{IMPLEMENTATION}:{_name}")
for _name, _target, _config_class in (
    ("none", "no_scheduler", NoSchedulerConfig),
    ("cosine", "cosine", CosineConfig),
    ("step", "step", StepConfig),
    ("onecycle", "onecycle", OneCycleConfig),
    ("linear_warmup", "linear_warmup", LinearWarmupConfig),
):
    registry.schedulers.declare(_name, _config_class, f"{IMPLEMENTATION}:{_target}")
