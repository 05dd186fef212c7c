"""Collectives for the Trainer, each bounded by the process group's timeout; all of them are
no-ops in a single process.

:func:`reduce_sum` (loss sums), :func:`count_true` (stop decisions), :func:`run_on_main` and
:func:`broadcast_object` (the resumed checkpoint), :func:`first_object` (a stop reason),
:func:`sync_buffers` (BatchNorm statistics), and :func:`wrap_model` (DDP).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from trainflow.errors import TrainflowError
from trainflow.training.distributed.group import (
    collective_device,
    get_world_size,
    is_distributed,
    is_main_process,
    main_rank,
)

T = TypeVar("T")


def reduce_sum(value: torch.Tensor | int) -> torch.Tensor | int:
    """The sum of ``value`` over all processes (an int stays an int); ``value`` itself in one process."""
    if not is_distributed():
        return value
    device = collective_device()
    if isinstance(value, torch.Tensor):
        total = value.detach().to(device, copy=True)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total.to(value.device)
    total = torch.tensor(int(value), dtype=torch.int64, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return int(total.item())


def count_true(*flags: bool) -> tuple[int, ...]:
    """For each flag, how many processes have it set (one small all-reduce for all flags)."""
    if not is_distributed():
        return tuple(int(flag) for flag in flags)
    counts = torch.tensor([int(flag) for flag in flags], dtype=torch.int64, device=collective_device())
    dist.all_reduce(counts, op=dist.ReduceOp.SUM)
    return tuple(int(count) for count in counts.tolist())


def broadcast_object(value: Any, src: int | None = None) -> Any:
    """The main process's ``value`` (or rank ``src``'s), on every process. Pickled in memory
    between this job's own processes; never used for files."""
    if not is_distributed():
        return value
    box = [value]
    device = collective_device() if dist.get_backend() == "nccl" else None
    dist.broadcast_object_list(box, src=main_rank() if src is None else src, device=device)
    return box[0]


def run_on_main(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` evaluated on the main process alone; its result, or the
    :class:`TrainflowError` it raised, reaches every process (e.g. which checkpoint to resume:
    the main process's files decide, even on nodes that cannot see them)."""
    if not is_distributed():
        return fn(*args, **kwargs)
    result: Any = None
    error: TrainflowError | None = None
    if is_main_process():
        try:
            result = fn(*args, **kwargs)
        except TrainflowError as raised:
            error = raised
    result, error = broadcast_object((result, error))
    if error is not None:
        raise error
    return result


def first_object(value: Any) -> Any:
    """The first non-None ``value`` in rank order, on every process (None when all are None)."""
    if not is_distributed():
        return value
    values: list[Any] = [None] * get_world_size()
    dist.all_gather_object(values, value)
    return next((item for item in values if item is not None), None)


def sync_buffers(module: nn.Module) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) to every process, so that all
    evaluate the model rank 0 saves. Nothing to send for a model without buffers."""
    if not is_distributed():
        return
    device = collective_device()
    for buffer in module.buffers():
        if buffer.device == device:
            dist.broadcast(buffer, src=0)
        else:
            staged = buffer.detach().to(device)
            dist.broadcast(staged, src=0)
            buffer.copy_(staged)


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in ``DistributedDataParallel`` when a group is active (else ``model`` itself).

    A model the user already wrapped, or one without trainable parameters, is returned as is.
    """
    from torch.nn.parallel import DistributedDataParallel

    if not is_distributed() or isinstance(model, DistributedDataParallel):
        return model
    if not any(p.requires_grad for p in model.parameters()):
        return model
    if device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[device.index], output_device=device.index)
    return DistributedDataParallel(model)
