"""The evaluate stage of a forecasting run: the best model and every baseline, by the protocol.

Reads ``models/best.pt``, the prepared series and the fitted encoder, scores the model and the
baselines on the same origins and targets (:func:`~trainflow.forecasting.evaluate.evaluate_forecasts`)
and writes

- ``metrics/eval.json``: ``{"val": {"h4": {"model": {"mae", "rmse", "smape", "mase"},
  "naive": {...}, ...}, "h13": ..., "h52": ...}, "test": {...}}`` (DVC metrics);
- ``evaluation/forecasts_{val,test}.parquet``: one row per horizon, origin and lead with the
  actual value and each forecast (the package stage plots and ships them), plus the
  evaluated weights and model summary, as for a table;
- ``plots/eval/`` (replaced whole): ``forecast_test.csv`` (``year, date, actual`` and the
  model's forecast ``h<H>`` for each horizon, tiled over the test span) and
  ``mae_by_lead.csv`` (test MAE of the model and each baseline by lead, longest horizon).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import torch

from trainflow.config import Config
from trainflow.data.datasets import DatasetInfo
from trainflow.encoders import ENCODER_FILE
from trainflow.errors import CheckpointError
from trainflow.forecasting.encoders import years
from trainflow.forecasting.evaluate import evaluate_forecasts, write_eval_json
from trainflow.forecasting.prepared import load_series_encoder, read_prepared_series
from trainflow.io import atomic_write_bytes, atomic_write_json, replace_dir
from trainflow.models.snapshot import load_model_snapshot
from trainflow.paths import (
    BEST_MODEL,
    EVAL_FILE,
    EVAL_PLOTS,
    EVALUATED_MODEL,
    EVALUATED_WEIGHTS,
    ProjectPaths,
    forecasts_file,
)
from trainflow.results.evaluate import predict
from trainflow.results.model_files import state_bytes

SPANS = ("val", "test")
FORECAST_PLOT = "forecast_test.csv"
LEAD_PLOT = "mae_by_lead.csv"
Forecasts = dict[str, dict[str, dict[str, np.ndarray]]]


def forecasts_frame(forecasts: dict[str, dict[str, np.ndarray]], dates: np.ndarray) -> pd.DataFrame:
    """One row per horizon, origin and lead: the target date, the actual value and every forecast."""
    frames = []
    for key, entry in forecasts.items():
        origins = np.asarray(entry["origins"], dtype=np.int64)
        horizon = entry["actual"].shape[1]
        steps = (origins[:, None] + np.arange(horizon)).ravel()
        frame = pd.DataFrame(
            {
                "horizon": int(key.removeprefix("h")),
                "origin": np.repeat(dates[origins], horizon) if len(origins) else dates[:0],
                "lead": np.tile(np.arange(1, horizon + 1), len(origins)),
                "date": dates[steps],
                **{
                    name: np.asarray(values, dtype=float).ravel() for name, values in entry.items() if name != "origins"
                },
            }
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def frame_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def forecast_plot_csv(test: pd.DataFrame) -> str:
    """``year, date, actual, h<H>...``: the test span with the model's tiled forecast per horizon."""
    wide = test.pivot_table(index="date", columns="horizon", values="model", aggfunc="first")
    wide.columns = [f"h{horizon}" for horizon in wide.columns]
    actual = test.drop_duplicates("date").set_index("date")["actual"]
    table = pd.concat([actual, wide], axis=1).sort_index()
    table.insert(0, "year", np.round(years(table.index.to_numpy()) + 1970, 4))
    table.index = table.index.strftime("%Y-%m-%d")
    return (
        table.rename_axis("date")
        .reset_index()[["year", "date", *table.columns[1:]]]
        .to_csv(index=False, lineterminator="\n", float_format="%.6g")
    )


