"""The result package of a forecasting run: the same folder as a table's, with forecasts.

``results/`` holds::

    metrics.json                 {"train": ..., "val": {"h4": {"model": {...}, "naive": ...}}, "test": ...}
    forecasts_val.parquet        one row per horizon, origin and lead: actual and every forecast
    forecasts_test.parquet
    learning_curve.png           losses per epoch
    forecast_test_h<H>.png       the test span: actual, the model's forecasts, the best baseline's
    mae_by_lead.png              test MAE by lead time, model and baselines (longest horizon)
    config.yaml, model.safetensors, encoder.json, input_schema.json, model.json
    model.onnx, model.torchscript.pt   with package.export (results/exports.py)
    model_card.md                the protocol and the metrics against the baselines
    manifest.json                written last

Built beside ``results/`` and swapped in whole; every file is a function of the run's outputs.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np
import pandas as pd

from trainflow import __version__, registry
from trainflow.config import Config, experiment_id, save_resolved
from trainflow.encoders import ENCODER_FILE
from trainflow.forecasting.baselines import BASELINES
from trainflow.forecasting.model_card import render_forecast_card
from trainflow.forecasting.plots import plot_forecasts, plot_mae_by_lead
from trainflow.forecasting.prepared import (
    PreparedSeries,
    load_series_encoder,
    read_prepared_series,
    series_schema_record,
)
from trainflow.io import atomic_write_json, atomic_write_text, replace_dir
from trainflow.paths import (
    LEARNING_CURVE_PNG,
    MODEL_CARD_FILE,
    PACKAGE_METRICS_FILE,
    RESOLVED_CONFIG,
    ProjectPaths,
    forecasts_file,
)
from trainflow.results import plots
from trainflow.results.exports import write_exports
from trainflow.results.model_card import ModelSummary
from trainflow.results.model_files import model_record, write_model_files
from trainflow.results.package import RUN_EVALUATE, read_input_table, read_run_outputs
from trainflow.runtime import stored_runtime_record
from trainflow.storage.manifest import write_manifest

MAE_BY_LEAD_PNG = "mae_by_lead.png"
SPANS = ("val", "test")


def forecast_png(horizon: int) -> str:
    """The test-span forecast picture of ``horizon`` in the package."""
    return f"forecast_test_h{horizon}.png"


def forecast_matrix(frame: pd.DataFrame, horizon: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(origins as step positions' dates, forecasts [origins, horizon])`` of one forecaster."""
    rows = frame[frame["horizon"] == horizon].sort_values(["origin", "lead"])
    origins = rows["origin"].drop_duplicates().to_numpy()
    return origins, rows[name].to_numpy(dtype=float).reshape(len(origins), horizon)


def best_baseline(scores: dict[str, Any]) -> str:
    """The baseline with the lowest MASE in one horizon's entry of eval.json."""
    present = [
        name for name in BASELINES if isinstance(scores.get(name), dict) and scores[name].get("mase") is not None
    ]
    return min(present, key=lambda name: scores[name]["mase"]) if present else BASELINES[0]


def build_series_package(paths: ProjectPaths, config: Config) -> dict[str, Any]:
    """Build ``paths.results`` for a forecasting run; a missing input is a DataError naming it
    and the stage to run, and leaves the previous package as it was."""
    evaluation, train_metrics, report, summary, weights, info, history = read_run_outputs(paths)
    forecasts = {span: read_input_table(paths.evaluation / forecasts_file(span), RUN_EVALUATE) for span in SPANS}
    prepared = read_prepared_series(config, paths)
    encoder = load_series_encoder(paths.encoders / ENCODER_FILE)
    exp_id = experiment_id(config)
    print(f"package: building {paths.results}/ for experiment {exp_id}", flush=True)

    with replace_dir(paths.results) as staging:
        atomic_write_json(staging / PACKAGE_METRICS_FILE, {"train": train_metrics, **{s: evaluation[s] for s in SPANS}})
        for span in SPANS:
            shutil.copyfile(paths.evaluation / forecasts_file(span), staging / forecasts_file(span))
        plots.save_png(plots.learning_curve_figure(history), staging / LEARNING_CURVE_PNG)
        write_forecast_plots(staging, prepared, forecasts["test"], evaluation["test"], config.dataset.horizons)
        print("package: metrics, forecasts and plots", flush=True)

        runtime = stored_runtime_record(summary["runtime"])
        save_resolved(config, staging / RESOLVED_CONFIG, runtime=runtime)
        write_model_files(
            staging,
            weights=weights,
            record=model_record(exp_id, info.to_dict(), config.train.batch_size, summary.get("epoch")),
            encoder=json.loads(encoder.to_json()),
            input_schema=series_schema_record(config, prepared),
        )
        write_exports(staging, config.package.export)
        doc = (registry.datasets.get(config.dataset.name).config_class.__doc__ or "").strip().splitlines()
        card = render_forecast_card(
            config=config,
            experiment_id=exp_id,
            model=ModelSummary(
                name=config.model.name, parameters=int(summary["parameters"]), epoch=summary.get("epoch")
            ),
            report=report if isinstance(report, dict) else {},
            description=doc[0] if doc else "",
            evaluation=evaluation,
            train_metrics=train_metrics if isinstance(train_metrics, dict) else {},
            runtime={"trainflow": __version__, **runtime},
        )
        atomic_write_text(staging / MODEL_CARD_FILE, card)
        manifest = write_manifest(staging, experiment_id=exp_id, runtime=runtime)
        print(f"package: manifest of {len(manifest['files'])} files", flush=True)
    return {"results": str(paths.results), "experiment_id": exp_id, "files": sorted(manifest["files"])}


def write_forecast_plots(
    folder: Any, prepared: PreparedSeries, test: pd.DataFrame, scores: dict[str, Any], horizons: tuple[int, ...]
) -> None:
    """One forecast picture per horizon (the model and the best baseline) and MAE by lead."""
    series = prepared.series
    position = {date: index for index, date in enumerate(pd.DatetimeIndex(series.dates))}
    for horizon in horizons:
        baseline = best_baseline(scores.get(f"h{horizon}", {}))
        origin_dates, model = forecast_matrix(test, horizon, "model")
        _, other = forecast_matrix(test, horizon, baseline)
        starts = [position[pd.Timestamp(date)] for date in origin_dates]
        plot_forecasts(
            folder / forecast_png(horizon),
            series.dates,
            series.values,
            {"model": model, baseline: other},
            starts,
            horizon,
        )
    longest = max(horizons)
    _, actual = forecast_matrix(test, longest, "actual")
    errors = {name: forecast_matrix(test, longest, name)[1] - actual for name in ("model", *BASELINES)}
    plot_mae_by_lead(folder / MAE_BY_LEAD_PNG, errors)
