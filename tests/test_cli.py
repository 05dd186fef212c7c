"""The `trainflow` command: help, config show and validate, one-line errors without tracebacks,
and which commands stay free of torch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NO_CUDA = pytest.mark.skipif(
    subprocess.run(
        [sys.executable, "-c", "import torch; assert not torch.cuda.is_available()"], check=False
    ).returncode,
    reason="this machine has CUDA: the config is valid here",
)


def trainflow(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "trainflow.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_help_lists_every_command() -> None:
    result = trainflow("--help")
    assert result.returncode == 0
    for command in ("config", "prepare", "fit-encoder", "train", "evaluate", "package", "upload", "summary"):
        assert command in result.stdout


def test_config_show_applies_overrides() -> None:
    result = trainflow("config", "show", "train.optimizer.lr=0.003", "train.max_epochs=4")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["train"]["optimizer"]["lr"] == 0.003
    assert shown["train"]["max_epochs"] == 4
    assert len(shown["experiment_id"]) == 12


def test_config_show_flat() -> None:
    result = trainflow("config", "show", "--flat")
    assert "train.optimizer.lr=0.001" in result.stdout.splitlines()


def test_invalid_config_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  optimizer:\n    lr: -1\n")
    assert_one_line_error(trainflow("config", "validate", cwd=tmp_path), 2, "train.optimizer.lr", "greater than 0")
    assert_one_line_error(trainflow("prepare", cwd=tmp_path), 2, "train.optimizer.lr")


def test_typo_in_registry_name_suggests_the_closest(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("model:\n  name: mpl\n")
    assert_one_line_error(trainflow("train", cwd=tmp_path), 2, "model.name", "did you mean 'mlp'")


def test_bad_override_exits_2() -> None:
    assert_one_line_error(trainflow("config", "show", "train.batch_size=big"), 2, "train.batch_size")


def test_data_error_exits_nonzero_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "digits.csv.gz").write_bytes(b"\x1f\x8b garbage")
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    result = trainflow("prepare", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "digits.csv.gz" in result.stderr
    assert not (tmp_path / "data" / "prepared").exists()


def test_the_stage_commands_are_the_stages_of_dvc_yaml() -> None:
    from trainflow.cli import STAGES

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert {spec["cmd"].split()[1] for spec in stages.values()} == set(STAGES)
    help_text = trainflow("--help").stdout
    assert all(command in help_text for command in STAGES)


def test_an_error_in_an_overridden_key_names_the_override(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("train:\n  max_epochs: 0\n  batch_size: 8\n")
    from_file = trainflow("config", "validate", cwd=tmp_path)
    assert_one_line_error(from_file, 2, "error: params.yaml: train.max_epochs: ", "greater than or equal to 1")
    overridden = trainflow("config", "validate", "train.max_epochs=2", "train.batch_size=0", cwd=tmp_path)
    assert_one_line_error(overridden, 2, "error: override train.batch_size=0: train.batch_size: ")
    assert "params.yaml" not in overridden.stderr


@pytest.mark.parametrize(
    ("overrides", "needles"),
    [
        (["train.device=cpu", "train.precision=fp16"], ["train.precision: fp16 needs a CUDA device", "on cpu"]),
        pytest.param(["train.precision=fp16"], ["override train.precision=fp16: train.precision: "], marks=NO_CUDA),
        pytest.param(["train.device=cuda"], ["train.device: 'cuda' needs a CUDA device"], marks=NO_CUDA),
        pytest.param(["train.distributed.backend=nccl"], ["backend: nccl needs CUDA devices"], marks=NO_CUDA),
        (
            ["metrics=[mae]"],
            ["override metrics=[mae]: metrics: 'mae' is a regression metric", "valid for classification"],
        ),
        (["loss.name=huber"], ["loss.name: 'huber' is a regression loss but the data set is classification"]),
        (
            ["dataset.name=csv", "dataset.path=t.csv", "model.name=cnn"],
            ["override model.name=cnn: model.name: cnn needs a data set of images", "use model.name: mlp"],
        ),
        (["train.checkpoint.monitor=val/r2"], ["train.checkpoint.monitor: 'val/r2' is not computed by this run"]),
        (["train.early_stopping.monitor=val/mae"], ["train.early_stopping.monitor: 'val/mae' is not computed"]),
    ],
)
def test_config_validate_rejects_what_a_stage_would_reject(overrides: list[str], needles: list[str]) -> None:
    assert_one_line_error(trainflow("config", "validate", *overrides), 2, *needles)


def test_config_validate_accepts_the_default_experiment() -> None:
    result = trainflow("config", "validate")
    assert result.returncode == 0, result.stderr
    assert "valid (experiment " in result.stdout


def imported_modules(*args: str, cwd: Path) -> set[str]:
    """The top-level modules ``trainflow ARGS`` imports, from ``python -X importtime``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "trainflow.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}


def test_validating_and_the_data_stages_import_no_torch(tmp_path: Path) -> None:
    (tmp_path / "data" / "raw").mkdir(parents=True)
    shutil.copy(REPO / "data" / "raw" / "digits.csv.gz", tmp_path / "data" / "raw")
    shutil.copy(REPO / "params.yaml", tmp_path)
    for command in (["config", "show"], ["config", "validate"], ["prepare"], ["fit-encoder"]):
        modules = imported_modules(*command, cwd=tmp_path)
        assert "trainflow.config" in modules  # the log is real: it names what was imported
        heavy = sorted(modules & {"torch", "torchmetrics", "tensorboardX", "matplotlib"})
        assert not heavy, f"trainflow {' '.join(command)} imports {heavy}"
    assert (tmp_path / "data" / "encoders" / "encoder.json").is_file()


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    """`trainflow config show | head -1`: the closed pipe ends the command with exit 141 (as a
    filter killed by SIGPIPE), and no traceback."""
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "trainflow"), "config", "show"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait() == 141
    assert stderr == ""
