"""Loader sharding: each process gets its part of a loader.

Training loaders are padded by wrapping around (as ``DistributedSampler`` does), so every
process runs the same number of steps and no collective waits for a process that ran out of
batches. Evaluation loaders are split without padding, so each sample is counted exactly once
and the synced metrics equal a single process's. Batch size is per process: the global batch
is ``batch_size x world size``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from trainflow.training.distributed.collectives import broadcast_object
from trainflow.training.distributed.group import get_rank, get_world_size, is_distributed, main_rank
from trainflow.training.loaders import InMemoryLoader


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
