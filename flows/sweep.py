"""The ``sweep`` flow: a sweep's trials fanned out as runs of the ``sweep-trial`` deployment.

``sweep`` opens (or resumes) the Optuna study, starts one run of the trial deployment per trial
still to run, and waits for them; every worker serving the deployment's work pool, on this
machine or another, picks runs up. A Prefect global concurrency limit (``limit_name``; set to
``concurrency_limit`` when given) bounds how many trials run at once across all workers. Each
``sweep_trial`` run asks the study (its database coordinates the workers: use a shared
SQLAlchemy ``storage`` for many machines) for the next trial and runs it exactly as
``trainflow sweep`` does (:class:`trainflow.sweep.runner.Sweep`). At the end the ranking is
written to ``.sweeps/<study>/`` and published as a Prefect markdown artifact.

  prefect --no-prompt deploy --name sweep-trial         # prefect.yaml
  prefect worker start --pool trainflow-process         # one or more, anywhere
  python -m flows.sweep                                 # or: prefect deployment run ... (sweep)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

TRIAL_DEPLOYMENT = "sweep_trial/sweep-trial"
LIMIT_NAME = "sweep-trials"


def _spec(root: str, spec: str) -> Any:
    from trainflow.sweep.spec import load_spec

    path = Path(spec) if Path(spec).is_absolute() else Path(root) / spec
    return load_spec(path, Path(root))


@flow(name="sweep_trial")
def sweep_trial(spec: str = "sweep.yaml", root: str = ".", limit_name: str = LIMIT_NAME) -> dict[str, Any] | None:
    """Run the study's next trial (if any is left) while holding one slot of ``limit_name``."""
    from prefect.concurrency.sync import concurrency

    from trainflow.sweep.runner import Sweep

    logger = get_run_logger()
    runner = Sweep(_spec(root, spec), Path(root), echo=logger.info, resume=False)
    with concurrency(limit_name, occupy=1):
        result = runner.run_one()
    return None if result is None else {"trial": result.number, "state": result.state, "value": result.value}


def _wait(flow_run_ids: list[Any], poll_s: float = 2.0) -> list[str]:
    """Block until every flow run is in a final state; their state names."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        while True:
            states = [client.read_flow_run(run_id).state for run_id in flow_run_ids]
            if all(state is not None and state.is_final() for state in states):
                return [state.name for state in states if state is not None]
            time.sleep(poll_s)


@flow(name="sweep")
def sweep(
    spec: str = "sweep.yaml",
    root: str = ".",
    deployment: str = TRIAL_DEPLOYMENT,
    concurrency_limit: int | None = None,
    limit_name: str = LIMIT_NAME,
) -> dict[str, Any]:
    """Fan the trials still to run out to ``deployment``; write and publish the ranking."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    from trainflow.sweep import ensure_ignored
    from trainflow.sweep.report import markdown, ranking_rows, write_report
    from trainflow.sweep.study import counted, open_study

    logger = get_run_logger()
    settings = _spec(root, spec)
    ensure_ignored(Path(root))
    study = open_study(settings, Path(root))  # a rerun resumes: finished trials stay finished
    remaining = settings.trials - counted(study)
    if concurrency_limit is not None:
        with get_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(limit_name, concurrency_limit)
    logger.info(f"sweep {settings.study}: {remaining} of {settings.trials} trials to run on {deployment}")
    parameters = {"spec": spec, "root": root, "limit_name": limit_name}
    runs = [run_deployment(deployment, parameters=parameters, timeout=0) for _ in range(remaining)]
    states = _wait([run.id for run in runs])
    files = write_report(settings, study, Path(root))
    table = markdown(ranking_rows(settings, study))
    create_markdown_artifact(
        markdown=f"# Sweep {settings.study}: ranking by {settings.metric} ({settings.mode})\n\n{table}",
        key=f"sweep-{settings.study.lower().replace('_', '-')}",
        description="trainflow sweep ranking",
    )
    return {"trial_runs": states, "files": {name: str(path) for name, path in files.items()}}


if __name__ == "__main__":
    sweep()
