"""Model evaluation as pure functions: outputs for a tensor of inputs, then metrics and predictions.

Nothing here reads or writes files. :func:`predict` runs the model; :func:`evaluate_split`
turns its outputs and the targets into plain metrics (torchmetrics, the same metrics the
Trainer logs) and a predictions table, one row per sample.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional
from torchmetrics.functional.classification import (
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

from trainflow.metrics import build_metrics, to_float
from trainflow.paths import EVAL_FILE, PER_CLASS_FILE, predictions_file  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from trainflow.data.datasets import DatasetInfo

# What the evaluate stage writes and the package stage reads.

CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "precision_macro", "recall_macro", "auroc")
REGRESSION_METRICS = ("mae", "rmse", "r2")
INDEX_COLUMN = "row"


def predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's raw outputs (logits for classification) for ``x``, batch by batch, on CPU.

    Runs in eval mode under ``no_grad`` and restores the model's previous mode afterwards.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = [model(x[start : start + batch_size].to(device)).cpu() for start in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("predict: no samples")
    return torch.cat(outputs)


def evaluate_split(
    outputs: torch.Tensor,
    targets: torch.Tensor,
    info: DatasetInfo,
    criterion: nn.Module | None = None,
    index: Sequence[int] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Metrics and a predictions table for one split.

    ``outputs`` are the model's outputs (logits ``[N, C]`` or regression values ``[N]`` /
    ``[N, 1]``), ``targets`` the class indices or values ``[N]``. ``criterion`` is the training
    loss (cross-entropy, or MSE for regression, when not given); ``index`` names the rows
    (``0..N-1`` when not given).

    Classification: scalars accuracy, f1_macro, precision_macro, recall_macro, auroc, loss;
    ``per_class`` (per class label: precision, recall, f1, support) and ``confusion_matrix``
    (rows actual, columns predicted, in ``info.classes`` order). The table has ``row``,
    ``target``, ``prediction`` (class labels) and ``prob_<label>`` per class.
    Regression: scalars mae, rmse, r2, loss; the table has ``row``, ``target``, ``prediction``.
    Non-finite scalars (a diverged model's NaN) are ``None``, which JSON can hold.
    """
    if len(outputs) != len(targets):
        raise ValueError(f"{len(outputs)} outputs but {len(targets)} targets")
    rows = list(range(len(targets))) if index is None else [int(i) for i in index]
    outputs = outputs.detach().cpu()
    targets = targets.detach().cpu()
    if info.task == "classification":
        return _classification(outputs, targets, info, criterion, rows)
    return _regression(outputs, targets, info, criterion, rows)


def _scalar(value: Any) -> float | None:
    number = to_float(value)
    return number if math.isfinite(number) else None


def _collection_scalars(names: Sequence[str], info: DatasetInfo, outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    metrics = build_metrics(names, info)
    with warnings.catch_warnings():
        # torchmetrics warns when a class has no samples in a small split; the value it returns
        # (0 for that class) is what the report shows.
        warnings.simplefilter("ignore", UserWarning)
        metrics.update(outputs, targets)
        computed = metrics.compute()
    return {name: _scalar(computed[name]) for name in names}


def _classification(
    outputs: torch.Tensor, targets: torch.Tensor, info: DatasetInfo, criterion: nn.Module | None, rows: list[int]
) -> tuple[dict[str, Any], pd.DataFrame]:
    classes = list(info.classes)
    num_classes = len(classes)
    logits = outputs.float()
    targets = targets.long()
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"expected outputs [N, {num_classes}] for {num_classes} classes, got {list(logits.shape)}")
    metrics = _collection_scalars(CLASSIFICATION_METRICS, info, logits, targets)
    loss = (criterion or nn.CrossEntropyLoss())(logits, targets)
    metrics["loss"] = _scalar(loss)

    predicted = logits.argmax(dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        precision = multiclass_precision(predicted, targets, num_classes, average=None)
        recall = multiclass_recall(predicted, targets, num_classes, average=None)
        f1 = multiclass_f1_score(predicted, targets, num_classes, average=None)
    support = torch.bincount(targets, minlength=num_classes)
    metrics["per_class"] = {
        str(label): {
            "precision": _scalar(precision[i]),
            "recall": _scalar(recall[i]),
            "f1": _scalar(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(classes)
    }
    confusion = multiclass_confusion_matrix(predicted, targets, num_classes)
    metrics["confusion_matrix"] = confusion.tolist()

    # Class indices back to the labels the user knows (digits, or names such as "setosa").
    labels = np.asarray(classes, dtype=object if any(isinstance(c, str) for c in classes) else np.int64)
    probabilities = functional.softmax(logits, dim=1).numpy()
    frame = pd.DataFrame(
        {
            INDEX_COLUMN: pd.Series(rows, dtype="int64"),
            "target": labels[targets.numpy()],
            "prediction": labels[predicted.numpy()],
        }
    )
    for i, label in enumerate(classes):
        frame[f"prob_{label}"] = probabilities[:, i]
    return metrics, frame


def _regression(
    outputs: torch.Tensor, targets: torch.Tensor, info: DatasetInfo, criterion: nn.Module | None, rows: list[int]
) -> tuple[dict[str, Any], pd.DataFrame]:
    if outputs.numel() != targets.numel():
        raise ValueError(f"expected one output per target, got outputs of shape {list(outputs.shape)}")
    predicted = outputs.float().reshape(-1)
    targets = targets.float().reshape(-1)
    metrics = _collection_scalars(REGRESSION_METRICS, info, predicted, targets)
    loss = criterion(outputs.float(), targets) if criterion is not None else functional.mse_loss(predicted, targets)
    metrics["loss"] = _scalar(loss)
    frame = pd.DataFrame(
        {
            INDEX_COLUMN: pd.Series(rows, dtype="int64"),
            "target": targets.numpy(),
            "prediction": predicted.numpy(),
        }
    )
    return metrics, frame


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The plain numbers of an :func:`evaluate_split` result (what DVC reads as metrics)."""
    return {key: value for key, value in metrics.items() if value is None or isinstance(value, int | float)}
