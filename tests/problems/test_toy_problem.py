"""A new problem type plugs in by registration alone: a toy masked-sequence problem (its own
batch layout, model, loss and metric inputs) trains, checkpoints and resumes exactly with the
unchanged Trainer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torchmetrics.regression import MeanAbsoluteError

from trainflow import registry
from trainflow.errors import ConfigError
from trainflow.problems import Problem, ProblemConfig
from trainflow.training.callbacks import Callback
from trainflow.training.trainer import Trainer

STEPS, FEATURES = 6, 3


class ToySeries:
    """A data-set-like tensor source: dict batches ``{"x": [N, T, F], "y": [N, T], "mask": [N, T]}``,
    reshuffled per epoch from ``seed`` (``set_epoch``), so a resumed epoch sees the same batches."""

    def __init__(self, size: int, batch_size: int, seed: int, masked_value: float = 0.0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, STEPS, FEATURES, generator=generator)
        self.mask = torch.rand(size, STEPS, generator=generator) > 0.3
        weights = torch.tensor([0.5, -1.0, 2.0])
        self.y = torch.where(self.mask, self.x @ weights, torch.full((size, STEPS), masked_value))
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(self.seed + self.epoch))
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            yield {"x": self.x[index], "y": self.y[index], "mask": self.mask[index]}


@dataclass(frozen=True)
class ToyModelConfig:
    name: str
    hidden: int = 8


@registry.models.register("toy_per_step", ToyModelConfig)
class PerStepModel(nn.Module):
    """One value per time step from that step's features."""

    def __init__(self, config: ToyModelConfig, in_features: int = FEATURES, **context: Any) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, config.hidden), nn.Tanh(), nn.Linear(config.hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


@registry.problems.register("toy_masked_regression", ProblemConfig)
class MaskedRegression(Problem):
    """Squared error over the observed steps only; outputs are scored where the mask is set."""

    def __init__(self, config: ProblemConfig | None = None) -> None:
        self.config = config

    def compute_loss(self, model: Callable[[Any], Any], batch: Any) -> tuple[torch.Tensor, Any]:
        outputs = model(batch["x"])
        mask = batch["mask"]
        return ((outputs - batch["y"]) ** 2)[mask].mean(), outputs

    def metric_inputs(self, outputs: Any, batch: Any) -> tuple[Any, Any]:
        return outputs[batch["mask"]], batch["y"][batch["mask"]]

    def batch_size(self, batch: Any) -> int:
        return int(batch["mask"].sum())


def toy_trainer(masked_value: float = 0.0, **options: Any) -> Trainer:
    torch.manual_seed(0)
    model = registry.models.build(ToyModelConfig(name="toy_per_step"), in_features=FEATURES)
    problem = registry.problems.build(ProblemConfig(name="toy_masked_regression"))
    return Trainer(
        model,
        ToySeries(64, 8, seed=1, masked_value=masked_value),
        ToySeries(32, 16, seed=2, masked_value=masked_value),
        optimizer=torch.optim.Adam(model.parameters(), lr=0.02),
        problem=problem,
        metrics={"mae": MeanAbsoluteError()},
        progress="off",
        **options,
    )


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in trainer.model.state_dict().items()}


def test_a_registered_problem_trains_with_its_own_loss_and_metric_inputs() -> None:
    trainer = toy_trainer()
    trainer.fit(6)
    history = trainer.state.history
    assert {"train/loss", "val/loss", "val/mae"} <= set(history[-1])
    assert history[-1]["val/loss"] < 0.5 * history[0]["val/loss"]
    assert isinstance(trainer.problem, MaskedRegression) and trainer.criterion is None


def test_the_masked_steps_never_reach_the_loss() -> None:
    """Targets at masked steps set to 1e6 instead of 0 leave every weight bit-identical: the
    loss and the metrics are the problem's, not ``criterion(model(x), y)`` on the whole batch."""
    plain, shifted = toy_trainer(masked_value=0.0), toy_trainer(masked_value=1e6)
    plain.fit(2)
    shifted.fit(2)
    for key, value in weights(plain).items():
        assert torch.equal(value, weights(shifted)[key]), key
    assert plain.state.history == shifted.state.history


def test_a_registered_problem_resumes_exactly_mid_epoch(tmp_path: Path) -> None:
    reference = toy_trainer()
    reference.fit(3)

    class StopAt(Callback):
        def on_batch_end(self, trainer: Trainer, batch: Any, loss: torch.Tensor) -> None:
            if trainer.state.global_step == 13:
                trainer.request_stop("test stop", now=True)

    toy_trainer(checkpoint_dir=tmp_path, callbacks=[StopAt()]).fit(3)
    resumed = toy_trainer(checkpoint_dir=tmp_path)
    resumed.fit(3, resume=True)
    assert resumed.resumed_from is not None and resumed.resumed_from.name.startswith("ckpt-e0001-b000005")
    for key, value in weights(reference).items():
        assert torch.equal(value, weights(resumed)[key]), key
    assert resumed.state.history == reference.state.history


def test_an_unknown_problem_name_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown name 'toy_masked'.*classification.*regression"):
        registry.problems.build(ProblemConfig(name="toy_masked"))


def test_overriding_compute_loss_changes_the_loss_of_training_and_evaluation() -> None:
    """The other way in: a Trainer subclass with its own ``compute_loss(batch)``."""

    class L1Trainer(Trainer):
        def compute_loss(self, batch: Any, forward: Callable[[Any], Any] | None = None) -> tuple[torch.Tensor, Any]:
            outputs = (forward or self._forward)(batch["x"])
            return (outputs - batch["y"]).abs()[batch["mask"]].mean(), outputs

    torch.manual_seed(0)
    model = PerStepModel(ToyModelConfig(name="toy_per_step"))
    val = ToySeries(32, 32, seed=2)
    trainer = L1Trainer(
        model,
        ToySeries(64, 8, seed=1),
        val,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),  # lr 0: the weights stay, the loss is checkable
        problem=MaskedRegression(),
        progress="off",
    )
    trainer.fit(1)
    batch = next(iter(val))
    with torch.no_grad():
        expected = (model(batch["x"]) - batch["y"]).abs()[batch["mask"]].mean()
    assert trainer.state.history[-1]["val/loss"] == pytest.approx(float(expected), rel=1e-6)
