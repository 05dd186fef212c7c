"""Result packages (after aitoolbox's): everything about one trained model in one folder.

``results/`` holds::

    metrics.json                 {"train": metrics/train.json, "val": {...}, "test": {...}}
    predictions_val.parquet      one row per sample (copied from evaluation/)
    predictions_test.parquet
    learning_curve.png           losses and metrics per epoch (plots/history.csv)
    confusion_val.png            classification: confusion matrices
    confusion_test.png
    per_class.json, per_class.md classification: precision / recall / F1 / support per class
    predicted_vs_actual.png      regression: test predictions against actual values
    residuals.png                regression: test residuals
    config.yaml                  the resolved config with its experiment id
    model.safetensors            the weights; with encoder.json (the fitted encoder),
    encoder.json                 input_schema.json (features, dtypes, ranges, label) and
    input_schema.json            model.json (label classes, image shape, batch size) all
    model.json                   trainflow.load_model needs (see results/model_files.py)
    model.onnx                   with package.export: [onnx] (results/exports.py)
    model.torchscript.pt         with package.export: [torchscript]
    model_card.md                model, data, training, metrics, intended use and limits
    manifest.json                sha256 and size of every other file; written last

The folder is built beside ``results/`` and swapped in only when complete, so a failed build
leaves the previous package untouched. Every file is a function of the inputs alone (no
timestamps, deterministic PNGs), so two builds from the same run are bit-identical.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from trainflow import __version__, registry
from trainflow.config import Config, experiment_id, save_resolved
from trainflow.data.datasets import DatasetInfo
from trainflow.data.prepare import REPORT_FILE, build_dataset, read_split
from trainflow.encoders import ENCODER_FILE as FITTED_ENCODER
from trainflow.encoders import load_encoder
from trainflow.errors import DataError
from trainflow.io import atomic_write_json, atomic_write_text, replace_dir
from trainflow.paths import (
    EVAL_FILE,
    EVALUATED_MODEL,
    EVALUATED_WEIGHTS,
    HISTORY_FILE,
    LEARNING_CURVE_PNG,
    MODEL_CARD_FILE,
    PACKAGE_METRICS_FILE,
    PER_CLASS_FILE,
    PER_CLASS_TABLE,
    PREDICTED_VS_ACTUAL_PNG,
    RESIDUALS_PNG,
    RESOLVED_CONFIG,
    TRAIN_METRICS_FILE,
    ProjectPaths,
    confusion_png,
    predictions_file,
)
from trainflow.results import plots
from trainflow.results.exports import write_exports
from trainflow.results.input_schema import describe_inputs
from trainflow.results.model_card import DataSummary, ModelSummary, render_model_card
from trainflow.results.model_files import model_record, write_model_files
from trainflow.results.per_class import per_class_markdown
from trainflow.runtime import stored_runtime_record
from trainflow.storage.manifest import write_manifest

SPLITS = ("val", "test")
RUN_EVALUATE = "run the evaluate stage first (`trainflow evaluate`)"
RUN_TRAIN = "run the train stage first (`trainflow train`)"
RUN_PREPARE = "run the prepare stage first (`trainflow prepare`)"


def read_input_json(path: Path, hint: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: not found; {hint}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: unreadable ({error}); {hint}") from None


def read_input_table(path: Path, hint: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: not found; {hint}")
    try:
        return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable ({error}); {hint}") from None


def provenance(report: dict[str, Any]) -> dict[str, Any]:
    """Where the data came from: the data set's config, description, and what prepare checked."""
    dataset = dict(report.get("dataset", {}))
    name = str(dataset.get("name", "?"))
    provenance: dict[str, Any] = {"dataset": name}
    if name in registry.datasets:
        doc = (registry.datasets.get(name).factory.__doc__ or "").strip().splitlines()
        if doc:
            provenance["description"] = doc[0]
    provenance.update({f"dataset.{key}": value for key, value in dataset.items() if key != "name"})
    source = report.get("source")
    if isinstance(source, dict):  # what the prepare stage knows of the file: checksum, licence, ...
        provenance.update({f"source.{key}": value for key, value in source.items()})
    if "rows" in report:
        provenance["rows (total)"] = report["rows"].get("total")
    if report.get("checks_passed"):
        provenance["schema checks passed"] = len(report["checks_passed"])
    return provenance


def _input_schema(config: Config, info: DatasetInfo, paths: ProjectPaths) -> dict[str, Any]:
    """The input schema from the data set's training schema and the prepared train split."""
    columns = [*info.feature_columns, info.label_column]
    training_schema = build_dataset(config).schema(columns) if config.dataset.name in registry.datasets else None
    train = read_split(paths.prepared, "train")
    return describe_inputs(training_schema, info.feature_columns, info.label_column, info.task, info.classes, train)


