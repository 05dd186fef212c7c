"""The ``training_pipeline`` flow: prepare -> fit_encoder -> train -> evaluate -> package -> upload.

Each stage is a Prefect task that runs the stage through DVC, so an unchanged stage is
skipped by DVC and a changed one reruns with its dependencies' outputs in place, exactly as
under ``dvc repro``. DVC is asked once up front (``dvc status``) which stages may have
changed; those before the first changed one are reported up to date without a ``dvc repro``.

Overrides mean what they mean for ``dvc exp run -S``: they are validated first (a bad key
fails the run before any stage starts) and then written into params.yaml (see
:mod:`tasks.params`), where DVC sees them and they stay, as with ``dvc exp run``, so the
workspace always describes the outputs it holds.

Run it locally with ``python -m flows flow training_pipeline -S train.max_epochs=5``; each
run leaves a metrics table, a summary and a package link as Prefect artifacts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prefect import flow, get_run_logger

from tasks import artifacts
from tasks.dvc import pipeline_stages
from tasks.params import apply_overrides
from tasks.stages import default_timeouts, pipeline_status, stage_task
from tasks.stages import upload as upload_task
from trainflow.doctor import diagnose_and_repair
from trainflow.errors import ConfigError
from trainflow.paths import ProjectPaths


@dataclass
class PipelineRun:
    """What one pass over the stages produced: small, JSON-friendly summaries only."""

    root: Path
    experiment_id: str | None
    params_changed: dict[str, tuple[Any, Any]]
    stages: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "experiment_id": self.experiment_id,
            "params_changed": {key: list(change) for key, change in self.params_changed.items()},
            "stages": self.stages,
            "metrics": self.metrics,
        }


def run_pipeline(
    root: str | Path = ".",
    overrides: Mapping[str, Any] | None = None,
    timeouts: Mapping[str, float] | None = None,
    retries: int | None = None,
) -> PipelineRun:
    """Apply ``overrides`` to params.yaml, then run every stage task in DAG order (inside a flow).

    A :class:`~trainflow.errors.ConfigError` from the overrides is raised before any stage runs;
    a mistake already in params.yaml fails the first stage that DVC runs, with the same message
    (a user mistake: not retried). ``timeouts`` maps stage names to seconds (missing ones keep
    their default); ``retries`` replaces each stage task's retry count.
    """
    paths = ProjectPaths(Path(root).resolve())
    known = default_timeouts(paths.root)
    unknown = sorted(set(timeouts or {}) - set(known))
    if unknown:
        raise ConfigError(f"timeouts: unknown stage(s) {', '.join(unknown)}; known: {', '.join(known)}")
    # Validating overrides resolves the whole config (and imports every registered component);
    # without overrides the stages validate params.yaml themselves, and a no-op re-run stays cheap.
    changed = apply_overrides(paths.params, overrides) if overrides else {}
    run = PipelineRun(root=paths.root, experiment_id=None, params_changed=changed)
    logger = get_run_logger()
    for key, (old, new) in changed.items():
        logger.info("params.yaml: %s %r -> %r", key, old, new)
    # A killed earlier run may have left dvc.lock empty or DVC's locks stale: repaired first,
    # as `make run` does, or every DVC command below would fail.
    for line in diagnose_and_repair(paths.root):
        logger.info("%s", line)
    stages = pipeline_stages(paths.root)
    candidates = pipeline_status(root=str(paths.root), stages=stages)
    for stage in stages:
        run_task = stage_task(stage) if retries is None else stage_task(stage).with_options(retries=retries)
        timeout_s = (timeouts or {}).get(stage, known[stage])
        summary = run_task(root=str(paths.root), timeout_s=timeout_s, up_to_date=stage not in candidates)
        run.stages.append({key: value for key, value in summary.items() if key != "metrics"})
        if stage == "evaluate":
            run.metrics = summary["metrics"]
    run.experiment_id = trained_experiment_id(paths)
    return run


def trained_experiment_id(paths: ProjectPaths) -> str | None:
    """The experiment id of the current model, from the resolved config the train stage wrote."""
    path = paths.models / "config.yaml"
    if not path.is_file():
        return None
    return (yaml.safe_load(path.read_text()) or {}).get("experiment_id")


def upload_package(root: Path, timeouts: Mapping[str, float] | None, retries: int | None) -> dict[str, Any]:
    """Run the upload task with the flow's timeout and retry settings."""
    upload = upload_task if retries is None else upload_task.with_options(retries=retries)
    timeout_s = (timeouts or {}).get("upload", default_timeouts(root)["upload"])
    return upload.with_options(timeout_seconds=timeout_s)(root=str(root))


def package_line(report: Mapping[str, Any] | None) -> str | None:
    """One markdown line saying where the package went and how much was sent."""
    if report is None:
        return None
    uploaded, skipped = report.get("uploaded"), report.get("skipped")
    counts = (
        f" ({len(uploaded)} file(s) uploaded, {len(skipped)} already there)"
        if isinstance(uploaded, list) and isinstance(skipped, list)
        else ""
    )
    return f"Uploaded to `{report['location']}`{counts}."


def publish_run(
    flow_name: str,
    run: PipelineRun,
    report: Mapping[str, Any] | None,
    accepted: Mapping[str, float | None] | None = None,
    verdict: str | None = None,
) -> None:
    """Leave the run's metrics table (against ``accepted`` metrics, if any), its summary (headed
    by ``verdict``, if any) and the link to the uploaded package as Prefect artifacts."""
    summary = artifacts.summary_markdown(
        flow_name,
        run.experiment_id or "(no model)",
        run.stages,
        run.params_changed,
        run.metrics,
        baseline=accepted,
        verdict=verdict,
        package=package_line(report),
    )
    artifacts.publish(
        artifacts.metrics_rows(run.metrics, accepted),
        summary,
        link=report["location"] if report else None,
        link_text=f"result package {run.experiment_id}",
    )


@flow(name="training-pipeline")
def training_pipeline(
    root: str = ".",
    overrides: dict[str, Any] | None = None,
    upload: bool = True,
    timeouts: dict[str, float] | None = None,
    retries: int | None = None,
) -> dict[str, Any]:
    """Run the DVC pipeline stage by stage, then upload the result package.

    Args:
        root: the project root (holding dvc.yaml and params.yaml).
        overrides: ``{"train.optimizer.lr": 0.003}``; same meaning as ``dvc exp run -S``.
        upload: send the package to ``upload.target`` from params.yaml (default ``file://uploads``).
        timeouts: seconds per stage (``{"train": 3600}``), also ``upload``; the rest keep defaults.
        retries: retries per task (default: 2, with exponential backoff).
    """
    run = run_pipeline(root, overrides, timeouts, retries)
    report = upload_package(run.root, timeouts, retries) if upload else None
    publish_run("training-pipeline", run, report)
    return {**run.to_dict(), "upload": report}
