"""Metrics selected by ``metrics: [accuracy, f1_macro]`` in params.yaml, computed by torchmetrics.

Each name is registered in :data:`trainflow.registry.metrics` with a factory
``factory(config, info) -> torchmetrics.Metric`` and the task it fits. torchmetrics keeps the
running state per process and syncs it across DDP ranks at ``compute()``, so a metric over a
sharded validation set equals the metric over the whole set.

Classification metrics take the model's logits ``[N, C]`` and class indices ``[N]``;
regression metrics take outputs ``[N]`` or ``[N, 1]`` and targets ``[N]``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torchmetrics
from torchmetrics import classification, regression

from trainflow import registry
from trainflow.components.base import Task
from trainflow.components.metrics import MetricConfig, metric_names
from trainflow.errors import ConfigError

if TYPE_CHECKING:
    from trainflow.data.datasets import DatasetInfo

__all__ = ["MetricConfig", "build_metrics", "metric_names", "register_metric", "to_float"]
MetricFactory = Callable[..., torchmetrics.Metric]


def register_metric(
    name: str, task: Task, config_class: type = MetricConfig
) -> Callable[[MetricFactory], MetricFactory]:
    """Register ``factory(config, info) -> Metric`` under ``name`` for ``task``.

    Plug-ins use this to add a metric that config validation and ``build_metrics`` check
    against the data set's task.
    """
    return registry.metrics.register(name, config_class, task=task)


def build_metrics(names: Sequence[str], info: DatasetInfo) -> torchmetrics.MetricCollection:
    """A collection keyed by the registered names (``"accuracy"``), sized for ``info``.

    A name that is unknown, or that does not fit the data set's task, is a ConfigError naming
    the ``metrics`` key and the names valid for the task.
    """
    metrics: dict[str, torchmetrics.Metric] = {}
    valid = metric_names(info.task)
    for name in names:
        if name not in registry.metrics:
            raise ConfigError(registry.unknown_name_message("metrics", name, valid))
        if name not in valid:
            raise ConfigError(
                f"metrics: {name!r} is a {registry.metrics.get(name).task} metric but the data set is {info.task}; "
                f"valid for {info.task}: {', '.join(valid)}"
            )
        entry = registry.metrics.get(name)
        metrics[name] = entry.factory(entry.config_class(name=name), info=info)
    return torchmetrics.MetricCollection(metrics)


def _num_classes(info: DatasetInfo) -> int:
    return len(info.classes)


# ---------------------------------------------------------------------------------------------
# Classification: multiclass over info.classes (two classes included), macro averages.


def accuracy(config: MetricConfig, info: DatasetInfo) -> torchmetrics.Metric:
    """Fraction of samples whose arg-max class is the target (micro average)."""
    return classification.MulticlassAccuracy(num_classes=_num_classes(info), average="micro")


def f1_macro(config: MetricConfig, info: DatasetInfo) -> torchmetrics.Metric:
    """Unweighted mean over classes of the per-class F1 score."""
    return classification.MulticlassF1Score(num_classes=_num_classes(info), average="macro")


def precision_macro(config: MetricConfig, info: DatasetInfo) -> torchmetrics.Metric:
    """Unweighted mean over classes of the per-class precision."""
    return classification.MulticlassPrecision(num_classes=_num_classes(info), average="macro")


def recall_macro(config: MetricConfig, info: DatasetInfo) -> torchmetrics.Metric:
    """Unweighted mean over classes of the per-class recall."""
    return classification.MulticlassRecall(num_classes=_num_classes(info), average="macro")


class MulticlassAUROC(classification.MulticlassAUROC):
    """torchmetrics' AUROC that always applies softmax to the logits.

    torchmetrics applies it only when some value lies outside [0, 1], so a batch of small
    logits would be scored as if it were probabilities.
    """

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update(torch.softmax(preds.float(), dim=1), target)


def auroc(config: MetricConfig, info: DatasetInfo) -> torchmetrics.Metric:
    """One-vs-rest ROC-AUC per class on softmax probabilities, macro averaged (exact, no binning)."""
    return MulticlassAUROC(num_classes=_num_classes(info), average="macro")


# ---------------------------------------------------------------------------------------------
# Regression: outputs [N, 1] are flattened to the targets' shape [N].


class _FlatOutputs:
    """Mixin: reshape ``preds`` to the target's shape when they hold the same number of values,
    and compute in the target's precision."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.shape != target.shape and preds.numel() == target.numel():
            preds = preds.reshape(target.shape)
        if target.is_floating_point() and preds.dtype != target.dtype:
            preds = preds.to(target.dtype)  # bf16 / fp16 outputs under autocast
        super().update(preds, target)  # type: ignore[misc]


class MeanAbsoluteError(_FlatOutputs, regression.MeanAbsoluteError):
    """torchmetrics' MAE taking model outputs of shape [N, 1]."""


class MeanSquaredError(_FlatOutputs, regression.MeanSquaredError):
    """torchmetrics' (R)MSE taking model outputs of shape [N, 1]."""


class R2Score(_FlatOutputs, regression.R2Score):
    """torchmetrics' R2 taking model outputs of shape [N, 1]."""


def mae(config: MetricConfig, info: DatasetInfo) -> torchmetrics.Metric:
    """Mean absolute error."""
    return MeanAbsoluteError()


def rmse(config: MetricConfig, info: DatasetInfo) -> torchmetrics.Metric:
    """Root mean squared error."""
    return MeanSquaredError(squared=False)


def r2(config: MetricConfig, info: DatasetInfo) -> torchmetrics.Metric:
    """Coefficient of determination: 1 - residual sum of squares / total sum of squares."""
    return R2Score()


def to_float(value: Any) -> float:
    """A computed metric (0-d tensor) as a plain float for JSON."""
    return float(value.item() if isinstance(value, torch.Tensor) else value)
