"""`trainflow summary`: names the experiment that produced the outputs and says when they are stale."""

from __future__ import annotations

import json
from pathlib import Path

from trainflow.config import experiment_id, load_config, save_resolved
from trainflow.paths import ProjectPaths
from trainflow.summary import summary_lines


def _params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text("seed: 0\n")
    return path


def _project(tmp_path: Path) -> ProjectPaths:
    paths = ProjectPaths(tmp_path)
    paths.metrics.mkdir(parents=True)
    (paths.metrics / "eval.json").write_text(json.dumps({"test": {"accuracy": 0.974, "loss": 0.00031}}))
    paths.models.mkdir(parents=True)
    return paths


def test_current_outputs_report_their_experiment_without_a_stale_line(tmp_path: Path) -> None:
    paths = _project(tmp_path)
    config = load_config(_params(tmp_path))
    save_resolved(config, paths.models / "config.yaml")
    lines = summary_lines(config, paths)
    assert lines[0] == f"experiment {experiment_id(config)}: test accuracy 0.9740, loss 3.1e-04"
    assert not any("stale" in line for line in lines)


def test_outputs_of_other_params_are_reported_stale_with_what_to_run(tmp_path: Path) -> None:
    paths = _project(tmp_path)
    old = load_config(_params(tmp_path))
    save_resolved(old, paths.models / "config.yaml")
    new = load_config(_params(tmp_path), ["train.optimizer.lr=0.5"])
    lines = summary_lines(new, paths)
    assert lines[1].startswith("  stale: the outputs are from experiment ")
    assert "run `dvc repro`" in lines[1]


def test_a_forecasting_run_reports_the_model_mase_and_the_best_baseline_by_horizon(tmp_path: Path) -> None:
    paths = _project(tmp_path)
    scores = {"model": {"mase": 0.25}, "naive": {"mase": 0.56}, "holt_winters": {"mase": 0.39}}
    test = {"h13": {**scores, "model": {"mase": 0.31}}, "h4": scores}
    (paths.metrics / "eval.json").write_text(json.dumps({"test": test}))
    params = tmp_path / "params.yaml"
    params.write_text("dataset: {name: co2}\n")
    config = load_config(params)
    save_resolved(config, paths.models / "config.yaml")
    assert summary_lines(config, paths)[0] == (
        f"experiment {experiment_id(config)}: test h4 MASE 0.2500 (best baseline holt_winters 0.3900), "
        "h13 MASE 0.3100 (best baseline holt_winters 0.3900)"
    )
