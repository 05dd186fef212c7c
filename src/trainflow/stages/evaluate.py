"""The evaluate stage: the best model on the val and test splits -> DVC metrics, plots, predictions.

Reads ``models/best.pt``, the prepared val and test splits and the fitted encoder; writes

- ``metrics/eval.json``: ``{"val": {...}, "test": {...}}``, scalars only (DVC metrics);
- ``plots/eval/``, replaced whole: ``confusion_{val,test}.csv`` (``actual,predicted`` per
  sample, class labels, for DVC's confusion template) for classification,
  ``predictions_{val,test}.csv`` (``actual,predicted`` values, DVC's scatter template) for
  regression. One folder whatever the task, so dvc.yaml declares the same outputs for both;
- ``evaluation/predictions_{val,test}.parquet`` and, for classification,
  ``evaluation/per_class.json`` (per-class precision/recall/F1/support and the confusion
  matrix of each split), which the package stage puts in the result package;
- ``evaluation/model.safetensors`` (the evaluated weights, stamped by the package stage) and
  ``evaluation/model_summary.json`` (data set info, epoch, parameter count, runtime record),
  so the package stage needs no torch.

Evaluation runs on CPU with the config's thread count, so the same model and data give the
same bits.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from trainflow import registry
from trainflow.components.datasets import dataset_task
from trainflow.config import Config, diff, resolve, to_dict, training_fingerprint
from trainflow.data.datasets import DatasetInfo
from trainflow.data.prepare import read_info, read_split, to_arrays
from trainflow.encoders import ENCODER_FILE, load_encoder
from trainflow.errors import CheckpointError
from trainflow.io import atomic_write_bytes, atomic_write_json, replace_dir
from trainflow.models.snapshot import load_model_snapshot
from trainflow.paths import (
    BEST_MODEL,
    EVAL_FILE,
    EVAL_PLOTS,
    EVALUATED_MODEL,
    EVALUATED_WEIGHTS,
    PER_CLASS_FILE,
    ProjectPaths,
    predictions_file,
)
from trainflow.results.evaluate import evaluate_split, predict, scalar_metrics
from trainflow.results.model_files import state_bytes
from trainflow.runtime import runtime_record

SPLITS = ("val", "test")


def plot_files(task: str) -> dict[str, str]:
    """The CSV files in plots/eval/ for ``task``, by split."""
    kind = "confusion" if task == "classification" else "predictions"
    return {split: f"{kind}_{split}.csv" for split in SPLITS}


def check_snapshot_config(config: Config, snapshot: dict[str, Any], source: str) -> None:
    """Refuse a snapshot trained under different training settings than ``config`` names.

    Keys that do not change the weights (upload, metrics, ...) and the ones a resume may raise
    (max_epochs, patience) may differ.
    """
    stored = resolve(snapshot["config"], source=f"{source} (stored config)", plugins=False)
    if training_fingerprint(stored) != training_fingerprint(config):
        changed = ", ".join(sorted(diff(to_dict(stored), to_dict(config))))
        raise CheckpointError(
            f"{source}: trained with different settings ({changed}); run the train stage again (dvc repro)"
        )


def frame_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as parquet bytes (no index: the ``row`` column names the rows)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def actual_predicted_csv(frame: pd.DataFrame) -> str:
    """``actual,predicted`` per sample, the layout DVC's confusion and scatter templates read."""
    return (
        frame[["target", "prediction"]]
        .rename(columns={"target": "actual", "prediction": "predicted"})
        .to_csv(index=False, lineterminator="\n")
    )


def model_summary(config: Config, model: torch.nn.Module, snapshot: dict[str, Any]) -> dict[str, Any]:
    """What the package stage needs of the snapshot besides its weights, so it imports no torch."""
    return {
        "info": snapshot["info"],
        "epoch": snapshot.get("epoch"),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "runtime": runtime_record(config.train.threads),
    }


