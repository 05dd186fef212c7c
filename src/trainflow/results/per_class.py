"""The per-class report of a classifier as a markdown table per split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _number(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def per_class_markdown(detail: Mapping[str, Any], splits: Sequence[str]) -> str:
    """Markdown for ``detail`` as the evaluate stage writes it (evaluation/per_class.json):
    ``{"classes": [...], split: {"per_class": {label: {precision, recall, f1, support}},
    "confusion_matrix": [[...]]}}``. One table per split, classes in ``classes`` order.
    """
    lines = ["# Per-class report", ""]
    for split in splits:
        rows = detail[split]["per_class"]
        lines += [f"## {split}", "", "| class | precision | recall | f1 | support |", "| --- | --- | --- | --- | --- |"]
        for label in detail["classes"]:
            row = rows[str(label)]
            lines.append(
                f"| {label} | {_number(row['precision'])} | {_number(row['recall'])} | "
                f"{_number(row['f1'])} | {row['support']} |"
            )
        lines.append("")
    return "\n".join(lines)
