"""A user's own CSV through the whole DVC pipeline, with the commands the README gives.

An iris-like file (four measurements, three species named by text; the regression command
predicts petal width from the other measurements) is added to a temporary git+DVC copy of the project and run with
``dvc exp run -S ...`` alone: no edit of params.yaml or dvc.yaml. Editing the data file makes
``dvc status`` report the prepare stage stale, because the stage depends on ``dataset.path``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.fixtures.project import make_project, readme_command, run

pytestmark = pytest.mark.e2e

SPECIES = ("setosa", "versicolor", "virginica")
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CSV_EXPERIMENT = "dvc exp run -S dataset.name=csv"
# The README's commands, copied literally, plus few epochs to keep the test short.
CLASSIFY = readme_command(CSV_EXPERIMENT, "dataset.label_column=species")
REGRESS = readme_command(CSV_EXPERIMENT, "dataset.task=regression")
SHORT = ["-S", "train.max_epochs=2"]


def write_iris_like(path: Path, rows: int = 150) -> None:
    """50 rows per species, measurements drawn around a per-species mean."""
    rng = np.random.default_rng(5)
    means = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow([*FEATURES, "species"])
        for row in range(rows):
            kind = row % len(SPECIES)
            values = (means[kind] + rng.normal(scale=0.3, size=4)).round(2)
            writer.writerow([*values.tolist(), SPECIES[kind]])


def project_with(root: Path) -> Path:
    """The pipeline copy with data/mine.csv committed (as a user would `git add` it)."""
    project = make_project(root)
    write_iris_like(project / "data" / "mine.csv")
    run(["git", "add", "data/mine.csv"], project)
    run(["git", "commit", "-q", "-m", "my data"], project)
    return project


def test_string_labels_run_with_the_readme_command(tmp_path: Path) -> None:
    project = project_with(tmp_path / "project")
    result = run([*CLASSIFY, *SHORT], project)
    assert "Running stage 'package'" in result.stdout

    info = json.loads((project / "data" / "prepared" / "info.json").read_text())
    assert info["classes"] == list(SPECIES) and info["label_column"] == "species"
    metrics = json.loads((project / "metrics" / "eval.json").read_text())
    assert metrics["test"]["accuracy"] > 0.5  # three separable species, two epochs
    confusion = pd.read_csv(project / "plots" / "eval" / "confusion_test.csv")
    assert set(confusion["actual"]) == set(SPECIES)
    card = (project / "results" / "model_card.md").read_text()
    assert "3 classes (setosa, versicolor, virginica)" in card
    assert "| setosa |" in (project / "results" / "per_class.md").read_text()
    predictions = pd.read_parquet(project / "results" / "predictions_test.parquet")
    assert set(predictions["prediction"]) <= set(SPECIES)

    # DVC tracks the user's file: changing it makes prepare stale.
    assert "prepare" not in run(["dvc", "status"], project).stdout
    with open(project / "data" / "mine.csv", "a") as file:
        file.write("5.1,3.5,1.4,0.2,setosa\n")
    status = run(["dvc", "status"], project).stdout
    assert "prepare:" in status and "data/mine.csv" in status


def test_regression_runs_with_the_readme_command(tmp_path: Path) -> None:
    project = project_with(tmp_path / "project")  # petal_width from the other measurements
    result = run([*REGRESS, *SHORT], project)
    assert "Running stage 'package'" in result.stdout

    resolved = yaml.safe_load((project / "models" / "config.yaml").read_text())
    assert resolved["loss"]["name"] == "mse"
    assert resolved["metrics"] == ["mae", "rmse", "r2"]
    assert resolved["train"]["checkpoint"]["monitor"] == "val/loss"
    metrics = json.loads((project / "metrics" / "eval.json").read_text())
    assert set(metrics["test"]) == {"mae", "rmse", "r2", "loss"}
    assert sorted(path.name for path in (project / "plots" / "eval").iterdir()) == [
        "predictions_test.csv",
        "predictions_val.csv",
    ]
    assert (project / "results" / "predicted_vs_actual.png").is_file()
    shown = run(["dvc", "plots", "show", "--json"], project)
    assert "predictions_test.csv" in shown.stdout


def test_a_semicolon_separated_file_runs_too(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    write_iris_like(project / "data" / "mine.csv")
    text = (project / "data" / "mine.csv").read_text().replace(",", ";")
    (project / "data" / "mine.csv").write_text(text)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["dataset"].update({"name": "csv", "path": "data/mine.csv", "label_column": "species"})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["trainflow", "prepare"], project)
    assert json.loads((project / "data" / "prepared" / "info.json").read_text())["classes"] == list(SPECIES)
