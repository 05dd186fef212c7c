"""Device, DDP, precision and compile, resolved in one :func:`prepare` call (as Fabric's connector).

The Trainer asks one object where to run and how, so the loop itself never branches on the
hardware. :func:`prepare` settles everything in order:

1. process group: under torchrun (``WORLD_SIZE`` > 1) join it with the configured backend and
   collective timeout; one process does nothing here;
2. device: ``auto`` is CUDA when available, else CPU; under torchrun ``cuda`` is
   ``cuda:LOCAL_RANK``;
3. precision: ``fp32``; ``bf16`` (autocast on CPU and CUDA); ``fp16`` (autocast and a gradient
   scaler, CUDA only, else an error that names the way out);
4. compile: ``torch.compile`` options, applied to the model for evaluation and to the DDP
   wrapper during a fit (:meth:`Accelerator.training_forward`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from trainflow.errors import ConfigError
from trainflow.training import distributed

if TYPE_CHECKING:
    from trainflow.config import DistributedConfig

Precision = Literal["fp32", "bf16", "fp16"]
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Accelerator:
    """Where and how this process trains; built by :func:`prepare`."""

    world_size: int
    device: torch.device
    precision: Precision
    scaler: torch.amp.GradScaler | None
    compile_options: dict[str, Any] | None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context the forward pass runs in: autocast to bf16/fp16, or nothing for fp32."""
        dtype = AUTOCAST_DTYPES[self.precision]
        return contextlib.nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    def to_device(self, batch: Any) -> Any:
        """``batch`` with its tensors (in a tuple, list or dict) on the device; as is on CPU."""
        if self.device.type == "cpu":
            return batch
        if isinstance(batch, torch.Tensor):
            return batch.to(self.device, non_blocking=True)
        if isinstance(batch, Mapping):
            return {key: self.to_device(value) for key, value in batch.items()}
        if isinstance(batch, tuple | list):
            return type(batch)(self.to_device(item) for item in batch)
        return batch

    def forward(self, model: nn.Module) -> Callable[[Any], Any]:
        """What evaluation calls: the model, compiled when asked (no DDP collectives per batch)."""
        return model if self.compile_options is None else torch.compile(model, **self.compile_options)

    def training_forward(self, model: nn.Module, plain: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """What a fit's training steps call: ``plain`` (from :meth:`forward`) in one process,
        else a DDP wrapper of ``model`` (compiled when asked). It lives for one fit."""
        if self.world_size == 1:
            return plain
        wrapped = distributed.wrap_model(model, self.device)
        return wrapped if self.compile_options is None else torch.compile(wrapped, **self.compile_options)

    def place_metrics(self, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
        """``{"val": collection, "test": its clone}`` on the device (empty without metrics)."""
        if metrics is None:
            return {}
        from torchmetrics import MetricCollection

        collection = metrics if isinstance(metrics, MetricCollection) else MetricCollection(dict(metrics))
        return {"val": collection.to(self.device), "test": collection.clone().to(self.device)}

    def shard(self, loader: Any, *, train: bool, report: Callable[[str], None]) -> Any:
        """This process's share of ``loader`` (the loader itself in one process)."""
        return distributed.shard_loader(loader, train=train, report=report)


def prepare(
    *,
    device: str | torch.device = "auto",
    precision: Precision = "fp32",
    compile: bool | Mapping[str, Any] = False,
    settings: DistributedConfig | None = None,
) -> Accelerator:
    """Resolve process group, device, precision and compile, in that order (module docstring)."""
    world_size = distributed.setup(settings, device)  # 1. process group
    target = distributed.local_device(device)  # 2. device
    if precision not in AUTOCAST_DTYPES:  # 3. precision
        raise ConfigError(f"train.precision: must be fp32, bf16 or fp16, got {precision!r}")
    if precision == "fp16" and target.type != "cuda":
        raise ConfigError(
            f"train.precision: fp16 needs a CUDA device (it uses a gradient scaler), this run is on "
            f"{target.type}; use bf16 or fp32"
        )
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    options = (dict(compile) if isinstance(compile, Mapping) else {}) if compile else None  # 4. compile
    return Accelerator(world_size, target, precision, scaler, options)
