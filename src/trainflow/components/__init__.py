"""The built-in components' config classes, declared in :mod:`trainflow.registry`.

Importing this package fills every registry with the built-in names, their config classes and
where their implementations live (imported only when a component is built). It needs pydantic
only: no torch, pandas or torchmetrics, so validating params.yaml is cheap.

One module per kind: datasets, encoders, models, losses, optimizers (and schedulers), metrics,
loggers; and one for the forecasting task's datasets, encoder, window models and masked losses.
"""

from trainflow.components import datasets, encoders, forecasting, loggers, losses, metrics, models, optimizers
from trainflow.components.base import ComponentConfig

__all__ = [
    "ComponentConfig",
    "datasets",
    "encoders",
    "forecasting",
    "loggers",
    "losses",
    "metrics",
    "models",
    "optimizers",
]
