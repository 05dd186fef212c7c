"""The retrain rule: accept a model unless its metric is worse by more than retrain.max_drop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.acceptance import judge, metric_value, retrain_rule
from tests.orchestration.projects import ROOT, env, init_repo
from trainflow.errors import ConfigError


def test_first_model_is_accepted() -> None:
    verdict = judge("test.accuracy", None, 0.9, "max", 0.0)
    assert verdict.accepted and verdict.worsening == 0.0
    assert "no accepted model" in verdict.message


@pytest.mark.parametrize(
    ("old", "new", "max_drop", "accepted"),
    [(0.90, 0.91, 0.0, True), (0.90, 0.90, 0.0, True), (0.90, 0.89, 0.0, False), (0.90, 0.89, 0.02, True)],
)
def test_higher_is_better(old: float, new: float, max_drop: float, accepted: bool) -> None:
    assert judge("test.accuracy", old, new, "max", max_drop).accepted is accepted


@pytest.mark.parametrize(("old", "new", "accepted"), [(0.30, 0.25, True), (0.30, 0.35, False)])
def test_lower_is_better(old: float, new: float, accepted: bool) -> None:
    assert judge("test.loss", old, new, "min", 0.0).accepted is accepted


def test_rejection_says_by_how_much() -> None:
    verdict = judge("test.accuracy", 0.95, 0.9375, "max", 0.01)
    assert not verdict.accepted
    assert verdict.worsening == pytest.approx(0.0125)
    assert "test.accuracy dropped by 0.0125 (0.95 -> 0.9375" in verdict.message
    assert "max_drop=0.01" in verdict.message
    assert "rose by" in judge("test.loss", 0.2, 0.3, "min", 0.0).message


def test_metric_value_reads_a_dotted_key() -> None:
    metrics = {"test": {"accuracy": 0.9, "f1_macro": 0.8}, "val": {"accuracy": 0.85}}
    assert metric_value(metrics, "test.accuracy", "eval.json") == 0.9
    with pytest.raises(ConfigError, match=r"test\.acc.*known: test\.accuracy, test\.f1_macro, val\.accuracy"):
        metric_value(metrics, "test.acc", "eval.json")


def test_the_rule_comes_from_params_yaml(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("seed: 1\nretrain:\n  metric: val.loss\n  mode: min\n  max_drop: 0.01\n")
    rule = retrain_rule(params)
    assert (rule.metric, rule.mode, rule.max_drop) == ("val.loss", "min", 0.01)
    params.write_text("seed: 1\n")
    assert retrain_rule(params).metric == "test.accuracy"  # the default
    params.write_text("retrain:\n  mode: best\n")
    with pytest.raises(ConfigError, match=r"retrain\.mode"):
        retrain_rule(params)


def _metrics_project(path: Path, accepted: float | None, max_drop: float) -> Path:
    """A git + DVC project whose dvc.yaml declares metrics/eval.json, with ``accepted`` committed."""
    (path / "metrics").mkdir(parents=True)
    (path / "dvc.yaml").write_text(
        "stages:\n  evaluate:\n    cmd: 'true'\n    metrics:\n      - metrics/eval.json:\n          cache: false\n"
    )
    (path / "params.yaml").write_text(f"retrain:\n  metric: test.accuracy\n  mode: max\n  max_drop: {max_drop}\n")
    if accepted is not None:
        (path / "metrics" / "eval.json").write_text(json.dumps({"test": {"accuracy": accepted}}))
    init_repo(path)
    return path


def _accept(root: Path, new: float, *args: str) -> subprocess.CompletedProcess[str]:
    (root / "metrics" / "eval.json").write_text(json.dumps({"test": {"accuracy": new}}))
    command = [sys.executable, "-m", "tasks.acceptance", "--root", str(root), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env(), cwd=ROOT)


def test_the_command_rejects_a_worse_model_in_one_line(tmp_path: Path) -> None:
    root = _metrics_project(tmp_path / "project", accepted=0.95, max_drop=0.01)
    result = _accept(root, 0.9)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: " + judge("test.accuracy", 0.95, 0.9, "max", 0.01).message  # the flow's RetrainRejected message
    ]
    assert result.stdout == ""


def test_the_command_accepts_within_max_drop_and_a_first_model(tmp_path: Path) -> None:
    root = _metrics_project(tmp_path / "project", accepted=0.95, max_drop=0.01)
    result = _accept(root, 0.945)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("accepted: test.accuracy (0.95 -> 0.945")
    first = _metrics_project(tmp_path / "first", accepted=None, max_drop=0.0)
    result = _accept(first, 0.5)
    assert result.returncode == 0, result.stderr
    assert "no accepted model to compare with" in result.stdout


def test_the_command_names_a_bad_rule_or_missing_metrics(tmp_path: Path) -> None:
    root = _metrics_project(tmp_path / "project", accepted=0.95, max_drop=0.01)
    (root / "params.yaml").write_text("retrain:\n  metric: test.acc\n")
    result = _accept(root, 0.9)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: retrain.metric: 'test.acc' is not a number in metrics/eval.json; known: test.accuracy"
    )
    (root / "metrics" / "eval.json").unlink()
    command = [sys.executable, "-m", "tasks.acceptance", "--root", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, env=env(), cwd=ROOT)
    assert result.returncode == 2 and "no metrics of a new model; run `dvc repro` first" in result.stderr
    assert "Traceback" not in result.stderr
