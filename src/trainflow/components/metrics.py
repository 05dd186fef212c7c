"""The built-in metric names (``metrics: [...]``), each bound to the task it fits.

A metric has no options beyond its name (the data set info sizes it); the torchmetrics
implementations live in trainflow.metrics and are imported only when metrics are built.
"""

from __future__ import annotations

from pydantic.dataclasses import dataclass

from trainflow import registry
from trainflow.components.base import CLASSIFICATION, REGRESSION, STRICT, ComponentConfig

IMPLEMENTATION = "trainflow.metrics"
BUILTIN: dict[str, str] = {
    "accuracy": CLASSIFICATION,
    "f1_macro": CLASSIFICATION,
    "precision_macro": CLASSIFICATION,
    "recall_macro": CLASSIFICATION,
    "auroc": CLASSIFICATION,
    "mae": REGRESSION,
    "rmse": REGRESSION,
    "r2": REGRESSION,
}


@dataclass(frozen=True, config=STRICT)
class MetricConfig(ComponentConfig):
    """A metric has no options beyond its name; the data set info sizes it."""


for _name, _task in BUILTIN.items():
    registry.metrics.declare(_name, MetricConfig, f"{IMPLEMENTATION}:{_name}", _task)


def metric_names(task: str) -> list[str]:
    """The registered metric names that fit ``task`` (sorted); a plug-in's without a task fits any."""
    return [name for name in registry.metrics.names() if registry.metrics.get(name).fits(task)]
