"""The retrain rule: accept a model unless its metric is worse by more than retrain.max_drop."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.acceptance import judge, metric_value, retrain_rule
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
