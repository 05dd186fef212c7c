"""``auto`` loss, metrics and checkpoint monitor follow the data set's task; explicit values win."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainflow.config import ConfigError, experiment_id, load_config, resolve, to_dict

REPO = Path(__file__).resolve().parents[1]
CSV = ["dataset.name=csv", "dataset.path=data/mine.csv", "dataset.label_column=species"]


def test_the_shipped_params_resolve_to_the_classification_names() -> None:
    config = load_config(REPO / "params.yaml")
    assert config.loss.name == "cross_entropy"
    assert config.metrics == ("accuracy", "f1_macro")
    assert (config.train.checkpoint.monitor, config.train.checkpoint.mode) == ("val/accuracy", "max")
    # The same experiment as one that names them: auto leaves no trace in the resolved config.
    explicit = ["loss.name=cross_entropy", "metrics=[accuracy, f1_macro]", "train.checkpoint.monitor=val/accuracy"]
    named = load_config(REPO / "params.yaml", [*explicit, "train.checkpoint.mode=max"])
    assert experiment_id(named) == experiment_id(config)
    resolved = to_dict(config)
    assert "auto" not in (resolved["loss"]["name"], resolved["metrics"], *resolved["train"]["checkpoint"].values())


def test_regression_alone_implies_loss_metrics_and_monitor() -> None:
    config = load_config(REPO / "params.yaml", [*CSV, "dataset.task=regression"])
    assert config.loss.name == "mse"
    assert config.metrics == ("mae", "rmse", "r2")
    assert (config.train.checkpoint.monitor, config.train.checkpoint.mode) == ("val/loss", "min")


def test_explicit_choices_win() -> None:
    overrides = [
        *CSV,
        "dataset.task=regression",
        "loss.name=huber",
        "metrics=[mae]",
        "train.checkpoint.monitor=val/mae",
    ]
    config = load_config(REPO / "params.yaml", overrides)
    assert (config.loss.name, config.metrics) == ("huber", ("mae",))
    assert (config.train.checkpoint.monitor, config.train.checkpoint.mode) == ("val/mae", "min")
    maximised = load_config(
        REPO / "params.yaml", [*overrides[:-2], "metrics=[mae, r2]", "train.checkpoint.monitor=val/r2"]
    )
    assert maximised.train.checkpoint.mode == "max"


def test_absent_keys_mean_auto() -> None:
    config = resolve({"dataset": {"name": "csv", "path": "t.csv", "task": "regression"}})
    assert (config.loss.name, config.metrics, config.train.checkpoint.monitor) == (
        "mse",
        ("mae", "rmse", "r2"),
        "val/loss",
    )
    assert resolve({}).loss.name == "cross_entropy"


def test_classification_without_accuracy_monitors_the_loss() -> None:
    config = resolve({"metrics": ["f1_macro"]})
    assert (config.train.checkpoint.monitor, config.train.checkpoint.mode) == ("val/loss", "min")


def test_an_unknown_task_is_reported_by_the_dataset_not_by_auto() -> None:
    with pytest.raises(ConfigError, match=r"dataset\.task"):
        load_config(REPO / "params.yaml", [*CSV, "dataset.task=regresion"])


def test_digits_ignores_the_table_keys_params_yaml_keeps() -> None:
    config = load_config(REPO / "params.yaml")
    assert to_dict(config)["dataset"] == {"name": "digits", "path": "data/raw/digits.csv.gz"}
    with pytest.raises(ConfigError, match=r"dataset\.label_colum: unknown key"):
        load_config(REPO / "params.yaml", ["dataset.label_colum=x"])
