"""Temporary projects for the orchestration tests: a toy DVC repo, and a copy of the real one.

Both are git + DVC repositories with one commit, as a clone of the project would be, in a
temporary folder; DVC runs in them, never in the working tree the tests come from.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tasks.params import apply_overrides

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUIET = {"DVC_NO_ANALYTICS": "1", "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
#: What a copy of the project needs to run its pipeline and its flows.
PROJECT_FILES = ("dvc.yaml", "params.yaml", "prefect.yaml", ".dvcignore")
PROJECT_DIRS = ("data/raw", "src", "flows", "tasks")
#: Tiny settings: the pipeline runs in seconds.
TINY = {"train.max_epochs": 2, "train.early_stopping.patience": 0}


def env() -> dict[str, str]:
    return {**os.environ, **QUIET, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(args: list[str], cwd: Path, extra_env: Mapping[str, str] | None = None) -> str:
    """Run a command in ``cwd``; fail with its output if it fails."""
    result = subprocess.run(
        args, cwd=cwd, env={**env(), **(extra_env or {})}, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def init_repo(path: Path) -> None:
    """git init + dvc init + one commit of everything in ``path``."""
    run(["git", "init", "-q", "-b", "main"], path)
    run(["git", "config", "user.email", "tests@trainflow.invalid"], path)
    run(["git", "config", "user.name", "trainflow tests"], path)
    run([str(BIN / "dvc"), "init", "-q"], path)
    run([str(BIN / "dvc"), "config", "core.check_update", "false"], path)
    commit(path, "initial commit")


def commit(path: Path, message: str) -> None:
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-q", "--allow-empty", "-m", message], path)


def toy_project(path: Path, stages: Mapping[str, str]) -> Path:
    """A DVC project whose stages are bash scripts (``{name: script}``), each with an output ``<name>.out``.

    Each script is saved as ``<name>.sh`` (a dependency of its stage) and runs in the project root.
    """
    path.mkdir(parents=True, exist_ok=True)
    lines = ["stages:"]
    for name, script in stages.items():
        (path / f"{name}.sh").write_text(script + "\n")
        lines += [f"  {name}:", f"    cmd: bash {name}.sh", f"    deps: [{name}.sh]", f"    outs: [{name}.out]"]
    (path / "dvc.yaml").write_text("\n".join(lines) + "\n")
    init_repo(path)
    return path


def pipeline_project(path: Path, overrides: Mapping[str, Any] | None = None) -> Path:
    """A copy of the real project (pipeline, code, embedded data, DVC config) with ``TINY`` params
    and ``overrides``."""
    path.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in PROJECT_FILES:
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, path / name)
    for name in PROJECT_DIRS:
        shutil.copytree(ROOT / name, path / name, ignore=ignore)
    apply_overrides(path / "params.yaml", {**TINY, **(overrides or {})})
    init_repo(path)
    # The project's DVC config: its default remote is a folder beside the project, which for
    # this copy lies in the same temporary folder.
    shutil.copy2(ROOT / ".dvc" / "config", path / ".dvc" / "config")
    commit(path, "the project's DVC config")
    return path
