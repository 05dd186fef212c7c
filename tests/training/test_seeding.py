"""Seeding and RNG state: python, numpy and torch repeat; states survive a weights_only checkpoint;
DataLoader workers get distinct, repeatable numpy/python streams."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from trainflow.training.seeding import (
    configure_determinism,
    derive_seed,
    get_rng_state,
    make_generator,
    seed_everything,
    seed_worker,
)


def draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seed_everything_repeats_python_numpy_and_torch() -> None:
    seed_everything(5)
    first = draws()
    seed_everything(5)
    assert draws() == first
    seed_everything(6)
    assert draws() != first


def test_rng_state_round_trips_through_a_weights_only_checkpoint() -> None:
    seed_everything(1)
    random.gauss(0, 1), np.random.standard_normal()  # leave cached gaussians in the states
    buffer = io.BytesIO()
    torch.save(get_rng_state(), buffer)
    expected = (*draws(), random.gauss(0, 1), float(np.random.standard_normal()))
    buffer.seek(0)
    from trainflow.training.seeding import set_rng_state

    set_rng_state(torch.load(buffer, weights_only=True))
    assert (*draws(), random.gauss(0, 1), float(np.random.standard_normal())) == expected


def test_derive_seed_is_stable_and_separates_epochs() -> None:
    assert derive_seed(42, 0) == derive_seed(42, 0)
    assert len({derive_seed(42, epoch) for epoch in range(100)}) == 100
    assert derive_seed(42, 1) != derive_seed(43, 1)
    assert 0 <= derive_seed(2**40, 10**6) < 2**63


class NumpyNoise(Dataset[tuple[float, float]]):
    """Each item draws from numpy's and python's global generators, as augmentation code does."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> tuple[float, float]:
        return float(np.random.rand()), random.random()


def worker_draws(seed: int) -> list[tuple[float, float]]:
    # spawn: workers must not inherit the test session's threads (servers started by other tests)
    loader = DataLoader(
        NumpyNoise(),
        batch_size=2,
        num_workers=2,
        worker_init_fn=seed_worker,
        generator=make_generator(seed),
        multiprocessing_context="spawn",
    )
    return [(float(a), float(b)) for x, y in loader for a, b in zip(x, y, strict=True)]


@pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")  # on a 1-core machine
def test_seed_worker_gives_workers_distinct_repeatable_streams() -> None:
    first = worker_draws(3)
    assert worker_draws(3) == first
    assert worker_draws(4) != first
    assert len({value for value, _ in first}) == len(first)  # workers do not repeat each other's draws


def test_configure_determinism(tmp_path: Path) -> None:
    before = torch.are_deterministic_algorithms_enabled()
    try:
        configure_determinism(True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        configure_determinism(False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)
