"""The forecasting evaluation: the model and every baseline on the protocol's origins and targets.

For each span (``val``, ``test``) and horizon ``H``, origins are ``o = start + k*H`` while
``o + H <= end`` (:func:`trainflow.forecasting.protocol.origins`). The model's forecast at
``o`` is made from the encoded window ``[o-context, o)`` (the encoder is causal: forward fill
and features use no step after ``o-1``), its first ``H`` steps decoded to the series' units.
The baselines forecast the same origins; all are scored against the same targets (missing
ones excluded) by :func:`trainflow.forecasting.metrics.forecast_metrics`, MASE scaled by the
train span's seasonal-naive MAE. Torch-free: the model comes in as a ``predict`` callable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from trainflow.forecasting.baselines import all_baselines
from trainflow.forecasting.encoders import ForecastEncoder
from trainflow.forecasting.metrics import forecast_metrics, seasonal_naive_scale
from trainflow.forecasting.protocol import forecast_targets, forward_fill, origins
from trainflow.io import atomic_write_text

Predict = Callable[[np.ndarray], np.ndarray]  # [N, context, F] float32 -> [N, steps] scaled


def model_forecasts(
    predict: Predict, encoder: ForecastEncoder, encoded: np.ndarray, starts: Sequence[int], context: int, horizon: int
) -> np.ndarray:
    """The model's forecasts ``[len(starts), horizon]`` in the series' units, from history before each origin."""
    starts = np.asarray(starts, dtype=np.int64)
    if starts.size == 0:
        return np.empty((0, horizon))
    if starts.min() < context:
        raise ValueError(f"an origin at {int(starts.min())} has less than context={context} steps of history")
    windows = encoded[starts[:, None] + np.arange(-context, 0)]
    scaled = np.asarray(predict(windows.astype(np.float32)), dtype=float)
    if scaled.shape[1] < horizon:
        raise ValueError(f"the model forecasts {scaled.shape[1]} steps; horizon {horizon} needs at least that many")
    return encoder.decode(scaled[:, :horizon])


def evaluate_forecasts(
    values: np.ndarray,
    dates: np.ndarray,
    encoder: ForecastEncoder,
    predict: Predict,
    *,
    train_end: int,
    val_end: int,
    context: int,
    horizons: Sequence[int],
    season_length: int = 52,
) -> tuple[dict[str, dict[str, dict[str, dict[str, float]]]], dict[str, dict[str, dict[str, np.ndarray]]]]:
    """``(metrics, forecasts)``: metrics in the eval.json layout ``{span: {"h<H>": {name: {mae,
    rmse, smape, mase}}}}`` and, per span and horizon, the origins, targets and each forecast."""
    values = np.asarray(values, dtype=float)
    filled = forward_fill(values)
    encoded = encoder.encode(values, dates)
    scale = seasonal_naive_scale(values, train_end, season_length)
    spans = {"val": (train_end, val_end), "test": (val_end, len(values))}
    metrics: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    forecasts: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for span, (start, end) in spans.items():
        metrics[span], forecasts[span] = {}, {}
        for horizon in horizons:
            starts = origins(start, end, horizon)
            targets = forecast_targets(values, starts, horizon)
            named = {"model": model_forecasts(predict, encoder, encoded, starts, context, horizon)}
            named.update(all_baselines(values, filled, starts, horizon, season_length))
            key = f"h{horizon}"
            metrics[span][key] = {name: forecast_metrics(targets, f, scale) for name, f in named.items()}
            forecasts[span][key] = {"origins": np.asarray(starts), "actual": targets, **named}
    return metrics, forecasts


def eval_json_text(metrics: dict[str, dict[str, dict[str, dict[str, float]]]]) -> str:
    """``metrics`` (the :func:`evaluate_forecasts` layout) as the text of ``metrics/eval.json``:
    keys sorted, values rounded to 6 significant digits, a NaN (no target present) as ``null``
    so that the file is valid JSON for ``dvc metrics``."""

    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        number = float(value)  # type: ignore[arg-type]
        return None if math.isnan(number) else float(f"{number:.6g}")

    return json.dumps(clean(metrics), indent=2, sort_keys=True, allow_nan=False) + "\n"


def write_eval_json(metrics: dict[str, dict[str, dict[str, dict[str, float]]]], path: str | Path) -> None:
    """Write :func:`eval_json_text` of ``metrics`` to ``path``, atomically."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(path), eval_json_text(metrics))
