"""predict and evaluate_split on tiny hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainflow.data.datasets import DatasetInfo
from trainflow.results.evaluate import evaluate_split, predict, scalar_metrics

torch.set_num_threads(1)

CLASSES = (2, 5, 7)
CLASSIFICATION = DatasetInfo("classification", ("a", "b"), "label", CLASSES)
REGRESSION = DatasetInfo("regression", ("a", "b"), "y")

# arg-max predictions (as class indices) 0, 1, 2, 0 for targets 0, 1, 2, 1
LOGITS = torch.tensor([[3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0], [2.0, 1.0, 0]])
TARGETS = torch.tensor([0, 1, 2, 1])


def test_predict_batches_like_one_forward_pass_without_grad() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    x = torch.randn(10, 3)
    model.train()
    outputs = predict(model, x, batch_size=3)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        expected = model(x)
    torch.testing.assert_close(outputs, expected)  # dropout off: eval mode during predict
    assert not outputs.requires_grad


def test_predict_rejects_a_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        predict(nn.Linear(2, 2), torch.zeros(3, 2), batch_size=0)


def test_classification_metrics_per_class_and_confusion() -> None:
    metrics, _ = evaluate_split(LOGITS, TARGETS, CLASSIFICATION)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["f1_macro"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert metrics["precision_macro"] == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert metrics["recall_macro"] == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert metrics["loss"] == pytest.approx(float(nn.functional.cross_entropy(LOGITS, TARGETS)))
    assert 0 <= metrics["auroc"] <= 1
    assert metrics["confusion_matrix"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]  # rows actual, columns predicted
    assert metrics["per_class"] == {
        "2": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1},
        "5": {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
        "7": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }
    assert set(scalar_metrics(metrics)) == {"accuracy", "f1_macro", "precision_macro", "recall_macro", "auroc", "loss"}


def test_classification_predictions_frame_holds_labels_and_probabilities() -> None:
    _, frame = evaluate_split(LOGITS, TARGETS, CLASSIFICATION, index=[10, 11, 15, 20])
    assert list(frame.columns) == ["row", "target", "prediction", "prob_2", "prob_5", "prob_7"]
    assert frame["row"].tolist() == [10, 11, 15, 20]
    assert frame["target"].tolist() == [2, 5, 7, 5]  # labels, not indices
    assert frame["prediction"].tolist() == [2, 5, 7, 2]
    probabilities = frame[["prob_2", "prob_5", "prob_7"]].to_numpy()
    assert probabilities.sum(axis=1) == pytest.approx([1.0] * 4)
    assert probabilities[0].argmax() == 0


def test_a_given_criterion_is_the_reported_loss() -> None:
    smoothed = nn.CrossEntropyLoss(label_smoothing=0.2)
    metrics, _ = evaluate_split(LOGITS, TARGETS, CLASSIFICATION, criterion=smoothed)
    assert metrics["loss"] == pytest.approx(float(smoothed(LOGITS, TARGETS)))


def test_classification_outputs_must_have_one_column_per_class() -> None:
    with pytest.raises(ValueError, match=r"outputs \[N, 3\]"):
        evaluate_split(LOGITS[:, :2], TARGETS, CLASSIFICATION)


def test_outputs_and_targets_must_match_in_length() -> None:
    with pytest.raises(ValueError, match="4 outputs but 3 targets"):
        evaluate_split(LOGITS, TARGETS[:3], CLASSIFICATION)


def test_regression_metrics_and_frame() -> None:
    outputs = torch.tensor([[1.0], [2.0], [4.0]])
    targets = torch.tensor([1.0, 3.0, 3.0])
    metrics, frame = evaluate_split(outputs, targets, REGRESSION)
    assert metrics == {
        "mae": pytest.approx(2 / 3),
        "rmse": pytest.approx(math.sqrt(2 / 3)),
        "r2": pytest.approx(0.25, abs=1e-6),
        "loss": pytest.approx(2 / 3),  # MSE
    }
    assert list(frame.columns) == ["row", "target", "prediction"]
    assert frame["prediction"].tolist() == [1.0, 2.0, 4.0]
    assert frame["row"].tolist() == [0, 1, 2]


def test_a_non_finite_metric_is_none_for_json() -> None:
    # A diverged model outputs NaN; JSON has no NaN, so the metrics say None.
    metrics, _ = evaluate_split(torch.tensor([float("nan"), 2.0]), torch.tensor([3.0, 1.0]), REGRESSION)
    assert metrics["mae"] is None
    assert metrics["loss"] is None
