"""Result packages: every file, a manifest that verifies, identical rebuilds, all-or-nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tests.results.tiny_project import make_project
from trainflow.config import Config, experiment_id
from trainflow.errors import DataError
from trainflow.paths import ProjectPaths
from trainflow.results.package import build_package
from trainflow.stages import evaluate
from trainflow.storage.manifest import read_manifest, verify_manifest

torch.set_num_threads(1)

MODEL_FILES = {"model.safetensors", "encoder.json", "input_schema.json", "model.json"}
CLASSIFICATION_FILES = MODEL_FILES | {
    "config.yaml",
    "confusion_test.png",
    "confusion_val.png",
    "learning_curve.png",
    "metrics.json",
    "model_card.md",
    "per_class.json",
    "per_class.md",
    "predictions_test.parquet",
    "predictions_val.parquet",
}
REGRESSION_FILES = MODEL_FILES | {
    "config.yaml",
    "learning_curve.png",
    "metrics.json",
    "model_card.md",
    "predicted_vs_actual.png",
    "predictions_test.parquet",
    "predictions_val.parquet",
    "residuals.png",
}


def evaluated_project(root: Path, task: str = "classification") -> tuple[Config, ProjectPaths]:
    config, paths = make_project(root, task)  # type: ignore[arg-type]
    evaluate.run(config, paths)
    return config, paths


def contents(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones too) by relative path."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, ProjectPaths, dict[str, Any]]:
    """One evaluated and packaged project, shared read-only; tests that change it use a copy."""
    config, paths = evaluated_project(tmp_path_factory.mktemp("packaged") / "project")
    return config, paths, build_package(paths, config)


@pytest.fixture
def project(packaged: tuple[Config, ProjectPaths, dict[str, Any]], tmp_path: Path) -> tuple[Config, ProjectPaths]:
    """A private copy of the packaged project (results/ included)."""
    config, paths, _ = packaged
    shutil.copytree(paths.root, tmp_path / "project")
    return config, ProjectPaths(tmp_path / "project")


def test_package_holds_every_file_and_its_manifest_verifies(
    packaged: tuple[Config, ProjectPaths, dict[str, Any]],
) -> None:
    config, paths, summary = packaged
    results = paths.results
    assert set(contents(results)) == CLASSIFICATION_FILES | {"manifest.json"}
    assert set(summary["files"]) == CLASSIFICATION_FILES
    assert verify_manifest(results) == []
    manifest = read_manifest(results)
    assert manifest["experiment_id"] == experiment_id(config) == summary["experiment_id"]
    assert manifest["files"]["metrics.json"]["size"] == (results / "metrics.json").stat().st_size

    metrics = json.loads((results / "metrics.json").read_text())
    evaluation = json.loads((paths.metrics / "eval.json").read_text())
    assert metrics == {"train": json.loads((paths.metrics / "train.json").read_text()), **evaluation}
    for split in ("val", "test"):
        name = f"predictions_{split}.parquet"
        assert (results / name).read_bytes() == (paths.evaluation / name).read_bytes()
    assert json.loads((results / "per_class.json").read_text()) == json.loads(
        (paths.evaluation / "per_class.json").read_text()
    )
    assert yaml.safe_load((results / "config.yaml").read_text())["experiment_id"] == experiment_id(config)
    card = (results / "model_card.md").read_text()
    assert f"| accuracy | {evaluation['val']['accuracy']:.4f} | {evaluation['test']['accuracy']:.4f} |" in card
    assert "| dataset.path | data/raw/tiny.csv |" in card
    assert "## test" in (results / "per_class.md").read_text()


def test_a_changed_file_fails_verification(project: tuple[Config, ProjectPaths]) -> None:
    _, paths = project
    with open(paths.results / "metrics.json", "a") as file:
        file.write(" ")
    problems = verify_manifest(paths.results)
    assert len(problems) == 1 and problems[0].startswith("metrics.json: size")


def test_two_runs_from_scratch_give_bit_identical_packages(
    packaged: tuple[Config, ProjectPaths, dict[str, Any]], tmp_path: Path
) -> None:
    config, paths = evaluated_project(tmp_path / "again")
    build_package(paths, config)
    first, second = contents(packaged[1].results), contents(paths.results)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


def test_rebuilding_replaces_the_package_with_the_same_bytes(project: tuple[Config, ProjectPaths]) -> None:
    config, paths = project
    first = contents(paths.results)
    (paths.results / "stray.txt").write_text("left over from an older package")
    build_package(paths, config)
    assert contents(paths.results) == first  # replaced whole: the stray file is gone


def test_missing_eval_json_fails_and_leaves_the_previous_package(project: tuple[Config, ProjectPaths]) -> None:
    config, paths = project
    before = contents(paths.results)
    (paths.metrics / "eval.json").unlink()
    with pytest.raises(DataError, match=r"eval\.json: not found; run the evaluate stage first"):
        build_package(paths, config)
    assert contents(paths.results) == before
    assert sorted(p.name for p in paths.root.iterdir() if p.name.startswith(".results")) == []


def test_a_failure_while_building_leaves_the_previous_package(project: tuple[Config, ProjectPaths]) -> None:
    config, paths = project
    before = contents(paths.results)
    # The history is read fine but cannot be plotted: the failure comes mid-build, in the staging folder.
    (paths.plots / "history.csv").write_text("step,train_loss\n1,0.5\n")
    with pytest.raises(ValueError, match="no 'epoch' column"):
        build_package(paths, config)
    assert contents(paths.results) == before
    assert sorted(p.name for p in paths.root.iterdir() if p.name.startswith(".results")) == []


def test_regression_package(tmp_path: Path) -> None:
    config, paths = evaluated_project(tmp_path / "project", "regression")
    summary = build_package(paths, config)
    assert set(summary["files"]) == REGRESSION_FILES
    assert verify_manifest(paths.results) == []
    metrics = json.loads((paths.results / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mae", "rmse", "r2", "loss"}
    card = (paths.results / "model_card.md").read_text()
    assert "the target `label` is a value" in card
    assert f"| mae | {metrics['val']['mae']:.4f} | {metrics['test']['mae']:.4f} |" in card


def test_card_shows_the_source_the_prepare_report_names(project: tuple[Config, ProjectPaths]) -> None:
    config, paths = project
    report_path = paths.prepared / "report.json"
    report = json.loads(report_path.read_text())
    report["source"] = {"sha256": "0123abcd", "licence": "CC BY 4.0"}
    report_path.write_text(json.dumps(report))
    build_package(paths, config)
    card = (paths.results / "model_card.md").read_text()
    assert "| source.sha256 | 0123abcd |" in card and "| source.licence | CC BY 4.0 |" in card


def test_class_names_reach_the_model_card_the_per_class_report_and_the_model(tmp_path: Path) -> None:
    config, paths = evaluated_project(tmp_path / "project", "names")
    summary = build_package(paths, config)
    assert set(summary["files"]) == CLASSIFICATION_FILES
    card = (paths.results / "model_card.md").read_text()
    assert "the target `label` is 3 classes (setosa, versicolor, virginica)" in card
    per_class = (paths.results / "per_class.md").read_text()
    assert "| setosa |" in per_class and "| virginica |" in per_class
    snapshot = torch.load(paths.models / "best.pt", weights_only=True)
    assert snapshot["info"]["classes"] == ["setosa", "versicolor", "virginica"]  # the encoding travels with the model
