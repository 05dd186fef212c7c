"""The train stage: its outputs, bit-identical reruns, resume behaviour, and the default experiment's
accuracy on the embedded digits data."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tests.results.tiny_project import tiny_config, tiny_params, write_raw
from trainflow.config import Config, resolve
from trainflow.errors import ConfigError, TrainflowError
from trainflow.models.snapshot import load_model_snapshot, read_snapshot
from trainflow.paths import ProjectPaths
from trainflow.stages import fit_encoder, prepare, train
from trainflow.training.checkpoint import list_checkpoints, load_checkpoint

torch.set_num_threads(1)

OUTPUTS = ("models/best.pt", "models/last.pt", "models/config.yaml", "metrics/train.json", "plots/history.csv")
ROOT = Path(__file__).resolve().parents[2]


def tiny(**train_options: Any) -> Config:
    params = tiny_params()
    params["train"] = {**params["train"], **train_options}
    return resolve(params)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    """A tiny project with prepared data and a fitted encoder; tests train in copies of it."""
    paths = ProjectPaths(tmp_path_factory.mktemp("prepared") / "project")
    write_raw(paths.root / "data/raw/tiny.csv", "classification")
    config = tiny_config()
    prepare.run(config, paths)
    fit_encoder.run(config, paths)
    return paths


@pytest.fixture
def project(prepared: ProjectPaths, tmp_path: Path) -> ProjectPaths:
    shutil.copytree(prepared.root, tmp_path / "project")
    return ProjectPaths(tmp_path / "project")


def files(paths: ProjectPaths) -> dict[str, tuple[bytes, int]]:
    return {name: ((paths.root / name).read_bytes(), (paths.root / name).stat().st_mtime_ns) for name in OUTPUTS}


def contents(paths: ProjectPaths) -> dict[str, bytes]:
    return {name: (paths.root / name).read_bytes() for name in OUTPUTS}


def test_writes_models_checkpoints_metrics_plots_and_tensorboard(project: ProjectPaths) -> None:
    config = tiny(max_epochs=4)
    result = train.run(config, project)

    assert result["epochs"] == 4 and result["epochs_run"] == 4 and result["monitor"] == "val/accuracy"
    rows = list(csv.DictReader((project.plots / "history.csv").open()))
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_accuracy", "val_f1_macro"]
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "4"]

    summary = json.loads((project.metrics / "train.json").read_text())
    assert summary["epochs"] == 4 and summary["best_epoch"] == result["best_epoch"]
    assert set(summary["best"]["val"]) == {"loss", "accuracy", "f1_macro"}
    best_row = rows[result["best_epoch"] - 1]
    assert summary["best"]["val"]["accuracy"] == float(best_row["val_accuracy"])
    assert "duration" not in json.dumps(summary) and "time" not in json.dumps(summary)

    model, snapshot = load_model_snapshot(project.models / "best.pt")
    assert snapshot["epoch"] == result["best_epoch"]
    best_checkpoint = [
        p for p in list_checkpoints(project.checkpoints) if p.name.startswith(f"ckpt-e{snapshot['epoch']:04d}-")
    ]
    assert best_checkpoint, "the best epoch's checkpoint is kept"
    for key, value in load_checkpoint(best_checkpoint[0])["model"]["state_dict"].items():
        assert torch.equal(model.state_dict()[key], value)
    assert read_snapshot(project.models / "last.pt")["epoch"] == 4
    stored = yaml.safe_load((project.models / "config.yaml").read_text())
    assert stored["train"]["max_epochs"] == 4 and "experiment_id" in stored
    assert list((project.runs / stored["experiment_id"]).glob("events.out.tfevents.*")), "one run dir per experiment"
    assert stored["runtime"]["threads"] == 1 and stored["runtime"]["torch"] == torch.__version__.split("+")[0]


def test_two_runs_from_scratch_write_identical_bytes(prepared: ProjectPaths, tmp_path: Path) -> None:
    results = []
    for name in ("a", "b"):
        shutil.copytree(prepared.root, tmp_path / name)
        paths = ProjectPaths(tmp_path / name)
        train.run(tiny(), paths)
        results.append(contents(paths))
    assert results[0] == results[1]


def test_rerun_of_a_finished_run_says_so_and_changes_nothing(project: ProjectPaths, capsys: Any) -> None:
    train.run(tiny(), project)
    before = files(project)
    checkpoints = {p.name: p.read_bytes() for p in project.checkpoints.iterdir()}
    capsys.readouterr()
    result = train.run(tiny(), project)
    assert "training already finished: 3 of 3 epochs done" in capsys.readouterr().out
    assert result["epochs_run"] == 0
    assert files(project) == before
    assert {p.name: p.read_bytes() for p in project.checkpoints.iterdir()} == checkpoints


def test_outputs_removed_by_dvc_are_rewritten_identically_from_the_checkpoints(project: ProjectPaths) -> None:
    train.run(tiny(), project)
    before = contents(project)
    for name in OUTPUTS:  # dvc repro deletes a stage's outputs (except persisted ones) before running it
        (project.root / name).unlink()
    train.run(tiny(), project)
    assert contents(project) == before


def test_raising_max_epochs_resumes_and_ends_as_a_longer_run_from_scratch(
    prepared: ProjectPaths, tmp_path: Path, capsys: Any
) -> None:
    longer = ProjectPaths(tmp_path / "longer")
    shutil.copytree(prepared.root, longer.root)
    train.run(tiny(max_epochs=5), longer)

    resumed = ProjectPaths(tmp_path / "resumed")
    shutil.copytree(prepared.root, resumed.root)
    train.run(tiny(max_epochs=3), resumed)
    capsys.readouterr()
    result = train.run(tiny(max_epochs=5), resumed)
    assert "resumed from" in capsys.readouterr().out and result["epochs_run"] == 2
    same = contents(longer), contents(resumed)
    for name in ("models/last.pt", "models/best.pt", "plots/history.csv", "metrics/train.json"):
        assert same[0][name] == same[1][name], name


def test_a_changed_training_param_starts_fresh_and_says_why(project: ProjectPaths, capsys: Any) -> None:
    train.run(tiny(), project)
    capsys.readouterr()
    changed = tiny(optimizer={"name": "adam", "lr": 0.01})
    result = train.run(changed, project)
    out = capsys.readouterr().out
    assert "train.optimizer.lr 0.001 -> 0.01" in out and "starting fresh" in out
    assert result["epochs_run"] == 3 and result["resumed_from"] is None


def test_no_resume_starts_fresh(project: ProjectPaths) -> None:
    train.run(tiny(), project)
    result = train.run(tiny(), project, resume=False)
    assert result["epochs_run"] == 3


def test_dataloader_loader_is_deterministic_too(prepared: ProjectPaths, tmp_path: Path) -> None:
    results = []
    for name in ("a", "b"):
        shutil.copytree(prepared.root, tmp_path / name)
        paths = ProjectPaths(tmp_path / name)
        train.run(tiny(loader="dataloader"), paths)
        results.append(contents(paths))
    assert results[0] == results[1]


def test_a_monitor_the_run_does_not_compute_fails_before_training(project: ProjectPaths) -> None:
    with pytest.raises(ConfigError, match=r"train.checkpoint.monitor: 'val/auroc' is not computed.*val/f1_macro"):
        train.run(tiny(checkpoint={"monitor": "val/auroc"}), project)
    with pytest.raises(ConfigError, match=r"train.early_stopping.monitor: 'val/mae' is not computed"):
        train.run(tiny(early_stopping={"monitor": "val/mae"}), project)
    assert not project.models.exists()


def test_regression_with_the_default_monitor_picks_the_best_epoch_by_val_loss(tmp_path: Path, capsys: Any) -> None:
    paths = ProjectPaths(tmp_path / "project")
    write_raw(paths.root / "data/raw/tiny.csv", "regression")
    config = tiny_config("regression")
    prepare.run(config, paths)
    fit_encoder.run(config, paths)
    result = train.run(config, paths)
    assert result["monitor"] == "val/loss"
    assert f"train: best epoch {result['best_epoch']} by val/loss = " in capsys.readouterr().out  # the task's monitor
    rows = list(csv.DictReader((paths.plots / "history.csv").open()))
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_mae", "val_rmse"]
    losses = [float(row["val_loss"]) for row in rows]
    assert result["best_epoch"] == losses.index(min(losses)) + 1


def test_a_diverging_run_fails_with_advice(project: ProjectPaths) -> None:
    config = tiny(optimizer={"name": "sgd", "lr": 1e30, "momentum": 0.0})
    with pytest.raises(TrainflowError, match="diverged"):
        train.run(config, project)


def test_default_experiment_reaches_95_percent_test_accuracy_on_digits(tmp_path: Path) -> None:
    from trainflow.stages import evaluate

    paths = ProjectPaths(tmp_path)
    (paths.raw).mkdir(parents=True)
    shutil.copyfile(ROOT / "data/raw/digits.csv.gz", paths.raw / "digits.csv.gz")
    config = resolve(yaml.safe_load((ROOT / "params.yaml").read_text()))
    prepare.run(config, paths)
    fit_encoder.run(config, paths)
    train.run(config, paths)
    scores = evaluate.run(config, paths)
    assert scores["test"]["accuracy"] >= 0.95


def test_lowering_max_epochs_trains_as_a_shorter_run_from_scratch_and_keeps_the_longer_run(
    prepared: ProjectPaths, tmp_path: Path, capsys: Any
) -> None:
    shorter = ProjectPaths(tmp_path / "shorter")
    shutil.copytree(prepared.root, shorter.root)
    train.run(tiny(max_epochs=2), shorter)
    longer = ProjectPaths(tmp_path / "longer")
    shutil.copytree(prepared.root, longer.root)
    train.run(tiny(max_epochs=4), longer)
    four_epochs = contents(longer)

    capsys.readouterr()
    result = train.run(tiny(max_epochs=2), longer)
    out = capsys.readouterr().out
    assert "past where these params stop training: starting fresh" in out
    assert result["epochs_run"] == 2 and result["resumed_from"] is None
    assert contents(longer) == contents(shorter), "the 2-epoch experiment gets the 2-epoch weights"

    result = train.run(tiny(max_epochs=4), longer)  # back to the longer params: its run is resumed
    assert "resuming the kept run" in capsys.readouterr().out and result["epochs_run"] == 0
    assert contents(longer) == four_epochs


def test_lowering_patience_replays_the_history_under_the_new_rule(prepared: ProjectPaths, tmp_path: Path) -> None:
    def history(paths: ProjectPaths) -> list[dict[str, str]]:
        return list(csv.DictReader((paths.plots / "history.csv").open()))

    longer = ProjectPaths(tmp_path / "longer")
    shutil.copytree(prepared.root, longer.root)
    train.run(tiny(max_epochs=6, early_stopping={"patience": 6, "monitor": "train/loss", "mode": "max"}), longer)
    assert len(history(longer)) == 6  # train/loss falls every epoch: "max" never improves after epoch 1
    impatient = tiny(max_epochs=6, early_stopping={"patience": 1, "monitor": "train/loss", "mode": "max"})
    result = train.run(impatient, longer)
    fresh = ProjectPaths(tmp_path / "fresh")
    shutil.copytree(prepared.root, fresh.root)
    train.run(impatient, fresh)
    assert result["epochs"] == 2 and contents(longer) == contents(fresh)


def test_rerunning_an_early_stopped_run_writes_the_same_summary(prepared: ProjectPaths, tmp_path: Path) -> None:
    project = ProjectPaths(tmp_path / "project")
    shutil.copytree(prepared.root, project.root)
    config = tiny(max_epochs=30, early_stopping={"patience": 1, "monitor": "train/loss", "mode": "max"})
    train.run(config, project)
    first = contents(project)
    assert json.loads(first["metrics/train.json"])["stopped_early"] is True
    (project.root / "metrics/train.json").unlink()  # as DVC does before it re-runs the stage
    train.run(config, project)
    assert contents(project) == first
