"""Prefect tasks: one per stage of dvc.yaml, made by one factory, plus the upload.

A stage task runs ``dvc repro --single-item <stage>`` in the project root. DVC decides whether
the stage is stale (deps, params or outs changed) and skips it otherwise; there is no Prefect
cache (``cache_policy=NO_CACHE``), so DVC stays the one authority. A flow may ask DVC once up
front (:func:`pipeline_status`) and pass ``up_to_date=True`` to the stages DVC reports
unchanged with everything upstream, which saves one ``dvc`` process per stage on a re-run.
Tasks return small summaries (paths, md5s from dvc.lock, the stage's metrics files as
dvc.yaml declares them), never data.

What Prefect adds:

- retries with exponential backoff, except after a user mistake (a trainflow command's
  one-line ``error: ...``), which a retry cannot fix;
- timeouts that stop the stage's whole process tree (:mod:`trainflow.training.supervisor`);
- resumption: a retried ``train`` reruns the same DVC stage, and the stage resumes from the
  checkpoints it keeps in ``models/checkpoints`` (a ``persist: true`` DVC output, which DVC
  does not delete before rerunning the stage).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from tasks.dvc import StageRun, locked_outs, pipeline_stages, repro_stage, stage_metrics_files, stale_stages
from trainflow.errors import StorageError
from trainflow.training.supervisor import CommandFailed

#: Timeouts in seconds of the stages that need other than :data:`DEFAULT_TIMEOUT_S`, and of the upload.
TIMEOUTS_S: dict[str, float] = {"train": 6 * 3600.0, "evaluate": 1800.0, "upload": 1800.0}
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_RETRIES = 2


def default_timeouts(root: str | Path = ".") -> dict[str, float]:
    """``{stage: seconds}`` for every stage of ``root``'s dvc.yaml, then ``upload``; a flow
    parameter overrides them."""
    return {name: TIMEOUTS_S.get(name, DEFAULT_TIMEOUT_S) for name in (*pipeline_stages(root), "upload")}


def _failure(state: State[Any]) -> BaseException | None:
    exc = state.data
    return exc if isinstance(exc, BaseException) else None


def retry_stage(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a failed stage unless the stage reported a user mistake (``error: ...``)."""
    exc = _failure(state)
    return not (isinstance(exc, CommandFailed) and exc.user_error is not None)


def retry_upload(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry an upload after a storage or network failure; a config mistake fails at once."""
    return isinstance(_failure(state), StorageError | OSError)


def read_json(path: Path) -> dict[str, Any]:
    """A small JSON file written by a stage, or {} when the stage has not written it."""
    return json.loads(path.read_text()) if path.is_file() else {}


def run_stage(stage: str, root: str, timeout_s: float | None, up_to_date: bool) -> dict[str, Any]:
    """The body of every stage task: ``dvc repro --single-item STAGE`` unless the flow already
    knows DVC would skip it; the summary holds the stage's metrics (``metrics``) when it has any."""
    logger = get_run_logger()
    if up_to_date:
        logger.info("%s: up to date (dvc status: unchanged, and so is everything upstream)", stage)
        summary = StageRun(stage=stage, ran=False, seconds=0.0, outs=locked_outs(root, stage)).to_dict()
    else:
        run = repro_stage(root, stage, single_item=True, timeout_s=timeout_s, on_line=logger.info)
        logger.info("%s: %s in %.1f s", stage, "ran" if run.ran else "up to date (skipped by DVC)", run.seconds)
        summary = run.to_dict()
    files = stage_metrics_files(root, stage)
    if files:
        summary["metrics"] = {k: v for name in files for k, v in read_json(Path(root) / name).items()}
    return summary


def _retried(condition: Callable[[Task[..., Any], TaskRun, State[Any]], bool], backoff_s: float) -> dict[str, Any]:
    """Task options of a command that may fail for a passing reason: ``DEFAULT_RETRIES`` retries
    when ``condition`` says the failure is worth one, after ``backoff_s`` seconds doubling each
    time (with jitter); no result caching or persisting, since the command's files are its result."""
    return {
        "retries": DEFAULT_RETRIES,
        "retry_delay_seconds": exponential_backoff(backoff_factor=backoff_s),
        "retry_jitter_factor": 0.2,
        "retry_condition_fn": condition,
        "cache_policy": NO_CACHE,
        "persist_result": False,
    }


@functools.cache
def stage_task(stage: str) -> Task[..., dict[str, Any]]:
    """The Prefect task of DVC stage ``stage`` (one per name, so its run history stays one task's).

    ``timeout_s=None`` runs the stage without a time limit.
    """

    default_s = TIMEOUTS_S.get(stage, DEFAULT_TIMEOUT_S)

    def body(root: str = ".", timeout_s: float | None = default_s, up_to_date: bool = False) -> dict[str, Any]:
        return run_stage(stage, root, timeout_s, up_to_date)

    body.__name__ = body.__qualname__ = stage  # Prefect keys a task's runs by its function's name
    return task(
        body,
        name=stage,
        description=f"`dvc repro --single-item {stage}`: DVC runs the stage only if its deps, params or outs changed.",
        **_retried(retry_stage, backoff_s=10),
    )


@task(retries=DEFAULT_RETRIES, retry_delay_seconds=exponential_backoff(backoff_factor=10), cache_policy=NO_CACHE)
def pipeline_status(root: str = ".", stages: tuple[str, ...] | None = None) -> list[str]:
    """The stages that may need to run, asking DVC once (``dvc status``) instead of once per stage.

    A stage can be skipped without running ``dvc repro`` only when DVC reports neither it nor
    any stage before it as changed: a rerun upstream stage may change its inputs. So the result
    is every stage from the first changed one on; anything ``dvc status`` reports that is not a
    stage of the list (a changed ``.dvc`` file, for one) makes every stage a candidate.
    ``stages`` defaults to every stage of dvc.yaml.
    """
    stages = pipeline_stages(root) if stages is None else tuple(stages)
    if not (Path(root) / "dvc.lock").is_file():
        return list(stages)  # DVC has run no stage here yet: each is new to it
    changed = set(stale_stages(root))
    if changed - set(stages):
        return list(stages)
    first = next((index for index, stage in enumerate(stages) if stage in changed), len(stages))
    return list(stages[first:])


@task(**_retried(retry_upload, backoff_s=5))
def upload(root: str = ".") -> dict[str, Any]:
    """Upload the result package, model and config to ``upload.target`` from params.yaml.

    Not a DVC stage: it writes nothing into the project. Objects already there with the same
    sha256 are skipped, so a retry or a re-run only sends what is missing. Credentials come
    from the standard AWS chain and are never logged.
    """
    from trainflow.config import load_config
    from trainflow.paths import ProjectPaths
    from trainflow.storage.upload import upload_results

    paths = ProjectPaths(Path(root).resolve())
    report = upload_results(load_config(paths.params), paths)  # a relative file:// is under paths.root
    get_run_logger().info("uploaded to %s", report.location)
    return {"location": report.location, **report.to_dict()}
