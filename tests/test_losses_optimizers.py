"""Losses, optimizers and schedulers are built from their configs with the right settings."""

from __future__ import annotations

import pytest
import torch

from trainflow import registry
from trainflow.config import resolve
from trainflow.errors import ConfigError


def test_cross_entropy_label_smoothing() -> None:
    config = resolve({"loss": {"name": "cross_entropy", "label_smoothing": 0.1}})
    loss = registry.losses.build(config.loss, task="classification")
    assert loss.label_smoothing == 0.1


REGRESSION = {"dataset": {"name": "csv", "path": "t.csv", "task": "regression"}}


def test_regression_loss_flattens_outputs() -> None:
    loss = registry.losses.build(resolve({**REGRESSION, "loss": {"name": "mse"}}).loss, task="regression")
    assert loss(torch.tensor([[1.0], [3.0]]), torch.tensor([1.0, 1.0])).item() == 2.0


def test_loss_must_fit_the_task_when_validated() -> None:
    with pytest.raises(ConfigError, match=r"params: loss\.name: 'mse' is a regression loss .* valid: cross_entropy$"):
        resolve({"loss": {"name": "mse"}})  # digits: classification


def test_loss_must_fit_the_task_when_built() -> None:
    with pytest.raises(ConfigError, match=r"loss\.name: 'mse' is a regression loss"):
        registry.losses.build(resolve({**REGRESSION, "loss": {"name": "mse"}}).loss, task="classification")


@pytest.mark.parametrize(
    ("name", "cls"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)]
)
def test_optimizers(name: str, cls: type) -> None:
    config = resolve({"train": {"optimizer": {"name": name, "lr": 0.02, "weight_decay": 0.1}}})
    optimizer = registry.optimizers.build(config.train.optimizer, params=torch.nn.Linear(2, 2).parameters())
    assert isinstance(optimizer, cls)
    assert optimizer.param_groups[0]["lr"] == 0.02
    assert optimizer.param_groups[0]["weight_decay"] == 0.1


@pytest.mark.parametrize("name", ["none", "cosine", "step", "onecycle", "linear_warmup"])
def test_schedulers_step_through_a_run(name: str) -> None:
    config = resolve({"train": {"scheduler": {"name": name}}})
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    scheduler = registry.schedulers.build(
        config.train.scheduler, optimizer=optimizer, steps_per_epoch=4, max_epochs=3, interval="step"
    )
    if name == "none":
        assert scheduler is None
        return
    lrs = []
    for _ in range(12):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert len(set(lrs)) > 1 or name == "step"


def test_cosine_length_follows_the_interval() -> None:
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    config = resolve({"train": {"scheduler": {"name": "cosine"}}}).train.scheduler
    per_epoch = registry.schedulers.build(config, optimizer=optimizer, steps_per_epoch=10, max_epochs=3)
    assert per_epoch.T_max == 3
    per_step = registry.schedulers.build(config, optimizer=optimizer, steps_per_epoch=10, max_epochs=3, interval="step")
    assert per_step.T_max == 30
