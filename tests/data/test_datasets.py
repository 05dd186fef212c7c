"""Registered datasets: digits, a user's csv (classification and regression) and parquet."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainflow import registry
from trainflow.config import resolve
from trainflow.data.datasets import CsvConfig, CsvDataset, Dataset, DatasetInfo, DigitsConfig, ParquetConfig
from trainflow.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
CO2 = REPO / "data" / "raw" / "co2_weekly_maunaloa.csv"  # the embedded copy, with its provenance


def build(section: dict[str, object]) -> Dataset:
    """The dataset a params.yaml ``dataset:`` section selects, as the pipeline builds it."""
    return registry.datasets.build(resolve({"dataset": section}).dataset)


def test_digits_loads_the_embedded_file() -> None:
    dataset = build({"name": "digits"})
    assert isinstance(dataset.config, DigitsConfig)
    frame = dataset.load(REPO)
    assert frame.shape == (1797, 65)
    assert list(frame.columns) == [*(f"pixel_{i}" for i in range(64)), "label"]
    assert (frame.dtypes == np.int64).all()
    assert frame.iloc[:, :64].to_numpy().min() == 0 and frame.iloc[:, :64].to_numpy().max() == 16
    assert sorted(frame["label"].unique().tolist()) == list(range(10))
    info = dataset.info(frame)
    assert info.task == "classification"
    assert info.classes == tuple(range(10))
    assert info.image_shape == (1, 8, 8)
    assert (info.num_features, info.num_outputs) == (64, 10)


def test_dataset_info_round_trips_through_json_safe_data() -> None:
    info = DatasetInfo("classification", ("a", "b"), "y", (3, 7), (1, 2, 1))
    data = info.to_dict()
    assert data == {
        "task": "classification",
        "feature_columns": ["a", "b"],
        "label_column": "y",
        "classes": [3, 7],
        "image_shape": [1, 2, 1],
    }
    assert DatasetInfo.from_dict(data) == info
    regression = DatasetInfo("regression", ("a",), "y")
    assert DatasetInfo.from_dict(regression.to_dict()) == regression
    assert regression.num_outputs == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "ranking"}, "task must be one of"),
        ({"feature_columns": "a"}, "feature_columns must be a list of strings"),
        ({"classes": [1.5]}, "classes must be a list of integers"),
        ({"label_column": None}, "label_column must be a string"),
    ],
)
def test_malformed_dataset_info_is_a_data_error(change: dict[str, object], message: str) -> None:
    data = {**DatasetInfo("classification", ("a",), "y", (0, 1)).to_dict(), **change}
    with pytest.raises(DataError, match=message):
        DatasetInfo.from_dict(data)
    with pytest.raises(DataError, match="missing key 'task'"):
        DatasetInfo.from_dict({})


def test_csv_classification_infers_features_and_classes(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x1,label,x2\n0.5,3,1\n1.5,7,2\n2.5,3,3\n")
    dataset = build({"name": "csv", "path": "t.csv"})
    frame = dataset.load(tmp_path)
    assert list(frame.columns) == ["x1", "x2", "label"]
    assert frame["label"].dtype == np.int64 and frame["x1"].dtype == np.float64
    info = dataset.info(frame)
    assert info == DatasetInfo("classification", ("x1", "x2"), "label", (3, 7), None)


def test_csv_listed_features_drop_other_columns(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id,x1,note,y\n1,0.5,a,0\n2,1.5,b,1\n")
    dataset = build({"name": "csv", "path": "t.csv", "label_column": "y", "feature_columns": ["x1"]})
    frame = dataset.load(tmp_path)
    assert list(frame.columns) == ["x1", "y"]
    assert dataset.info(frame).feature_columns == ("x1",)


def test_csv_listed_classes_are_kept_in_order(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x,label\n1,0\n2,0\n")
    dataset = build({"name": "csv", "path": "t.csv", "classes": [0, 1]})
    assert dataset.info(dataset.load(tmp_path)).classes == (0, 1)


def test_csv_classification_needs_two_classes(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x,label\n1,4\n2,4\n")
    dataset = build({"name": "csv", "path": "t.csv"})
    with pytest.raises(DataError, match=r"t.csv: column label: only one class \(4\)"):
        dataset.info(dataset.load(tmp_path))


def test_csv_with_only_the_label_column_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("label\n1\n2\n")
    with pytest.raises(DataError, match=r"t\.csv: no feature columns"):
        build({"name": "csv", "path": "t.csv"}).load(tmp_path)


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


def test_co2_excerpt_missing_values_are_a_data_error_naming_the_column(tmp_path: Path) -> None:
    (tmp_path / "co2.csv").write_text(CO2_EXCERPT)
    dataset = build({"name": "csv", "path": "co2.csv", "label_column": "co2", "task": "regression"})
    with pytest.raises(DataError) as caught:
        dataset.load(tmp_path)
    assert str(caught.value).splitlines() == [
        "co2.csv: 1 check(s) failed",
        "  co2: not_nullable (missing value) failed for 6 row(s): "
        "line 8 (nan), line 11 (nan), line 12 (nan), line 13 (nan), line 14 (nan), ...",
    ]


def test_co2_regression_reports_its_missing_values(tmp_path: Path) -> None:
    shutil.copy(CO2, tmp_path / "co2.csv")
    dataset = build({"name": "csv", "path": "co2.csv", "label_column": "co2", "task": "regression"})
    with pytest.raises(DataError) as caught:
        dataset.load(tmp_path)
    lines = str(caught.value).splitlines()
    assert lines[0] == "co2.csv: 1 check(s) failed"
    # The first missing week is the 7th data row: line 8 of the file, after the header.
    assert lines[1].startswith("  co2: not_nullable (missing value) failed for 59 row(s): line 8 (nan)")


def test_co2_regression_without_gaps_loads(tmp_path: Path) -> None:
    pd.read_csv(CO2).dropna().to_csv(tmp_path / "co2.csv", index=False)
    dataset = build({"name": "csv", "path": "co2.csv", "label_column": "co2", "task": "regression"})
    frame = dataset.load(tmp_path)
    assert len(frame) == 2284 - 59
    assert frame["co2"].dtype == np.float64
    assert dataset.info(frame) == DatasetInfo("regression", ("date",), "co2", (), None)


def test_parquet_dataset_loads_and_validates(tmp_path: Path) -> None:
    pd.DataFrame({"a": [0.1, 0.2, 0.3], "label": [1, 0, 1]}).to_parquet(tmp_path / "t.parquet")
    dataset = build({"name": "parquet", "path": "t.parquet"})
    assert isinstance(dataset.config, ParquetConfig)
    frame = dataset.load(tmp_path)
    assert frame["label"].tolist() == [1, 0, 1]
    pd.DataFrame({"a": [0.1, np.inf, 0.3], "label": [1, 0, 1]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError) as caught:
        dataset.load(tmp_path)
    assert str(caught.value).splitlines()[1] == "  a: finite failed for 1 row(s): row 1 (inf)"


def test_a_corrupt_parquet_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "t.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"^t.parquet: not a readable parquet file"):
        build({"name": "parquet", "path": "t.parquet"}).load(tmp_path)


def test_config_paths_are_relative_to_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.csv").write_text("x,label\n1,0\n2,1\n")
    dataset = CsvDataset(CsvConfig(name="csv", path="sub/t.csv"))
    assert len(dataset.load(tmp_path)) == 2


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"name": "csv"}, "dataset.path"),
        ({"name": "csv", "path": "t.csv", "label_column": "a", "feature_columns": ["a"]}, "must not be one of"),
        ({"name": "csv", "path": "t.csv", "task": "regression", "classes": [0, 1]}, "only to task: classification"),
        ({"name": "csv", "path": "t.csv", "classes": [0, 0]}, "lists 0 more than once"),
        ({"name": "csv", "path": "t.csv", "task": "ranking"}, "dataset.task"),
        ({"name": "digits", "colour": True}, "dataset.colour"),
        ({"name": "digitz"}, "did you mean 'digits'"),
    ],
)
def test_bad_dataset_config_is_a_config_error(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve({"dataset": section})


def test_csv_class_names_are_sorted_into_the_class_encoding(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x,species\n1,virginica\n2,setosa\n3,versicolor\n4,setosa\n")
    dataset = build({"name": "csv", "path": "t.csv", "label_column": "species"})
    info = dataset.info(dataset.load(tmp_path))
    assert info.classes == ("setosa", "versicolor", "virginica")
    assert DatasetInfo.from_dict(info.to_dict()) == info


def test_csv_listed_class_names_set_the_order(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("x,label\n1,low\n2,high\n")
    dataset = build({"name": "csv", "path": "t.csv", "classes": ["low", "mid", "high"]})
    assert dataset.info(dataset.load(tmp_path)).classes == ("low", "mid", "high")


def test_class_numbers_and_names_do_not_mix() -> None:
    with pytest.raises(ConfigError, match=r"dataset: .*classes must be all whole numbers or all non-empty names"):
        resolve({"dataset": {"name": "csv", "path": "t.csv", "classes": [1, "a"]}})
    with pytest.raises(DataError, match="classes must be all whole numbers or all non-empty names"):
        DatasetInfo.from_dict(
            {"task": "classification", "feature_columns": ["a"], "label_column": "y", "classes": [1, "a"]}
        )
