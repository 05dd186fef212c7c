"""DVC for the Prefect tasks: the stage list, read-only queries, and commands that change things.

DVC is the one authority on what is stale; nothing here keeps state of its own.

- the stages, their order and their metrics files come from ``dvc.yaml`` (read, never written);
- read-only questions (what is stale, the default remote, a metrics diff, the outputs of a
  stage) go to DVC's Python API (``dvc.repo.Repo``) or ``dvc.lock``, in this process;
- what changes the project (``repro``, ``pull``, ``push``) runs as a ``dvc`` command under the
  project's process supervisor (:mod:`trainflow.training.supervisor`): a session of its own,
  the whole tree stopped on a timeout, Ctrl-C passed on, gone if this process dies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from trainflow.errors import TrainflowError
from trainflow.training.supervisor import CommandResult, run_command

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
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_dvc(
    args: Sequence[str],
    root: str | Path,
    timeout_s: float | None = None,
    on_line: Callable[[str], None] | None = None,
    check: bool = True,
) -> CommandResult:
    """``dvc ARGS`` in the project ``root``; the contract of :func:`~trainflow.training.supervisor.run_command`."""
    return run_command(
        [dvc_executable(), *args], cwd=root, env=dvc_env(), timeout_s=timeout_s, on_line=on_line, check=check
    )


# ---------------------------------------------------------------------------------------------
# The pipeline as dvc.yaml declares it


def _dvc_yaml(root: str | Path) -> dict[str, Any]:
    return yaml.safe_load((Path(root) / "dvc.yaml").read_text()) or {}


def _paths(entries: Sequence[Any]) -> list[str]:
    """The paths of a ``deps``/``outs``/``metrics`` list (an entry is a path or ``{path: options}``)."""
    return [str(next(iter(entry))) if isinstance(entry, dict) else str(entry) for entry in entries or []]


def pipeline_stages(root: str | Path = ".") -> tuple[str, ...]:
    """The stages of ``root``'s dvc.yaml in an order DVC may run them: each after the stages whose
    outputs it depends on, otherwise in the file's order."""
    stages = _dvc_yaml(root).get("stages") or {}
    producer = {
        out: name for name, spec in stages.items() for out in _paths([*spec.get("outs", []), *spec.get("metrics", [])])
    }
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order or name in path:
            return
        for dep in _paths(stages[name].get("deps", [])):
            dep = dep.rstrip("/")
            for out, upstream in producer.items():  # the dep is that output, or a file inside it
                if upstream != name and (dep == out or dep.startswith(out.rstrip("/") + "/")):
                    visit(upstream, (*path, name))
        order.append(name)

    for name in stages:
        visit(name, ())
    return tuple(order)


def stage_metrics_files(root: str | Path, stage: str) -> list[str]:
    """The ``metrics`` files dvc.yaml declares for ``stage`` (relative to ``root``)."""
    spec = (_dvc_yaml(root).get("stages") or {}).get(stage) or {}
    return _paths(spec.get("metrics", []))


# ---------------------------------------------------------------------------------------------
# Read-only queries (DVC's Python API, or dvc.lock)


class DvcQueryFailed(TrainflowError):
    """DVC could not answer a question about the project (no such revision, a broken dvc.yaml)."""


@contextlib.contextmanager
def _repo(root: str | Path, question: str) -> Iterator[Any]:
    """The DVC repository at ``root``, closed after the block; DVC's own errors become one
    :class:`DvcQueryFailed` naming the ``question`` as the command that asks it."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(str(root)) as repo:
            yield repo
    except DvcException as error:
        raise DvcQueryFailed(f"`dvc {question}` in {Path(root).resolve()}: {error}") from None


def _lock_entry(root: str | Path, stage: str) -> dict[str, Any] | None:
    """``stage``'s entry in dvc.lock: what DVC recorded of its last run; None before its first."""
    lock_path = Path(root) / "dvc.lock"
    lock = (yaml.safe_load(lock_path.read_text()) or {}) if lock_path.is_file() else {}
    return (lock.get("stages") or {}).get(stage)


def locked_outs(root: str | Path, stage: str) -> dict[str, str]:
    """``{path: md5}`` of ``stage``'s outputs as recorded in dvc.lock (empty before its first run)."""
    entry = _lock_entry(root, stage) or {}
    return {out["path"]: str(out.get("md5") or out.get("hash") or "") for out in entry.get("outs", [])}


def stale_stages(root: str | Path) -> list[str]:
    """What ``dvc status`` reports as changed (stage names, or a ``.dvc`` file); [] when up to date."""
    with _repo(root, "status") as repo:
        return sorted(_address(root, key) for key in repo.status())


def _stale(root: str | Path, stage: str, with_deps: bool) -> bool:
    """Whether ``dvc status STAGE`` reports the stage (with ``with_deps``, or one upstream) as changed."""
    with _repo(root, f"status {stage}") as repo:
        target = f"{Path(root).resolve() / 'dvc.yaml'}:{stage}"  # a bare name would be looked up from the cwd
        return bool(repo.status(targets=[target], with_deps=with_deps))


def _address(root: str | Path, key: str) -> str:
    """A stage's name as ``dvc status`` run in ``root`` says it: DVC's API names the stages of a
    dvc.yaml outside the current directory ``path/to/dvc.yaml:name``."""
    path, _, name = key.rpartition(":")
    if name and Path(path).name == "dvc.yaml" and Path(path).resolve() == (Path(root) / "dvc.yaml").resolve():
        return name
    return key


def metrics_diff(root: str | Path, rev: str = "HEAD") -> dict[str, Any]:
    """``dvc metrics diff --all REV``: ``{file: {key: {"old": x, "new": y, "diff": d}}}``.

    ``old`` is None for a metric that ``REV`` does not have (no accepted model yet).
    """
    with _repo(root, f"metrics diff --all {rev}") as repo:
        return dict(repo.metrics.diff(a_rev=rev, all=True).get("diff") or {})


def default_remote(root: str | Path) -> str | None:
    """The name of the default DVC remote (``core.remote``), or None when none is set."""
    with _repo(root, "remote default") as repo:
        return repo.config["core"].get("remote") or None


# ---------------------------------------------------------------------------------------------
# Commands that change the project


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
    without it, DVC also brings every upstream stage up to date first. Whether it runs is
    DVC's answer beforehand (``dvc status STAGE``), not a reading of its output.
    """
    ran = _lock_entry(root, stage) is None or _stale(root, stage, with_deps=not single_item)  # new to DVC: it runs
    args = ["repro", *(["--single-item"] if single_item else []), stage]
    result = run_dvc(args, root, timeout_s=timeout_s, on_line=without_git_hint(on_line) if on_line else None)
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


def pull(root: str | Path, timeout_s: float | None = None, on_line: Callable[[str], None] | None = None) -> None:
    """``dvc pull --allow-missing``: fetch what the remote has; outputs it lacks are rebuilt by repro."""
    run_dvc(["pull", "--allow-missing"], root, timeout_s=timeout_s, on_line=on_line)


def push(root: str | Path, timeout_s: float | None = None, on_line: Callable[[str], None] | None = None) -> None:
    """``dvc push``: send every output in dvc.lock to the default remote."""
    run_dvc(["push"], root, timeout_s=timeout_s, on_line=on_line)
