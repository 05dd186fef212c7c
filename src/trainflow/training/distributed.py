"""DDP plumbing for the Trainer: the process group torchrun asks for, ranks, collectives, sharding.

torchrun (``torch.distributed.run``) starts one process per device and tells each its place in
the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` or
the agent's store). :func:`setup` turns that into a process group with the configured backend
and collective timeout; everything else here is a no-op in a single process, so a run with
world size 1 pays nothing and computes the same bits as before.

* Ranks: :func:`get_rank`, :func:`get_world_size`, :func:`get_local_rank`, and
  :func:`is_main_process`, the one process that writes files. That is local rank 0 of the node
  launched with ``train.distributed.node_rank: 0`` (so checkpoints and stage outputs land
  where ``dvc repro`` runs, whatever rank the c10d rendezvous gives that node), else rank 0.
* Collectives, each bounded by the process group's timeout: :func:`reduce_sum`,
  :func:`count_true` (stop decisions), :func:`run_on_main` and :func:`broadcast_object` (the
  resumed checkpoint), :func:`first_object`, :func:`sync_buffers`.
* Sharding: :func:`shard_loader` gives each process its part of a loader. Training loaders
  are padded by wrapping around (as ``DistributedSampler`` does), so every process runs the
  same number of steps and no collective waits for a process that ran out of batches.
  Evaluation loaders are split without padding, so each sample is counted exactly once and
  the synced metrics equal a single process's.
* :func:`wrap_model` puts the model in ``DistributedDataParallel``.

Batch size is per process: the global batch is ``batch_size x world size``.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from trainflow.errors import ConfigError, TrainflowError
from trainflow.training.loaders import InMemoryLoader

if TYPE_CHECKING:
    from trainflow.config import DistributedConfig

T = TypeVar("T")

# Set by trainflow's launcher: the node's train.distributed.node_rank (picks the writing node).
NODE_RANK_ENV = "TRAINFLOW_NODE_RANK"
DEFAULT_TIMEOUT_S = 300.0
_PR_SET_PDEATHSIG = 1

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
    value = torch.tensor([candidate], dtype=torch.int64, device=_collective_device())
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


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent exits (no-op elsewhere).

    A launcher killed outright cannot clean up its children; this makes them go with it.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Collectives (all no-ops in a single process)


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def reduce_sum(value: torch.Tensor | int) -> torch.Tensor | int:
    """The sum of ``value`` over all processes (an int stays an int); ``value`` itself in one process."""
    if not is_distributed():
        return value
    device = _collective_device()
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
    counts = torch.tensor([int(flag) for flag in flags], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(counts, op=dist.ReduceOp.SUM)
    return tuple(int(count) for count in counts.tolist())


def broadcast_object(value: Any, src: int | None = None) -> Any:
    """The main process's ``value`` (or rank ``src``'s), on every process. Pickled in memory
    between this job's own processes; never used for files."""
    if not is_distributed():
        return value
    box = [value]
    device = _collective_device() if dist.get_backend() == "nccl" else None
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
    device = _collective_device()
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


# ---------------------------------------------------------------------------------------------
# Sharding


def shard_indices(size: int, rank: int, world_size: int, order: torch.Tensor | None, even: bool) -> torch.Tensor:
    """The sample indices of ``rank`` out of ``size``: every ``world_size``-th of ``order``.

    ``even`` pads ``order`` by wrapping around to a multiple of ``world_size`` (as
    ``DistributedSampler`` does), so every rank gets ``ceil(size / world_size)`` samples;
    otherwise the ranks split the samples exactly, the first ``size % world_size`` getting one more.
    """
    if order is None:
        order = torch.arange(size)
    if even and size % world_size:
        padding = math.ceil(size / world_size) * world_size - size
        order = torch.cat([order, order.repeat(math.ceil(padding / size))[:padding]])
    return order[rank::world_size]


