"""Checks of a whole experiment that no single section can make alone.

:func:`check_experiment` (run by every resolve) refuses what a stage would refuse later from
the config alone: a loss or metric that does not fit the data set's task, an image model on
a table, a monitor the run does not compute. :func:`check_machine` adds what depends on this machine (fp16 or a CUDA
device without CUDA); it imports torch only when the config asks for CUDA, so the default
experiment is checked with pydantic alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from trainflow import registry
from trainflow.components.base import FORECASTING
from trainflow.components.datasets import dataset_task
from trainflow.config_sections import CheckpointConfig, Config
from trainflow.errors import ConfigError


@dataclass(frozen=True)
class Origin:
    """Where each key's value came from, for error messages: the params file, unless a
    command-line override set that key (or a key inside or around it)."""

    source: str = "params"
    overrides: Mapping[str, str] = field(default_factory=dict)  # dotted key -> ``key=value`` as given

    def of(self, key: str) -> str:
        """``"params.yaml"`` or ``"override train.max_epochs=0"`` for the dotted ``key``."""
        for overridden, text in reversed(list(self.overrides.items())):
            if key == overridden or key.startswith(overridden + ".") or overridden.startswith(key + "."):
                return f"override {text}"
        return self.source

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError ``"<origin>: <key>: <message>"``."""
        return ConfigError(f"{self.of(key)}: {key}: {message}")


def computed_metrics(config: Config) -> list[str]:
    """The values a run of ``config`` logs per epoch, which a monitor may name."""
    return ["train/loss", "val/loss", *(f"val/{name}" for name in config.metrics)]


def check_experiment(config: Config, origin: Origin) -> None:
    """Refuse a loss or metric that does not fit the data set's task, and a monitor the run
    does not compute (the checkpoint monitor's default, ``val/accuracy``, is allowed: a run
    without accuracy picks its best epoch by ``val/loss``)."""
    task = dataset_task(config.dataset)
    problem = config.dataset.protocol_problem() if hasattr(config.dataset, "protocol_problem") else None
    if problem is not None:
        raise origin.error(*problem)
    if task is not None:
        model = registry.models.get(config.model.name)
        if (task == FORECASTING) != (model.task == FORECASTING):
            kind = "window (forecasting)" if model.task == FORECASTING else "table or image"
            valid = ", ".join(
                n
                for n in registry.models.names()
                if (registry.models.get(n).task == FORECASTING) == (task == FORECASTING)
            )
            raise origin.error(
                "model.name", f"{model.name!r} is a {kind} model but the data set is {task}; valid: {valid} (or auto)"
            )
        loss = registry.losses.get(config.loss.name)
        if not loss.fits(task):
            valid = ", ".join(name for name in registry.losses.names() if registry.losses.get(name).fits(task))
            raise origin.error(
                "loss.name", f"{loss.name!r} is a {loss.task} loss but the data set is {task}; valid: {valid}"
            )
        for name in config.metrics:
            metric = registry.metrics.get(name, key="metrics")
            if not metric.fits(task):
                valid = ", ".join(n for n in registry.metrics.names() if registry.metrics.get(n).fits(task))
                raise origin.error(
                    "metrics",
                    f"{name!r} is a {metric.task} metric but the data set is {task}; valid for {task}: {valid}",
                )
    if getattr(config.model, "needs_images", False) and getattr(config.dataset, "images", True) is False:
        raise origin.error(
            "model.name",
            f"{config.model.name} needs a data set of images (channels, height, width) and dataset "
            f"{config.dataset.name} holds feature rows; use model.name: mlp for tabular data",
        )
    known = computed_metrics(config)
    stopping, checkpoint, default = config.train.early_stopping, config.train.checkpoint, CheckpointConfig()
    if stopping.patience and stopping.monitor not in known:
        raise origin.error(
            "train.early_stopping.monitor",
            f"{stopping.monitor!r} is not computed by this run; valid: {', '.join(known)}",
        )
    if checkpoint.monitor not in known and (checkpoint.monitor, checkpoint.mode) != (default.monitor, default.mode):
        raise origin.error(
            "train.checkpoint.monitor", f"{checkpoint.monitor!r} is not computed by this run; valid: {', '.join(known)}"
        )


def cuda_devices() -> int:
    """How many CUDA devices torch sees here, 0 without CUDA (imports torch)."""
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def check_machine(config: Config, origin: Origin) -> None:
    """Refuse what needs CUDA on a machine without it: ``train.device: cuda``, fp16 precision
    (it needs a gradient scaler) and the nccl backend, as the train stage would."""
    train = config.train
    backend = train.distributed.backend
    if not (train.precision == "fp16" or train.device.startswith("cuda") or backend == "nccl"):
        return
    count = cuda_devices()
    cuda = count > 0
    device = ("cuda" if cuda else "cpu") if train.device == "auto" else train.device
    kind, _, index = device.partition(":")
    if kind == "cuda" and not cuda:
        raise origin.error("train.device", f"{device!r} needs a CUDA device and this machine has none; use auto or cpu")
    if kind == "cuda" and index.isdigit() and int(index) >= count:
        raise origin.error(
            "train.device", f"{device!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}"
        )
    if train.precision == "fp16" and kind != "cuda":
        raise origin.error(
            "train.precision",
            f"fp16 needs a CUDA device (it uses a gradient scaler), this run is on {kind}; use bf16 or fp32",
        )
    if backend == "nccl" and not cuda:
        raise origin.error(
            "train.distributed.backend", f"nccl needs CUDA devices, this run is on {kind}; use gloo or auto"
        )
