"""What a batch means to the loop: the Problem object owns the loss step and the outputs.

The Trainer decides *when* (epochs, steps, validation); a problem decides *what*: how the loss
and the outputs come from the model and one batch, which tensors the metrics compare, how many
samples a batch counts for, and how outputs decode into predictions (after tfimm's Problem).

:class:`SupervisedProblem` is what a plain PyTorch script does: batches are ``(inputs,
targets)`` and the loss is ``criterion(model(inputs), targets)``. A problem type with another
batch layout (masks, windows, several targets) subclasses :class:`Problem` and is registered in
``trainflow.registry.problems``; the loop needs no change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class ProblemConfig:
    """A problem type selected by name (the data set's task for the built-in ones)."""

    name: str


class Problem:
    """The loss step and outputs of one kind of learning problem; override what differs."""

    def compute_loss(self, model: Callable[[Any], Any], batch: Any) -> tuple[torch.Tensor, Any]:
        """``(loss, outputs)`` of ``model`` on ``batch``; the loss is the batch's mean."""
        raise NotImplementedError

    def metric_inputs(self, outputs: Any, batch: Any) -> tuple[Any, Any]:
        """``(preds, target)`` as torchmetrics' ``update`` takes them."""
        raise NotImplementedError

    def batch_size(self, batch: Any) -> int:
        """How many samples ``batch`` counts for in the mean loss of an evaluation."""
        raise NotImplementedError

    def decode(self, outputs: Any) -> Any:
        """Predictions in the targets' space (for scoring new data); the outputs by default."""
        return outputs


class SupervisedProblem(Problem):
    """Batches ``(inputs, targets)``; ``criterion(model(inputs), targets)`` is the loss."""

    def __init__(self, config: ProblemConfig | None = None, *, criterion: Callable[[Any, Any], torch.Tensor]) -> None:
        self.config = config
        self.criterion = criterion

    def compute_loss(self, model: Callable[[Any], Any], batch: Any) -> tuple[torch.Tensor, Any]:
        inputs, targets = batch
        outputs = model(inputs)
        return self.criterion(outputs, targets), outputs

    def metric_inputs(self, outputs: Any, batch: Any) -> tuple[Any, Any]:
        return outputs, batch[1]

    def batch_size(self, batch: Any) -> int:
        return len(batch[1])
