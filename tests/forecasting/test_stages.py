"""The forecasting experiment through the pipeline's stages (prepare, fit-encoder, train, evaluate).

What the stages write for co2 and for a user's series, that nothing of validation or test
reaches the encoder fit or training, that a missing target drops out of the scores, and that
bad input stops a stage with one ``error:`` line while leaving its outputs as they were.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.forecasting.stage_helpers import (
    CO2_AS_TIMESERIES,
    SERIES_FILE,
    cli,
    co2_frame,
    daily_series,
    error_line,
    history,
    make_project,
    outputs,
    run_stages,
    snapshot,
    write_series,
)
from trainflow.forecasting.metrics import forecast_metrics, seasonal_naive_scale

ENCODER = Path("data/encoders/encoder.json")
BASELINES = {"naive", "seasonal_naive", "seasonal_naive_drift", "holt_winters"}
METRICS = {"mae", "rmse", "smape", "mase"}
TRAIN_END, VAL_END, STEPS = 1868, 2076, 2284  # co2 under the default protocol (test = val = 208 weeks)
# the co2 copy as a user's series, by command-line overrides (the project's params.yaml says co2)
TIMESERIES = [
    "dataset.name=timeseries",
    f"dataset.path={SERIES_FILE}",
    "dataset.value_column=co2",
    "dataset.date_format=%Y%m%d",
    "dataset.value_range=[250,450]",
]

# a user's daily series (stage_helpers.daily_series): 240 days, a weekly season, 4-week spans
DAILY = {
    "name": "timeseries",
    "path": SERIES_FILE,
    "date_column": "day",
    "value_column": "sales",
    "date_format": "%Y-%m-%d",
    "frequency": "D",
    "season_length": 7,
    "test": 28,
    "val": 28,
    "context": 28,
    "horizons": [3, 7],
}


@pytest.fixture(scope="module")
def co2_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A co2 project after prepare, fit-encoder, train (2 epochs) and evaluate."""
    root = make_project(tmp_path_factory.mktemp("co2"))
    run_stages(root, "prepare", "fit-encoder", "train", "evaluate")
    return root


