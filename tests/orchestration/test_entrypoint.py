"""``python -m flows``, the image's entrypoint: flows, stages, and any other command as given."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.fixtures.prefect import prefect_env
from tests.orchestration.projects import env, pipeline_project

PREFECT_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d+ \| [A-Z]+ +\| ")


def flows(*args: str, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows", *args],
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def test_another_command_runs_as_given(tmp_path: Path) -> None:
    """Prefect's docker worker passes its own command to the entrypoint; it must run unchanged."""
    result = flows(sys.executable, "-c", "import os, sys; print(os.getcwd(), sys.argv[1:])", "a b", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{tmp_path} ['a b']"


def test_stage_runs_it_through_dvc(tmp_path: Path) -> None:
    root = pipeline_project(tmp_path / "project")
    result = flows("stage", "prepare", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Running stage 'prepare'" in result.stdout
    assert set(yaml.safe_load((root / "dvc.lock").read_text())["stages"]) == {"prepare"}


def test_a_flow_with_a_bad_override_prints_one_error_line(tmp_path: Path, prefect_server: str) -> None:
    root = pipeline_project(tmp_path / "project")
    result = flows(
        "flow",
        "training_pipeline",
        "-S",
        "train.optimizr.lr=0.1",
        cwd=root,
        extra_env=prefect_env(prefect_server, tmp_path / "home"),
    )
    assert result.returncode == 2
    # Prefect's own log lines ("12:00:00.000 | WARNING | EventsWorker - ...") may follow at exit.
    lines = [line for line in result.stderr.splitlines() if not PREFECT_LOG_LINE.match(line)]
    assert [line for line in lines if line.startswith("error: ")] == [lines[-1]], result.stderr
    assert "train.optimizr" in lines[-1]
    assert not (root / "dvc.lock").exists()


def test_a_flow_ends_with_the_closing_summary_and_no_repeated_git_hint(tmp_path: Path, prefect_server: str) -> None:
    root = pipeline_project(tmp_path / "project")
    result = flows(
        "flow", "training_pipeline", "--no-upload", cwd=root, extra_env=prefect_env(prefect_server, tmp_path / "home")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "To track the changes with git" not in output
    summary = subprocess.run(
        [str(Path(sys.executable).with_name("trainflow")), "summary"],
        cwd=root,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert summary.returncode == 0, summary.stderr
    assert result.stdout.endswith(summary.stdout), "the flow closes with `trainflow summary`'s lines"
