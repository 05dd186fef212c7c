"""A tiny trained project on disk for the evaluate and package tests.

The raw CSV goes through the real prepare and fit-encoder stages; a small MLP is trained for a
few full-batch steps and saved as ``models/best.pt`` with ``save_model_snapshot``, beside the
``metrics/train.json`` and ``plots/history.csv`` the train stage writes. Everything is seeded,
so two projects made alike hold the same bytes.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml

from trainflow.config import Config, resolve
from trainflow.data.prepare import read_info, read_split, to_arrays
from trainflow.encoders import ENCODER_FILE, load_encoder
from trainflow.models.snapshot import build_model, save_model_snapshot
from trainflow.paths import ProjectPaths
from trainflow.stages import fit_encoder, prepare

CLASSES = (2, 5, 7)  # not 0..K-1, so label <-> index mapping is exercised
NAMES = ("setosa", "versicolor", "virginica")  # the labels of task "names": classification by name
Task = Literal["classification", "regression", "names"]
FEATURES = ("f0", "f1", "f2", "f3")


def tiny_params(task: Task = "classification", **overrides: Any) -> dict[str, Any]:
    """params.yaml content for the tiny CSV data set: an 8-unit MLP, batch 8, one thread.

    Task ``names`` is classification with labels written as :data:`NAMES`, classes inferred.
    """
    kind = "regression" if task == "regression" else "classification"
    dataset: dict[str, Any] = {"name": "csv", "path": "data/raw/tiny.csv", "task": kind}
    raw: dict[str, Any] = {
        "seed": 3,
        "dataset": dataset,
        "data": {"val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"name": "mlp", "hidden_sizes": [8]},
        "train": {"batch_size": 8, "threads": 1, "max_epochs": 3},
    }
    if task == "classification":
        dataset["classes"] = list(CLASSES)
        raw["metrics"] = ["accuracy", "f1_macro"]
    elif task == "names":
        raw["metrics"] = ["accuracy", "f1_macro"]
    else:
        raw["loss"] = {"name": "mse"}
        raw["metrics"] = ["mae", "rmse"]
    raw.update(overrides)
    return raw


def tiny_config(task: Task = "classification", **overrides: Any) -> Config:
    """The resolved :func:`tiny_params`."""
    return resolve(tiny_params(task, **overrides), source="tiny test config")


def write_raw(path: Path, task: str, rows: int = 48) -> None:
    """A CSV with four noisy features; the label is a class of ``CLASSES`` (of ``NAMES`` for task
    ``names``) or a linear value."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(rows, len(FEATURES))).round(3)
    if task in ("classification", "names"):
        classes: tuple[Any, ...] = CLASSES if task == "classification" else NAMES
        labels = [classes[i % len(classes)] for i in range(rows)]
        x[:, 0] += np.array([classes.index(label) for label in labels]) * 2.5  # learnable, not perfect
    else:
        labels = (x @ np.array([1.0, -2.0, 0.5, 0.0]) + 10.0 + rng.normal(scale=0.3, size=rows)).round(3).tolist()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow([*FEATURES, "label"])
        for features, label in zip(x.tolist(), labels, strict=True):
            writer.writerow([*features, label])


def make_project(root: Path, task: Task = "classification") -> tuple[Config, ProjectPaths]:
    """Prepare, fit the encoder, train and snapshot a tiny model under ``root`` (with params.yaml)."""
    config = tiny_config(task)
    paths = ProjectPaths(Path(root))
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.params.write_text(yaml.safe_dump(tiny_params(task)))
    write_raw(paths.root / "data/raw/tiny.csv", task)
    prepare.run(config, paths)
    fit_encoder.run(config, paths)

    info = read_info(paths.prepared)
    encoder = load_encoder(paths.encoders / ENCODER_FILE)
    x, y = to_arrays(read_split(paths.prepared, "train"), info)
    inputs, targets = torch.from_numpy(encoder.encode(x)), torch.from_numpy(y)
    torch.manual_seed(config.seed)
    model = build_model(config, info)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    history = []
    for epoch in range(1, 4):
        for _ in range(10):
            optimizer.zero_grad()
            output = model(inputs)
            if task != "regression":
                loss = torch.nn.functional.cross_entropy(output, targets)
            else:
                loss = torch.nn.functional.mse_loss(output.reshape(-1), targets)
            loss.backward()
            optimizer.step()
        history.append(
            {"epoch": epoch, "train_loss": loss.item(), "val_loss": loss.item() * 1.1, "val_metric": epoch / 4}
        )
    save_model_snapshot(
        paths.models / "best.pt", model, config, info, epoch=3, metrics={"val/loss": history[-1]["val_loss"]}
    )
    paths.metrics.mkdir(parents=True, exist_ok=True)
    (paths.metrics / "train.json").write_text(json.dumps({"best_epoch": 3, "epochs": 3, "val": {"loss": 0.5}}))
    paths.plots.mkdir(parents=True, exist_ok=True)
    with open(paths.plots / "history.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(history[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)
    return config, paths