@pytest.fixture(scope="module")
def user_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``timeseries`` project on a copy of the co2 file after all four stages."""
    root = make_project(tmp_path_factory.mktemp("user"), CO2_AS_TIMESERIES, co2_frame())
    run_stages(root, "prepare", "fit-encoder", "train", "evaluate")
    return root


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def assert_eval_layout(eval_json: dict, horizons: list[int]) -> None:
    """val/test -> h<H> -> the model and every baseline -> the four metrics, all finite."""
    assert set(eval_json) == {"val", "test"}
    for span in eval_json.values():
        assert set(span) == {f"h{h}" for h in horizons}
        for entry in span.values():
            assert set(entry) == {"model"} | BASELINES
            for scores in entry.values():
                assert set(scores) == METRICS
                assert all(isinstance(v, float) and math.isfinite(v) for v in scores.values()), scores


# --- what the stages write ---------------------------------------------------------------------


def test_prepare_co2_writes_the_series_and_reports_the_time_split(co2_run: Path) -> None:
    prepared = co2_run / "data" / "prepared"
    assert sorted(p.name for p in prepared.iterdir()) == ["info.json", "report.json", "series.parquet"]
    report = read_json(prepared / "report.json")
    assert report["rows"] == {"total": STEPS, "train": TRAIN_END, "val": VAL_END - TRAIN_END, "test": STEPS - VAL_END}
    assert (report["frequency"], report["season_length"]) == ("W", 52)
    spans = report["spans"]
    assert {name: span["steps"] for name, span in spans.items()} == {"train": 1868, "val": 208, "test": 208}
    assert sum(span["missing"] for span in spans.values()) == report["missing"] == 59
    assert (spans["train"]["first"], spans["train"]["last"]) == ("1958-03-29", "1994-01-08")
    assert (spans["val"]["first"], spans["val"]["last"]) == ("1994-01-15", "1998-01-03")
    assert (spans["test"]["first"], spans["test"]["last"]) == ("1998-01-10", "2001-12-29")
    series = pd.read_parquet(prepared / "series.parquet")
    assert list(series.columns) == ["date", "co2"] and len(series) == STEPS
    assert int(series["co2"].isna().sum()) == 59
    assert read_json(prepared / "info.json")["task"] == "forecasting"


def test_evaluate_co2_scores_the_model_and_every_baseline_at_each_horizon(co2_run: Path) -> None:
    assert_eval_layout(read_json(co2_run / "metrics" / "eval.json"), [4, 13, 52])
    test = pd.read_parquet(co2_run / "evaluation" / "forecasts_test.parquet")
    assert test.groupby("horizon").size().to_dict() == {4: 208, 13: 208, 52: 208}  # origins tile the test span
    assert sorted(p.name for p in (co2_run / "plots" / "eval").iterdir()) == ["forecast_test.csv", "mae_by_lead.csv"]


def test_a_daily_series_runs_through_every_stage(tmp_path: Path) -> None:
    root = make_project(tmp_path, DAILY, daily_series(240))
    run_stages(root, "prepare", "fit-encoder", "train", "evaluate")
    report = read_json(root / "data" / "prepared" / "report.json")
    assert report["rows"] == {"total": 240, "train": 184, "val": 28, "test": 28}
    assert (report["frequency"], report["season_length"], report["missing"]) == ("D", 7, 2)
    assert (report["spans"]["test"]["first"], report["spans"]["test"]["last"]) == ("2021-09-29", "2021-10-26")
    assert list(pd.read_parquet(root / "data" / "prepared" / "series.parquet").columns) == ["date", "sales"]
    assert_eval_layout(read_json(root / "metrics" / "eval.json"), [3, 7])
    test = pd.read_parquet(root / "evaluation" / "forecasts_test.parquet")
    assert test.groupby("horizon").size().to_dict() == {3: 27, 7: 28}  # 9 and 4 origins in 28 days


# --- no leakage ----------------------------------------------------------------------------------


def test_val_and_test_values_reach_neither_the_encoder_nor_training(user_run: Path, tmp_path: Path) -> None:
    """Every val and test value moved: the encoder file is byte-identical and training sees the
    same losses epoch by epoch; only the validation loss (on the val targets) moves."""
    frame = co2_frame()
    frame.loc[TRAIN_END:, "co2"] = frame.loc[TRAIN_END:, "co2"] + 30.0
    changed = make_project(tmp_path, CO2_AS_TIMESERIES, frame)
    run_stages(changed, "prepare", "fit-encoder", "train")
    before = pd.read_parquet(user_run / "data" / "prepared" / "series.parquet")
    after = pd.read_parquet(changed / "data" / "prepared" / "series.parquet")
    assert not before["co2"].iloc[TRAIN_END:].equals(after["co2"].iloc[TRAIN_END:])  # the change arrived
    assert (changed / ENCODER).read_bytes() == (user_run / ENCODER).read_bytes()
    first, second = history(user_run), history(changed)
    assert second["train_loss"].iloc[0] == first["train_loss"].iloc[0]
    assert second["train_loss"].tolist() == first["train_loss"].tolist()
    assert second["val_loss"].tolist() != first["val_loss"].tolist()


def test_a_train_value_changes_the_encoder(user_run: Path, tmp_path: Path) -> None:
    frame = co2_frame()
    frame.loc[100, "co2"] += 1.0
    changed = make_project(tmp_path, CO2_AS_TIMESERIES, frame)
    run_stages(changed, "prepare", "fit-encoder")
    assert (changed / ENCODER).read_bytes() != (user_run / ENCODER).read_bytes()


# --- missing targets -----------------------------------------------------------------------------


def test_a_missing_last_value_drops_out_of_the_test_scores(user_run: Path, tmp_path: Path) -> None:
    """The series' last value blanked (a target of every horizon's last test origin, an input to
    none): the same model and encoder give the same forecasts, val scores are unchanged, and each
    test score is the score of those forecasts over the targets still present."""
    root = tmp_path / "blanked"
    shutil.copytree(user_run, root)
    frame = co2_frame()
    frame.loc[len(frame) - 1, "co2"] = np.nan
    write_series(frame, root / SERIES_FILE)
    run_stages(root, "prepare", "fit-encoder", "evaluate")
    assert (root / ENCODER).read_bytes() == (user_run / ENCODER).read_bytes()
    full = pd.read_parquet(user_run / "evaluation" / "forecasts_test.parquet")
    blanked = pd.read_parquet(root / "evaluation" / "forecasts_test.parquet")
    names = ["model", *sorted(BASELINES)]
    pd.testing.assert_frame_equal(blanked.drop(columns="actual"), full.drop(columns="actual"))
    last = blanked["date"] == blanked["date"].max()
    assert blanked.loc[last, "actual"].isna().all() and last.sum() == 3  # one target per horizon
    assert blanked.loc[~last, "actual"].equals(full.loc[~last, "actual"])
    before, after = read_json(user_run / "metrics" / "eval.json"), read_json(root / "metrics" / "eval.json")
    assert after["val"] == before["val"]
    scale = seasonal_naive_scale(co2_frame()["co2"].to_numpy(float), TRAIN_END, 52)
    for horizon, rows in blanked[~last].groupby("horizon"):
        for name in names:
            by_hand = forecast_metrics(rows["actual"].to_numpy(), rows[name].to_numpy(), scale)
            assert after["test"][f"h{horizon}"][name] == pytest.approx(by_hand, rel=1e-5), (horizon, name)
            assert all(math.isfinite(value) for value in after["test"][f"h{horizon}"][name].values())


# --- bad input: one error line, outputs untouched ------------------------------------------------


@pytest.fixture(scope="module")
def prepared_co2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A co2 project after prepare and fit-encoder (no model yet)."""
    root = make_project(tmp_path_factory.mktemp("prepared"))
    run_stages(root, "prepare", "fit-encoder")
    return root


@pytest.fixture
def project(prepared_co2: Path, tmp_path: Path) -> Path:
    """A fresh copy of :func:`prepared_co2` for one test to spoil."""
    return Path(shutil.copytree(prepared_co2, tmp_path / "project"))


