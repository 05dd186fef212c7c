"""PNG plots: valid PNG, the same bytes for the same data, no run-dependent metadata."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from trainflow.results import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY = pd.DataFrame(
    {"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.7, 0.5], "val_accuracy": [0.5, 0.7, 0.8]}
)


def figures() -> dict[str, bytes]:
    return {
        "confusion": plots.png_bytes(plots.confusion_matrix_figure([[5, 1], [2, 7]], [3, 8], "val")),
        "learning_curve": plots.png_bytes(plots.learning_curve_figure(HISTORY)),
        "scatter": plots.png_bytes(plots.predicted_vs_actual_figure([300.0, 310.0, 320.0], [301.0, 309.0, 322.0], "t")),
        "residuals": plots.png_bytes(plots.residuals_figure([1.0, 2.0, 3.0], [1.1, 1.9, 3.3], "t")),
    }


@pytest.fixture(scope="module")
def baseline() -> dict[str, bytes]:
    return figures()


def test_plots_are_png_and_identical_across_calls(baseline: dict[str, bytes]) -> None:
    second = figures()
    for name, data in baseline.items():
        assert data.startswith(PNG_MAGIC), name
        assert b"Software" not in data and b"matplotlib" not in data, name  # no version stamp
        assert data == second[name], name


def test_plots_ignore_the_users_matplotlib_style(baseline: dict[str, bytes]) -> None:
    with matplotlib.rc_context({"lines.linewidth": 7.0, "axes.facecolor": "red", "font.size": 20}):
        assert figures() == baseline


def test_different_data_gives_a_different_plot(baseline: dict[str, bytes]) -> None:
    changed = plots.png_bytes(plots.confusion_matrix_figure([[5, 1], [3, 6]], [3, 8], "val"))
    assert changed != baseline["confusion"]


def test_save_png_writes_the_same_bytes(tmp_path: Path, baseline: dict[str, bytes]) -> None:
    figure = plots.learning_curve_figure(HISTORY)
    plots.save_png(figure, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes() == baseline["learning_curve"]


def test_learning_curve_needs_an_epoch_column() -> None:
    with pytest.raises(ValueError, match="no 'epoch' column"):
        plots.learning_curve_figure(HISTORY.drop(columns="epoch"))


def test_large_confusion_matrix_renders() -> None:
    size = plots.ANNOTATE_MAX_CLASSES + 1
    matrix = [[int(i == j) for j in range(size)] for i in range(size)]
    assert plots.png_bytes(plots.confusion_matrix_figure(matrix, list(range(size)), "many")).startswith(PNG_MAGIC)


def test_learning_curve_plots_losses_left_and_metrics_right() -> None:
    history = HISTORY.rename(columns={"val_accuracy": "val/accuracy"}).assign(lr=[0.1, 0.1, 0.1])
    loss_axes, metric_axes = plots.learning_curve_figure(history).axes
    assert [line.get_label() for line in loss_axes.lines] == ["train_loss", "val_loss"]
    assert [line.get_label() for line in metric_axes.lines] == ["val/accuracy"]  # lr is not a curve
