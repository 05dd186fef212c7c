"""DVC commands in a subprocess: reproduce one stage, status, metrics diff, pull and push.

DVC is the one authority on what is stale. These helpers only run ``dvc`` commands and read
what DVC writes (its JSON output, ``dvc.lock``); they keep no state of their own. Commands run
in the project's warm DVC process (:mod:`tasks.dvc_runner`), in a process group of its own,
so a timeout stops the stage's whole process tree.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.dvc_runner import close_runners, runner_for
from tasks.process import CommandResult

#: No usage reports from DVC (the update check is off in the project's .dvc/config).
DVC_ENV = {"DVC_NO_ANALYTICS": "1"}


def dvc_executable() -> str:
    """The ``dvc`` next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("dvc")
    if found is None:
        raise FileNotFoundError("dvc: command not found; install the project (pip install -e .) to get it")
    return found


def dvc_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment plus :data:`DVC_ENV`, with the venv's bin first on PATH.

    Stage commands in dvc.yaml call ``trainflow``; putting the venv first makes them find it
    even when the caller (a Prefect worker) was started without activating the venv.
    """
    env = {**os.environ, **DVC_ENV, **(extra or {})}
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    return env


def run_dvc(
    args: Sequence[str],
    root: str | Path,
    timeout_s: float | None = None,
    on_line: Callable[[str], None] | None = None,
    check: bool = True,
) -> CommandResult:
    """``dvc ARGS`` in the project ``root``, through the project's warm DVC process.

    Same contract as :func:`tasks.process.run_command`: output streamed to ``on_line``,
    :class:`~tasks.process.CommandTimeout` after ``timeout_s`` (the process group stopped),
    :class:`~tasks.process.CommandFailed` on a non-zero exit with ``check``.
    """
    return runner_for(root, dvc_env()).run(args, timeout_s=timeout_s, on_line=on_line, check=check)


@contextlib.contextmanager
def dvc_session(root: str | Path) -> Iterator[None]:
    """Keep the warm DVC process of ``root`` for the block; then stop it and its process group."""
    try:
        yield
    finally:
        close_runners(Path(root))


@dataclass(frozen=True)
class StageRun:
    """One ``dvc repro`` of one stage: whether DVC ran it or found it up to date, and its outputs."""

    stage: str
    ran: bool
    seconds: float
    outs: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "ran": self.ran, "seconds": round(self.seconds, 3), "outs": self.outs}


def repro_stage(
    root: str | Path,
    stage: str,
    single_item: bool = True,
    timeout_s: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> StageRun:
    """``dvc repro [--single-item] STAGE``: DVC runs the stage only if its deps, params or outs changed.

    With ``single_item`` only this stage is checked (the caller runs the stages in DAG order);
    without it, DVC also brings every upstream stage up to date first.
    """
    args = ["repro", *(["--single-item"] if single_item else []), stage]
    result = run_dvc(args, root, timeout_s=timeout_s, on_line=without_git_hint(on_line) if on_line else None)
    ran = f"Running stage '{stage}'" in result.output
    return StageRun(stage=stage, ran=ran, seconds=result.seconds, outs=locked_outs(root, stage))


#: DVC's advice after every stage that changed dvc.lock; a flow says it once, in its summary.
GIT_HINT_LINES = (
    "To track the changes with git, run:",
    "git add dvc.lock",
    "To enable auto staging, run:",
    "dvc config core.autostage true",
)


def without_git_hint(on_line: Callable[[str], None]) -> Callable[[str], None]:
    """``on_line`` for every line except DVC's "To track the changes with git" hint."""

    def forward(line: str) -> None:
        text = line.strip()
        if text and not any(text == hint or text.startswith(hint) for hint in GIT_HINT_LINES):
            on_line(line)

    return forward


def locked_outs(root: str | Path, stage: str) -> dict[str, str]:
    """``{path: md5}`` of ``stage``'s outputs as recorded in dvc.lock (empty before its first run)."""
    lock_path = Path(root) / "dvc.lock"
    if not lock_path.is_file():
        return {}
    lock = yaml.safe_load(lock_path.read_text()) or {}
    entry = (lock.get("stages") or {}).get(stage) or {}
    return {out["path"]: str(out.get("md5") or out.get("hash") or "") for out in entry.get("outs", [])}


def stale_stages(root: str | Path, timeout_s: float | None = None) -> list[str]:
    """The stages ``dvc status`` reports as changed (an empty list: everything is up to date)."""
    result = run_dvc(["status", "--json"], root, timeout_s=timeout_s)
    return sorted(_json_from(result.output))


def metrics_diff(root: str | Path, rev: str = "HEAD", timeout_s: float | None = None) -> dict[str, Any]:
    """``dvc metrics diff --json --all REV``: ``{file: {key: {"old": x, "new": y, "diff": d}}}``.

    ``old`` is None for a metric that ``REV`` does not have (no accepted model yet).
    """
    result = run_dvc(["metrics", "diff", "--json", "--all", rev], root, timeout_s=timeout_s)
    return _json_from(result.output)


def default_remote(root: str | Path) -> str | None:
    """The name of the default DVC remote (``dvc remote default``), or None when none is set."""
    result = run_dvc(["remote", "default"], root, check=False)
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    return lines[-1] if result.returncode == 0 and lines else None


def pull(root: str | Path, timeout_s: float | None = None, on_line: Callable[[str], None] | None = None) -> None:
    """``dvc pull --allow-missing``: fetch what the remote has; outputs it lacks are rebuilt by repro."""
    run_dvc(["pull", "--allow-missing"], root, timeout_s=timeout_s, on_line=on_line)


def push(root: str | Path, timeout_s: float | None = None, on_line: Callable[[str], None] | None = None) -> None:
    """``dvc push``: send every output in dvc.lock to the default remote."""
    run_dvc(["push"], root, timeout_s=timeout_s, on_line=on_line)


def _json_from(output: str) -> dict[str, Any]:
    """The JSON object DVC printed, skipping any warning lines around it."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return {}
