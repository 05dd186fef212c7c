"""The fit_encoder stage: fits on the prepared train split only and writes data/encoders/encoder.json."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from trainflow.config import resolve
from trainflow.data.prepare import read_prepared, to_arrays
from trainflow.encoders import StandardEncoder, load_encoder
from trainflow.errors import DataError
from trainflow.paths import ProjectPaths
from trainflow.stages import fit_encoder, prepare

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """A project root with the digits data prepared."""
    root = tmp_path_factory.mktemp("project")
    (root / "data" / "raw").mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / "digits.csv.gz", root / "data" / "raw" / "digits.csv.gz")
    paths = ProjectPaths(root)
    prepare.run(resolve({}), paths)
    return paths


def test_fit_encoder_fits_on_the_train_split_only(paths: ProjectPaths, capsys: pytest.CaptureFixture[str]) -> None:
    summary = fit_encoder.run(resolve({}), paths)
    path = paths.encoders / "encoder.json"
    assert summary == {"encoder": "standard", "rows": 1259, "features": 64, "path": str(path)}
    assert capsys.readouterr().out.splitlines() == [
        f"fit-encoder: reading the train split from {paths.prepared}",
        "fit-encoder: fitting standard on 1259 rows x 64 features",
        f"fit-encoder: wrote {path}",
    ]
    encoder = load_encoder(path)
    assert isinstance(encoder, StandardEncoder) and encoder.state is not None
    splits, info = read_prepared(paths.prepared)
    train_x, _ = to_arrays(splits["train"], info)
    all_x = np.concatenate([to_arrays(split, info)[0] for split in splits.values()])
    np.testing.assert_array_equal(encoder.state["mean"], train_x.astype(np.float64).mean(axis=0))
    assert not np.array_equal(encoder.state["mean"], all_x.astype(np.float64).mean(axis=0))


def test_fit_encoder_twice_gives_the_same_file(paths: ProjectPaths) -> None:
    fit_encoder.run(resolve({"encoder": "minmax"}), paths)
    first = (paths.encoders / "encoder.json").read_bytes()
    fit_encoder.run(resolve({"encoder": "minmax"}), paths)
    assert (paths.encoders / "encoder.json").read_bytes() == first
    assert load_encoder(paths.encoders / "encoder.json").name == "minmax"


def test_fit_encoder_before_prepare_says_to_run_prepare(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found; run the prepare stage first"):
        fit_encoder.run(resolve({}), ProjectPaths(tmp_path))
    assert not (tmp_path / "data" / "encoders").exists()
