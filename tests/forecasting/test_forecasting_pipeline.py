"""The forecasting experiment in code on co2: no leakage into training, a model that learns,
and an evaluation of the model and the baselines on the same origins and targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import trainflow.components.forecasting  # noqa: F401  (declares the forecasting components)
from trainflow.components.forecasting import LinearWindowConfig
from trainflow.forecasting.evaluate import evaluate_forecasts, write_eval_json
from trainflow.forecasting.experiment import prepare_forecast, torch_predict, train_forecaster
from trainflow.forecasting.metrics import forecast_metrics, seasonal_naive_scale
from trainflow.forecasting.protocol import origins
from trainflow.forecasting.series import Series, read_co2

ROOT = Path(__file__).resolve().parents[2]
BASELINES = {"naive", "seasonal_naive", "seasonal_naive_drift", "holt_winters"}


@pytest.fixture(scope="module")
def co2() -> Series:
    return read_co2(ROOT)


def test_the_split_and_the_windows_follow_the_protocol(co2: Series) -> None:
    prepared = prepare_forecast(co2)
    assert (prepared.train_end, prepared.val_end) == (2284 - 416, 2284 - 208)
    for windows, end in ((prepared.train, prepared.train_end), (prepared.val, prepared.val_end)):
        last_target = windows.origins[:, None] + np.arange(52)
        assert last_target[windows.mask].max() < end
    assert prepared.train.origins.max() < prepared.train_end and prepared.val.origins.min() == prepared.train_end


def test_nothing_after_the_train_span_reaches_training(co2: Series) -> None:
    """Val and test values replaced by nonsense leave the encoder and the training windows unchanged."""
    values = co2.values.copy()
    values[2284 - 416 :] = 999.0
    changed = Series(co2.dates, values, co2.frequency, co2.season_length)
    a, b = prepare_forecast(co2), prepare_forecast(changed)
    assert a.encoder == b.encoder
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.train.y, b.train.y)
    np.testing.assert_array_equal(a.train.mask, b.train.mask)


def test_a_model_trains_and_is_evaluated_against_the_baselines(co2: Series, tmp_path: Path) -> None:
    prepared = prepare_forecast(co2)
    trainer = train_forecaster(prepared, LinearWindowConfig(), epochs=4, lr=3e-3)
    history = trainer.state.history
    assert min(record["val/loss"] for record in history[1:]) < history[0]["val/loss"]
    metrics, forecasts = evaluate_forecasts(
        co2.values,
        co2.dates,
        prepared.encoder,
        torch_predict(trainer.model),
        train_end=prepared.train_end,
        val_end=prepared.val_end,
        context=104,
        horizons=(4, 13, 52),
    )
    assert set(metrics) == {"val", "test"}
    for span, start, end in (("val", prepared.train_end, prepared.val_end), ("test", prepared.val_end, 2284)):
        assert set(metrics[span]) == {"h4", "h13", "h52"}
        for horizon in (4, 13, 52):
            entry = metrics[span][f"h{horizon}"]
            assert set(entry) == {"model"} | BASELINES
            assert all(set(m) == {"mae", "rmse", "smape", "mase"} for m in entry.values())
            assert forecasts[span][f"h{horizon}"]["origins"].tolist() == origins(start, end, horizon)
            assert forecasts[span][f"h{horizon}"]["model"].shape == (len(origins(start, end, horizon)), horizon)
    write_eval_json(metrics, tmp_path / "metrics" / "eval.json")
    written = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    assert written["test"]["h52"]["holt_winters"]["mase"] == pytest.approx(
        metrics["test"]["h52"]["holt_winters"]["mase"], rel=1e-5
    )
    assert set(written["val"]["h13"]) == {"model"} | BASELINES
    # four epochs already beat the naive forecast on test at every horizon
    assert all(metrics["test"][h]["model"]["mase"] < metrics["test"][h]["naive"]["mase"] for h in ("h4", "h13", "h52"))


def test_a_missing_target_is_left_out_of_every_metric(co2: Series) -> None:
    """The last test week made missing: every score (model and baselines) is the score of the
    same forecasts over the other targets, and nothing else moves (it is an input to no origin)."""
    prepared = prepare_forecast(co2)
    predict = torch_predict(train_forecaster(prepared, LinearWindowConfig(), epochs=1).model)
    hidden = co2.values.copy()
    hidden[-1] = np.nan

    def run(values: np.ndarray) -> tuple[dict, dict]:
        return evaluate_forecasts(
            values,
            co2.dates,
            prepared.encoder,
            predict,
            train_end=prepared.train_end,
            val_end=prepared.val_end,
            context=104,
            horizons=(4,),
        )

    (full, forecasts), (masked, _) = run(co2.values), run(hidden)
    scale = seasonal_naive_scale(co2.values, prepared.train_end)
    test = forecasts["test"]["h4"]
    for name in {"model"} | BASELINES:
        by_hand = forecast_metrics(test["actual"][:, :].ravel()[:-1], test[name].ravel()[:-1], scale)
        assert masked["test"]["h4"][name] == pytest.approx(by_hand), name
        assert masked["test"]["h4"][name] != full["test"]["h4"][name], name
    assert masked["val"] == full["val"]


def test_eval_json_writes_a_span_without_targets_as_null(tmp_path: Path) -> None:
    nan = float("nan")
    write_eval_json({"test": {"h4": {"model": {"mae": nan, "mase": 0.1234567891}}}}, tmp_path / "eval.json")
    assert json.loads((tmp_path / "eval.json").read_text()) == {
        "test": {"h4": {"model": {"mae": None, "mase": 0.123457}}}
    }
