"""The built-in problem types: registered by task name, the default loss step, decoding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainflow import registry
from trainflow.problems import ClassificationProblem, ProblemConfig, RegressionProblem, SupervisedProblem


@pytest.mark.parametrize(
    ("name", "cls"), [("classification", ClassificationProblem), ("regression", RegressionProblem)]
)
def test_the_table_problem_types_are_registered_under_their_task(name: str, cls: type) -> None:
    problem = registry.problems.build(ProblemConfig(name=name), criterion=nn.MSELoss())
    assert type(problem) is cls and problem.config == ProblemConfig(name=name)


def test_the_default_loss_step_is_the_criterion_on_model_outputs() -> None:
    torch.manual_seed(0)
    model, criterion = nn.Linear(4, 3), nn.CrossEntropyLoss()
    inputs, targets = torch.randn(5, 4), torch.tensor([0, 1, 2, 1, 0])
    loss, outputs = SupervisedProblem(criterion=criterion).compute_loss(model, (inputs, targets))
    assert torch.equal(outputs, model(inputs)) and torch.equal(loss, criterion(model(inputs), targets))
    problem = SupervisedProblem(criterion=criterion)
    assert problem.batch_size((inputs, targets)) == 5
    preds, target = problem.metric_inputs(outputs, (inputs, targets))
    assert preds is outputs and target is targets


def test_outputs_decode_to_the_targets_space() -> None:
    logits = torch.tensor([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]])
    assert ClassificationProblem(criterion=nn.CrossEntropyLoss()).decode(logits).tolist() == [1, 0]
    values = torch.tensor([[0.5], [1.5]])
    assert RegressionProblem(criterion=nn.MSELoss()).decode(values).tolist() == [0.5, 1.5]
