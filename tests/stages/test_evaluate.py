"""The evaluate stage: DVC metrics and plots, predictions and per-class detail, the same bits each run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.results.tiny_project import CLASSES, NAMES, make_project, tiny_config
from trainflow.cli import main
from trainflow.config import Config
from trainflow.data.prepare import read_split
from trainflow.errors import CheckpointError
from trainflow.paths import ProjectPaths
from trainflow.stages import evaluate

torch.set_num_threads(1)

SCALARS = {"accuracy", "f1_macro", "precision_macro", "recall_macro", "auroc", "loss"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, ProjectPaths]:
    """A trained tiny classification project, not yet evaluated; tests work on copies."""
    return make_project(tmp_path_factory.mktemp("trained") / "project")


@pytest.fixture
def project(trained: tuple[Config, ProjectPaths], tmp_path: Path) -> tuple[Config, ProjectPaths]:
    config, paths = trained
    shutil.copytree(paths.root, tmp_path / "project")
    return config, ProjectPaths(tmp_path / "project")


def outputs(paths: ProjectPaths) -> dict[str, bytes]:
    """eval.json and every file in plots/ and evaluation/, by path."""
    files = [paths.metrics / "eval.json", *paths.plots.rglob("*.csv"), *paths.evaluation.iterdir()]
    return {path.relative_to(paths.root).as_posix(): path.read_bytes() for path in files}


def test_writes_dvc_metrics_plots_predictions_and_per_class(
    project: tuple[Config, ProjectPaths], capsys: pytest.CaptureFixture[str]
) -> None:
    config, paths = project
    summary = evaluate.run(config, paths)

    evaluation = json.loads((paths.metrics / "eval.json").read_text())
    assert set(evaluation) == {"val", "test"}
    for split in ("val", "test"):
        assert set(evaluation[split]) == SCALARS
        assert all(isinstance(value, float) for value in evaluation[split].values())  # scalars only: DVC metrics
        assert summary[split] == evaluation[split]

        prepared = read_split(paths.prepared, split)
        confusion = pd.read_csv(paths.plots / "eval" / f"confusion_{split}.csv")
        assert list(confusion.columns) == ["actual", "predicted"]
        assert len(confusion) == len(prepared)
        assert confusion["actual"].tolist() == prepared["label"].tolist()
        assert set(confusion["predicted"]) <= set(CLASSES)
        accuracy = (confusion["actual"] == confusion["predicted"]).mean()
        assert evaluation[split]["accuracy"] == pytest.approx(accuracy)

        predictions = pd.read_parquet(paths.evaluation / f"predictions_{split}.parquet")
        assert predictions["row"].tolist() == prepared.index.tolist()  # rows named by their raw-file position
        assert predictions["prediction"].tolist() == confusion["predicted"].tolist()

    detail = json.loads((paths.evaluation / "per_class.json").read_text())
    assert detail["classes"] == list(CLASSES)
    for split in ("val", "test"):
        matrix = detail[split]["confusion_matrix"]
        assert sum(map(sum, matrix)) == len(read_split(paths.prepared, split))
        assert [detail[split]["per_class"][str(c)]["support"] for c in CLASSES] == [sum(row) for row in matrix]
    printed = capsys.readouterr().out
    assert "evaluate: val (12 rows): accuracy" in printed and "evaluate: wrote" in printed


def test_evaluating_twice_gives_the_same_bytes(project: tuple[Config, ProjectPaths]) -> None:
    config, paths = project
    evaluate.run(config, paths)
    first = outputs(paths)
    evaluate.run(config, paths)
    assert outputs(paths) == first
    # eval.json, history.csv, 2 confusion CSVs, 2 predictions, per_class.json, weights, model summary
    assert len(first) == 9


def test_regression_metrics_and_scatter_data(tmp_path: Path) -> None:
    config, paths = make_project(tmp_path / "project", "regression")
    evaluate.run(config, paths)
    evaluation = json.loads((paths.metrics / "eval.json").read_text())
    assert set(evaluation["test"]) == {"mae", "rmse", "r2", "loss"}
    assert evaluation["test"]["loss"] == pytest.approx(evaluation["test"]["rmse"] ** 2, rel=1e-5)  # mse loss
    for split in ("val", "test"):
        scatter = pd.read_csv(paths.plots / "eval" / f"predictions_{split}.csv")
        assert list(scatter.columns) == ["actual", "predicted"]
        assert len(scatter) == len(read_split(paths.prepared, split))
    assert sorted(path.name for path in (paths.plots / "eval").iterdir()) == [
        "predictions_test.csv",
        "predictions_val.csv",
    ]
    assert not (paths.evaluation / "per_class.json").exists()


def test_the_plots_folder_holds_only_the_current_tasks_files(project: tuple[Config, ProjectPaths]) -> None:
    config, paths = project
    (paths.plots / "eval").mkdir(parents=True)
    (paths.plots / "eval" / "predictions_test.csv").write_text("actual,predicted\n1.0,2.0\n")  # an earlier regression
    evaluate.run(config, paths)
    assert sorted(path.name for path in (paths.plots / "eval").iterdir()) == ["confusion_test.csv", "confusion_val.csv"]


def test_class_names_appear_in_plots_predictions_and_per_class_report(tmp_path: Path) -> None:
    config, paths = make_project(tmp_path / "project", "names")
    evaluate.run(config, paths)
    detail = json.loads((paths.evaluation / "per_class.json").read_text())
    assert detail["classes"] == list(NAMES)  # the prepare stage's encoding: sorted names
    assert set(detail["test"]["per_class"]) == set(NAMES)
    for split in ("val", "test"):
        confusion = pd.read_csv(paths.plots / "eval" / f"confusion_{split}.csv")
        assert confusion["actual"].tolist() == read_split(paths.prepared, split)["label"].tolist()
        assert set(confusion["predicted"]) <= set(NAMES)
        predictions = pd.read_parquet(paths.evaluation / f"predictions_{split}.parquet")
        assert [column for column in predictions.columns if column.startswith("prob_")] == [f"prob_{n}" for n in NAMES]
        assert predictions["prediction"].tolist() == confusion["predicted"].tolist()


def test_a_snapshot_trained_with_other_settings_is_refused(project: tuple[Config, ProjectPaths]) -> None:
    _, paths = project
    other = tiny_config(model={"name": "mlp", "hidden_sizes": [16]})
    with pytest.raises(CheckpointError, match=r"best\.pt: trained with different settings \(model\.hidden_sizes\)"):
        evaluate.run(other, paths)
    assert not (paths.metrics / "eval.json").exists()


def test_settings_that_do_not_change_the_weights_may_differ(project: tuple[Config, ProjectPaths]) -> None:
    _, paths = project
    summary = evaluate.run(tiny_config(metrics=["accuracy"], upload={"target": "file://elsewhere"}), paths)
    assert "accuracy" in summary["test"]


def test_a_missing_snapshot_names_the_file(project: tuple[Config, ProjectPaths]) -> None:
    config, paths = project
    (paths.models / "best.pt").unlink()
    with pytest.raises(CheckpointError, match=r"best\.pt: model snapshot not found"):
        evaluate.run(config, paths)


def test_cli_runs_the_stage(project: tuple[Config, ProjectPaths], capsys: pytest.CaptureFixture[str]) -> None:
    _, paths = project
    assert main(["evaluate", "--root", str(paths.root), "--params", str(paths.params)]) == 0
    assert (paths.metrics / "eval.json").is_file()
    (paths.encoders / "encoder.json").unlink()
    assert main(["evaluate", "--root", str(paths.root), "--params", str(paths.params)]) == 1
    assert "error: " in capsys.readouterr().err
