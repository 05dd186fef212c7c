"""The content of the Prefect artifacts: metrics table rows and the markdown summary."""

from __future__ import annotations

from tasks.artifacts import markdown_table, metrics_rows, summary_markdown

METRICS = {"test": {"accuracy": 0.9, "f1_macro": 0.8}, "val": {"accuracy": 0.85}, "epochs": 2, "model": "mlp"}


def test_rows_are_the_numeric_metrics() -> None:
    rows = metrics_rows(METRICS)
    assert [row["metric"] for row in rows] == ["test.accuracy", "test.f1_macro", "val.accuracy", "epochs"]
    assert rows[0] == {"metric": "test.accuracy", "value": 0.9}


def test_rows_with_a_baseline_show_the_change() -> None:
    rows = metrics_rows(METRICS, {"test.accuracy": 0.8})
    assert rows[0]["accepted"] == 0.8
    assert abs(rows[0]["change"] - 0.1) < 1e-12
    assert rows[1]["accepted"] is None and rows[1]["change"] is None


def test_markdown_table_escapes_cells() -> None:
    table = markdown_table([{"a": "x|y", "b": None}], ["a", "b"])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | - |"]


def test_summary_names_params_metrics_and_package() -> None:
    stages = [{"stage": "prepare", "ran": False, "seconds": 0.5}, {"stage": "train", "ran": True, "seconds": 3.0}]
    text = summary_markdown(
        "retrain",
        "abc123",
        stages,
        {"train.optimizer.lr": (0.001, 0.003)},
        METRICS,
        baseline={"test.accuracy": 0.8},
        verdict="Accepted: better",
        package="Uploaded to `s3://b/p/abc123`.",
    )
    assert "# retrain: experiment `abc123`" in text
    assert "| prepare | up to date | 0.5 |" in text
    assert "| train | ran | 3 |" in text
    assert "| train.optimizer.lr | 0.001 | 0.003 |" in text
    assert "| test.accuracy | 0.9 | 0.8 | 0.1 |" in text
    assert "s3://b/p/abc123" in text
    assert "Not uploaded." in summary_markdown("training-pipeline", "x", [], {}, METRICS)
