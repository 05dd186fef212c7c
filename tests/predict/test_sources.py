"""trainflow.load_model from every kind of SOURCE scores raw tables exactly as the evaluate stage did.

One tiny trained, evaluated and packaged project per task (real prepare, fit-encoder, evaluate
and package stages) is shared by the module; tests that change files work on copies.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import trainflow
from tests.results.tiny_project import make_project
from trainflow.config import Config, resolve, to_dict
from trainflow.errors import CheckpointError, DataError, StorageError
from trainflow.paths import ProjectPaths
from trainflow.results.package import build_package
from trainflow.stages import evaluate
from trainflow.storage.manifest import write_manifest
from trainflow.storage.upload import upload_results

torch.set_num_threads(1)
PREDICTION_COLUMNS = {"names": ["prediction", "prob_setosa", "prob_versicolor", "prob_virginica"]}


def packaged_project(root: Path, task: str) -> tuple[Config, ProjectPaths]:
    config, paths = make_project(root, task)  # type: ignore[arg-type]
    evaluate.run(config, paths)
    build_package(paths, config)
    return config, paths


@pytest.fixture(scope="module", params=["names", "classification", "regression"])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, ProjectPaths]:
    return packaged_project(tmp_path_factory.mktemp(request.param) / "project", request.param)


@pytest.fixture(scope="module")
def names_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, ProjectPaths]:
    return packaged_project(tmp_path_factory.mktemp("names") / "project", "names")


def test_split(paths: ProjectPaths) -> pd.DataFrame:
    """The prepared test split as a raw table (label included), rows renumbered from 0."""
    return pd.read_parquet(paths.prepared / "test.parquet").reset_index(drop=True)


test_split.__test__ = False  # type: ignore[attr-defined]


def evaluated(paths: ProjectPaths) -> pd.DataFrame:
    """The evaluate stage's test predictions without its row and target columns."""
    frame = pd.read_parquet(paths.evaluation / "predictions_test.parquet")
    return frame.drop(columns=["row", "target"])


def assert_same_predictions(frame: pd.DataFrame, paths: ProjectPaths) -> None:
    expected = evaluated(paths)
    pd.testing.assert_frame_equal(frame[list(expected.columns)].reset_index(drop=True), expected, check_exact=True)


def upload(config: Config, paths: ProjectPaths, target: str) -> str:
    """Upload the project's package (as `trainflow upload` does) to ``target``; the package's URL."""
    shipped = resolve({**to_dict(config), "upload": {"target": target}}, source="test", plugins=False)
    return upload_results(shipped, paths).location + "/"


@pytest.mark.parametrize("kind", ["snapshot", "project root", "package folder"])
def test_local_sources_reproduce_the_evaluate_stage(project: tuple[Config, ProjectPaths], kind: str) -> None:
    _, paths = project
    source = {"snapshot": paths.models / "best.pt", "project root": paths.root, "package folder": paths.results}[kind]
    predictor = trainflow.load_model(source)
    assert_same_predictions(predictor.predict_frame(test_split(paths)), paths)


def test_file_upload_reproduces_the_evaluate_stage(project: tuple[Config, ProjectPaths], tmp_path: Path) -> None:
    config, paths = project
    url = upload(config, paths, f"file://{tmp_path / 'uploads'}")
    predictor = trainflow.load_model(url)
    assert predictor.source == url
    assert_same_predictions(predictor.predict_frame(test_split(paths)), paths)


def test_s3_upload_reproduces_the_evaluate_stage(names_project: tuple[Config, ProjectPaths], s3_bucket: str) -> None:
    config, paths = names_project
    url = upload(config, paths, f"s3://{s3_bucket}/nightly")
    assert url.startswith(f"s3://{s3_bucket}/nightly/")
    predictor = trainflow.load_model(url)
    assert_same_predictions(predictor.predict_frame(test_split(paths)), paths)


