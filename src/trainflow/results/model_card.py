"""The model card of a result package: what was trained, on what, how, how well, and for what.

:func:`render_model_card` is a pure function from plain values to markdown, so the card is
the same text whenever the inputs are the same (no dates, no host names): packages built
twice from one run are identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainflow.config import Config, flatten, to_dict
from trainflow.paths import BEST_MODEL
from trainflow.results.exports import EXPORT_FILES

# Where the code's version is recorded: not in the card, which must not go stale (git_revision.py).
CODE_PROVENANCE = (
    "Code: `dvc.lock` of the project that trained the model holds the md5 of every source file each stage ran; "
    "an uploaded copy of this package (`trainflow upload`) records the git revision in its `manifest.json`."
)
# Per-class rows with fewer test samples than this are called out as unreliable.
SMALL_SUPPORT = 20


@dataclass(frozen=True)
class ModelSummary:
    """What the card says about the trained model itself."""

    name: str
    parameters: int
    epoch: int | None = None
    snapshot: str = f"models/{BEST_MODEL}"


@dataclass(frozen=True)
class DataSummary:
    """What the card says about the data: its task, shape, provenance and split sizes."""

    name: str
    task: str
    num_features: int
    label_column: str
    classes: Sequence[int | str] = ()  # the labels (numbers or names) in class-index order
    feature_columns: Sequence[str] = ()  # the model's inputs, in order
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)


def format_cell(value: Any, setting: bool = False) -> str:
    """A table cell: metrics (floats) to 4 decimals; a ``setting`` as written in params.yaml
    (``lr 0.001``, not ``0.0010``)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if setting:
            return f"{value:g}"
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e6 or value == 0 else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(format_cell(item, setting) for item in value) or "(none)"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], settings: bool = False) -> list[str]:
    """A markdown table; ``settings`` formats its cells as params (see :func:`_format`)."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(format_cell(cell, settings) for cell in row) + " |" for row in rows]
    return lines


def metrics_table(evaluation: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Markdown rows ``metric | val | test`` for the scalar metrics of each evaluated split."""
    splits = [split for split in ("val", "test") if split in evaluation]
    names: list[str] = []
    for split in splits:
        names += [name for name in evaluation[split] if name not in names]
    return markdown_table(["metric", *splits], [[name, *(evaluation[s].get(name) for s in splits)] for name in names])


