"""The in-memory loader: DataLoader's batching and shuffling semantics, its own seeded stream,
and a resumable position."""

from __future__ import annotations

import pytest
import torch

from trainflow.training.loaders import InMemoryLoader


def tensors(n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n)


def labels(loader: InMemoryLoader) -> list[list[int]]:
    return [batch[1].tolist() for batch in loader]


def test_batches_in_order_without_shuffle_and_a_short_last_batch() -> None:
    loader = InMemoryLoader(*tensors(10), batch_size=4)
    assert len(loader) == 3
    assert labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, y = next(iter(loader))
    assert x.shape == (4, 1) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_drop_last() -> None:
    loader = InMemoryLoader(*tensors(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and labels(loader) == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_shuffle_visits_every_sample_once_per_epoch_in_a_new_order() -> None:
    loader = InMemoryLoader(*tensors(20), batch_size=6, shuffle=True, seed=1)
    first = [i for batch in labels(loader) for i in batch]
    second = [i for batch in labels(loader) for i in batch]  # the epoch advanced by itself
    assert sorted(first) == sorted(second) == list(range(20))
    assert first != second and loader.epoch == 2


def test_order_is_a_pure_function_of_seed_and_epoch_and_leaves_the_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a = InMemoryLoader(*tensors(20), batch_size=5, shuffle=True, seed=3)
    b = InMemoryLoader(*tensors(20), batch_size=5, shuffle=True, seed=3)
    b.set_epoch(4)
    a.set_epoch(4)
    assert labels(a) == labels(b)
    c = InMemoryLoader(*tensors(20), batch_size=5, shuffle=True, seed=4)
    c.set_epoch(4)
    assert labels(c) != labels(b)
    assert torch.equal(torch.get_rng_state(), state)


def test_default_seed_is_the_processes_torch_seed() -> None:
    torch.manual_seed(1234)
    assert InMemoryLoader(*tensors(), batch_size=2).seed == 1234


def test_state_dict_resumes_mid_epoch_once() -> None:
    loader = InMemoryLoader(*tensors(20), batch_size=4, shuffle=True, seed=9)
    loader.set_epoch(2)
    full = labels(loader)
    loader.set_epoch(2)
    iterator = iter(loader)
    next(iterator), next(iterator)
    state = loader.state_dict()
    assert state == {"seed": 9, "epoch": 2, "batches_done": 2}

    other = InMemoryLoader(*tensors(20), batch_size=4, shuffle=True, seed=0)
    other.load_state_dict(state)
    assert labels(other) == full[2:]  # the rest of epoch 2
    other.set_epoch(2)
    assert labels(other) == full  # later passes start at the first batch


def test_a_broken_off_pass_restarts_at_the_first_batch() -> None:
    loader = InMemoryLoader(*tensors(8), batch_size=2)
    for _ in loader:
        break
    assert labels(loader) == [[0, 1], [2, 3], [4, 5], [6, 7]]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="same first dimension"):
        InMemoryLoader(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        InMemoryLoader(torch.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="at least one tensor"):
        InMemoryLoader()
