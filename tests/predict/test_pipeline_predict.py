"""After the default pipeline (`dvc repro` on the embedded digits), `trainflow predict` on the test
split's raw rows gives the evaluate stage's test predictions exactly, from the project's
models/best.pt and from the package uploaded to moto's S3; the exported ONNX and TorchScript
files agree with PyTorch on those rows.

One pipeline run is shared by the module (it costs minutes on a small machine).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest
import torch

import trainflow
from tests.fixtures.project import FAST_PARAMS, make_project, run
from trainflow.export import export_model

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_project(tmp_path_factory.mktemp("pipeline") / "project", FAST_PARAMS)
    run(["dvc", "repro"], folder)
    return folder


def raw_test_rows(project: Path, destination: Path) -> Path:
    """The test split's rows as they are in data/raw/digits.csv.gz (no header, pixels then label)."""
    lines = gzip.decompress((project / "data" / "raw" / "digits.csv.gz").read_bytes()).decode().splitlines()
    rows = pd.read_parquet(project / "data" / "prepared" / "test.parquet").index.to_numpy()
    destination.write_text("".join(lines[row] + "\n" for row in rows))
    return destination


def predict(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "trainflow.cli", "predict", *args], cwd=project, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result


def expected_predictions(project: Path) -> pd.DataFrame:
    return pd.read_parquet(project / "evaluation" / "predictions_test.parquet").drop(columns=["row", "target"])


def assert_exact(output: Path, project: Path) -> None:
    expected = expected_predictions(project)
    got = pd.read_parquet(output)[list(expected.columns)]
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_predict_on_the_raw_test_rows_reproduces_the_evaluate_stage(project: Path) -> None:
    source = raw_test_rows(project, project / "test_rows.csv")
    predict(project, str(source), "--output", "preds.parquet")
    assert_exact(project / "preds.parquet", project)


def test_predict_from_the_package_uploaded_to_s3(project: Path, s3_bucket: str) -> None:
    target = f"s3://{s3_bucket}/nightly"
    uploaded = run(["trainflow", "upload", f"upload.target={target}"], project)
    assert "uploaded" in uploaded.stdout
    experiment = json.loads((project / "results" / "manifest.json").read_text())["experiment_id"]
    source = raw_test_rows(project, project / "test_rows_s3.csv")
    predict(project, str(source), "--model", f"{target}/{experiment}/", "--output", "preds_s3.parquet")
    assert_exact(project / "preds_s3.parquet", project)


def test_the_package_scores_labelled_rows_with_the_evaluate_metrics(project: Path) -> None:
    source = raw_test_rows(project, project / "test_rows_labelled.csv")
    result = predict(project, str(source), "--model", "results", "--output", "scored.csv", "--score")
    metrics = json.loads(result.stdout.split("predict: metrics ", 1)[1].splitlines()[0])
    assert metrics["accuracy"] == json.loads((project / "metrics" / "eval.json").read_text())["test"]["accuracy"]


def test_a_pixel_outside_the_training_range_is_refused(project: Path) -> None:
    source = raw_test_rows(project, project / "bad_rows.csv")
    lines = source.read_text().splitlines()
    lines[2] = "17," + lines[2].split(",", 1)[1]
    source.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "trainflow.cli", "predict", str(source), "--output", "bad.parquet"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "pixel_0: in_range(0.0, 16.0)" in result.stderr, result.stderr
    assert "row 2" in result.stderr


def test_exports_match_pytorch_on_the_test_split(project: Path, tmp_path: Path) -> None:
    predictor = trainflow.load_model(project / "results")
    features = predictor.features(pd.read_parquet(project / "data" / "prepared" / "test.parquet"))
    expected = predictor.outputs(features).numpy()
    session = onnxruntime.InferenceSession(str(export_model(predictor, "onnx", tmp_path / "m.onnx")))
    logits, probabilities = session.run(None, {"features": features})
    assert np.abs(probabilities - torch.softmax(torch.from_numpy(expected), dim=1).numpy()).max() <= 1e-5
    # logits: onnxruntime sums in another order, a few float32 steps apart at their magnitude
    assert np.abs(logits - expected).max() <= 1e-5 * max(1.0, float(np.abs(expected).max()))
    module = torch.jit.load(str(export_model(predictor, "torchscript", tmp_path / "m.pt")))
    with torch.no_grad():
        assert np.abs(module(torch.from_numpy(features))[0].numpy() - expected).max() <= 1e-5
