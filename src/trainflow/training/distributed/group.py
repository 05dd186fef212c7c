"""The process group torchrun asks for, and where this process is in it.

torchrun (``torch.distributed.run``) starts one process per device and tells each its place in
the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` or
the agent's store). :func:`setup` turns that into a process group with the configured backend
and collective timeout; with world size 1 it does nothing, so a single process pays nothing.

:func:`is_main_process` is the one process that writes files: local rank 0 of the node launched
with ``train.distributed.node_rank: 0`` (so checkpoints and stage outputs land where ``dvc
repro`` runs, whatever rank the c10d rendezvous gives that node), else rank 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from trainflow.errors import ConfigError
from trainflow.training.supervisor import die_with_parent

if TYPE_CHECKING:
    from trainflow.config import DistributedConfig

# Set by trainflow's launcher: the node's train.distributed.node_rank (picks the writing node).
NODE_RANK_ENV = "TRAINFLOW_NODE_RANK"
DEFAULT_TIMEOUT_S = 300.0

_writer_rank = 0  # the global rank of the main process, fixed by setup()
_created_here = False  # True when setup() initialised the group (so teardown() destroys it)


# ---------------------------------------------------------------------------------------------
# Where this process is


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def under_torchrun() -> bool:
    """True in a worker started by torchrun (or any launcher that sets ``LOCAL_RANK``)."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def restart_count() -> int:
    """How many times torchrun has restarted this worker group (0 on the first attempt)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))


def is_distributed() -> bool:
    """True when a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's global rank (from the group, else from ``RANK``; 0 in a single process)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def get_world_size() -> int:
    """The number of processes (from the group, else from ``WORLD_SIZE``; 1 in a single process)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return env_world_size()


def get_local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK``; 0 in a single process)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on the one process that writes checkpoints, logs and stage outputs."""
    return get_rank() == (_writer_rank if is_distributed() else 0)


def main_rank() -> int:
    """The global rank of the main process (see :func:`is_main_process`)."""
    return _writer_rank if is_distributed() else 0


# ---------------------------------------------------------------------------------------------
# Process group


def resolve_backend(backend: str, device: torch.device) -> str:
    """``auto`` -> ``nccl`` for CUDA devices, ``gloo`` otherwise; ``nccl`` without CUDA is an error."""
    if backend == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError(
            f"train.distributed.backend: nccl needs CUDA devices, this run is on {device.type}; use gloo or auto"
        )
    if backend not in ("nccl", "gloo"):
        raise ConfigError(f"train.distributed.backend: must be auto, nccl or gloo, got {backend!r}")
    return backend


def local_device(device: str | torch.device = "auto") -> torch.device:
    """The device this process trains on: ``auto`` is CUDA when available, else CPU; under
    torchrun a CUDA device without an index becomes ``cuda:LOCAL_RANK``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and env_world_size() > 1:
        device = torch.device("cuda", get_local_rank())
    return device


def setup(settings: DistributedConfig | None = None, device: str | torch.device = "auto") -> int:
    """Join the process group torchrun's environment describes; return the world size.

    Does nothing (and returns 1) unless ``WORLD_SIZE`` > 1. Uses ``settings.backend`` and
    ``settings.timeout_s`` (every collective fails after that long instead of hanging on a
    dead peer). A group that already exists (made by the user's script) is kept. Idempotent.
    """
    global _writer_rank, _created_here
    if env_world_size() <= 1 and not (dist.is_available() and dist.is_initialized()):
        return 1
    if not dist.is_initialized():
        target = local_device(device)
        backend = resolve_backend(settings.backend if settings else "auto", target)
        if target.type == "cuda":
            torch.cuda.set_device(target)
        timeout = timedelta(seconds=settings.timeout_s if settings else DEFAULT_TIMEOUT_S)
        if "TORCHELASTIC_RUN_ID" in os.environ:
            die_with_parent(signal.SIGKILL)  # a worker whose torchrun agent is gone is of no use
        dist.init_process_group(backend=backend, timeout=timeout)
        _created_here = True
        _writer_rank = _elect_writer()
    return dist.get_world_size()


def _elect_writer() -> int:
    """The lowest global rank that is local rank 0 on a node launched with node_rank 0."""
    world = dist.get_world_size()
    on_first_node = os.environ.get(NODE_RANK_ENV, "0") == "0"
    candidate = get_rank() if get_local_rank() == 0 and on_first_node else world
    value = torch.tensor([candidate], dtype=torch.int64, device=collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    rank = int(value.item())
    return rank if rank < world else 0


def teardown() -> None:
    """Destroy the process group if :func:`setup` created it (safe to call more than once).

    Call it once training is over on every process (the train stage does): a barrier first, so
    that no process leaves while another still talks to it. Not on the way out of an error: a
    barrier there would wait for peers that may never come.
    """
    global _created_here, _writer_rank
    if _created_here and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    _created_here = False
    _writer_rank = 0


@contextlib.contextmanager
def process_group(settings: DistributedConfig | None = None) -> Iterator[int]:
    """``with process_group(config.train.distributed) as world_size:``: setup, then teardown on
    success (after an error the process exits; a collective teardown could wait on a dead peer)."""
    world = setup(settings)
    yield world
    teardown()


def collective_device() -> torch.device:
    """Where collectives' tensors live: this process's CUDA device under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