def read_run_outputs(
    paths: ProjectPaths,
) -> tuple[dict[str, Any], Any, Any, dict[str, Any], Path, DatasetInfo, pd.DataFrame]:
    """What every package is built from, checked: eval.json (with val and test), train.json,
    the prepared report, the evaluated model's summary and weights, its data set info and the
    train history. A missing input is a DataError naming it and the stage to run."""
    evaluation = read_input_json(paths.metrics / EVAL_FILE, RUN_EVALUATE)
    if not isinstance(evaluation, dict) or not all(isinstance(evaluation.get(s), dict) for s in SPLITS):
        raise DataError(f"{paths.metrics / EVAL_FILE}: expected {{'val': {{...}}, 'test': {{...}}}}; {RUN_EVALUATE}")
    train_metrics = read_input_json(paths.metrics / TRAIN_METRICS_FILE, RUN_TRAIN)
    report = read_input_json(paths.prepared / REPORT_FILE, RUN_PREPARE)
    summary = read_input_json(paths.evaluation / EVALUATED_MODEL, RUN_EVALUATE)
    if not isinstance(summary, dict) or not {"info", "epoch", "parameters", "runtime"} <= set(summary):
        raise DataError(f"{paths.evaluation / EVALUATED_MODEL}: not a model summary; {RUN_EVALUATE}")
    weights = paths.evaluation / EVALUATED_WEIGHTS
    if not weights.is_file():
        raise DataError(f"{weights}: not found; {RUN_EVALUATE}")
    info = DatasetInfo.from_dict(summary["info"])
    history = read_input_table(paths.plots / HISTORY_FILE, RUN_TRAIN)
    return evaluation, train_metrics, report, summary, weights, info, history


def build_package(paths: ProjectPaths, config: Config) -> dict[str, Any]:
    """Build ``paths.results`` from the pipeline's outputs; returns a short summary.

    Reads metrics/{eval,train}.json, evaluation/ (predictions, per-class report, the evaluated
    weights and their summary), plots/history.csv, data/prepared/{report.json,train.parquet}
    and data/encoders/encoder.json, never the torch snapshot; a missing input
    is a DataError naming it and the stage to run, and leaves the previous package as it was.
    """
    evaluation, train_metrics, report, summary, weights, info, history = read_run_outputs(paths)
    predictions = {
        split: read_input_table(paths.evaluation / predictions_file(split), RUN_EVALUATE) for split in SPLITS
    }
    detail = read_input_json(paths.evaluation / PER_CLASS_FILE, RUN_EVALUATE) if info.task == "classification" else None
    encoder = load_encoder(paths.encoders / FITTED_ENCODER)
    exp_id = experiment_id(config)
    print(f"package: building {paths.results}/ for experiment {exp_id}", flush=True)

    with replace_dir(paths.results) as staging:
        atomic_write_json(
            staging / PACKAGE_METRICS_FILE, {"train": train_metrics, **{s: evaluation[s] for s in SPLITS}}
        )
        for split in SPLITS:
            shutil.copyfile(paths.evaluation / predictions_file(split), staging / predictions_file(split))
        print("package: metrics and predictions", flush=True)

        plots.save_png(plots.learning_curve_figure(history), staging / LEARNING_CURVE_PNG)
        if detail is not None:
            for split in SPLITS:
                figure = plots.confusion_matrix_figure(
                    detail[split]["confusion_matrix"], detail["classes"], f"confusion matrix ({split})"
                )
                plots.save_png(figure, staging / confusion_png(split))
            atomic_write_json(staging / PER_CLASS_FILE, detail)
            atomic_write_text(staging / PER_CLASS_TABLE, per_class_markdown(detail, SPLITS))
        else:
            test = predictions["test"]
            plots.save_png(
                plots.predicted_vs_actual_figure(test["target"], test["prediction"], "test: predicted vs actual"),
                staging / PREDICTED_VS_ACTUAL_PNG,
            )
            plots.save_png(
                plots.residuals_figure(test["target"], test["prediction"], "test: residuals"),
                staging / RESIDUALS_PNG,
            )
        print("package: plots and per-class report", flush=True)

        runtime = stored_runtime_record(summary["runtime"])  # recorded where torch was loaded (evaluate)
        save_resolved(config, staging / RESOLVED_CONFIG, runtime=runtime)
        write_model_files(
            staging,
            weights=weights,
            record=model_record(exp_id, info.to_dict(), config.train.batch_size, summary.get("epoch")),
            encoder=encoder.to_dict(),
            input_schema=_input_schema(config, info, paths),
        )
        print("package: weights, encoder, input schema and model record", flush=True)
        write_exports(staging, config.package.export)
        card = render_model_card(
            config=config,
            experiment_id=exp_id,
            model=ModelSummary(
                name=config.model.name,
                parameters=int(summary["parameters"]),
                epoch=summary.get("epoch"),
            ),
            data=DataSummary(
                name=config.dataset.name,
                task=info.task,
                num_features=info.num_features,
                label_column=info.label_column,
                classes=info.classes,
                feature_columns=info.feature_columns,
                split_sizes={s: n for s, n in report.get("rows", {}).items() if s != "total"},
                provenance=provenance(report),
            ),
            evaluation={split: evaluation[split] for split in SPLITS},
            train_metrics=train_metrics if isinstance(train_metrics, dict) else {},
            per_class=detail["test"]["per_class"] if detail is not None else None,
            runtime={"trainflow": __version__, **runtime},
        )
        atomic_write_text(staging / MODEL_CARD_FILE, card)
        manifest = write_manifest(staging, experiment_id=exp_id, runtime=runtime)
        print(f"package: manifest of {len(manifest['files'])} files", flush=True)

    return {"results": str(paths.results), "experiment_id": exp_id, "files": sorted(manifest["files"])}