class ShardedInMemoryLoader(InMemoryLoader):
    """An :class:`InMemoryLoader` that yields only this rank's share of every epoch.

    Each epoch draws the same permutation as the unsharded loader (a pure function of seed and
    epoch), and rank ``r`` takes every ``world_size``-th sample of it from position ``r``. So the
    ranks' ``i``-th batches together are batch ``i`` of a single process whose batch size is
    ``batch_size x world_size``: DDP over them gives that process's gradients. ``even`` (for
    training) pads to equal shares; without it (evaluation) no sample is repeated.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        rank: int,
        world_size: int,
        even: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(*tensors, **options)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.rank, self.world_size, self.even = rank, world_size, even
        share = shard_indices(self._size, rank, world_size, None, even)
        self._shard_size = len(share)

    @classmethod
    def from_loader(cls, loader: InMemoryLoader, rank: int, world_size: int, even: bool) -> ShardedInMemoryLoader:
        """The share of ``loader`` (same tensors, batch size, shuffling, seed and epoch) for ``rank``."""
        sharded = cls(
            *loader.tensors,
            rank=rank,
            world_size=world_size,
            even=even,
            batch_size=loader.batch_size,
            shuffle=loader.shuffle,
            drop_last=loader.drop_last,
            seed=loader.seed,
        )
        sharded.epoch = loader.epoch
        return sharded

    def __len__(self) -> int:
        if self.drop_last:
            return self._shard_size // self.batch_size
        return -(-self._shard_size // self.batch_size)

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        return self._shard_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        indices = shard_indices(self._size, self.rank, self.world_size, self.permutation(self.epoch), self.even)
        indices = indices.to(self.tensors[0].device)
        tensors, batch_size, total = self.tensors, self.batch_size, len(self)
        first, self._resume_at = self._resume_at, 0
        self._batches_done = first
        for index in range(first, total):
            batch = indices[index * batch_size : (index + 1) * batch_size]
            self._batches_done = index + 1
            yield tuple(t[batch] for t in tensors)
        self.epoch += 1
        self._batches_done = 0

    def state_dict(self) -> dict[str, Any]:
        """The position, also as global samples done, so a different world size can resume it."""
        state = super().state_dict()
        state["world_size"] = self.world_size
        state["samples_done"] = self._batches_done * self.batch_size * self.world_size
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a state saved with any world size (same per-process batch size): the
        position is converted through the global sample count, rounded down to whole batches."""
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        batches, saved_world = int(state["batches_done"]), int(state.get("world_size", 1))
        if saved_world != self.world_size:
            samples = int(state.get("samples_done", batches * self.batch_size * saved_world))
            batches = min(len(self), samples // (self.batch_size * self.world_size))
        self._batches_done = self._resume_at = batches


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world_size, ...`` of ``size`` samples: an exact split, no padding,
    for evaluation (``DistributedSampler`` pads, which would count some samples twice)."""

    def __init__(self, size: int, rank: int, world_size: int) -> None:
        self.size, self.rank, self.world_size = size, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world_size))


def shard_loader(loader: Any, *, train: bool, report: Any = print) -> Any:
    """This process's share of ``loader`` when a group is active; ``loader`` itself otherwise.

    * :class:`InMemoryLoader` -> :class:`ShardedInMemoryLoader` (the seed made the same on all ranks);
    * ``DataLoader`` with the default samplers -> the same loader over ``DistributedSampler``
      (training: shuffled as before, padded) or :class:`ShardSampler` (evaluation);
    * anything already sharded (a ``DistributedSampler``/``ShardSampler``, a sharded loader) is
      kept; other iterables (custom samplers, iterable datasets, lists) are kept and
      ``report`` says so: every process then sees all of the data.
    """
    if not is_distributed() or loader is None:
        return loader
    rank, world = get_rank(), get_world_size()
    if isinstance(loader, ShardedInMemoryLoader):
        return loader
    if isinstance(loader, InMemoryLoader):
        sharded = ShardedInMemoryLoader.from_loader(loader, rank, world, even=train)
        sharded.seed = int(broadcast_object(sharded.seed, src=0))
        return sharded
    if isinstance(loader, DataLoader):
        return shard_dataloader(loader, rank, world, train=train, report=report)
    if rank == main_rank():
        report(f"note: {type(loader).__name__} is not a DataLoader or InMemoryLoader; every process sees all of it")
    return loader


def shard_dataloader(loader: DataLoader, rank: int, world: int, *, train: bool, report: Any = print) -> DataLoader:
    """``loader`` rebuilt over a ``DistributedSampler`` (``train``) or a :class:`ShardSampler`,
    keeping its batch size, workers, collate function and the rest; see :func:`shard_loader`."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler | ShardSampler):
        return loader
    default_batching = type(loader.batch_sampler) is BatchSampler
    if (
        isinstance(loader.dataset, IterableDataset)
        or not default_batching
        or type(sampler)
        not in (
            RandomSampler,
            SequentialSampler,
        )
    ):
        if rank == main_rank():
            report(
                "note: the loader has a custom sampler or an iterable dataset; give it a DistributedSampler "
                "yourself, or every process sees all of the data"
            )
        return loader
    size = len(loader.dataset)  # type: ignore[arg-type]
    new_sampler: Sampler[int]
    if train:
        generator = loader.generator
        seed = generator.initial_seed() if generator is not None else torch.initial_seed()
        seed = int(broadcast_object(seed % 2**63, src=0))
        new_sampler = DistributedSampler(
            loader.dataset,  # type: ignore[arg-type]
            num_replicas=world,
            rank=rank,
            shuffle=isinstance(sampler, RandomSampler),
            seed=seed,
        )
    else:
        new_sampler = ShardSampler(size, rank, world)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=new_sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device,
        in_order=loader.in_order,
    )
