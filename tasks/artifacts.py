"""What a flow run shows in the Prefect UI: a metrics table, a markdown summary, a package link.

The content is built by pure functions (tested without a server); :func:`publish` sends it
as Prefect artifacts of the current flow run. Keys are fixed, so each run adds a new version
of the same three artifacts and the UI shows their history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from trainflow.config import flatten

METRICS_KEY = "trainflow-metrics"
SUMMARY_KEY = "trainflow-summary"
PACKAGE_KEY = "trainflow-package"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def metrics_rows(
    metrics: Mapping[str, Any], baseline: Mapping[str, float | None] | None = None
) -> list[dict[str, Any]]:
    """One row per numeric metric of metrics/eval.json; with ``baseline``, its old value and the change."""
    rows = []
    for key, value in flatten(metrics).items():
        if not _number(value):
            continue
        row: dict[str, Any] = {"metric": key, "value": value}
        if baseline is not None:
            old = baseline.get(key)
            row["accepted"] = old
            row["change"] = None if old is None else value - old
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def summary_markdown(
    flow_name: str,
    experiment_id: str,
    stages: Sequence[Mapping[str, Any]],
    params_changed: Mapping[str, tuple[Any, Any]],
    metrics: Mapping[str, Any],
    baseline: Mapping[str, float | None] | None = None,
    verdict: str | None = None,
    package: str | None = None,
) -> str:
    """The run at a glance: what DVC ran, which params changed, the metrics, where the package went."""
    parts = [f"# {flow_name}: experiment `{experiment_id}`"]
    if verdict:
        parts += ["", f"**{verdict}**"]
    parts += ["", "## Stages (DVC decides what runs)", ""]
    parts.append(
        markdown_table(
            [{**s, "dvc": "ran" if s.get("ran") else "up to date"} for s in stages], ["stage", "dvc", "seconds"]
        )
    )
    parts += ["", "## Params changed", ""]
    if params_changed:
        rows = [{"key": key, "old": old, "new": new} for key, (old, new) in params_changed.items()]
        parts.append(markdown_table(rows, ["key", "old", "new"]))
    else:
        parts.append("None: params.yaml as it was.")
    parts += ["", "## Metrics" + (" (vs the accepted model)" if baseline is not None else ""), ""]
    columns = ["metric", "value", "accepted", "change"] if baseline is not None else ["metric", "value"]
    parts.append(markdown_table(metrics_rows(metrics, baseline), columns))
    parts += ["", "## Package", "", package or "Not uploaded."]
    return "\n".join(parts) + "\n"


def publish(
    rows: list[dict[str, Any]], summary: str, link: str | None = None, link_text: str | None = None
) -> dict[str, str]:
    """Create the metrics table, the summary and (if given) the package link on the current run."""
    ids = {
        METRICS_KEY: str(create_table_artifact(table=rows, key=METRICS_KEY, description="Metrics of this run")),
        SUMMARY_KEY: str(create_markdown_artifact(markdown=summary, key=SUMMARY_KEY, description="Run summary")),
    }
    if link:
        ids[PACKAGE_KEY] = str(
            create_link_artifact(link=link, link_text=link_text or link, key=PACKAGE_KEY, description="Result package")
        )
    return ids
