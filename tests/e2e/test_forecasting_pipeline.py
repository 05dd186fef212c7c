"""The forecasting task through the whole pipeline under DVC, in temporary git repos.

Two ways in: the documented one command, ``dvc exp run -S dataset.name=co2``, in the default
(digits) project after its results were committed, and ``dvc repro`` of a project whose
params.yaml selects co2. Checked: every stage runs, eval.json holds every score of the model
and the baselines, DVC lists them, a second repro does nothing, the same config gives the same
bits whichever way it ran, and what a workspace experiment does to the digits results.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.project import CO2_PARAMS, EXPORTS, FAST_PARAMS, fast_params, make_project, run

pytestmark = pytest.mark.e2e

STAGES = ("prepare", "fit_encoder", "train", "evaluate", "package")
SPANS = ("val", "test")
HORIZONS = ("h4", "h13", "h52")
FORECASTERS = ("model", "naive", "seasonal_naive", "seasonal_naive_drift", "holt_winters")
SCORES = ("mae", "rmse", "smape", "mase")
METRIC_KEYS = [
    f"{span}.{horizon}.{name}.{score}"
    for span in SPANS
    for horizon in HORIZONS
    for name in FORECASTERS
    for score in SCORES
]
SAME_BITS = ("models/best.pt", "metrics/eval.json")
DIGITS_OUTPUTS = (
    "data/prepared/train.parquet",
    "data/encoders/encoder.json",
    "models/best.pt",
    "models/last.pt",
    "metrics/train.json",
    "metrics/eval.json",
    "plots/history.csv",
    "plots/eval/confusion_test.csv",
    "results/manifest.json",
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def digests(project: Path, names: tuple[str, ...]) -> dict[str, str]:
    return {name: digest(project / name) for name in names}


def ran_stages(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


def assert_forecast_metrics(metrics: dict[str, Any]) -> None:
    """``{"val"|"test": {"h4"|"h13"|"h52": {model and each baseline: {mae, rmse, smape, mase}}}}``,
    every score a finite number."""
    assert set(metrics) == set(SPANS)
    for span in SPANS:
        assert set(metrics[span]) == set(HORIZONS), span
        for horizon in HORIZONS:
            assert set(metrics[span][horizon]) == set(FORECASTERS), (span, horizon)
            for name in FORECASTERS:
                scores = metrics[span][horizon][name]
                assert set(scores) == set(SCORES), (span, horizon, name)
                assert all(isinstance(value, float) and value >= 0 for value in scores.values()), scores


def dataset_name(params_text: str) -> str:
    return yaml.safe_load(params_text)["dataset"]["name"]


@dataclass(frozen=True)
class ExpRun:
    """The default project after ``dvc exp run -S dataset.name=co2``."""

    project: Path
    output: str
    head: str  # the commit holding the digits results, on which the experiment ran
    digits: dict[str, str]  # the digests of the digits outputs at that commit


@pytest.fixture(scope="module")
def exp_run(tmp_path_factory: pytest.TempPathFactory) -> ExpRun:
    """The default params.yaml (digits; 3 epochs), reproduced and committed as a user would,
    then the one documented command."""
    project = make_project(tmp_path_factory.mktemp("forecast-exp") / "project", FAST_PARAMS)
    run(["dvc", "repro"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "digits results"], project)
    head = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    digits = digests(project, DIGITS_OUTPUTS)
    result = run(["dvc", "exp", "run", "-S", "dataset.name=co2"], project)
    return ExpRun(project, result.stdout + result.stderr, head, digits)


def test_exp_run_runs_every_stage_and_scores_the_model_against_every_baseline(exp_run: ExpRun) -> None:
    assert ran_stages(exp_run.output) == set(STAGES)
    assert_forecast_metrics(json.loads((exp_run.project / "metrics" / "eval.json").read_text()))
    assert (exp_run.project / "results" / "manifest.json").is_file()


def test_repro_of_a_co2_project_runs_every_stage_and_writes_every_output(co2_pipeline: tuple[Path, str]) -> None:
    project, output = co2_pipeline
    assert ran_stages(output) == set(STAGES)
    assert_forecast_metrics(json.loads((project / "metrics" / "eval.json").read_text()))
    for name in ("data/prepared/series.parquet", "data/encoders/encoder.json", "models/best.pt", "metrics/train.json"):
        assert (project / name).is_file(), name
    assert sorted(path.name for path in (project / "plots" / "eval").iterdir()) == [
        "forecast_test.csv",
        "mae_by_lead.csv",
    ]
    manifest = json.loads((project / "results" / "manifest.json").read_text())
    assert manifest["files"]


def test_dvc_metrics_show_lists_every_score(co2_pipeline: tuple[Path, str]) -> None:
    project, _ = co2_pipeline
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], project).stdout)
    (workspace,) = shown.values()
    assert_forecast_metrics(workspace["data"]["metrics/eval.json"]["data"])
    table = run(["dvc", "metrics", "show", "--md"], project).stdout
    header = table.splitlines()[0]
    assert [key for key in METRIC_KEYS if f" {key} " not in header] == []


def test_dvc_exp_show_lists_the_experiment_with_every_score(exp_run: ExpRun) -> None:
    shown = json.loads(run(["dvc", "exp", "show", "--json"], exp_run.project).stdout)
    (baseline,) = [entry for entry in shown if entry["rev"] == exp_run.head]
    (experiment,) = baseline["experiments"]
    (data,) = [rev["data"] for rev in experiment["revs"]]
    assert data["params"]["params.yaml"]["data"]["dataset"]["name"] == "co2"
    assert_forecast_metrics(data["metrics"]["metrics/eval.json"]["data"])
    table = run(["dvc", "exp", "show", "--no-pager", "--md"], exp_run.project).stdout
    header = table.splitlines()[0]
    assert [key for key in METRIC_KEYS if f" {key} " not in header] == []


def test_exp_run_applies_its_results_to_the_workspace_and_keeps_the_commit(exp_run: ExpRun) -> None:
    """DVC 3 runs ``dvc exp run`` (without --temp or --queue) in the workspace and leaves it at
    the experiment's results; the commit, which still holds the digits params and dvc.lock, is
    untouched, and the experiment is kept as a git ref of its own."""
    project = exp_run.project
    assert "Experiment results have been applied to your workspace" in exp_run.output
    assert dataset_name((project / "params.yaml").read_text()) == "co2"
    assert run(["git", "rev-parse", "HEAD"], project).stdout.strip() == exp_run.head
    assert dataset_name(run(["git", "show", "HEAD:params.yaml"], project).stdout) == "digits"
    assert run(["git", "for-each-ref", "refs/exps"], project).stdout.strip()
    for name in ("models/best.pt", "metrics/eval.json", "data/encoders/encoder.json"):
        assert digest(project / name) != exp_run.digits[name], f"{name} is still the digits one"
    assert not (project / "plots" / "eval" / "confusion_test.csv").exists()


def test_the_digits_results_come_back_bit_identical_from_git_and_the_cache(exp_run: ExpRun, tmp_path: Path) -> None:
    """``git checkout`` of the committed files (params, dvc.lock, the uncached metrics and plots)
    and ``dvc checkout`` of the cached outputs give back the digits results to the bit. Done in a
    copy, so the other tests see the workspace the experiment left."""
    project = tmp_path / "project"
    shutil.copytree(exp_run.project, project, symlinks=True)
    run(["git", "checkout", "HEAD", "--", "params.yaml", "dvc.lock", "metrics", "plots"], project)
    run(["git", "clean", "-fdq", "plots"], project)  # the forecast CSVs the digits run never wrote
    run(["dvc", "checkout"], project)
    assert digests(project, DIGITS_OUTPUTS) == exp_run.digits
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    # left: only the resumable training state (persisted, uncached), which holds co2 checkpoints
    assert status == {"train": [{"changed outs": {"models/checkpoints": "modified"}}]}


def test_second_repro_is_a_no_op(co2_pipeline: tuple[Path, str]) -> None:
    project, _ = co2_pipeline
    result = run(["dvc", "repro"], project)
    assert ran_stages(result.stdout) == set()
    assert "up to date" in result.stdout


def test_two_runs_from_scratch_are_bit_identical(
    co2_pipeline: tuple[Path, str], exp_run: ExpRun, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A second co2 project from scratch gives the same bits, exports included; so does the
    experiment run from the digits project (the same resolved config, reached by ``-S``; the
    exports are shipping settings, outside the experiment)."""
    first, _ = co2_pipeline
    second = make_project(
        tmp_path_factory.mktemp("forecast-second") / "project", fast_params({**CO2_PARAMS, **EXPORTS})
    )
    run(["dvc", "repro"], second)
    exports = ("results/model.onnx", "results/model.torchscript.pt")
    assert digests(second, SAME_BITS + exports) == digests(first, SAME_BITS + exports)
    assert digests(exp_run.project, SAME_BITS) == digests(first, SAME_BITS)