def test_predict_and_predict_proba(names_project: tuple[Config, ProjectPaths]) -> None:
    _, paths = names_project
    predictor = trainflow.load_model(paths.results)
    frame = test_split(paths)
    expected = evaluated(paths)
    assert list(predictor.predict(frame)) == list(expected["prediction"])  # class names, not indices
    proba = predictor.predict_proba(frame)
    assert proba.shape == (len(frame), 3)
    np.testing.assert_array_equal(proba, expected[PREDICTION_COLUMNS["names"][1:]].to_numpy())
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert predictor.classes == ["setosa", "versicolor", "virginica"]


def test_regression_predicts_values_and_has_no_probabilities(tmp_path: Path) -> None:
    _, paths = packaged_project(tmp_path / "project", "regression")
    predictor = trainflow.load_model(paths.results)
    values = predictor.predict(test_split(paths))
    np.testing.assert_array_equal(values, evaluated(paths)["prediction"].to_numpy())
    with pytest.raises(DataError, match="predict_proba is for classification"):
        predictor.predict_proba(test_split(paths))


def test_a_tampered_package_file_is_refused_by_name(names_project: tuple[Config, ProjectPaths], tmp_path: Path) -> None:
    _, paths = names_project
    copy = tmp_path / "results"
    shutil.copytree(paths.results, copy)
    encoder = json.loads((copy / "encoder.json").read_text())
    encoder["state"]["mean"][0] += 1.0
    (copy / "encoder.json").write_text(json.dumps(encoder))
    with pytest.raises(CheckpointError, match=r"encoder\.json: (size|sha256)"):
        trainflow.load_model(copy)


def test_a_tampered_upload_is_refused_by_name(names_project: tuple[Config, ProjectPaths], tmp_path: Path) -> None:
    config, paths = names_project
    url = upload(config, paths, f"file://{tmp_path / 'uploads'}")
    weights = Path(url.removeprefix("file://")) / "results" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises((StorageError, CheckpointError), match=r"results/model\.safetensors"):
        trainflow.load_model(url)


def test_the_stored_config_imports_nothing(names_project: tuple[Config, ProjectPaths], tmp_path: Path) -> None:
    """A package whose config names a plug-in module (manifest rewritten to match) loads
    without importing it: the config is data."""
    _, paths = names_project
    copy = tmp_path / "results"
    shutil.copytree(paths.results, copy)
    marker = tmp_path / "imported"
    (tmp_path / "evil_plugin.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["imports"] = ["evil_plugin"]
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    write_manifest(copy)
    sys.path.insert(0, str(tmp_path))
    try:
        predictor = trainflow.load_model(copy)
    finally:
        sys.path.remove(str(tmp_path))
    assert not marker.exists()
    assert "evil_plugin" not in sys.modules
    assert_same_predictions(predictor.predict_frame(test_split(paths)), paths)


def test_unknown_sources_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"not found; give models/best\.pt"):
        trainflow.load_model(tmp_path / "nothing")
    with pytest.raises(DataError, match="not a model; give"):
        trainflow.load_model(tmp_path)
    with pytest.raises(StorageError):
        trainflow.load_model(f"file://{tmp_path}/uploads/0123abcd/")


def test_the_model_card_snippet_runs_as_written(names_project: tuple[Config, ProjectPaths]) -> None:
    _, paths = names_project
    card = (paths.results / "model_card.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) == 3
    test_split(paths).drop(columns=["label"]).to_csv(paths.root / "new_data.csv", index=False)
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]], cwd=paths.root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    printed = re.findall(r"'(\w+)'", result.stdout)
    assert printed == list(evaluated(paths)["prediction"])


def test_import_trainflow_stays_cheap() -> None:
    probe = "import sys, trainflow; print('torch' in sys.modules, 'load_model' in trainflow.__all__)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


def test_validation_errors_name_the_column(names_project: tuple[Config, ProjectPaths]) -> None:
    _, paths = names_project
    predictor = trainflow.load_model(paths.results)
    frame = test_split(paths)
    with pytest.raises(DataError, match="f2"):
        predictor.predict(frame.drop(columns=["f2"]))
    bad = frame.astype({"f1": object})
    bad.loc[3, "f1"] = "oops"
    with pytest.raises(DataError, match=r"f1.*row 3|row 3.*f1|f1"):
        predictor.predict(bad)
