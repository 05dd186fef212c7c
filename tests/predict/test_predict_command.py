"""`trainflow predict`: files in, predictions out (parquet or CSV), one-line errors, bounded chunks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trainflow
from tests.predict.test_sources import assert_same_predictions, evaluated, packaged_project, test_split
from trainflow.config import Config
from trainflow.errors import DataError
from trainflow.paths import ProjectPaths
from trainflow.score_files import chunk_rows, score_file


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, ProjectPaths]:
    return packaged_project(tmp_path_factory.mktemp("names") / "project", "names")


def trainflow_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trainflow.cli", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_predict_writes_the_evaluate_stage_predictions(
    project: tuple[Config, ProjectPaths], tmp_path: Path, suffix: str
) -> None:
    _, paths = project
    source = tmp_path / f"input{suffix}"
    frame = test_split(paths).drop(columns=["label"])
    frame.to_parquet(source) if suffix == ".parquet" else frame.to_csv(source, index=False)
    output = tmp_path / f"predictions{suffix}"
    result = trainflow_cli("predict", str(source), "--model", str(paths.results), "--output", str(output), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{len(frame)} rows" in result.stdout
    written = pd.read_parquet(output) if suffix == ".parquet" else pd.read_csv(output)
    assert list(written.columns) == ["row", "prediction", "prob_setosa", "prob_versicolor", "prob_virginica"]
    assert list(written["row"]) == list(range(len(frame)))
    if suffix == ".csv":  # CSV holds the float32 probabilities in their shortest exact form
        written = written.astype({name: np.float32 for name in written.columns if name.startswith("prob_")})
    assert_same_predictions(written, paths)


def test_score_checks_the_label_and_prints_the_evaluate_metrics(
    project: tuple[Config, ProjectPaths], tmp_path: Path
) -> None:
    _, paths = project
    source = tmp_path / "labelled.parquet"
    test_split(paths).to_parquet(source)
    output = tmp_path / "scored.parquet"
    args = ("predict", str(source), "--model", str(paths.root), "--output", str(output), "--score")
    result = trainflow_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.split("predict: metrics ", 1)[1].splitlines()[0])
    expected = json.loads((paths.metrics / "eval.json").read_text())["test"]
    assert metrics["accuracy"] == expected["accuracy"]
    assert list(pd.read_parquet(output)["target"]) == list(test_split(paths)["label"])


def test_without_output_the_predictions_go_to_stdout(project: tuple[Config, ProjectPaths], tmp_path: Path) -> None:
    _, paths = project
    source = tmp_path / "input.csv"
    test_split(paths).to_csv(source, index=False)  # the label column may be present: ignored
    result = trainflow_cli("predict", str(source), "--model", str(paths.results), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "row,prediction,prob_setosa,prob_versicolor,prob_virginica"
    assert [line.split(",")[1] for line in lines[1:]] == list(evaluated(paths)["prediction"])
    assert "predict:" in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["f2"]), "missing column(s) f2"),
        (lambda f: f.assign(extra=1.0), "unexpected column(s) extra"),
        (lambda f: f.astype({"f1": object}).assign(f1=lambda g: g["f1"].where(g.index != 3, "oops")), "row 3"),
        (lambda f: f.assign(f0=lambda g: g["f0"].where(g.index != 1, np.inf)), "f0: finite failed"),
    ],
)
def test_a_wrong_schema_input_is_a_one_line_error(
    project: tuple[Config, ProjectPaths], tmp_path: Path, change: object, message: str
) -> None:
    _, paths = project
    source = tmp_path / "bad.csv"
    change(test_split(paths).drop(columns=["label"])).to_csv(source, index=False)  # type: ignore[operator]
    output = tmp_path / "out.parquet"
    result = trainflow_cli("predict", str(source), "--model", str(paths.results), "--output", str(output), cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {source}") and message in result.stderr, result.stderr
    assert not output.exists() and list(tmp_path.glob(".out.parquet*")) == []


def test_unknown_output_suffix_and_missing_label_for_score(
    project: tuple[Config, ProjectPaths], tmp_path: Path
) -> None:
    _, paths = project
    source = tmp_path / "input.csv"
    test_split(paths).drop(columns=["label"]).to_csv(source, index=False)
    result = trainflow_cli("predict", str(source), "--model", str(paths.results), "--output", "p.xlsx", cwd=tmp_path)
    assert result.returncode == 1 and "p.xlsx: unknown output format" in result.stderr
    result = trainflow_cli("predict", str(source), "--model", str(paths.results), "--score", cwd=tmp_path)
    assert result.returncode == 1 and "no label column 'label'; --score needs it" in result.stderr


def test_a_file_without_header_is_read_by_position(project: tuple[Config, ProjectPaths], tmp_path: Path) -> None:
    _, paths = project
    predictor = trainflow.load_model(paths.results)
    for with_label in (False, True):
        frame = test_split(paths) if with_label else test_split(paths).drop(columns=["label"])
        source = tmp_path / f"headerless_{with_label}.csv"
        frame.to_csv(source, index=False, header=False)
        output = tmp_path / f"out_{with_label}.parquet"
        score_file(predictor, source, output)
        assert_same_predictions(pd.read_parquet(output), paths)


def test_small_chunks_give_the_same_bits(project: tuple[Config, ProjectPaths], tmp_path: Path) -> None:
    _, paths = project
    predictor = trainflow.load_model(paths.results)
    source = tmp_path / "input.parquet"
    pd.concat([test_split(paths)] * 5, ignore_index=True).to_parquet(source)
    whole = score_file(predictor, source, tmp_path / "whole.parquet")
    chunked = score_file(predictor, source, tmp_path / "chunked.parquet", rows=predictor.batch_size)
    assert chunked.chunks == -(-whole.rows // predictor.batch_size) and whole.chunks == 1
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "chunked.parquet")
    )
    assert chunk_rows(32, 100) == 128 and chunk_rows(8, 8) == 8


def test_an_empty_input_is_refused(project: tuple[Config, ProjectPaths], tmp_path: Path) -> None:
    _, paths = project
    predictor = trainflow.load_model(paths.results)
    source = tmp_path / "empty.parquet"
    test_split(paths).iloc[:0].to_parquet(source)
    with pytest.raises(DataError, match="no data rows"):
        score_file(predictor, source, tmp_path / "out.parquet")
