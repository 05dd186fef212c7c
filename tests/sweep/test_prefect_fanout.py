"""The ``sweep`` Prefect flow on a real server: trials fanned out as runs of the sweep-trial
deployment, worked by two process workers, never overlapping under a concurrency limit of one;
the ranking is published as an artifact."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from prefect.client.orchestration import get_client

from flows.sweep import sweep
from tests.fixtures.prefect import prefect_env
from tests.orchestration.projects import env as project_env
from tests.orchestration.projects import pipeline_project, run
from trainflow.training.supervisor import Supervised

pytestmark = pytest.mark.e2e
PREFECT = str(Path(sys.executable).with_name("prefect"))


def test_sweep_flow_fans_trials_out_to_two_workers_one_at_a_time(tmp_path: Path, prefect_api: str) -> None:
    root = pipeline_project(tmp_path / "project")
    spec = {
        "study": "fan",
        "search": "grid",
        "fixed": {"train.max_epochs": 1},
        "space": {"train.optimizer.lr": {"type": "choice", "values": [0.001, 0.003]}},
    }
    (root / "fan.yaml").write_text(yaml.safe_dump(spec))
    cli = {**prefect_env(prefect_api, tmp_path / "cli-home"), "PREFECT_WORKER_QUERY_SECONDS": "2"}
    run([PREFECT, "work-pool", "create", "trainflow-process", "--type", "process", "--overwrite"], root, cli)
    run([PREFECT, "--no-prompt", "deploy", "--name", "sweep-trial"], root, cli)
    workers = []
    for index in range(2):
        log = (tmp_path / f"worker-{index}.log").open("wb")
        argv = [PREFECT, "worker", "start", "--pool", "trainflow-process", "--type", "process"]
        workers.append(Supervised(argv, cwd=root, env={**project_env(), **cli}, stdout=log, stderr=log))
    try:
        result = sweep(spec="fan.yaml", root=str(root), concurrency_limit=1, limit_name="sweep-test-fan")
    finally:
        for worker in workers:
            worker.stop(grace_s=15.0)
    assert result["trial_runs"] == ["Completed", "Completed"]

    study = optuna.load_study(study_name="fan", storage=f"sqlite:///{root / '.sweeps' / 'fan' / 'study.db'}")
    trials = sorted(study.get_trials(), key=lambda t: t.datetime_start)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert {t.params["train.optimizer.lr"] for t in trials} == {0.001, 0.003}
    assert trials[1].datetime_start >= trials[0].datetime_complete  # the limit of one: never overlapping
    assert (root / ".sweeps" / "fan" / "ranking.csv").read_text().count("\n") == 3

    with get_client(sync_client=True) as client:
        artifact = client.read_latest_artifacts()
    assert any(a.key == "sweep-fan" and "| 1 |" in (a.data or "") for a in artifact)
