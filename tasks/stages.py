"""Prefect tasks: one per pipeline stage, plus the upload.

Each stage task runs ``dvc repro --single-item <stage>`` in the project root. DVC decides
whether the stage is stale (deps, params or outs changed) and skips it otherwise; there is
no Prefect cache (``cache_policy=NO_CACHE``), so DVC stays the one authority. A flow may ask
DVC once up front (:func:`pipeline_status`) and pass ``up_to_date=True`` to the stages DVC
reports unchanged with everything upstream, which saves one ``dvc`` process per stage on a
re-run. Tasks return small summaries (paths, md5s from dvc.lock, the metrics JSON), never data.

What Prefect adds:

- retries with exponential backoff, except after a user mistake (a trainflow command's
  one-line ``error: ...``), which a retry cannot fix;
- timeouts that stop the stage's whole process group (see :mod:`tasks.process`);
- resumption: a retried ``train`` reruns the same DVC stage, and the stage resumes from the
  checkpoints it keeps in ``models/checkpoints`` (a ``persist: true`` DVC output, which DVC
  does not delete before rerunning the stage).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from tasks.dvc import StageRun, locked_outs, repro_stage, stale_stages
from tasks.process import CommandFailed
from trainflow.errors import StorageError
from trainflow.paths import ProjectPaths

#: The pipeline's stages in dvc.yaml, in the order the flow runs them.
STAGES = ("prepare", "fit_encoder", "train", "evaluate", "package")

#: Default timeouts per stage in seconds; a flow parameter overrides them.
DEFAULT_TIMEOUTS_S: dict[str, float] = {
    "prepare": 600.0,
    "fit_encoder": 600.0,
    "train": 6 * 3600.0,
    "evaluate": 1800.0,
    "package": 600.0,
    "upload": 1800.0,
}

DEFAULT_RETRIES = 2


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


def _stage_task(fn: Any) -> Task[..., dict[str, Any]]:
    return task(
        fn,
        retries=DEFAULT_RETRIES,
        retry_delay_seconds=exponential_backoff(backoff_factor=10),
        retry_jitter_factor=0.2,
        retry_condition_fn=retry_stage,
        cache_policy=NO_CACHE,
        persist_result=False,
    )


def _repro(stage: str, root: str, timeout_s: float | None, up_to_date: bool) -> dict[str, Any]:
    logger = get_run_logger()
    if up_to_date:
        logger.info("%s: up to date (dvc status: unchanged, and so is everything upstream)", stage)
        return StageRun(stage=stage, ran=False, seconds=0.0, outs=locked_outs(root, stage)).to_dict()
    run = repro_stage(root, stage, single_item=True, timeout_s=timeout_s, on_line=logger.info)
    logger.info("%s: %s in %.1f s", stage, "ran" if run.ran else "up to date (skipped by DVC)", run.seconds)
    return run.to_dict()


@task(retries=DEFAULT_RETRIES, retry_delay_seconds=exponential_backoff(backoff_factor=10), cache_policy=NO_CACHE)
def pipeline_status(root: str = ".", stages: tuple[str, ...] = STAGES) -> list[str]:
    """The stages that may need to run, asking DVC once (``dvc status``) instead of once per stage.

    A stage can be skipped without running ``dvc repro`` only when DVC reports neither it nor
    any stage before it as changed: a rerun upstream stage may change its inputs. So the result
    is every stage from the first changed one on; anything ``dvc status`` reports that is not a
    stage of the list (a changed ``.dvc`` file, for one) makes every stage a candidate.
    """
    if not (Path(root) / "dvc.lock").is_file():
        return list(stages)  # DVC has run no stage here yet: each is new to it
    changed = set(stale_stages(root))
    if changed - set(stages):
        return list(stages)
    first = next((index for index, stage in enumerate(stages) if stage in changed), len(stages))
    return list(stages[first:])


def read_json(path: Path) -> dict[str, Any]:
    """A small JSON file written by a stage, or {} when the stage has not written it."""
    return json.loads(path.read_text()) if path.is_file() else {}


@_stage_task
def prepare(
    root: str = ".", timeout_s: float | None = DEFAULT_TIMEOUTS_S["prepare"], up_to_date: bool = False
) -> dict[str, Any]:
    """Validate the raw data and write the train/val/test splits (``dvc repro -s prepare``)."""
    return _repro("prepare", root, timeout_s, up_to_date)


@_stage_task
def fit_encoder(
    root: str = ".", timeout_s: float | None = DEFAULT_TIMEOUTS_S["fit_encoder"], up_to_date: bool = False
) -> dict[str, Any]:
    """Fit the feature encoder on the train split (``dvc repro -s fit_encoder``)."""
    return _repro("fit_encoder", root, timeout_s, up_to_date)


@_stage_task
def train(
    root: str = ".", timeout_s: float | None = DEFAULT_TIMEOUTS_S["train"], up_to_date: bool = False
) -> dict[str, Any]:
    """Train the model (``dvc repro -s train``); a retry resumes from the last checkpoint.

    Returns the stage summary plus ``metrics``: the content of metrics/train.json.
    """
    summary = _repro("train", root, timeout_s, up_to_date)
    summary["metrics"] = read_json(ProjectPaths(Path(root)).metrics / "train.json")
    return summary


@_stage_task
def evaluate(
    root: str = ".", timeout_s: float | None = DEFAULT_TIMEOUTS_S["evaluate"], up_to_date: bool = False
) -> dict[str, Any]:
    """Compute val and test metrics with the best model (``dvc repro -s evaluate``).

    Returns the stage summary plus ``metrics``: the content of metrics/eval.json.
    """
    summary = _repro("evaluate", root, timeout_s, up_to_date)
    summary["metrics"] = read_json(ProjectPaths(Path(root)).metrics / "eval.json")
    return summary


@_stage_task
def package(
    root: str = ".", timeout_s: float | None = DEFAULT_TIMEOUTS_S["package"], up_to_date: bool = False
) -> dict[str, Any]:
    """Build the result package and its manifest (``dvc repro -s package``)."""
    return _repro("package", root, timeout_s, up_to_date)


STAGE_TASKS: dict[str, Task[..., dict[str, Any]]] = {
    "prepare": prepare,
    "fit_encoder": fit_encoder,
    "train": train,
    "evaluate": evaluate,
    "package": package,
}


@task(
    retries=DEFAULT_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_jitter_factor=0.2,
    retry_condition_fn=retry_upload,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def upload(root: str = ".") -> dict[str, Any]:
    """Upload the result package, model and config to ``upload.target`` from params.yaml.

    Not a DVC stage: it writes nothing into the project. Objects already there with the same
    sha256 are skipped, so a retry or a re-run only sends what is missing. Credentials come
    from the standard AWS chain and are never logged.
    """
    from trainflow.config import load_config
    from trainflow.storage.upload import upload_results

    paths = ProjectPaths(Path(root).resolve())
    report = upload_results(load_config(paths.params), paths)  # a relative file:// is under paths.root
    get_run_logger().info("uploaded to %s", report.location)
    return {"location": report.location, **report.to_dict()}
