"""trainflow.build: a Config and a data set's info become a Trainer, its loaders and callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from trainflow import build
from trainflow.config import resolve
from trainflow.data.datasets import DatasetInfo
from trainflow.errors import ConfigError
from trainflow.paths import ProjectPaths
from trainflow.problems import ClassificationProblem, RegressionProblem
from trainflow.training.callbacks import Checkpoint, EarlyStopping
from trainflow.training.loaders import InMemoryLoader
from trainflow.training.loggers import CSVLogger, JSONLogger
from trainflow.training.trainer import Trainer

torch.set_num_threads(1)

FEATURES = 5
REGRESSION_DATA = {"name": "csv", "path": "data/raw/tiny.csv", "task": "regression"}


def info(task: str) -> DatasetInfo:
    classes = (0, 1, 2) if task == "classification" else ()
    return DatasetInfo(
        task=task, feature_columns=tuple(f"f{i}" for i in range(FEATURES)), label_column="y", classes=classes
    )


def config(task: str = "classification", **train: Any) -> Any:
    raw: dict[str, Any] = {
        "model": {"name": "mlp", "hidden_sizes": [8]},
        "train": {"max_epochs": 2, "batch_size": 8, **train},
        "metrics": ["accuracy"] if task == "classification" else ["mae"],
    }
    if task == "regression":
        raw["dataset"] = REGRESSION_DATA
        raw["loss"] = {"name": "mse"}
    return resolve(raw)


def arrays(task: str, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.default_rng(0)
    x = generator.normal(size=(n, FEATURES)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) if task == "classification" else x[:, 0].astype(np.float32)
    return x, y


@pytest.mark.parametrize(
    ("task", "problem"), [("classification", ClassificationProblem), ("regression", RegressionProblem)]
)
def test_build_trainer_picks_the_problem_of_the_data_sets_task_and_trains(task: str, problem: type) -> None:
    c = config(task)
    trainer = build.build_trainer(
        c, info(task), build.make_loader(c, *arrays(task), shuffle=True), build.make_loader(c, *arrays(task), False)
    )
    assert type(trainer.problem) is problem and trainer.problem.criterion is trainer.criterion
    assert trainer.build == {"info": info(task).to_dict(), "steps_per_epoch": 5}
    trainer.fit()
    assert trainer.state.epoch == 2 and trainer.state.global_step == 10


def test_trainer_from_config_is_build_trainer() -> None:
    c = config()
    x, y = arrays("classification")
    direct = Trainer.from_config(c, info("classification"), build.make_loader(c, x, y, True), progress="off")
    assert isinstance(direct, Trainer) and isinstance(direct.problem, ClassificationProblem)


def test_build_callbacks_follow_the_train_section(tmp_path: Path) -> None:
    assert build.build_callbacks(config(early_stopping={"patience": 0}), None) == []
    stopping, checkpoint = build.build_callbacks(
        config(early_stopping={"patience": 3, "min_delta": 0.1}, checkpoint={"every_n_steps": 4, "keep_last": 3}),
        tmp_path,
    )
    assert isinstance(stopping, EarlyStopping) and (stopping.patience, stopping.min_delta) == (3, 0.1)
    assert isinstance(checkpoint, Checkpoint) and checkpoint.folder == tmp_path
    assert (checkpoint.every_n_steps, checkpoint.keep_last) == (4, 3)


def test_make_loader_builds_what_train_loader_names() -> None:
    x, y = arrays("classification")
    memory = build.make_loader(config(loader="memory"), x, y, shuffle=True)
    assert isinstance(memory, InMemoryLoader) and memory.batch_size == 8 and memory.shuffle
    loader = build.make_loader(config(loader="dataloader"), x, y, shuffle=False)
    assert isinstance(loader, DataLoader) and loader.batch_size == 8
    first = next(iter(loader))
    assert torch.equal(first[0], torch.from_numpy(x[:8]))


def test_monitors_checks_both_monitored_keys_and_falls_back_without_accuracy(capsys: Any) -> None:
    assert build.monitors(config()) == ("val/accuracy", "max")
    accuracy = {"checkpoint": {"monitor": "val/accuracy", "mode": "max"}}  # the old default, uncomputed here
    assert build.monitors(resolve({"metrics": ["f1_macro"], "train": accuracy})) == ("val/loss", "min")
    assert "best epoch by val/loss" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"train.early_stopping.monitor: 'val/f1'.*valid: train/loss, val/loss"):
        build.monitors(config(early_stopping={"patience": 2, "monitor": "val/f1"}))


def test_build_loggers_always_writes_the_stage_outputs(tmp_path: Path) -> None:
    paths = ProjectPaths(tmp_path)
    loggers = build.build_loggers(resolve({"loggers": ["csv", "json"]}), paths)
    assert [type(logger) for logger in loggers] == [CSVLogger, JSONLogger]
    names = [type(logger).__name__ for logger in build.build_loggers(resolve({"loggers": ["tensorboard"]}), paths)]
    assert names[:2] == ["CSVLogger", "JSONLogger"] and len(names) == 3
