"""Metrics: registered names, values against hand-computed ones, task checks."""

from __future__ import annotations

import math

import pytest
import torch

from trainflow import registry
from trainflow.config import ComponentConfig
from trainflow.data.datasets import DatasetInfo
from trainflow.errors import ConfigError
from trainflow.metrics import build_metrics, metric_names

CLASSIFICATION = DatasetInfo("classification", ("a", "b"), "label", (0, 1, 2))
REGRESSION = DatasetInfo("regression", ("a", "b"), "y")


def compute(names: list[str], info: DatasetInfo, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    metrics = build_metrics(names, info)
    metrics.update(outputs, targets)
    return {name: float(value) for name, value in metrics.compute().items()}


def test_every_name_is_registered_with_a_component_config() -> None:
    assert metric_names("classification") == ["accuracy", "auroc", "f1_macro", "precision_macro", "recall_macro"]
    assert metric_names("regression") == ["mae", "r2", "rmse"]
    for name in metric_names("classification") + metric_names("regression"):
        assert issubclass(registry.metrics.get(name).config_class, ComponentConfig)


def test_classification_metrics_match_hand_computed_values() -> None:
    # arg-max predictions 0, 1, 2, 0 for targets 0, 1, 2, 1:
    # class 0: tp 1, fp 1, fn 0 -> precision 1/2, recall 1, f1 2/3
    # class 1: tp 1, fp 0, fn 1 -> precision 1, recall 1/2, f1 2/3
    # class 2: tp 1, fp 0, fn 0 -> precision 1, recall 1, f1 1
    logits = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0], [2.0, 0, 0]])
    targets = torch.tensor([0, 1, 2, 1])
    values = compute(["accuracy", "f1_macro", "precision_macro", "recall_macro"], CLASSIFICATION, logits, targets)
    assert values["accuracy"] == pytest.approx(3 / 4)
    assert values["f1_macro"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert values["precision_macro"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert values["recall_macro"] == pytest.approx((1 + 1 / 2 + 1) / 3)


def test_auroc_matches_the_pairwise_definition() -> None:
    # Two classes: the class-1 probability rises with the second logit. Positives score 0.4 and
    # 0.9, negatives 0.1 and 0.6: 3 of the 4 (positive, negative) pairs are ordered right.
    # The logits all lie in [0, 1]; they must still go through softmax, not be read as probabilities.
    info = DatasetInfo("classification", ("a",), "label", (0, 1))
    logits = torch.tensor([[0.0, 0.1], [0.0, 0.6], [0.0, 0.4], [0.0, 0.9]])
    targets = torch.tensor([0, 0, 1, 1])
    assert compute(["auroc"], info, logits, targets)["auroc"] == pytest.approx(0.75)


def test_metrics_accumulate_over_batches() -> None:
    logits = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0], [2.0, 0, 0]])
    targets = torch.tensor([0, 1, 2, 1])
    metrics = build_metrics(["accuracy", "f1_macro"], CLASSIFICATION)
    metrics.update(logits[:1], targets[:1])
    metrics.update(logits[1:], targets[1:])
    assert {k: float(v) for k, v in metrics.compute().items()} == pytest.approx(
        compute(["accuracy", "f1_macro"], CLASSIFICATION, logits, targets)
    )


def test_regression_metrics_match_hand_computed_values() -> None:
    # errors 0, 1, 1: MAE 2/3, RMSE sqrt(2/3); mean target 7/3, SS_tot 24/9, SS_res 2 -> R2 1/4
    outputs = torch.tensor([[1.0], [2.0], [4.0]])  # a regression model's [N, 1] outputs
    targets = torch.tensor([1.0, 3.0, 3.0])
    values = compute(["mae", "rmse", "r2"], REGRESSION, outputs, targets)
    assert values["mae"] == pytest.approx(2 / 3)
    assert values["rmse"] == pytest.approx(math.sqrt(2 / 3))
    assert values["r2"] == pytest.approx(0.25, abs=1e-6)  # float32 sums
    assert compute(["mae"], REGRESSION, outputs.reshape(-1), targets)["mae"] == pytest.approx(2 / 3)


def test_collection_is_keyed_by_registered_names() -> None:
    assert sorted(build_metrics(["f1_macro", "accuracy"], CLASSIFICATION).keys()) == ["accuracy", "f1_macro"]


def test_unknown_name_lists_the_valid_names_for_the_task() -> None:
    with pytest.raises(ConfigError, match=r"^metrics: unknown name 'acuracy' \(did you mean 'accuracy'\?\)") as error:
        build_metrics(["acuracy"], CLASSIFICATION)
    assert "auroc, f1_macro, precision_macro, recall_macro" in str(error.value)
    assert "mae" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "info", "valid"),
    [
        ("mae", CLASSIFICATION, "accuracy, auroc, f1_macro, precision_macro, recall_macro"),
        ("accuracy", REGRESSION, "mae, r2, rmse"),
    ],
)
def test_a_metric_of_the_other_task_is_a_config_error(name: str, info: DatasetInfo, valid: str) -> None:
    with pytest.raises(
        ConfigError, match=rf"^metrics: '{name}' is a .* metric but the data set is {info.task}"
    ) as error:
        build_metrics([name], info)
    assert str(error.value).endswith(f"valid for {info.task}: {valid}")


def test_half_precision_outputs_are_accepted() -> None:
    # Under bf16 autocast the model's outputs are bf16 while the targets stay as they were.
    outputs = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.bfloat16)
    values = compute(["mae", "rmse", "r2"], REGRESSION, outputs, torch.tensor([1.0, 3.0, 3.0]))
    assert values["mae"] == pytest.approx(2 / 3, abs=1e-6)
    logits = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0], [2.0, 0, 0]], dtype=torch.bfloat16)
    values = compute(["accuracy", "auroc"], CLASSIFICATION, logits, torch.tensor([0, 1, 2, 1]))
    assert values["accuracy"] == pytest.approx(3 / 4)
