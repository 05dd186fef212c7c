"""The whole pipeline under DVC in a temporary git repo: repro, no-op, experiments, bit-identity."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.fixtures.project import FAST_PARAMS, make_project, readme_command, run
from trainflow.results.exports import EXPORT_FILES
from trainflow.summary import EXP_SHOW

pytestmark = pytest.mark.e2e

STAGES = ("prepare", "fit_encoder", "train", "evaluate", "package")
DETERMINISTIC_OUTPUTS = (
    "data/prepared/train.parquet",
    "data/encoders/encoder.json",
    "models/best.pt",
    "models/last.pt",
    "metrics/train.json",
    "metrics/eval.json",
    "plots/history.csv",
    "results/manifest.json",
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ran_stages(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One project, reproduced once (with the import log on) and shared by the tests below."""
    project = make_project(tmp_path_factory.mktemp("e2e") / "project", FAST_PARAMS)
    log = project.parent / "imports.jsonl"
    result = run(["dvc", "repro"], project, TRAINFLOW_IMPORT_LOG=str(log))
    digests = {name: digest(project / name) for name in DETERMINISTIC_OUTPUTS}
    (project.parent / "digests.json").write_text(json.dumps(digests))
    return project, result.stdout + result.stderr


def test_repro_runs_every_stage_and_writes_every_output(pipeline: tuple[Path, str]) -> None:
    project, output = pipeline
    assert ran_stages(output) == set(STAGES)
    for name in DETERMINISTIC_OUTPUTS:
        assert (project / name).is_file(), name
    metrics = json.loads((project / "metrics" / "eval.json").read_text())
    assert set(metrics) >= {"val", "test"}
    assert metrics["test"]["accuracy"] >= 0.9  # three epochs on digits
    manifest = json.loads((project / "results" / "manifest.json").read_text())
    assert manifest["files"]


def test_second_repro_is_a_no_op(pipeline: tuple[Path, str]) -> None:
    project, _ = pipeline
    result = run(["dvc", "repro"], project)
    assert ran_stages(result.stdout) == set()
    assert "up to date" in result.stdout


def source_files(project: Path, dep: str) -> set[str]:
    """The Python files a dvc.yaml dep covers (a file, or every file under a folder), but
    ``__init__.py``: a package's (empty) init is loaded with any of its modules."""
    path = project / dep
    files = {dep} if path.is_file() else {file.relative_to(project).as_posix() for file in path.rglob("*.py")}
    return {file for file in files if not file.endswith("__init__.py")}


