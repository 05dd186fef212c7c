"""A forecasting model used after the pipeline: `trainflow.load_model`, `trainflow predict` and
`trainflow export` on the co2 run give the evaluate stage's forecasts from the same history.

The co2 pipeline is run once per session (tests.fixtures.project.co2_pipeline).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch

import trainflow
from trainflow.forecasting.forecaster import Forecaster
from trainflow.forecasting.series import read_co2
from trainflow.results.exports import EXPORT_FILES

pytestmark = pytest.mark.e2e
VAL_END = 2284 - 208  # the first test origin of the co2 protocol


def cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainflow.cli", *args], cwd=project, capture_output=True, text=True, check=False
    )


def history_file(project: Path, steps: int, name: str = "history.csv") -> Path:
    """The first ``steps`` rows of the raw co2 file, as a user would cut it."""
    lines = (project / "data" / "raw" / "co2_weekly_maunaloa.csv").read_text().splitlines()
    path = project.parent / name
    path.write_text("\n".join(lines[: steps + 1]) + "\n")
    return path


def expected_forecast(project: Path) -> np.ndarray:
    """The evaluate stage's model forecast from the first test origin, longest horizon."""
    frame = pd.read_parquet(project / "evaluation" / "forecasts_test.parquet")
    rows = frame[frame["horizon"] == frame["horizon"].max()].sort_values(["origin", "lead"])
    return rows[rows["origin"] == rows["origin"].iloc[0]]["model"].to_numpy()


@pytest.fixture(scope="module")
def project(co2_pipeline: tuple[Path, str]) -> Path:
    return co2_pipeline[0]


def test_the_package_and_the_project_forecast_what_the_evaluate_stage_did(project: Path) -> None:
    history = history_file(project, VAL_END)
    for source in (project / "results", project / "models" / "best.pt"):
        model = trainflow.load_model(source)
        assert isinstance(model, Forecaster) and model.steps == 52 and model.context == 104
        forecast = model.forecast(history)
        assert list(forecast.columns) == ["date", "lead", "forecast"]
        assert forecast["lead"].tolist() == list(range(1, 53))
        assert forecast["date"].iloc[0] == pd.Timestamp("1998-01-10")  # one week after the history's last date
        np.testing.assert_allclose(forecast["forecast"].to_numpy(), expected_forecast(project), rtol=1e-6)
    frame = pd.read_csv(history, dtype={"date": str})  # a DataFrame works as well as a file
    np.testing.assert_array_equal(model.forecast(frame)["forecast"], forecast["forecast"])


def test_trainflow_predict_writes_the_forecast(project: Path) -> None:
    history = history_file(project, VAL_END)
    output = project.parent / "forecast.parquet"
    result = cli(project, "predict", str(history), "--model", "results", "--output", str(output))
    assert result.returncode == 0, result.stderr
    assert "predict: 52 steps from 1998-01-10" in result.stdout
    written = pd.read_parquet(output)
    np.testing.assert_allclose(written["forecast"].to_numpy(), expected_forecast(project), rtol=1e-6)
    to_stdout = cli(project, "predict", str(history), "--model", "results")
    assert to_stdout.returncode == 0 and to_stdout.stdout.splitlines()[0] == "date,lead,forecast"
    assert len(to_stdout.stdout.splitlines()) == 53


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: history_file(p, 50, "short.csv"), r"50 steps of history; the model needs at least 104"),
        (
            lambda p: _without_row(history_file(p, 300, "gap.csv"), 200),
            r"gap\.csv: column 'date': .* by 14 day\(s\), not 7",
        ),
    ],
    ids=["too-short", "skipped-week"],
)
def test_bad_history_is_one_error_line(project: Path, make: object, message: str) -> None:
    history = make(project)  # type: ignore[operator]
    result = cli(project, "predict", str(history), "--model", "results", "--output", str(project.parent / "x.csv"))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(message, lines[0]), result.stderr
    assert not (project.parent / "x.csv").exists()


def _without_row(path: Path, row: int) -> Path:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:row] + lines[row + 1 :]) + "\n")
    return path


def test_score_is_refused_for_a_forecaster(project: Path) -> None:
    result = cli(project, "predict", str(history_file(project, VAL_END)), "--model", "results", "--score")
    assert result.returncode != 0 and result.stderr.startswith("error: --score: a forecasting model")


def test_exported_models_forecast_the_same_on_windows(project: Path) -> None:
    model = trainflow.load_model(project / "results")
    series = read_co2(project)
    windows = model.encoder.encode(series.values[:VAL_END], series.dates[:VAL_END])[-104:][None]
    for fmt in ("onnx", "torchscript"):
        output = project.parent / f"co2.{fmt}"
        result = cli(project, "export", "--format", fmt, "--model", "results", "--output", str(output))
        assert result.returncode == 0, result.stderr
        assert "windows [Nx104x5] in; forecast out" in result.stdout
        if fmt == "onnx":
            session = onnxruntime.InferenceSession(str(output))
            metadata = session.get_modelmeta().custom_metadata_map
            assert json.loads(metadata["trainflow.encoder"])["mean"] == model.encoder.mean
            got = session.run(None, {"windows": windows})[0][0]
        else:
            with torch.no_grad():
                got = torch.jit.load(str(output))(torch.from_numpy(windows))[0][0].numpy()
        np.testing.assert_allclose(got, expected_forecast(project), rtol=1e-6)
        shipped = project / "results" / EXPORT_FILES[fmt]
        assert output.read_bytes() == shipped.read_bytes()  # package.export ships the same file


def test_the_model_cards_snippet_runs_as_written(project: Path) -> None:
    card = (project / "results" / "model_card.md").read_text()
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]
    history_file(project, VAL_END).replace(project / "history.csv")
    try:
        result = subprocess.run([sys.executable, "-c", snippet], cwd=project, capture_output=True, text=True)
    finally:
        (project / "history.csv").unlink()
    assert result.returncode == 0, result.stderr
    assert "forecast" in result.stdout and "52" in result.stdout


def test_the_package_holds_the_forecasts_plots_and_card(project: Path) -> None:
    results = project / "results"
    manifest = json.loads((results / "manifest.json").read_text())
    names = set(manifest["files"])
    assert {f"forecast_test_h{h}.png" for h in (4, 13, 52)} | {"mae_by_lead.png", "learning_curve.png"} <= names
    assert {"forecasts_val.parquet", "forecasts_test.parquet", "input_schema.json", "model_card.md"} <= names
    card = (results / "model_card.md").read_text()
    assert "## Evaluation protocol" in card and "holt_winters" in card
    assert re.search(r"\| 52 \| model \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|", card)
    schema = json.loads((results / "input_schema.json").read_text())
    assert schema["value_column"] == "co2" and schema["frequency"] == "W" and schema["context"] == 104
