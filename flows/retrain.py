"""The ``retrain`` flow: pull, rerun the pipeline, and keep the new model only if it is not worse.

1. ``dvc pull``: the data and the outputs the remote has (a fresh machine needs them);
2. the pipeline, stage by stage through DVC (:func:`flows.training_pipeline.run_pipeline`);
3. compare ``retrain.metric`` of metrics/eval.json with the accepted model (``baseline``: a git
   revision read through ``dvc metrics diff``, or a JSON file of accepted metrics), using
   ``retrain.mode`` and ``retrain.max_drop`` from params.yaml;
   (:func:`tasks.acceptance.decide`, which the CI retrain workflow runs as
   ``python -m tasks.acceptance``);
4. if not worse: ``dvc push`` and upload the result package; otherwise fail the run with a
   message saying by how much the metric got worse, and push and upload nothing.

This is the flow the nightly deployments in prefect.yaml and ``make serve`` schedule.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.training_pipeline import publish_run, run_pipeline, upload_package
from tasks.acceptance import decide
from tasks.versioning import accepted_metrics, dvc_pull, dvc_push, record_accepted
from trainflow.errors import TrainflowError


class RetrainRejected(TrainflowError):
    """The retrained model is worse than the accepted one by more than ``retrain.max_drop``."""


@flow(name="retrain")
def retrain(
    root: str = ".",
    overrides: dict[str, Any] | None = None,
    baseline: str = "HEAD",
    pull: bool = True,
    push: bool = True,
    upload: bool = True,
    require_remote: bool = True,
    timeouts: dict[str, float] | None = None,
    retries: int | None = None,
) -> dict[str, Any]:
    """Retrain on the latest data and params; accept, push and upload only a model that is not worse.

    Args:
        root: the project root (holding dvc.yaml and params.yaml).
        overrides: ``{"train.optimizer.lr": 0.003}``; same meaning as ``dvc exp run -S``.
        baseline: the accepted model: a git revision (``HEAD``) whose dvc.lock holds its metrics,
            or a path ending in ``.json`` (relative to ``root``) that this flow keeps up to date.
        pull: run ``dvc pull`` first.
        push: run ``dvc push`` after an accepted run.
        upload: upload the accepted run's package to ``upload.target``.
        require_remote: fail when no default DVC remote is configured; when false, pull and
            push are skipped without a remote (local data only).
        timeouts: seconds per stage (``{"train": 3600}``), also ``upload``.
        retries: retries per task (default: 2, with exponential backoff).
    """
    logger = get_run_logger()
    pulled = dvc_pull(root=root, require_remote=require_remote) if pull else None
    run = run_pipeline(root, overrides, timeouts, retries)
    accepted = accepted_metrics(root=str(run.root), baseline=baseline)
    verdict = decide(run.root / "params.yaml", accepted, run.metrics)
    logger.info(verdict.message)

    pushed = report = None
    if verdict.accepted:
        pushed = dvc_push(root=str(run.root), require_remote=require_remote) if push else None
        report = upload_package(run.root, timeouts, retries) if upload else None
        record_accepted(str(run.root), baseline, run.metrics)

    headline = ("Accepted: " if verdict.accepted else "Rejected: ") + verdict.message
    publish_run("retrain", run, report, accepted=accepted, verdict=headline)
    if not verdict.accepted:
        raise RetrainRejected(verdict.message)
    return {**run.to_dict(), "verdict": verdict.to_dict(), "pull": pulled, "push": pushed, "upload": report}