def mae_by_lead_csv(test: pd.DataFrame) -> str:
    """``lead, model, <baseline>...``: the test MAE at each lead of the longest horizon."""
    longest = test[test["horizon"] == test["horizon"].max()]
    names = [column for column in longest.columns if column not in ("horizon", "origin", "lead", "date", "actual")]
    errors = longest[names].sub(longest["actual"], axis=0).abs()
    table = errors.groupby(longest["lead"]).mean()  # NaN targets are skipped by mean()
    return table.rename_axis("lead").reset_index().to_csv(index=False, lineterminator="\n", float_format="%.6g")


def evaluate_series_model(config: Config, paths: ProjectPaths) -> dict[str, Any]:
    """The whole stage for a forecasting run; returns ``{"val": ..., "test": ..., "outputs": [...]}``."""
    from trainflow.stages.evaluate import check_snapshot_config, model_summary

    snapshot_path = paths.models / BEST_MODEL
    print(f"evaluate: loading {snapshot_path}", flush=True)
    model, snapshot = load_model_snapshot(snapshot_path)
    check_snapshot_config(config, snapshot, str(snapshot_path))
    prepared = read_prepared_series(config, paths)
    if DatasetInfo.from_dict(snapshot["info"]) != prepared.info:
        raise CheckpointError(f"{snapshot_path}: not trained on this series; run the train stage again (dvc repro)")
    encoder = load_series_encoder(paths.encoders / ENCODER_FILE)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)

    def forecast(windows: np.ndarray) -> np.ndarray:
        return predict(model, torch.from_numpy(np.ascontiguousarray(windows)), config.train.batch_size).numpy()

    series, dataset = prepared.series, config.dataset
    metrics, forecasts = evaluate_forecasts(
        series.values,
        series.dates,
        encoder,
        forecast,
        train_end=prepared.train_end,
        val_end=prepared.val_end,
        context=dataset.context,
        horizons=dataset.horizons,
        season_length=series.season_length,
    )
    for span in SPANS:
        for key, scores in metrics[span].items():
            best = min((name for name in scores if name != "model"), key=lambda name: scores[name]["mase"])
            print(
                f"evaluate: {span} {key}: model MASE {scores['model']['mase']:.4f}, "
                f"best baseline {best} {scores[best]['mase']:.4f}",
                flush=True,
            )
    frames = {span: forecasts_frame(forecasts[span], series.dates) for span in SPANS}
    written = write_series_outputs(
        metrics, frames, state_bytes(snapshot["model_state"]), model_summary(config, model, snapshot), paths
    )
    print(f"evaluate: wrote {paths.metrics / EVAL_FILE}, {paths.plots / EVAL_PLOTS}/, {paths.evaluation}/", flush=True)
    return {**metrics, "outputs": written}


def write_series_outputs(
    metrics: dict[str, Any],
    frames: dict[str, pd.DataFrame],
    weights: bytes,
    summary: dict[str, Any],
    paths: ProjectPaths,
) -> list[str]:
    """Write the evaluated model's files, the forecasts, the DVC plot CSVs and eval.json (last)."""
    atomic_write_bytes(paths.evaluation / EVALUATED_WEIGHTS, weights)
    atomic_write_json(paths.evaluation / EVALUATED_MODEL, summary)
    written = [str(paths.evaluation / EVALUATED_WEIGHTS), str(paths.evaluation / EVALUATED_MODEL)]
    for span in SPANS:
        atomic_write_bytes(paths.evaluation / forecasts_file(span), frame_bytes(frames[span]))
        written.append(str(paths.evaluation / forecasts_file(span)))
    folder = paths.plots / EVAL_PLOTS
    with replace_dir(folder) as staging:  # no confusion or scatter file of a table run is left behind
        atomic_write_bytes(staging / FORECAST_PLOT, forecast_plot_csv(frames["test"]).encode())
        atomic_write_bytes(staging / LEAD_PLOT, mae_by_lead_csv(frames["test"]).encode())
    written += [str(folder / FORECAST_PLOT), str(folder / LEAD_PLOT)]
    eval_path = paths.metrics / EVAL_FILE
    write_eval_json(metrics, eval_path)
    written.append(str(eval_path))
    return written
