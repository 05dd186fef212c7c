"""Window models by name, masked losses and the forecasting problem with the unchanged Trainer."""

from __future__ import annotations

import pytest
import torch

import trainflow.problems  # noqa: F401  (declares the forecasting problem)
from trainflow import registry
from trainflow.components.forecasting import GRUConfig, LinearWindowConfig, WindowMLPConfig
from trainflow.forecasting.encoders import FEATURES
from trainflow.forecasting.losses import masked_mae, masked_mse
from trainflow.problems.base import ProblemConfig

CONFIGS = [LinearWindowConfig(), LinearWindowConfig(kind="dlinear"), WindowMLPConfig(), GRUConfig(hidden_size=8)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.name}-{getattr(c, 'kind', '')}")
def test_every_model_maps_a_window_to_the_forecast_steps(config: object) -> None:
    torch.manual_seed(0)
    model = registry.models.build(config, context=16, horizon=6, in_features=len(FEATURES))
    x = torch.randn(3, 16, len(FEATURES))
    out = model(x)
    assert out.shape == (3, 6)
    out.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert registry.models.get(config.name).fits("forecasting")  # type: ignore[attr-defined]
    assert not registry.models.get(config.name).fits("classification")  # type: ignore[attr-defined]


def test_an_untrained_linear_window_is_the_naive_forecast() -> None:
    model = registry.models.build(LinearWindowConfig(), context=8, horizon=4)
    x = torch.randn(2, 8, len(FEATURES))
    torch.testing.assert_close(model(x), x[:, -1:, 0].expand(2, 4))


def test_masked_losses_ignore_masked_steps_and_their_gradients() -> None:
    outputs = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    target = torch.tensor([[1.5, 0.0, float("nan")]])
    mask = torch.tensor([[True, False, False]])
    assert float(masked_mse(outputs.detach(), target, mask)) == pytest.approx(0.25)
    loss = masked_mae(outputs, target, mask)
    assert float(loss.detach()) == pytest.approx(0.5)
    loss.backward()
    assert outputs.grad is not None and outputs.grad.tolist() == [[-1.0, 0.0, 0.0]]
    assert float(masked_mse(outputs.detach(), target, torch.zeros_like(mask))) == 0.0


def test_the_forecasting_problem_scores_masked_in_steps_only() -> None:
    problem = registry.problems.build(ProblemConfig(name="forecasting"), criterion=masked_mse)
    model = registry.models.build(LinearWindowConfig(), context=4, horizon=2)
    x = torch.zeros(2, 4, len(FEATURES))
    batch = (x, torch.tensor([[1.0, float("nan")], [3.0, 4.0]]))  # NaN: a missing target step
    loss, outputs = problem.compute_loss(model, batch)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert float(loss.detach()) == pytest.approx((1 + 9 + 16) / 3)
    preds, target = problem.metric_inputs(outputs, batch)
    assert target.tolist() == [1.0, 3.0, 4.0] and problem.batch_size(batch) == 3
    assert tuple(preds.shape) == (3,)