def evaluate(
    config: Config, paths: ProjectPaths
) -> tuple[dict[str, dict[str, Any]], dict[str, pd.DataFrame], DatasetInfo, dict[str, Any]]:
    """Metrics (with per-class detail) and predictions for each split, the data set info, and
    the evaluated model's files for the package (``{"weights": bytes, "summary": {...}}``).

    Reads the snapshot, the encoder and the val and test splits; writes nothing.
    """
    snapshot_path = paths.models / BEST_MODEL
    print(f"evaluate: loading {snapshot_path}", flush=True)
    model, snapshot = load_model_snapshot(snapshot_path)
    check_snapshot_config(config, snapshot, str(snapshot_path))
    info: DatasetInfo = read_info(paths.prepared)
    stored_info = DatasetInfo.from_dict(snapshot["info"])
    if stored_info != info:
        raise CheckpointError(
            f"{snapshot_path}: trained on a differently shaped data set than {paths.prepared}; "
            "run the train stage again (dvc repro)"
        )
    model_files = {
        "weights": state_bytes(snapshot["model_state"]),
        "summary": model_summary(config, model, snapshot),
    }
    encoder = load_encoder(paths.encoders / ENCODER_FILE)
    criterion = registry.losses.build(config.loss, task=info.task)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)

    metrics: dict[str, dict[str, Any]] = {}
    predictions: dict[str, pd.DataFrame] = {}
    for split in SPLITS:
        frame = read_split(paths.prepared, split)
        x, y = to_arrays(frame, info)
        outputs = predict(model, torch.from_numpy(encoder.encode(x)), config.train.batch_size)
        metrics[split], predictions[split] = evaluate_split(
            outputs, torch.from_numpy(y), info, criterion=criterion, index=frame.index.to_numpy()
        )
        shown = ", ".join(
            f"{name} {value:.4f}" for name, value in scalar_metrics(metrics[split]).items() if value is not None
        )
        print(f"evaluate: {split} ({len(frame)} rows): {shown}", flush=True)
    return metrics, predictions, info, model_files


def write_outputs(
    metrics: dict[str, dict[str, Any]],
    predictions: dict[str, pd.DataFrame],
    info: DatasetInfo,
    model_files: dict[str, Any],
    paths: ProjectPaths,
) -> list[str]:
    """Write eval.json, the DVC plot CSVs, the predictions, the per-class report and the model
    files; the paths written."""
    written: list[str] = []

    def write(path: Path, data: bytes | str) -> None:
        atomic_write_bytes(path, data.encode() if isinstance(data, str) else data)
        written.append(str(path))

    write(paths.evaluation / EVALUATED_WEIGHTS, model_files["weights"])
    atomic_write_json(paths.evaluation / EVALUATED_MODEL, model_files["summary"])
    written.append(str(paths.evaluation / EVALUATED_MODEL))

    for split in SPLITS:
        write(paths.evaluation / predictions_file(split), frame_bytes(predictions[split]))
    folder = paths.plots / EVAL_PLOTS
    with replace_dir(folder) as staging:  # no stale file of the other task is left behind
        for split, name in plot_files(info.task).items():
            atomic_write_bytes(staging / name, actual_predicted_csv(predictions[split]).encode())
    written += [str(folder / name) for name in plot_files(info.task).values()]
    if info.task == "classification":
        detail = {
            "classes": list(info.classes),
            **{
                split: {
                    "per_class": metrics[split]["per_class"],
                    "confusion_matrix": metrics[split]["confusion_matrix"],
                }
                for split in SPLITS
            },
        }
        atomic_write_json(paths.evaluation / PER_CLASS_FILE, detail)
        written.append(str(paths.evaluation / PER_CLASS_FILE))
    eval_path = paths.metrics / EVAL_FILE
    atomic_write_json(eval_path, {split: scalar_metrics(metrics[split]) for split in SPLITS})
    written.append(str(eval_path))
    return written


def run(config: Config, paths: ProjectPaths) -> dict[str, Any]:
    """Evaluate the best model; returns ``{"val": {...}, "test": {...}, "outputs": [paths]}``.

    A forecasting run is scored by its protocol, against the baselines
    (:mod:`trainflow.forecasting.evaluate_stage`)."""
    if dataset_task(config.dataset) == "forecasting":
        from trainflow.forecasting.evaluate_stage import evaluate_series_model

        return evaluate_series_model(config, paths)
    metrics, predictions, info, model_files = evaluate(config, paths)
    written = write_outputs(metrics, predictions, info, model_files, paths)
    print(f"evaluate: wrote {paths.metrics / EVAL_FILE}, {paths.plots / EVAL_PLOTS}/, {paths.evaluation}/", flush=True)
    return {**{split: scalar_metrics(metrics[split]) for split in SPLITS}, "outputs": written}
