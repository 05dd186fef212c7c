"""The model card and the per-class markdown: every section, the numbers given, nothing run-dependent."""

from __future__ import annotations

from typing import Any

from tests.results.tiny_project import tiny_config
from trainflow.config import experiment_id
from trainflow.results.model_card import DataSummary, ModelSummary, metrics_table, render_model_card
from trainflow.results.per_class import per_class_markdown

EVALUATION = {"val": {"accuracy": 0.9, "loss": 0.25}, "test": {"accuracy": 0.875, "loss": None}}
PER_CLASS = {
    "2": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 4},
    "5": {"precision": 0.8, "recall": 1.0, "f1": 0.8889, "support": 40},
}


def card(**changes: Any) -> str:
    config = tiny_config()
    arguments: dict[str, Any] = {
        "config": config,
        "experiment_id": experiment_id(config),
        "model": ModelSummary(name="mlp", parameters=1234, epoch=7),
        "data": DataSummary(
            name="csv",
            task="classification",
            num_features=4,
            label_column="label",
            classes=(2, 5),
            split_sizes={"train": 24, "val": 12, "test": 12},
            provenance={"dataset.path": "data/raw/tiny.csv"},
        ),
        "evaluation": EVALUATION,
        "train_metrics": {"best_epoch": 7, "val": {"loss": 0.25}},
        "per_class": PER_CLASS,
    }
    arguments.update(changes)
    return render_model_card(**arguments)


def test_card_has_every_section_and_the_facts() -> None:
    text = card()
    for heading in ("# Model card: mlp on csv", "## Model", "## Data", "## Training", "## Metrics", "## Intended use"):
        assert heading in text
    config = tiny_config()
    assert f"`{experiment_id(config)}`" in text
    assert "| trainable parameters | 1,234 |" in text
    assert "| best epoch | 7 |" in text
    assert "| model.hidden_sizes | 8 |" in text
    assert "| dataset.path | data/raw/tiny.csv |" in text
    assert "| test | 12 |" in text and "| train | 24 |" in text
    assert "| train.batch_size | 8 |" in text and "| seed | 3 |" in text
    assert "| accuracy | 0.9000 | 0.8750 |" in text
    assert "| loss | 0.2500 | n/a |" in text
    assert "| val.loss | 0.2500 |" in text  # from train.json
    assert "Weakest class on the test split: `2` (F1 0.6667)" in text
    assert "fewer than 20 test samples (2)" in text


def test_card_is_the_same_text_for_the_same_inputs() -> None:
    assert card() == card()


def test_regression_card_has_no_class_lines() -> None:
    data = DataSummary(name="csv", task="regression", num_features=4, label_column="y", split_sizes={"test": 5})
    text = card(data=data, per_class=None, evaluation={"val": {"mae": 0.5}, "test": {"mae": 0.75}})
    assert "the target `y` is a value" in text
    assert "| mae | 0.5000 | 0.7500 |" in text
    assert "Weakest class" not in text
    assert "residual plot" in text


def test_metrics_table_unions_the_metric_names() -> None:
    lines = metrics_table({"val": {"a": 1.0}, "test": {"a": 2.0, "b": 3.0}})
    assert lines == [
        "| metric | val | test |",
        "| --- | --- | --- |",
        "| a | 1.0000 | 2.0000 |",
        "| b | n/a | 3.0000 |",
    ]


def test_per_class_markdown_has_a_table_per_split_in_class_order() -> None:
    detail = {"classes": [5, 2], "test": {"per_class": PER_CLASS, "confusion_matrix": [[1, 0], [0, 1]]}}
    text = per_class_markdown(detail, ["test"])
    assert "## test" in text
    rows = [line for line in text.splitlines() if line.startswith("| 5 ") or line.startswith("| 2 ")]
    assert rows == ["| 5 | 0.8000 | 1.0000 | 0.8889 | 40 |", "| 2 | 1.0000 | 0.5000 | 0.6667 | 4 |"]


def test_the_card_says_how_the_splits_were_made() -> None:
    assert "Splits are stratified and fixed by `seed`" in card()
    data = DataSummary("csv", "regression", 4, "label", split_sizes={"train": 24, "val": 12, "test": 12})
    assert "Splits are random and fixed by `seed`" in card(data=data, per_class=None)


def test_settings_print_as_written_and_the_card_states_schema_and_environment() -> None:
    data = DataSummary(
        name="csv",
        task="classification",
        num_features=2,
        label_column="species",
        classes=("setosa", "virginica"),
        feature_columns=("petal_length", "petal_width"),
        split_sizes={"train": 24, "val": 12, "test": 12},
    )
    runtime = {"trainflow": "0.1.0", "torch": "2.13.0", "cpu_capability": "AVX2", "threads": 1}
    text = card(data=data, runtime=runtime)
    assert "| train.optimizer.lr | 0.001 |" in text  # as in params.yaml, not 0.0010
    assert "Input schema: 2 numeric (float) columns, in this order: `petal_length`, `petal_width`" in text
    assert "takes the values setosa, virginica." in text
    assert "## Environment" in text and "| torch | 2.13.0 |" in text and "| cpu_capability | AVX2 |" in text
    assert "models/best.pt in the project that trained it" in text
