"""The built-in problem types for table rows: classification and regression.

Both read batches ``(inputs, targets)`` and take their loss from ``loss.name``; they differ in
what the outputs mean: class logits (decoded by argmax) or one value per row.
"""

from __future__ import annotations

import torch

from trainflow import registry
from trainflow.problems.base import ProblemConfig, SupervisedProblem


@registry.problems.register("classification", ProblemConfig)
class ClassificationProblem(SupervisedProblem):
    """Outputs ``[N, classes]`` logits, targets ``[N]`` class indices."""

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=1)


@registry.problems.register("regression", ProblemConfig)
class RegressionProblem(SupervisedProblem):
    """Outputs ``[N, 1]`` (or ``[N]``), targets ``[N]`` values."""

    def decode(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.reshape(len(outputs))
