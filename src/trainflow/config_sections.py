"""The sections of an experiment: one strict frozen pydantic dataclass each, with defaults.

Sections that select a component by name (``model``, ``loss``, ``train.optimizer``, ...) hold
the config class registered under that name; the built-in ones are declared by
:mod:`trainflow.components` (imported here), so ``Config()`` is the default experiment.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import Field, InstanceOf, model_validator
from pydantic.dataclasses import dataclass

import trainflow.components  # noqa: F401  (declares the built-in components)
from trainflow import registry
from trainflow.components.base import (
    STRICT,
    ComponentConfig,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
)


@dataclass(frozen=True, config=STRICT)
class DataConfig:
    """How the prepared data set is split (stratified by label, deterministic by ``seed``)."""

    val_fraction: Fraction = 0.15
    test_fraction: Fraction = 0.15

    @model_validator(mode="after")
    def _leaves_train_split(self) -> DataConfig:
        if self.val_fraction + self.test_fraction >= 0.95:
            raise ValueError(
                f"val_fraction + test_fraction must be < 0.95 to leave a train split "
                f"(got {self.val_fraction} + {self.test_fraction})"
            )
        return self


@dataclass(frozen=True, config=STRICT)
class EarlyStoppingConfig:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs (0 = off)."""

    monitor: str = "val/loss"
    mode: Literal["min", "max"] = "min"
    patience: NonNegativeInt = 5
    min_delta: NonNegativeFloat = 0.0


@dataclass(frozen=True, config=STRICT)
class CheckpointConfig:
    """When to write checkpoints and which to keep (the best by ``monitor``, the last, every Nth)."""

    monitor: str = "val/accuracy"
    mode: Literal["min", "max"] = "max"
    every_n_epochs: NonNegativeInt = 1
    every_n_steps: NonNegativeInt = 0
    keep_last: PositiveInt = 2
    keep_every_n_epochs: NonNegativeInt = 0


@dataclass(frozen=True, config=STRICT)
class DistributedConfig:
    """DDP through torchrun. One process runs in-process with no distributed overhead."""

    nproc_per_node: PositiveInt | Literal["auto"] = 1
    nnodes: PositiveInt = 1
    node_rank: NonNegativeInt = 0
    rdzv_endpoint: str = "127.0.0.1:29400"
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    timeout_s: Annotated[float, Field(gt=0)] = 300.0
    max_restarts: NonNegativeInt = 0


def _component_default(registry_name: str, name: str, **fields: Any) -> Any:
    """A default_factory that builds the registered config class for ``name``."""

    def build() -> Any:
        entry = getattr(registry, registry_name).get(name)
        return entry.config_class(name=name, **fields)

    return dataclasses.field(default_factory=build)


@dataclass(frozen=True, config=STRICT)
class TrainConfig:
    """The training loop. ``batch_size`` is per process; the global batch is it times world size."""

    max_epochs: PositiveInt = 30
    batch_size: PositiveInt = 32
    optimizer: InstanceOf[ComponentConfig] = _component_default("optimizers", "adam")
    scheduler: InstanceOf[ComponentConfig] = _component_default("schedulers", "none")
    scheduler_interval: Literal["epoch", "step"] = "epoch"
    early_stopping: EarlyStoppingConfig = dataclasses.field(default_factory=EarlyStoppingConfig)
    checkpoint: CheckpointConfig = dataclasses.field(default_factory=CheckpointConfig)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    grad_accum_steps: PositiveInt = 1
    clip_grad_norm: NonNegativeFloat = 0.0
    clip_grad_value: NonNegativeFloat = 0.0
    loader: Literal["memory", "dataloader"] = "memory"
    num_workers: NonNegativeInt = 0
    threads: NonNegativeInt = 1
    deterministic: bool = True
    compile: bool = False
    device: str = "auto"
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)


@dataclass(frozen=True, config=STRICT)
class UploadConfig:
    """Where result packages go: ``s3://bucket/prefix`` or a local ``file://`` folder."""

    target: str = "file://uploads"

    @model_validator(mode="after")
    def _known_scheme(self) -> UploadConfig:
        if not self.target.startswith(("s3://", "file://")):
            raise ValueError(f"target must start with s3:// or file:// (got {self.target!r})")
        return self


@dataclass(frozen=True, config=STRICT)
class PackageConfig:
    """What the package stage adds to the result package: ``export`` lists the formats the
    model is also shipped in (``onnx``: ``model.onnx``, ``torchscript``: ``model.torchscript.pt``,
    both taking raw features as ``trainflow export`` writes them)."""

    export: tuple[Literal["onnx", "torchscript"], ...] = ()

    @model_validator(mode="after")
    def _each_format_once(self) -> PackageConfig:
        if len(set(self.export)) != len(self.export):
            raise ValueError(f"export lists a format twice (got {list(self.export)})")
        return self


@dataclass(frozen=True, config=STRICT)
class RetrainConfig:
    """Acceptance rule for retraining: ``metric`` (a dotted key of metrics/eval.json) may drop
    by at most ``max_drop`` against the last accepted model (rise, for ``mode: min``)."""

    metric: str = "test.accuracy"
    mode: Literal["min", "max"] = "max"
    max_drop: NonNegativeFloat = 0.0


@dataclass(frozen=True, config=STRICT)
class Config:
    """The whole experiment. Every field has a default, so ``Config()`` is a valid experiment."""

    seed: NonNegativeInt = 42
    imports: tuple[str, ...] = ()
    dataset: InstanceOf[ComponentConfig] = _component_default("datasets", "digits")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    encoder: InstanceOf[ComponentConfig] = _component_default("encoders", "standard")
    model: InstanceOf[ComponentConfig] = _component_default("models", "mlp")
    loss: InstanceOf[ComponentConfig] = _component_default("losses", "cross_entropy")
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    metrics: tuple[str, ...] = ("accuracy", "f1_macro")
    loggers: tuple[str, ...] = ("tensorboard", "csv", "json")
    package: PackageConfig = dataclasses.field(default_factory=PackageConfig)
    upload: UploadConfig = dataclasses.field(default_factory=UploadConfig)
    retrain: RetrainConfig = dataclasses.field(default_factory=RetrainConfig)


# Sections that select a registered component: dotted key -> (registry, default name).
COMPONENTS: dict[str, tuple[str, str]] = {
    "dataset": ("datasets", "digits"),
    "encoder": ("encoders", "standard"),
    "model": ("models", "mlp"),
    "loss": ("losses", "cross_entropy"),
    "train.optimizer": ("optimizers", "adam"),
    "train.scheduler": ("schedulers", "none"),
}
# Lists of registered names: dotted key -> registry.
NAME_LISTS: dict[str, str] = {"metrics": "metrics", "loggers": "loggers"}
# Keys that may change between an interrupted run and its resume (dwi_ml's new_max_epochs,
# new_patience), plus sections that do not affect the trained weights.
# The world size may change too: checkpoints hold no rank-specific state.
RESUMABLE_KEYS = (
    "train.max_epochs",
    "train.early_stopping.patience",
    *(f"train.distributed.{key}" for key in DistributedConfig.__dataclass_fields__),
)
SHIPPING_SECTIONS = ("package", "upload", "retrain")
NON_TRAINING_SECTIONS = (*SHIPPING_SECTIONS, "metrics", "loggers")
