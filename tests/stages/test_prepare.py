"""The prepare stage: writes data/prepared/ bit-identically, and leaves it untouched on failure."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from trainflow.config import Config, resolve
from trainflow.errors import DataError
from trainflow.paths import ProjectPaths
from trainflow.stages import prepare

REPO = Path(__file__).resolve().parents[2]
# The first weeks of the Mauna Loa CO2 record (public domain, Keeling & Whorf 2004), gaps included.
CO2_EXCERPT = """date,co2
19580329,316.1
19580405,317.3
19580412,317.6
19580419,317.5
19580426,316.4
19580503,316.9
19580510,
19580517,317.5
19580524,317.9
19580531,
19580607,
19580614,
19580621,
19580628,
19580705,315.8
"""
FILES = ["info.json", "report.json", "test.parquet", "train.parquet", "val.parquet"]


@pytest.fixture
def paths(tmp_path: Path) -> ProjectPaths:
    """A project root holding a copy of the embedded digits file."""
    (tmp_path / "data" / "raw").mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / "digits.csv.gz", tmp_path / "data" / "raw" / "digits.csv.gz")
    return ProjectPaths(tmp_path)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_prepare_writes_the_splits_and_reports_progress(
    paths: ProjectPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = prepare.run(resolve({}), paths)
    assert summary == {"dataset": "digits", "rows": {"total": 1797, "train": 1259, "val": 269, "test": 269}}
    assert sorted(snapshot(paths.prepared)) == FILES
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "prepare: reading dataset digits data/raw/digits.csv.gz",
        "prepare: 1797 rows x 65 columns passed the schema",
        "prepare: split train 1259 / val 269 / test 269 (seed 42)",
        f"prepare: wrote {paths.prepared}",
    ]


def test_prepare_twice_gives_bit_identical_files(paths: ProjectPaths) -> None:
    config = resolve({})
    prepare.run(config, paths)
    first = snapshot(paths.prepared)
    prepare.run(config, paths)
    assert snapshot(paths.prepared) == first


def test_a_failed_prepare_leaves_the_prepared_data_exactly_as_before(paths: ProjectPaths) -> None:
    config = resolve({})
    prepare.run(config, paths)
    before = snapshot(paths.prepared)
    raw = paths.raw / "digits.csv.gz"
    data = raw.read_bytes()
    raw.write_bytes(data[: len(data) // 3])  # truncated
    with pytest.raises(DataError, match="truncated gzip file"):
        prepare.run(config, paths)
    assert snapshot(paths.prepared) == before
    assert sorted(path.name for path in paths.prepared.parent.iterdir()) == ["prepared", "raw"]


def test_a_failed_first_prepare_creates_nothing(paths: ProjectPaths) -> None:
    (paths.raw / "digits.csv.gz").write_bytes(b"")
    with pytest.raises(DataError, match="file is empty"):
        prepare.run(resolve({}), paths)
    assert not paths.prepared.exists()


def test_a_csv_regression_dataset_is_checked_then_prepared(tmp_path: Path) -> None:
    paths = ProjectPaths(tmp_path)
    (tmp_path / "co2.csv").write_text(CO2_EXCERPT)
    section = {"name": "csv", "path": "co2.csv", "label_column": "co2", "task": "regression"}
    config: Config = resolve({"dataset": section})
    with pytest.raises(DataError, match=r"co2: not_nullable \(missing value\) failed for 6 row\(s\)"):
        prepare.run(config, paths)
    assert not paths.prepared.exists()
    pd.read_csv(io.StringIO(CO2_EXCERPT)).dropna().to_csv(tmp_path / "co2.csv", index=False)
    summary = prepare.run(config, paths)
    assert summary == {"dataset": "csv", "rows": {"total": 9, "train": 7, "val": 1, "test": 1}}
    report = json.loads((paths.prepared / "report.json").read_text())
    assert report["dataset"]["label_column"] == "co2" and "class_counts" not in report