def render_model_card(
    *,
    config: Config,
    experiment_id: str,
    model: ModelSummary,
    data: DataSummary,
    evaluation: Mapping[str, Mapping[str, Any]],
    train_metrics: Mapping[str, Any],
    per_class: Mapping[str, Mapping[str, Any]] | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> str:
    """The model card as markdown.

    ``evaluation`` is ``{"val": {metric: value}, "test": {...}}`` (metrics/eval.json),
    ``train_metrics`` the train stage's summary (metrics/train.json), ``per_class`` the test
    split's per-class report of a classifier.
    """
    settings = flatten(to_dict(config))
    lines = [f"# Model card: {config.model.name} on {data.name}", ""]
    lines += [f"Experiment id: `{experiment_id}` (hash of the resolved config, config.yaml in this package).", ""]

    lines += ["## Model", ""]
    lines += markdown_table(
        ["field", "value"],
        [
            ["architecture", model.name],
            ["trainable parameters", f"{model.parameters:,}"],
            ["weights", f"model.safetensors in this package ({model.snapshot} in the project that trained it)"],
            *exported_row(config, "raw features in, encoder folded in"),
            ["best epoch", model.epoch],
            *[[key, settings[key]] for key in settings if key.startswith("model.") and key != "model.name"],
        ],
        settings=True,
    )

    lines += ["", "## How to use", ""]
    lines += how_to_use(data)

    lines += ["", "## Data", ""]
    target = (
        f"{len(data.classes)} classes ({format_cell(list(data.classes))})"
        if data.task == "classification"
        else "a value"
    )
    lines += [f"Task: {data.task}. {data.num_features} features; the target `{data.label_column}` is {target}.", ""]
    if data.feature_columns:
        lines += [
            f"Input schema: {len(data.feature_columns)} numeric (float) columns, in this order: "
            + ", ".join(f"`{name}`" for name in data.feature_columns)
            + f"; the label column `{data.label_column}`"
            + (f" takes the values {format_cell(list(data.classes))}." if data.classes else " is a number."),
            "",
        ]
    if data.provenance:
        lines += markdown_table(["provenance", "value"], [[key, value] for key, value in data.provenance.items()])
        lines.append("")
    order = ["train", "val", "test"]
    splits = sorted(data.split_sizes, key=lambda split: order.index(split) if split in order else len(order))
    lines += markdown_table(["split", "rows"], [[split, data.split_sizes[split]] for split in splits])
    lines += [
        "",
        f"Splits are {'stratified' if data.task == 'classification' else 'random'} and fixed by "
        f"`seed` = {config.seed} (val fraction {config.data.val_fraction}, "
        f"test fraction {config.data.test_fraction}); the `{config.encoder.name}` encoder was fitted on the "
        "train split only.",
    ]

    lines += ["", "## Training", ""]
    training_keys = [key for key in settings if key.startswith(("seed", "data.", "encoder.", "loss.", "train."))]
    lines += markdown_table(["parameter", "value"], [[key, settings[key]] for key in training_keys], settings=True)

    lines += ["", "## Metrics", ""]
    lines += metrics_table(evaluation)
    scalars = {key: value for key, value in flatten(dict(train_metrics)).items() if not isinstance(value, list)}
    if scalars:
        lines += ["", "Training summary (metrics/train.json):", ""]
        lines += markdown_table(["key", "value"], [[key, value] for key, value in scalars.items()])

    if runtime:
        lines += ["", "## Environment", ""]
        lines += ["The software that produced these numbers; the same params and data give the same bits with it.", ""]
        lines += markdown_table(["component", "value"], [[key, value] for key, value in runtime.items()], settings=True)
        lines += ["", CODE_PROVENANCE]

    lines += ["", "## Intended use and limits", ""]
    lines += _intended_use(data, evaluation, per_class)
    return "\n".join(lines) + "\n"


def exported_row(config: Config, inputs: str) -> list[list[str]]:
    """The model table's row naming the export files ``package.export`` adds, if any."""
    files = [EXPORT_FILES[fmt] for fmt in config.package.export]
    return [["exported", f"{', '.join(files)} in this package ({inputs})"]] if files else []


def how_to_use(data: DataSummary) -> list[str]:
    """Three lines of Python that score a table with this package (a test runs them as written)."""
    features = list(data.feature_columns)
    columns = f"{features[0]}..{features[-1]}" if len(features) > 2 else ", ".join(features)
    return [
        "Score new data from the project root (or point `load_model` at this folder's upload, "
        "`s3://…/<experiment-id>/`); the table needs the input columns below, the label column may be present:",
        "",
        "```python",
        "import pandas as pd, trainflow",
        'model = trainflow.load_model("results")  # this package: weights, encoder, labels, input schema',
        f'print(model.predict(pd.read_csv("new_data.csv")))  # columns {columns}; predict_proba for probabilities',
        "```",
        "",
        "From the shell: `trainflow predict new_data.csv --model results --output predictions.parquet`; "
        "`trainflow export --format onnx|torchscript` writes a file that takes the raw features.",
    ]


def _intended_use(
    data: DataSummary, evaluation: Mapping[str, Mapping[str, Any]], per_class: Mapping[str, Mapping[str, Any]] | None
) -> list[str]:
    test_rows = data.split_sizes.get("test")
    source = data.provenance.get("dataset.path")
    lines = [
        f"- Intended for inputs drawn from the same distribution as `{data.name}`"
        f"{f' ({source})' if source else ''}, encoded by the packaged "
        "experiment's encoder; it has not been evaluated on any other data.",
        f"- The test metrics are an estimate from {test_rows if test_rows is not None else 'the'} held-out rows; "
        "they carry sampling error and say nothing about inputs unlike the training data.",
        "- The model was selected by a validation metric, so validation metrics are optimistic; quote the test split.",
    ]
    if data.task == "classification" and per_class:
        worst = min(per_class.items(), key=lambda item: item[1].get("f1") or 0.0)
        lines.append(f"- Weakest class on the test split: `{worst[0]}` (F1 {format_cell(worst[1].get('f1'))}).")
        small = [label for label, row in per_class.items() if int(row.get("support", 0)) < SMALL_SUPPORT]
        if small:
            lines.append(
                f"- Classes with fewer than {SMALL_SUPPORT} test samples ({', '.join(small)}) have unreliable "
                "per-class numbers."
            )
    if data.task == "regression":
        lines.append("- Errors are in the target's own units; see the residual plot for bias over the range.")
    lines.append("- Not for decisions about people without a separate review of fairness and failure modes.")
    return lines
