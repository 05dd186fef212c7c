"""An in-memory batch loader: batches indexed straight from tensors, no per-sample collate.

``DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)`` fetches 32 samples one by one
and stacks them; when the whole data set already sits in memory as tensors, indexing the
tensors with a batch of indices gives the same batch in a fraction of the time.

Shuffling semantics match ``DataLoader(shuffle=True)``: one random permutation per pass, batches
in order of that permutation, the last batch shorter unless ``drop_last``. The permutation
comes from a private ``torch.Generator`` seeded from ``(seed, epoch)``, so it never draws from
the global generator (which dropout uses) and epoch ``e`` of a run is the same whether the run
went straight through or was resumed. The loader also implements the protocol the Trainer uses
to resume mid-epoch: ``set_epoch``, ``state_dict`` and ``load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from trainflow.training.seeding import derive_seed


class InMemoryLoader:
    """Batches of ``tensors`` (all with the same first dimension), indexed in memory.

    ``seed`` defaults to ``torch.initial_seed()`` (the seed given to ``torch.manual_seed``), so a
    seeded process needs no extra argument. ``device`` moves the tensors once, up front.
    After a complete pass the epoch advances by itself; the Trainer sets it explicitly anyway.
    Every pass starts at the epoch's first batch, except the first pass after
    :meth:`load_state_dict`, which continues where the saved state left off.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not tensors:
            raise ValueError("InMemoryLoader needs at least one tensor")
        size = tensors[0].shape[0]
        if any(t.shape[0] != size for t in tensors):
            raise ValueError(f"all tensors must have the same first dimension, got {[t.shape[0] for t in tensors]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tensors = tuple(t.to(device) if device is not None else t for t in tensors)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.epoch = 0
        self._batches_done = 0  # batches yielded in the current pass of ``epoch``
        self._resume_at = 0  # first batch of the next pass (set by load_state_dict)
        self._size = size

    def __len__(self) -> int:
        if self.drop_last:
            return self._size // self.batch_size
        return -(-self._size // self.batch_size)

    @property
    def num_samples(self) -> int:
        return self._size

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of ``epoch`` for the next pass (restarting it if ``epoch`` changes)."""
        if epoch != self.epoch:
            self.epoch = epoch
            self._batches_done = 0
            self._resume_at = 0

    def permutation(self, epoch: int) -> torch.Tensor | None:
        """The sample order of ``epoch``: a pure function of ``(seed, epoch)``; None when not shuffling."""
        if not self.shuffle:
            return None
        generator = torch.Generator()
        generator.manual_seed(derive_seed(self.seed, epoch))
        return torch.randperm(self._size, generator=generator)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = self.permutation(self.epoch)
        if order is not None and self.tensors[0].device != order.device:
            order = order.to(self.tensors[0].device)
        tensors, size, batch_size = self.tensors, self._size, self.batch_size
        total = len(self)
        first, self._resume_at = self._resume_at, 0
        self._batches_done = first
        for index in range(first, total):
            start = index * batch_size
            stop = min(start + batch_size, size)
            if order is None:
                batch = tuple(t[start:stop] for t in tensors)
            else:
                indices = order[start:stop]
                batch = tuple(t[indices] for t in tensors)
            self._batches_done = index + 1
            yield batch
        self.epoch += 1
        self._batches_done = 0

    def state_dict(self) -> dict[str, Any]:
        """Where the loader is: the epoch, the batches of it already yielded, and the seed."""
        return {"seed": self.seed, "epoch": self.epoch, "batches_done": self._batches_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`: the next pass yields the rest of that epoch.

        A state saved by one of several DDP processes (a sharded loader's, with ``world_size``)
        resumes at the same sample of the epoch: its global ``samples_done``, in whole batches.
        """
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        batches = int(state["batches_done"])
        if int(state.get("world_size", 1)) != 1:
            batches = min(len(self), int(state["samples_done"]) // self.batch_size)
        self._batches_done = self._resume_at = batches


def set_epoch(loader: Any, epoch: int) -> None:
    """Tell the loader (or its sampler, e.g. DistributedSampler) which epoch is starting."""
    for target in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        if target is not None and callable(getattr(target, "set_epoch", None)):
            target.set_epoch(epoch)
            return
