"""Prefect tasks around DVC versioning: pull before a retrain, compare metrics, push after.

The accepted model is what ``baseline`` points at:

- a git revision (default ``HEAD``): the metrics recorded in that commit's dvc.lock, read by
  ``dvc metrics diff --json --all REV``, so committing dvc.lock is what accepts a model (the CI
  workflow does that);
- a ``.json`` file under the project root: the metrics of the last model this flow accepted,
  rewritten (atomically) after each accepted run; for a machine that retrains on a schedule
  without committing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from tasks import dvc
from trainflow.config import flatten
from trainflow.errors import TrainflowError
from trainflow.io import atomic_write_json
from trainflow.paths import ProjectPaths


class RemoteNotConfigured(TrainflowError):
    """The project has no default DVC remote, and the flow was told to require one."""


def _remote_or_none(root: str, require_remote: bool, action: str) -> str | None:
    name = dvc.default_remote(root)
    if name is None and require_remote:
        raise RemoteNotConfigured(
            f"{Path(root).resolve()}: no default DVC remote to {action}; add one with "
            "`dvc remote add -d NAME URL`, or run with require_remote=false to use local data only"
        )
    return name


@task(retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=10), cache_policy=NO_CACHE)
def dvc_pull(root: str = ".", require_remote: bool = True, timeout_s: float | None = 3600.0) -> dict[str, Any]:
    """``dvc pull`` from the default remote; with no remote, fail or (if allowed) carry on locally."""
    remote = _remote_or_none(root, require_remote, "pull from")
    logger = get_run_logger()
    if remote is None:
        logger.warning("no default DVC remote: training from the data already in %s", Path(root).resolve())
        return {"pulled": False, "remote": None}
    dvc.pull(root, timeout_s=timeout_s, on_line=logger.info)
    return {"pulled": True, "remote": remote}


@task(retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=10), cache_policy=NO_CACHE)
def dvc_push(root: str = ".", require_remote: bool = True, timeout_s: float | None = 3600.0) -> dict[str, Any]:
    """``dvc push`` of every output in dvc.lock to the default remote."""
    remote = _remote_or_none(root, require_remote, "push to")
    logger = get_run_logger()
    if remote is None:
        logger.warning("no default DVC remote: outputs stay in the local DVC cache only")
        return {"pushed": False, "remote": None}
    dvc.push(root, timeout_s=timeout_s, on_line=logger.info)
    return {"pushed": True, "remote": remote}


def is_file_baseline(baseline: str) -> bool:
    return baseline.endswith(".json")


@task(cache_policy=NO_CACHE)
def accepted_metrics(root: str = ".", baseline: str = "HEAD") -> dict[str, float | None]:
    """The accepted model's metrics/eval.json as ``{dotted key: value}``; {} when there is none yet."""
    paths = ProjectPaths(Path(root))
    if is_file_baseline(baseline):
        path = paths.root / baseline
        if not path.is_file():
            return {}
        return {key: value for key, value in flatten(json.loads(path.read_text())).items() if _number(value)}
    eval_file = (paths.metrics / "eval.json").relative_to(paths.root).as_posix()
    entries = dvc.metrics_diff(root, rev=baseline).get(eval_file) or {}
    return {key: entry.get("old") for key, entry in entries.items() if _number(entry.get("old"))}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def record_accepted(root: str, baseline: str, metrics: dict[str, Any]) -> None:
    """After an accepted run with a file baseline, make these metrics the new baseline."""
    if is_file_baseline(baseline):
        atomic_write_json(Path(root) / baseline, metrics)
