"""The `trainflow` command: help, config show, and one-line errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


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
