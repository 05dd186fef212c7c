"""Shared pieces of the training tests: tiny seeded data, a tiny model with dropout, a trainer factory.

Everything runs on one CPU thread with small tensors so the suite stays fast and bit-exact.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from trainflow.training.loaders import InMemoryLoader
from trainflow.training.trainer import Trainer

torch.set_num_threads(1)

FEATURES, CLASSES = 6, 3


def make_data(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of ``FEATURES`` features whose class depends on the first two features."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=generator)
    y = ((x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()).clamp(max=CLASSES - 1)
    return x, y


def make_model(dropout: float = 0.2) -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, CLASSES))


def train_loader(kind: str = "memory", batch_size: int = 16, seed: int = 7) -> Any:
    x, y = make_data(96, seed=0)
    if kind == "memory":
        return InMemoryLoader(x, y, batch_size=batch_size, shuffle=True, seed=seed)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)


def val_loader() -> InMemoryLoader:
    x, y = make_data(48, seed=1)
    return InMemoryLoader(x, y, batch_size=24)


def build_trainer(
    seed: int = 0, loader: str = "memory", batch_size: int = 16, lr: float = 0.05, **options: Any
) -> Trainer:
    """A fresh trainer, everything seeded from ``seed``: same arguments, same run."""
    torch.manual_seed(seed)
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    options.setdefault("progress", "off")
    return Trainer(
        model,
        train_loader(loader, batch_size),
        options.pop("val_loader", val_loader()),
        options.pop("test_loader", None),
        optimizer,
        nn.CrossEntropyLoss(),
        metrics={"accuracy": MulticlassAccuracy(CLASSES, average="micro")},
        **options,
    )


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in trainer.model.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


@pytest.fixture
def trainer_factory() -> Callable[..., Trainer]:
    return build_trainer


@pytest.fixture
def ckpt_dir(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"
