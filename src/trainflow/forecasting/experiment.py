"""One forecasting experiment in code: split, fit the encoder on train, window, train, evaluate.

:func:`prepare_forecast` applies the protocol to a series: the time split, the encoder fitted
on the train span only, the encoded inputs and scaled targets, and the training and
validation windows (targets outside a window's span masked, so nothing from validation or
test reaches training). :func:`train_forecaster` trains a registered window model with the
unchanged Trainer and the ``forecasting`` problem, keeping the weights of the best
validation epoch; :func:`torch_predict` wraps a model as the evaluation's ``predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trainflow import registry
from trainflow.forecasting.encoders import FEATURES, ForecastEncoder
from trainflow.forecasting.evaluate import Predict
from trainflow.forecasting.protocol import time_split
from trainflow.forecasting.series import Series
from trainflow.forecasting.windows import Windows, span_windows
from trainflow.problems.base import ProblemConfig
from trainflow.training.callbacks import Callback
from trainflow.training.loaders import InMemoryLoader
from trainflow.training.trainer import Trainer


@dataclass(frozen=True)
class Prepared:
    """A series split by the protocol, its train-fitted encoder and its windows."""

    series: Series
    train_end: int
    val_end: int
    context: int
    steps: int
    encoder: ForecastEncoder
    encoded: np.ndarray
    train: Windows
    val: Windows


def prepare_forecast(
    series: Series, *, test: int = 208, val: int = 208, context: int = 104, steps: int = 52
) -> Prepared:
    """Split ``series`` by time and build the encoder (train only) and the train/val windows."""
    train_end, val_end = time_split(len(series), test=test, val=val)
    if train_end <= context + 1:
        raise ValueError(f"the train span ({train_end} steps) is too short for context={context}")
    encoder = ForecastEncoder.fit(series.values, series.dates, train_end)
    encoded = encoder.encode(series.values, series.dates)
    scaled = encoder.scale(series.values)
    return Prepared(
        series,
        train_end,
        val_end,
        context,
        steps,
        encoder,
        encoded,
        span_windows(encoded, scaled, 0, train_end, context=context, horizon=steps),
        span_windows(encoded, scaled, train_end, val_end, context=context, horizon=steps),
    )


class KeepBest(Callback):
    """Keeps a copy of the weights of the epoch with the lowest ``val/loss``."""

    def __init__(self) -> None:
        self.value = float("inf")
        self.state: dict[str, torch.Tensor] | None = None

    def on_epoch_end(self, trainer: Trainer, record: dict[str, float]) -> None:
        if record["val/loss"] < self.value:
            self.value = record["val/loss"]
            self.state = {key: value.detach().clone() for key, value in trainer.model.state_dict().items()}


def train_forecaster(
    prepared: Prepared,
    model_config: Any,
    *,
    loss: str = "masked_mse",
    epochs: int = 30,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    batch_size: int = 64,
    seed: int = 0,
    **trainer_options: Any,
) -> Trainer:
    """Train ``model_config``'s model on ``prepared``'s windows; the model ends at its best val epoch."""
    torch.manual_seed(seed)
    model = registry.models.build(
        model_config, context=prepared.context, horizon=prepared.steps, in_features=len(FEATURES)
    )
    criterion = registry.losses.get(loss).factory(None)
    problem = registry.problems.get("forecasting").factory(ProblemConfig(name="forecasting"), criterion=criterion)
    keep = KeepBest()
    trainer = Trainer(
        model,
        window_loader(prepared.train, batch_size, shuffle=True, seed=seed),
        window_loader(prepared.val, 256, shuffle=False, seed=seed),
        optimizer=torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay),
        problem=problem,
        callbacks=[keep, *trainer_options.pop("callbacks", ())],
        progress="off",
        device=trainer_options.pop("device", "cpu"),
        **trainer_options,
    )
    trainer.fit(epochs)
    if keep.state is not None:
        trainer.model.load_state_dict(keep.state)
    return trainer


def window_loader(windows: Windows, batch_size: int, *, shuffle: bool, seed: int) -> InMemoryLoader:
    """``(x, targets)`` batches of ``windows`` (targets NaN where masked out), indexed in memory."""
    x, y = torch.from_numpy(np.ascontiguousarray(windows.x)), torch.from_numpy(windows.targets)
    return InMemoryLoader(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)


def torch_predict(model: torch.nn.Module) -> Predict:
    """The evaluation's ``predict``: windows ``[N, context, F]`` to scaled forecasts, on the CPU."""

    def predict(windows: np.ndarray) -> np.ndarray:
        module = model.cpu().eval()
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))).numpy()

    return predict
