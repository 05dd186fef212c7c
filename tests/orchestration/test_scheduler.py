"""The Prefect server's scheduler creates the nightly flow runs of both ways to deploy retrain.

A deployment only runs if the server's scheduler service turns its schedule into ``Scheduled``
flow runs; a scheduler that fails every loop (as Prefect 3.8's did with SQLAlchemy 2.1) leaves
the deployment registered but never run, which registration checks alone do not notice. Both
tests use the session's real server, whose scheduler loops every few seconds (see
tests/fixtures/prefect.py).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound

from flows.serve import DEPLOYMENT_NAME
from tests.fixtures.prefect import prefect_env
from tests.orchestration.projects import env, pipeline_project, run
from trainflow.training.supervisor import Supervised

pytestmark = pytest.mark.e2e
PREFECT = str(Path(sys.executable).with_name("prefect"))
# A bound on the polling, so that a scheduler that never schedules fails the test instead of hanging it.
_SCHEDULER_DEADLINE_S = 180.0


def scheduled_runs(client: SyncPrefectClient, deployment_id: UUID) -> list[FlowRun]:
    """The flow runs of the deployment that are in state SCHEDULED."""
    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
        ),
    )


def wait_for_scheduled_runs(client: SyncPrefectClient, deployment_id: UUID, alive: Supervised | None = None):
    """Poll the API until the scheduler has created Scheduled runs of the deployment; return them."""
    deadline = time.monotonic() + _SCHEDULER_DEADLINE_S
    while not (runs := scheduled_runs(client, deployment_id)):
        assert alive is None or alive.poll() is None, f"the serving process exited with {alive.poll()}"
        assert time.monotonic() < deadline, f"no Scheduled flow run of {deployment_id} after {_SCHEDULER_DEADLINE_S} s"
        time.sleep(1.0)
    return runs


def assert_nightly(runs: list[FlowRun]) -> None:
    """Every run is scheduled at 03:00 UTC, on different nights (the nightly cron)."""
    times = sorted(flow_run.expected_start_time for flow_run in runs)
    assert all((t.hour, t.minute, t.utcoffset().total_seconds()) == (3, 0, 0) for t in times), times
    assert len({t.date() for t in times}) == len(times), times


def test_the_scheduler_creates_nightly_runs_of_the_prefect_yaml_deployment(tmp_path: Path, prefect_api: str) -> None:
    root = pipeline_project(tmp_path / "project")
    cli_env = prefect_env(prefect_api, tmp_path / "cli-home")
    run([PREFECT, "work-pool", "create", "trainflow-process", "--type", "process", "--overwrite"], root, cli_env)
    run([PREFECT, "--no-prompt", "deploy", "--name", "retrain-nightly"], root, cli_env)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("retrain/retrain-nightly")
        runs = wait_for_scheduled_runs(client, deployment.id)
    assert_nightly(runs)


def test_make_serve_gets_nightly_runs_from_the_scheduler(tmp_path: Path, prefect_api: str) -> None:
    log = tmp_path / "serve.log"
    name = f"{DEPLOYMENT_NAME}-scheduler-test"
    with open(log, "wb") as output:
        process = Supervised(
            [sys.executable, "-m", "flows.serve", "--root", str(tmp_path), "--no-remote", "--name", name],
            env={**env(), **prefect_env(prefect_api, tmp_path / "home")},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        with get_client(sync_client=True) as client:
            deadline = time.monotonic() + _SCHEDULER_DEADLINE_S
            deployment = None
            while deployment is None:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"{name} was not registered:\n{log.read_text()}"
                try:
                    deployment = client.read_deployment_by_name(f"retrain/{name}")
                except ObjectNotFound:
                    time.sleep(0.5)
            runs = wait_for_scheduled_runs(client, deployment.id, alive=process)
        assert_nightly(runs)
    finally:
        process.stop(grace_s=10.0)
