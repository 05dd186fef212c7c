"""Load a trained model from wherever it lives: ``trainflow.load_model(SOURCE) -> Predictor``
(a :class:`~trainflow.forecasting.forecaster.Forecaster` for a forecasting model).

SOURCE is one of

- a project's model snapshot, ``models/best.pt`` (the default), or a project root holding
  one: the encoder comes from ``data/encoders/``, the input schema from the data set's
  schema and ``data/prepared/train.parquet``;
- a result package folder (``results/``, with ``model.json``), or a downloaded upload
  folder holding one under ``results/``;
- an uploaded package, ``file://…/<experiment-id>/`` or ``s3://bucket/prefix/<experiment-id>/``.

Every package file is checked against its manifest (sha256) before it is read, and nothing
a model source holds can make trainflow import code: snapshots load with
``weights_only=True``, weights from safetensors, and the stored config is data, resolved
without its ``imports:`` (a plug-in model must be registered by the caller's own imports).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from trainflow.errors import CheckpointError, DataError

DEFAULT_SOURCE = "models/best.pt"
URL_SCHEMES = ("file://", "s3://")
KINDS = "models/best.pt, a project root, a result package folder, file://…/<experiment-id>/ or s3://…/<experiment-id>/"


def load_model(source: str | Path | None = None, *, batch_size: int | None = None) -> Any:
    """A :class:`~trainflow.predictor.Predictor` for ``source`` (default ``models/best.pt``).

    ``batch_size`` overrides the training batch size used for scoring (the same bits either
    way only with the training batch size, which the evaluate stage uses).
    """
    text = str(source) if source is not None else DEFAULT_SOURCE
    if text.startswith(URL_SCHEMES):
        predictor = load_uploaded(text)
    else:
        path = Path(text)
        if path.is_file() and path.suffix == ".pt":
            predictor = load_project(path)
        elif (path / "model.json").is_file():
            predictor = load_package(path)
        elif (path / DEFAULT_SOURCE).is_file():
            predictor = load_project(path / DEFAULT_SOURCE)
        elif (path / "results" / "model.json").is_file():  # a downloaded upload folder
            predictor = load_package(path / "results", outer=path)
        elif not path.exists():
            raise DataError(f"--model {text}: not found; give {KINDS}")
        else:
            raise DataError(f"--model {text}: not a model; give {KINDS}")
    if batch_size is not None:
        if batch_size < 1:
            raise DataError(f"batch size must be >= 1, got {batch_size}")
        predictor.batch_size = batch_size
    return predictor


def _stored_config(raw: Any, source: str) -> Any:
    """The resolved config stored with a model; data only, its ``imports:`` are not run."""
    from trainflow.config import resolve

    if not isinstance(raw, dict):
        raise CheckpointError(f"{source}: the stored config is not a mapping")
    experiment = {key: value for key, value in raw.items() if key not in ("experiment_id", "runtime")}
    return resolve(experiment, source=source, plugins=False)


def load_project(snapshot_path: Path) -> Any:
    """The model in a project's snapshot, with the project's fitted encoder and input schema."""
    from trainflow.config import experiment_id
    from trainflow.data.datasets import DatasetInfo
    from trainflow.encoders import ENCODER_FILE, load_encoder
    from trainflow.models.snapshot import load_model_snapshot
    from trainflow.paths import ProjectPaths
    from trainflow.predictor import Predictor

    snapshot_path = Path(snapshot_path)
    model, snapshot = load_model_snapshot(snapshot_path)
    config = _stored_config(snapshot["config"], f"{snapshot_path} (stored config)")
    info = DatasetInfo.from_dict(snapshot["info"])
    paths = ProjectPaths(snapshot_path.resolve().parent.parent)
    if info.task == "forecasting":
        from trainflow.forecasting.forecaster import Forecaster
        from trainflow.forecasting.prepared import load_series_encoder, read_prepared_series, series_schema_record

        return Forecaster(
            model=model,
            encoder=load_series_encoder(paths.encoders / ENCODER_FILE),
            info=info,
            inputs=series_schema_record(config, read_prepared_series(config, paths)),
            batch_size=config.train.batch_size,
            experiment_id=experiment_id(config),
            source=str(snapshot_path),
            threads=config.train.threads,
        )
    encoder = load_encoder(paths.encoders / ENCODER_FILE)
    return Predictor(
        model=model,
        encoder=encoder,
        info=info,
        inputs=project_inputs(config, info, paths),
        batch_size=config.train.batch_size,
        experiment_id=experiment_id(config),
        source=str(snapshot_path),
        threads=config.train.threads,
    )


def project_inputs(config: Any, info: Any, paths: Any) -> dict[str, Any]:
    """The input schema of a project's model: its data set's schema, the train split's ranges."""
    from trainflow import registry
    from trainflow.data.prepare import build_dataset, read_split
    from trainflow.results.input_schema import describe_inputs

    columns = [*info.feature_columns, info.label_column]
    schema = build_dataset(config).schema(columns) if config.dataset.name in registry.datasets else None
    train = read_split(paths.prepared, "train") if (paths.prepared / "train.parquet").is_file() else None
    return describe_inputs(schema, info.feature_columns, info.label_column, info.task, info.classes, train)


