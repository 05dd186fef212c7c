"""Seeding and random-number-generator state: everything a run needs to repeat itself exactly.

* :func:`seed_everything` seeds python's ``random``, numpy's global generator and torch (CPU and
  every CUDA device) from one integer.
* :func:`seed_worker` is a ``DataLoader(worker_init_fn=...)``: torch seeds each worker from the
  loader's base seed, and this carries that seed over to ``random`` and numpy in the worker,
  which torch leaves alone.
* :func:`make_generator` gives the ``torch.Generator`` to pass as ``DataLoader(generator=...)`` so
  shuffling draws from its own stream, not from the global one the model's dropout uses.
* :func:`get_rng_state` / :func:`set_rng_state` capture and restore all generators in a form
  ``torch.load(weights_only=True)`` accepts (tensors, ints, floats, strings, lists, dicts only).
* :func:`configure_determinism` switches torch to deterministic kernels.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch

RngState = dict[str, Any]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) with ``seed``; also set ``PYTHONHASHSEED``
    so that subprocesses started from here hash strings the same way."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoader workers: seed ``random`` and numpy from torch's worker seed.

    torch gives worker ``i`` the seed ``base_seed + i``, where ``base_seed`` is drawn from the
    loader's generator; so a seeded loader gives every worker the same streams on every run.
    """
    worker_seed = torch.initial_seed() % 2**32
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def make_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (for ``DataLoader(generator=...)``)."""
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def derive_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed for ``epoch`` of a run seeded with ``seed`` (an LCG step mixes the two),
    so that epochs draw unrelated permutations while each is a pure function of (seed, epoch)."""
    return (seed * 6364136223846793005 + (epoch + 1) * 1442695040888963407) % 2**63


def get_rng_state() -> RngState:
    """The state of python's, numpy's and torch's global generators (CUDA when initialised)."""
    version, mt_state, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state: RngState = {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
    }
    return state


def set_rng_state(state: RngState) -> None:
    """Restore what :func:`get_rng_state` captured."""
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["state"].tolist()), python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def configure_determinism(enabled: bool) -> None:
    """Deterministic kernels everywhere (``torch.use_deterministic_algorithms``) or torch's default.

    On CUDA, cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG`` set before its first use; it is set here
    when unset, and cuDNN's autotuner (which picks kernels by timing) is turned off.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled and torch.backends.cudnn.benchmark