def imported_files(log: Path) -> dict[str, set[str]]:
    """The source files each command of an import log loaded, by command (but ``__init__.py``)."""
    loaded: dict[str, set[str]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        files = {file for file in entry["files"] if not file.endswith("__init__.py")}
        loaded.setdefault(entry["command"], set()).update(files)
    return loaded


def test_dvc_yaml_lists_exactly_the_source_files_a_stage_imports(
    pipeline: tuple[Path, str], co2_pipeline: tuple[Path, str]
) -> None:
    """Both ways, over both tasks: a stage imports no file its deps miss in a digits run or a
    co2 run (DVC would not re-run it when that file changes), and lists none that neither run
    imports (DVC would re-run it for nothing)."""
    project, _ = pipeline
    co2_project, _ = co2_pipeline
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    commands = {spec["cmd"].split()[1]: name for name, spec in stages.items()}
    runs = {
        "digits": imported_files(project.parent / "imports.jsonl"),
        "co2": imported_files(co2_project.parent / "imports.jsonl"),
    }
    for task, loaded in runs.items():
        assert set(loaded) == set(commands), f"the {task} run logged {sorted(loaded)}"
    for command, stage in commands.items():
        sources = [dep for dep in stages[stage]["deps"] if dep.startswith("src/")]
        listed = set().union(*(source_files(project, dep) for dep in sources))
        for task, loaded in runs.items():
            missing = sorted(loaded[command] - listed)
            assert not missing, f"stage {stage} imports files dvc.yaml does not list ({task} run): {missing}"
        union = runs["digits"][command] | runs["co2"][command]
        assert not listed - union, f"stage {stage} lists files neither task imports: {sorted(listed - union)}"
        assert all(source_files(project, dep) for dep in sources), f"stage {stage} lists a dep with no source file"


def test_prepare_depends_on_the_embedded_series_and_the_named_data_file(pipeline: tuple[Path, str]) -> None:
    """The co2 set has no dataset.path: its fixed file is a dep beside the file params.yaml names."""
    project, _ = pipeline
    deps = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["prepare"]["deps"]
    assert deps[:2] == ["${dataset.path}", "data/raw/co2_weekly_maunaloa.csv"]
    assert (project / "data" / "raw" / "co2_weekly_maunaloa.csv").is_file()


@pytest.mark.parametrize(
    ("source", "stale"),
    [
        ("src/trainflow/training/callbacks.py", {"train"}),
        ("src/trainflow/encoders.py", set(STAGES)),  # prepare of a series names the encoder file
        ("src/trainflow/forecasting/training_data.py", {"train"}),
        ("src/trainflow/forecasting/baselines.py", {"evaluate", "package"}),
        ("src/trainflow/components/models.py", set(STAGES)),
    ],
)
def test_editing_a_source_file_makes_stale_only_the_stages_that_run_it(
    pipeline: tuple[Path, str], source: str, stale: set[str]
) -> None:
    """A docstring edit in a callback must not re-run prepare; a config class is read by all; a
    forecasting module re-runs only the stages that import it (in a digits project too)."""
    project, _ = pipeline
    path = project / source
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    finally:
        path.write_text(original)
    changed = {stage for stage, changes in status.items() if any("changed deps" in change for change in changes)}
    assert changed == stale


FORECAST_PLOTS = {"Forecast (test)": "plots/eval/forecast_test.csv", "MAE by lead (test)": "plots/eval/mae_by_lead.csv"}


def test_dvc_plots_show_draws_only_the_declared_plots_with_axis_titles(pipeline: tuple[Path, str]) -> None:
    project, _ = pipeline
    shown = json.loads(run(["dvc", "plots", "show", "--json"], project).stdout)
    # a classifier has no predicted-vs-actual file and no forecast: DVC reports those plots as
    # missing and draws none of them
    missing = {"plots/eval/predictions_test.csv", *FORECAST_PLOTS}
    errors = {error["name"]: error["type"] for error in shown.get("errors", [])}
    assert errors == dict.fromkeys(missing, "FileNotFoundError")
    assert all(not shown["data"][name] for name in missing)
    assert set(shown["data"]) - missing == {
        "Learning curves",
        "Validation accuracy",
        "plots/eval/confusion_val.csv",
        "plots/eval/confusion_test.csv",
    }, "no stage plot drawn against 'step'"
    text = json.dumps(shown["data"])
    assert '"title": "step"' not in text and '"title": "epoch"' in text and '"title": "predicted class"' in text


def test_a_train_param_reruns_train_and_later_stages_only(pipeline: tuple[Path, str]) -> None:
    project, _ = pipeline
    result = run(["dvc", "exp", "run", "-S", "train.optimizer.lr=0.003"], project)
    assert ran_stages(result.stdout) == {"train", "evaluate", "package"}
    shown = json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
    assert "0.003" in json.dumps(shown)
    table = run(["dvc", "exp", "show", "--no-pager", "--md"], project).stdout
    assert "train.optimizer.lr" in table
    # The README's (and the closing summary's) selection: the changed param beside the test metrics.
    narrowed = run([*readme_command(EXP_SHOW), "--no-pager", "--csv"], project).stdout.splitlines()[0].split(",")
    assert {"test.accuracy", "train.optimizer.lr"} <= set(narrowed)
    assert not [c for c in narrowed if c.startswith(("best.", "val.", "last.")) or "/" in c], narrowed


def test_two_runs_from_scratch_are_bit_identical(pipeline: tuple[Path, str], dvc_project: Callable[..., Path]) -> None:
    first, _ = pipeline
    first_digests = json.loads((first.parent / "digests.json").read_text())
    second = dvc_project(name="second")
    run(["dvc", "repro"], second)
    for name in DETERMINISTIC_OUTPUTS:
        assert digest(second / name) == first_digests[name], name


def test_package_export_reruns_only_the_package_and_ships_what_trainflow_export_writes(
    pipeline: tuple[Path, str],
) -> None:
    """``package.export`` is a shipping setting: the same experiment id, only the package re-runs,
    and the package holds the bytes `trainflow export` writes from it."""
    project, _ = pipeline
    before = yaml.safe_load((project / "results" / "config.yaml").read_text())["experiment_id"]
    result = run(["dvc", "exp", "run", "-S", "package.export=[onnx,torchscript]"], project)
    assert ran_stages(result.stdout) == {"package"}
    results = project / "results"
    assert yaml.safe_load((results / "config.yaml").read_text())["experiment_id"] == before
    assert {"model.onnx", "model.torchscript.pt"} <= set(json.loads((results / "manifest.json").read_text())["files"])
    assert "| exported | model.onnx, model.torchscript.pt in this package" in (results / "model_card.md").read_text()
    for fmt, name in EXPORT_FILES.items():
        output = project.parent / name
        run(["trainflow", "export", "--format", fmt, "--model", "results", "--output", str(output)], project)
        assert output.read_bytes() == (results / name).read_bytes(), name