def verify_folder(folder: Path) -> None:
    """Refuse a package folder whose files do not match its manifest, naming the first that differs."""
    from trainflow.storage.manifest import MANIFEST_NAME, verify_manifest

    if not (folder / MANIFEST_NAME).is_file():
        raise CheckpointError(f"{folder}: no {MANIFEST_NAME}; not a complete result package (trainflow package)")
    problems = verify_manifest(folder)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckpointError(f"{folder}: refused, does not match its manifest: {problems[0]}{more}")


def load_package(folder: Path, outer: Path | None = None) -> Any:
    """The model in a result package folder, after checking every file against the manifest.

    ``outer`` is a downloaded upload folder around the package, whose own manifest is checked too.
    """
    folder = Path(folder)
    for checked in (outer, folder):
        if checked is not None:
            verify_folder(Path(checked))
    return read_package(folder, source=str(outer or folder))


def read_package(folder: Path, source: str | None = None) -> Any:
    """The model in a result package folder as it stands: :func:`load_package` checks the
    folder first; the package stage reads the package it is building (to export it)."""
    from trainflow.data.datasets import DatasetInfo
    from trainflow.encoders import load_encoder
    from trainflow.models.snapshot import build_model
    from trainflow.predictor import Predictor
    from trainflow.results import model_files
    from trainflow.results.input_schema import INPUT_SCHEMA_FILE, check_description

    folder = Path(folder)
    record = model_files.read_model_record(folder / model_files.MODEL_FILE)
    try:
        info = DatasetInfo.from_dict(record["info"])
    except DataError as error:
        raise CheckpointError(f"{folder / model_files.MODEL_FILE}: {error}") from None
    config_path = folder / model_files.CONFIG_FILE
    try:
        raw_config = yaml.safe_load(config_path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise CheckpointError(f"{config_path}: unreadable resolved config ({str(error)[:200]})") from None
    config = _stored_config(raw_config, f"{config_path} (stored config)")
    schema = model_files.read_json(folder / INPUT_SCHEMA_FILE, "input schema")
    if info.task == "forecasting":
        from trainflow.forecasting.forecaster import Forecaster, check_series_schema
        from trainflow.forecasting.prepared import load_series_encoder

        predictor_class: Any = Forecaster
        inputs = check_series_schema(schema, str(folder))
        encoder: Any = load_series_encoder(folder / model_files.ENCODER_FILE)
    else:
        predictor_class = Predictor
        inputs = check_description(schema, str(folder))
        encoder = load_encoder(folder / model_files.ENCODER_FILE)
    model = build_model(config, info)
    state = model_files.read_weights(folder / model_files.WEIGHTS_FILE)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(
            f"{folder / model_files.WEIGHTS_FILE}: the weights do not fit the model ({reason[:200]})"
        ) from None
    batch_size = record.get("batch_size")
    return predictor_class(
        model=model,
        encoder=encoder,
        info=info,
        inputs=inputs,
        batch_size=batch_size if isinstance(batch_size, int) and batch_size > 0 else config.train.batch_size,
        experiment_id=str(record.get("experiment_id", "")),
        source=source or str(folder),
        threads=config.train.threads,
    )


def load_uploaded(url: str) -> Any:
    """The model in an uploaded package: downloaded to a temporary folder (every file checked
    against the upload's manifest as it arrives), its package's own manifest checked, loaded."""
    from trainflow.storage import download_package

    tmp = Path(tempfile.mkdtemp(prefix="trainflow-model-"))
    try:
        folder = Path(download_package(url, tmp / "package"))
        inner = folder / "results" if (folder / "results").is_dir() else folder
        predictor = load_package(inner)
        predictor.source = url
        return predictor
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def predict_command(
    input_path: str, source: str | None, output: str | None, *, score: bool = False, batch_size: int | None = None
) -> dict[str, Any]:
    """``trainflow predict``: score ``input_path`` with the model at ``source`` into ``output``.

    Uses the training thread count, so scores match the evaluate stage's bit for bit. With no
    ``output`` the predictions go to stdout as CSV and the summary to stderr.
    """
    import json
    import sys

    import torch

    from trainflow.score_files import score_file

    predictor = load_model(source, batch_size=batch_size)
    if predictor.threads:
        torch.set_num_threads(predictor.threads)
    if predictor.task == "forecasting":
        from trainflow.forecasting.forecaster import forecast_command

        return forecast_command(predictor, input_path, output, score=score)
    report = score_file(predictor, Path(input_path), Path(output) if output else None, score=score)
    say = sys.stderr if output is None else sys.stdout
    print(
        f"predict: {report.rows} rows of {input_path} -> {report.output} "
        f"(experiment {predictor.experiment_id}, {predictor.source})",
        file=say,
        flush=True,
    )
    if score:
        print(f"predict: metrics {json.dumps(report.metrics)}", file=say, flush=True)
    return {"rows": report.rows, "output": report.output, "metrics": report.metrics}