def test_dvc_plots_show_draws_the_forecast_plots_with_axis_titles(co2_pipeline: tuple[Path, str]) -> None:
    """The forecast and the MAE by lead are drawn (linear, against year and lead); the table
    plots are reported missing and drawn empty, and the learning curves are drawn as for digits."""
    project, _ = co2_pipeline
    shown = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)
    errors = {error["name"]: error["type"] for error in shown.get("errors", [])}
    assert errors == {
        "Validation accuracy": "FieldNotFoundError",  # a forecaster has no accuracy
        "plots/eval/confusion_val.csv": "FileNotFoundError",
        "plots/eval/confusion_test.csv": "FileNotFoundError",
        "plots/eval/predictions_test.csv": "FileNotFoundError",
    }
    assert all(not shown["data"][name] for name in errors)
    drawn = {name for name, plots in shown["data"].items() if plots}
    assert drawn == {"Learning curves", "Forecast (test)", "MAE by lead (test)"}
    expected = {
        "Forecast (test)": ("year", "value", {"actual", "h4", "h13", "h52"}),
        "MAE by lead (test)": ("lead (steps ahead)", "MAE", set(FORECASTERS)),
    }
    for name, (x_title, y_title, fields) in expected.items():
        (plot,) = shown["data"][name]
        content = plot["content"]
        assert content["encoding"]["x"]["title"] == x_title, name
        text = json.dumps(content["layer"])
        assert f'"title": "{y_title}"' in text and '"title": "step"' not in text, name
        assert {row["field"] for row in content["data"]["values"]} == fields, name
    forecast_rows = (project / "plots" / "eval" / "forecast_test.csv").read_text().splitlines()
    assert forecast_rows[0] == "year,date,actual,h4,h13,h52"
    assert len(forecast_rows) - 1 == 208  # the test span, every week
