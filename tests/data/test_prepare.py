"""Prepared data: splits of the validated dataset, written whole and bit-identically, read back."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from trainflow.config import Config, resolve
from trainflow.data import prepare as prepare_module
from trainflow.data import validate as validate_module
from trainflow.data.datasets import DatasetInfo
from trainflow.data.prepare import (
    SPLITS,
    PreparedData,
    prepare_dataset,
    read_info,
    read_prepared,
    read_split,
    to_arrays,
    write_prepared,
)
from trainflow.errors import DataError

REPO = Path(__file__).resolve().parents[2]
FILES = ("info.json", "report.json", "test.parquet", "train.parquet", "val.parquet")


@pytest.fixture(scope="module")
def config() -> Config:
    return resolve({"seed": 3, "data": {"val_fraction": 0.2, "test_fraction": 0.1}})


@pytest.fixture(scope="module")
def prepared(config: Config) -> PreparedData:
    return prepare_dataset(config, REPO)


def test_digits_splits_are_stratified_disjoint_and_complete(prepared: PreparedData) -> None:
    splits = prepared.splits
    assert list(splits) == ["train", "val", "test"]
    rows = [split.index.to_numpy() for split in splits.values()]
    assert sorted(np.concatenate(rows).tolist()) == list(range(1797))
    assert [len(r) for r in rows] == [prepared.report["rows"][name] for name in splits]
    for name, split in splits.items():
        assert split.index.name == "row"
        assert sorted(split["label"].unique().tolist()) == list(range(10)), name
        assert sum(prepared.report["class_counts"][name].values()) == len(split)
    assert 0.19 < len(splits["val"]) / 1797 < 0.21
    assert 0.09 < len(splits["test"]) / 1797 < 0.11


def test_report_says_what_was_checked_and_how_it_was_split(prepared: PreparedData) -> None:
    report = prepared.report
    assert report["dataset"] == {"name": "digits", "path": "data/raw/digits.csv.gz"}
    assert (report["seed"], report["val_fraction"], report["test_fraction"]) == (3, 0.2, 0.1)
    assert report["rows"]["total"] == 1797
    assert "pixel_0..pixel_63: number, not_nullable, finite, integer, in_range(0, 16)" in report["checks_passed"]
    assert "label: number, not_nullable, finite, integer, isin(0..9)" in report["checks_passed"]
    json.dumps(report)  # JSON-safe


def test_written_files_are_bit_identical_across_runs(config: Config, prepared: PreparedData, tmp_path: Path) -> None:
    write_prepared(prepared, tmp_path / "a")
    write_prepared(prepare_dataset(config, REPO), tmp_path / "b")
    assert sorted(path.name for path in (tmp_path / "a").iterdir()) == list(FILES)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_a_different_seed_gives_different_splits(prepared: PreparedData) -> None:
    other = prepare_dataset(resolve({"seed": 4, "data": {"val_fraction": 0.2, "test_fraction": 0.1}}), REPO)
    assert not other.splits["val"].index.equals(prepared.splits["val"].index)


def test_read_prepared_returns_what_was_written(prepared: PreparedData, tmp_path: Path) -> None:
    write_prepared(prepared, tmp_path)
    splits, info = read_prepared(tmp_path)
    assert info == prepared.info
    for name, split in prepared.splits.items():
        pd.testing.assert_frame_equal(splits[name], split)
    assert json.loads((tmp_path / "report.json").read_text()) == prepared.report


def test_a_failed_write_leaves_the_folder_exactly_as_before(prepared: PreparedData, tmp_path: Path) -> None:
    folder = tmp_path / "prepared"
    write_prepared(prepared, folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    broken = PreparedData(prepared.splits, prepared.info, {"not json": object()})
    with pytest.raises(TypeError):
        write_prepared(broken, folder)  # fails after the parquet files are staged
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert [path.name for path in tmp_path.iterdir()] == ["prepared"]  # no staging folder left


def test_reading_before_prepare_says_to_run_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"info.json: not found; run the prepare stage first"):
        read_prepared(tmp_path / "prepared")
    with pytest.raises(DataError, match=r"train.parquet: not found; run the prepare stage first"):
        read_split(tmp_path, "train")


def test_corrupt_prepared_files_are_data_errors(prepared: PreparedData, tmp_path: Path) -> None:
    write_prepared(prepared, tmp_path)
    (tmp_path / "val.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"val.parquet: not a readable parquet file"):
        read_prepared(tmp_path)
    (tmp_path / "info.json").write_text("{")
    with pytest.raises(DataError, match=r"info.json: unreadable"):
        read_info(tmp_path)
    (tmp_path / "info.json").write_text('{"task": "classification"}')
    with pytest.raises(DataError, match=r"info.json: dataset info: missing key 'feature_columns'"):
        read_info(tmp_path)


def test_to_arrays_gives_float32_features_and_int64_labels(prepared: PreparedData) -> None:
    train = prepared.splits["train"]
    features, labels = to_arrays(train, prepared.info)
    assert features.dtype == np.float32 and features.shape == (len(train), 64)
    assert labels.dtype == np.int64 and labels.shape == (len(train),)
    np.testing.assert_array_equal(labels, train["label"].to_numpy())  # digits: class index = digit
    np.testing.assert_array_equal(features, train.iloc[:, :64].to_numpy().astype(np.float32))


def test_to_arrays_maps_labels_to_class_positions() -> None:
    info = DatasetInfo("classification", ("x",), "y", (7, 3))
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [3, 7, 3]})
    _, labels = to_arrays(frame, info)
    np.testing.assert_array_equal(labels, [1, 0, 1])
    with pytest.raises(DataError, match=r"column y: label\(s\) \[5\] not in the classes \[7, 3\]"):
        to_arrays(pd.DataFrame({"x": [1.0], "y": [5]}), info)


def test_to_arrays_for_regression_gives_float32_targets() -> None:
    info = DatasetInfo("regression", ("x",), "y")
    features, targets = to_arrays(pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]}), info)
    assert features.dtype == np.float32 and targets.dtype == np.float32
    np.testing.assert_array_equal(targets, [0.5, 1.5])
    with pytest.raises(DataError, match=r"lacks column\(s\) y"):
        to_arrays(pd.DataFrame({"x": [1.0]}), info)


def test_csv_regression_prepares_with_a_random_split(tmp_path: Path) -> None:
    values = np.arange(40, dtype=np.float64)
    pd.DataFrame({"x": values, "y": values * 0.5}).to_csv(tmp_path / "t.csv", index=False)
    config = resolve({"dataset": {"name": "csv", "path": "t.csv", "label_column": "y", "task": "regression"}})
    prepared = prepare_dataset(config, tmp_path)
    assert prepared.info.task == "regression"
    assert prepared.report["rows"] == {"total": 40, "train": 28, "val": 6, "test": 6}
    assert "class_counts" not in prepared.report
    assert sorted(np.concatenate([s.index.to_numpy() for s in prepared.splits.values()]).tolist()) == list(range(40))


def test_class_names_become_their_index_in_the_classes() -> None:
    info = DatasetInfo("classification", ("x",), "y", ("setosa", "versicolor", "virginica"))
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["virginica", "setosa", "versicolor"]})
    _, labels = to_arrays(frame, info)
    assert labels.dtype == np.int64 and labels.tolist() == [2, 0, 1]
    with pytest.raises(DataError, match=r"label\(s\) \['eel'\] not in the classes"):
        to_arrays(frame.assign(y=["eel", "setosa", "setosa"]), info)


def test_a_large_csv_is_written_a_slice_at_a_time_as_the_values_it_stands_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Held as int8 and validated and written in slices: the files hold the float64 features and
    # int64 labels of the whole text read at once, and the report counts as the splits do.
    monkeypatch.setattr(validate_module, "CHUNK_ROWS", 3000)
    monkeypatch.setattr(prepare_module, "WRITE_ROWS", 2000)
    digits = gzip.decompress((REPO / "data" / "raw" / "digits.csv.gz").read_bytes()).decode()
    text = ",".join([*(f"p{index}" for index in range(64)), "label"]) + "\n" + digits * 4
    (tmp_path / "table.csv").write_text(text)
    config = resolve({"dataset": {"name": "csv", "path": "table.csv", "label_column": "label"}})
    prepared = prepare_dataset(config, tmp_path)
    write_prepared(prepared, tmp_path / "prepared")
    whole = pd.read_csv(io.StringIO(text)).rename_axis("row")
    whole = whole.astype({name: "float64" for name in whole.columns if name != "label"})
    for name in SPLITS:
        split = read_split(tmp_path / "prepared", name)
        rows = split.index.to_numpy()
        pd.testing.assert_frame_equal(split, whole.iloc[rows], check_exact=True)
        counts = split["label"].value_counts()
        assert prepared.report["class_counts"][name] == {str(c): int(counts.get(c, 0)) for c in range(10)}
        assert prepared.report["rows"][name] == len(split) == len(prepared.splits[name])
    train = pq.ParquetFile(tmp_path / "prepared" / "train.parquet")
    assert train.num_row_groups == 3  # over 4000 rows, 2000 a row group
    assert sorted(np.concatenate([read_split(tmp_path / "prepared", n).index for n in SPLITS])) == list(range(7188))
