"""`trainflow export`: ONNX (onnxruntime) and TorchScript give the PyTorch model's outputs from raw features.

Every model type is checked on a test split: the MLP on a tiny table (classification and
regression), the CNN on the embedded digits images (weights from a seeded init: parity does
not need a trained model).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import torch

import trainflow
from tests.predict.test_sources import packaged_project
from trainflow.config import Config, resolve
from trainflow.data.prepare import read_info
from trainflow.errors import DataError
from trainflow.export import export_model
from trainflow.models.snapshot import build_model, save_model_snapshot
from trainflow.paths import ProjectPaths
from trainflow.stages import fit_encoder, prepare

# Max abs difference; for raw outputs (logits, values) times their largest magnitude when that is
# above 1: onnxruntime's kernels sum in another order, a few float32 steps apart on large logits.
TOLERANCE = 1e-5


def digits_cnn_project(root: Path) -> tuple[Config, ProjectPaths]:
    """The digits data prepared and encoded, and a seeded, untrained CNN saved as models/best.pt."""
    paths = ProjectPaths(root)
    root.mkdir(parents=True)
    raw = Path(__file__).resolve().parents[2] / "data" / "raw" / "digits.csv.gz"
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "digits.csv.gz").write_bytes(raw.read_bytes())
    config = resolve({"model": {"name": "cnn", "channels": [4, 8]}, "train": {"threads": 1}}, source="test")
    prepare.run(config, paths)
    fit_encoder.run(config, paths)
    info = read_info(paths.prepared)
    torch.manual_seed(0)
    save_model_snapshot(paths.models / "best.pt", build_model(config, info), config, info, epoch=0)
    return config, paths


@pytest.fixture(scope="module", params=["mlp classification", "mlp regression", "cnn digits"])
def predictor_and_split(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    root = tmp_path_factory.mktemp(request.param.replace(" ", "_")) / "project"
    if request.param == "cnn digits":
        _, paths = digits_cnn_project(root)
        source: Path = paths.models / "best.pt"
    else:
        _, paths = packaged_project(root, request.param.split()[1])
        source = paths.results
    split = pd.read_parquet(paths.prepared / "test.parquet").reset_index(drop=True)
    return trainflow.load_model(source), split, paths


def reference(predictor: trainflow.predictor.Predictor, split: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    features = predictor.features(split)
    return features, predictor.outputs(features).numpy()


def test_onnx_matches_pytorch_on_the_test_split(predictor_and_split: tuple, tmp_path: Path) -> None:
    predictor, split, _ = predictor_and_split
    features, expected = reference(predictor, split)
    path = export_model(predictor, "onnx", tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"features": features})
    assert np.abs(got[0] - expected).max() <= TOLERANCE * max(1.0, float(np.abs(expected).max()))
    if predictor.task == "classification":
        probabilities = torch.softmax(torch.from_numpy(expected), dim=1).numpy()
        assert np.abs(got[1] - probabilities).max() <= TOLERANCE
    metadata = {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}
    assert json.loads(metadata["trainflow.feature_columns"]) == predictor.feature_columns
    assert json.loads(metadata["trainflow.classes"]) == predictor.classes


def test_torchscript_matches_pytorch_on_the_test_split(predictor_and_split: tuple, tmp_path: Path) -> None:
    predictor, split, _ = predictor_and_split
    features, expected = reference(predictor, split)
    path = export_model(predictor, "torchscript", tmp_path / "model.pt")
    module = torch.jit.load(str(path))
    with torch.no_grad():
        got = module(torch.from_numpy(features))
    assert np.abs(got[0].numpy() - expected).max() <= TOLERANCE
    one_row = module(torch.from_numpy(features[:1]))  # the batch size is not fixed by the trace
    assert one_row[0].shape[0] == 1


def test_export_command_writes_the_default_file(predictor_and_split: tuple, tmp_path: Path) -> None:
    _, _, paths = predictor_and_split
    source = paths.results if (paths.results / "model.json").is_file() else paths.models / "best.pt"
    result = subprocess.run(
        [sys.executable, "-m", "trainflow.cli", "export", "--format", "onnx", "--model", str(source)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "exports" / "model.onnx").is_file()


def test_an_encoder_that_is_not_affine_cannot_be_folded(predictor_and_split: tuple, tmp_path: Path) -> None:
    predictor, _, _ = predictor_and_split

    class Odd:
        name = "odd"
        state_names = ("median", "iqr")

    original = predictor.encoder
    predictor.encoder = Odd()
    try:
        with pytest.raises(DataError, match="encoder 'odd' is not an affine map"):
            export_model(predictor, "onnx", tmp_path / "model.onnx")
    finally:
        predictor.encoder = original
