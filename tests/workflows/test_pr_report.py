"""The PR report's markdown and its one-line errors (the full run is in test_workflow_runs.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from tasks.pr_report import MARKER, confusion_matrix, plot_files, report_markdown
from tests.orchestration.projects import ROOT, env, init_repo

HEAD = {"learning_curve": "learning_curve_head.png", "confusion_test": "confusion_test_head.png"}


def test_images_link_to_the_artifact_when_a_url_is_given_and_a_missing_base_plot_says_none() -> None:
    base = {"learning_curve": None, "confusion_test": None}
    url = "https://github.com/o/r/actions/runs/1/artifacts/2"
    markdown = report_markdown("abc1234", "| metrics |", "| params |", HEAD, base, images_url=url)
    assert markdown.splitlines()[0] == MARKER
    assert f"| Learning curves | [Learning curves: this PR]({url}) | (none) |" in markdown
    assert "![" not in markdown
    embedded = report_markdown("abc1234", "m", "p", HEAD, HEAD)
    assert "![Confusion matrix (test): this PR](confusion_test_head.png)" in embedded


def test_the_confusion_matrix_counts_actual_rows_and_predicted_columns() -> None:
    pairs = pd.DataFrame({"actual": [0, 0, 1, 2], "predicted": [0, 1, 1, 1]})
    assert confusion_matrix(pairs) == ([[1, 1, 0], [0, 1, 0], [0, 1, 0]], [0, 1, 2])


def test_an_unknown_base_or_no_results_is_one_line(tmp_path: Path) -> None:
    init_repo(tmp_path)
    command = [sys.executable, "-m", "tasks.pr_report", "--root", str(tmp_path), "--out", str(tmp_path / "out")]
    result = subprocess.run([*command, "--base", "nope"], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --base: 'nope' is not a commit of {tmp_path.resolve()}; fetch it (fetch-depth: 0)"
    ]
    result = subprocess.run([*command, "--base", "HEAD"], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert result.returncode == 2 and "no pipeline results in this checkout; run `dvc repro` first" in result.stderr
    assert not (tmp_path / "out").exists()


def test_the_plot_files_come_from_each_sides_dvc_yaml() -> None:
    dvc_yaml = (
        "plots:\n  - Learning curves:\n      x: epoch\n      y:\n        plots/history.csv: [train_loss]\n"
        "  - plots/eval/confusion_val.csv:\n      template: confusion\n"
        "  - plots/eval/confusion_test.csv:\n      template: confusion\n"
    )
    assert plot_files(dvc_yaml) == ("plots/history.csv", "plots/eval/confusion_test.csv")
    assert plot_files(None) == ("plots/history.csv", "plots/confusion_test.csv")
    assert plot_files("plots: [: broken") == ("plots/history.csv", "plots/confusion_test.csv")