def skipped_week() -> pd.DataFrame:
    return co2_frame().drop(index=100)


def out_of_range() -> pd.DataFrame:
    frame = co2_frame()
    frame.loc[100, "co2"] = 9999.0
    return frame


BAD_PREPARE = {
    "a skipped week": (skipped_week, [], [SERIES_FILE]),
    "a value out of range": (out_of_range, [], [SERIES_FILE, "'co2'", "in_range(250.0, 450.0)"]),
    "a missing value column": (co2_frame, ["dataset.value_column=ppm"], [SERIES_FILE, "'ppm'", "columns: date, co2"]),
    "horizons longer than test": (co2_frame, ["dataset.horizons=[4,300]"], ["dataset.horizons", "300", "208"]),
    "a series too short for the protocol": (
        lambda: co2_frame().head(300),
        [],
        ["300 steps", "dataset.test", "dataset.val"],
    ),
    "a train span not longer than the context": (
        co2_frame,
        ["dataset.context=1868"],
        ["dataset.context", "1868"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_PREPARE))
def test_bad_series_input_stops_prepare_with_one_error_line(project: Path, case: str) -> None:
    make_frame, overrides, expected = BAD_PREPARE[case]
    write_series(make_frame(), project / SERIES_FILE)
    before = outputs(project)
    line = error_line(cli(project, "prepare", *TIMESERIES, *overrides))
    for text in expected:
        assert text in line, line
    assert outputs(project) == before


def test_a_skipped_week_is_reported_by_its_date_column_and_date(project: Path) -> None:
    write_series(skipped_week(), project / SERIES_FILE)
    line = error_line(cli(project, "prepare", *TIMESERIES))
    # week 100 (1960-02-27) is gone: the line names the date column and where the series breaks
    assert "'date'" in line and ("1960-02-20" in line or "1960-02-27" in line), line
    assert "None" not in line and "np." not in line, line


def test_horizons_longer_than_test_in_params_yaml_name_the_key(project: Path) -> None:
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("horizons:\n  - 4\n  - 13\n  - 52", "horizons: [4, 300]", 1))
    before = outputs(project)
    line = error_line(cli(project, "prepare"))
    assert "params.yaml" in line and "dataset.horizons" in line, line
    assert outputs(project) == before


def test_a_horizon_longer_than_the_season_is_evaluated_with_every_baseline(tmp_path: Path) -> None:
    root = make_project(tmp_path, {**DAILY, "horizons": [7, 14]}, daily_series(240))
    for command in ("prepare", "fit-encoder", "train", "evaluate"):
        assert cli(root, command).returncode == 0, command
    scores = json.loads((root / "metrics" / "eval.json").read_text())["test"]["h14"]
    assert set(scores) == {"model", "naive", "seasonal_naive", "seasonal_naive_drift", "holt_winters"}
    assert all(value is not None for entry in scores.values() for value in entry.values())


@pytest.mark.parametrize(
    "content",
    [b'{"kind": "forecast_standard", "mean": "x"}\n', b"not json {\n", b"\xff\xfe\n", b"[1, 2]\n"],
    ids=["mean-not-a-number", "not-json", "not-utf8", "not-an-object"],
)
def test_a_tampered_encoder_stops_train_with_one_error_line(project: Path, content: bytes) -> None:
    (project / ENCODER).write_bytes(content)
    before = outputs(project)
    line = error_line(cli(project, "train"))
    assert str(ENCODER) in line and "fit-encoder" in line, line
    assert outputs(project) == before
    assert not (project / "models" / "best.pt").exists()


@pytest.mark.parametrize(
    ("command", "overrides", "named"),
    [
        ("prepare", ["model.name=mlp"], ["model.name", "linear_window"]),
        ("train", ["model.name=mlp"], ["model.name", "linear_window"]),
        ("prepare", ["dataset.name=digits", "dataset.path=data/raw/digits.csv.gz", "model.name=linear_window"], []),
    ],
    ids=["mlp-on-co2-prepare", "mlp-on-co2-train", "linear-window-on-digits"],
)
def test_a_model_of_the_other_task_is_a_config_error(
    project: Path, command: str, overrides: list[str], named: list[str]
) -> None:
    before = outputs(project)
    result = cli(project, command, *overrides)
    line = error_line(result)
    assert result.returncode == 2
    for text in ["model.name", *named]:
        assert text in line, line
    assert outputs(project) == before


def test_a_tampered_encoder_stops_evaluate_with_one_error_line(co2_run: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(co2_run, tmp_path / "project"))
    (root / ENCODER).write_text('{"kind": "forecast_standard", "mean": "x"}\n')
    before = {**outputs(root), "evaluation": snapshot(root / "evaluation"), "plots": snapshot(root / "plots")}
    line = error_line(cli(root, "evaluate"))
    assert str(ENCODER) in line, line
    assert {**outputs(root), "evaluation": snapshot(root / "evaluation"), "plots": snapshot(root / "plots")} == before
