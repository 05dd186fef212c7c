"""prefect.yaml end to end: deploy to a process work pool, trigger a run, run it with a worker.

Everything is real and local: the Prefect server of the session, ``prefect deploy`` from
prefect.yaml in a temporary git + DVC copy of the project, ``prefect deployment run``, and a
process worker started with ``--run-once``, which runs the retrain flow (the whole pipeline
through DVC) and exits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterName,
)

from flows.serve import NIGHTLY_CRON, TIMEZONE
from tasks.artifacts import METRICS_KEY, PACKAGE_KEY, SUMMARY_KEY
from tests.fixtures.prefect import prefect_env
from tests.orchestration.projects import ROOT, pipeline_project, run

pytestmark = pytest.mark.e2e
PREFECT = str(Path(sys.executable).with_name("prefect"))


def test_prefect_yaml_schedules_retrain_nightly_on_process_and_docker_pools() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    names = [item["name"] for item in config["deployments"]]
    assert len(names) == len(set(names)), names  # `prefect deploy --name` picks one
    # Deployments of other flows may sit beside them; these two are the nightly retrain.
    deployments = {
        item["name"]: item for item in config["deployments"] if item["entrypoint"].startswith("flows/retrain.py")
    }
    assert set(deployments) == {"retrain-nightly", "retrain-nightly-docker"}
    for deployment in deployments.values():
        assert deployment["entrypoint"] == "flows/retrain.py:retrain"
        assert deployment["schedules"] == [{"cron": NIGHTLY_CRON, "timezone": TIMEZONE}]
    assert deployments["retrain-nightly"]["work_pool"]["name"] == "trainflow-process"
    docker = deployments["retrain-nightly-docker"]
    assert docker["work_pool"]["job_variables"]["image"].startswith("trainflow:")
    directory = docker["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"]
    assert f"WORKDIR {directory}" in (ROOT / "Dockerfile").read_text()


def test_the_docker_variant_deploys_to_a_docker_pool(tmp_path: Path, prefect_api: str) -> None:
    """Docker cannot run here; the deployment is registered and its job variables validated."""
    root = pipeline_project(tmp_path / "project")
    env = prefect_env(prefect_api, tmp_path / "cli-home")
    run([PREFECT, "work-pool", "create", "trainflow-docker", "--type", "docker", "--overwrite"], root, env)
    run([PREFECT, "--no-prompt", "deploy", "--name", "retrain-nightly-docker"], root, env)
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("retrain/retrain-nightly-docker")
    assert deployment.work_pool_name == "trainflow-docker"
    assert deployment.job_variables["image"] == "trainflow:latest"
    assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}]
    assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [(NIGHTLY_CRON, TIMEZONE)]


def test_deploy_run_and_work_a_nightly_retrain(tmp_path: Path, prefect_api: str) -> None:
    root = pipeline_project(tmp_path / "project")
    env = prefect_env(prefect_api, tmp_path / "cli-home")
    run([PREFECT, "work-pool", "create", "trainflow-process", "--type", "process", "--overwrite"], root, env)
    run([PREFECT, "--no-prompt", "deploy", "--name", "retrain-nightly"], root, env)
    run([PREFECT, "deployment", "run", "retrain/retrain-nightly"], root, env)
    run([PREFECT, "worker", "start", "--pool", "trainflow-process", "--type", "process", "--run-once"], root, env)

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("retrain/retrain-nightly")
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [(NIGHTLY_CRON, TIMEZONE)]
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["retrain-nightly"]))
        )
        finished = [flow_run for flow_run in runs if flow_run.state and flow_run.state.is_final()]
        assert len(finished) == 1, [(r.name, r.state) for r in runs]
        flow_run = finished[0]
        assert flow_run.state.is_completed(), flow_run.state.message
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
    by_key: dict[str, Any] = {artifact.key: artifact for artifact in artifacts}
    assert set(by_key) >= {METRICS_KEY, SUMMARY_KEY, PACKAGE_KEY}
    table = by_key[METRICS_KEY].data
    rows = json.loads(table) if isinstance(table, str) else table
    eval_metrics = json.loads((root / "metrics" / "eval.json").read_text())
    assert {"metric": "test.accuracy", "value": eval_metrics["test"]["accuracy"]} in [
        {k: row[k] for k in ("metric", "value")} for row in rows
    ]
    assert "Accepted" in by_key[SUMMARY_KEY].data
    assert "uploads" in by_key[PACKAGE_KEY].data  # the default upload.target, file://uploads
    assert (root / "uploads").is_dir()
    # the accepted run was pushed to the project's default DVC remote (a folder beside it)
    dvc = str(Path(sys.executable).with_name("dvc"))
    assert json.loads(run([dvc, "status", "--cloud", "--json"], root).splitlines()[-1]) == {}
    assert any(path.is_file() for path in (tmp_path / "trainflow-dvc-remote").rglob("*"))
