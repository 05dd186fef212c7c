"""Stage tasks against a real Prefect server: DVC decides what runs; timeouts kill the whole
process tree and are retried; a user mistake is not retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from tasks.stages import pipeline_status, stage_task
from tests.orchestration.projects import run, toy_project
from tests.orchestration.test_process import read_pids, wait_gone

pytestmark = pytest.mark.usefixtures("prefect_api")

# A stage that hangs in a process tree, like torchrun and its workers stuck in a collective.
# (tests/orchestration/test_process.py covers children that ignore SIGTERM.)
HANG = """(echo $BASHPID >> pids; sleep 300) & (echo $BASHPID >> pids; sleep 300) & wait"""


def run_train(root: Path, **options: Any) -> Any:
    @flow(name="stage-under-test")
    def one_stage(root: str, timeout_s: float | None) -> dict[str, Any]:
        return stage_task("train").with_options(retry_delay_seconds=0, **options)(root=root, timeout_s=timeout_s)

    return one_stage


def task_run_states(flow_run_id: Any) -> list[str]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        return [state.name for run in runs for state in client.read_task_run_states(run.id)]


def test_dvc_runs_a_changed_stage_and_skips_an_unchanged_one(tmp_path: Path) -> None:
    root = toy_project(tmp_path / "toy", {"train": "echo trained > train.out"})
    first = run_train(root)(str(root), None)
    second = run_train(root)(str(root), None)
    assert first["ran"] is True and first["outs"]["train.out"]
    assert second["ran"] is False and second["outs"] == first["outs"]


def test_a_timeout_kills_the_tree_and_is_retried(tmp_path: Path) -> None:
    root = toy_project(tmp_path / "toy", {"train": HANG})
    state = run_train(root, retries=1)(str(root), 5.0, return_state=True)
    assert state.is_failed()
    assert "timeout" in state.message.lower() or "timed out" in str(state.result(raise_on_failure=False))
    pids = read_pids(root / "pids", 4)
    assert len(pids) == 4  # two attempts, two processes each
    assert wait_gone(pids) == []
    names = task_run_states(state.state_details.flow_run_id)
    assert names.count("Running") + names.count("Retrying") >= 2
    assert "TimedOut" in names


def test_a_user_mistake_is_not_retried(tmp_path: Path) -> None:
    command = "echo x >> attempts; echo 'error: train.max_epochs: must be >= 1' >&2; exit 2"
    root = toy_project(tmp_path / "toy", {"train": command})
    state = run_train(root, retries=2)(str(root), None, return_state=True)
    assert state.is_failed()
    assert (root / "attempts").read_text().split() == ["x"]
    assert "error: train.max_epochs: must be >= 1" in str(state.result(raise_on_failure=False))


def test_a_transient_failure_is_retried(tmp_path: Path) -> None:
    command = "echo x >> attempts; test $(wc -l < attempts) -ge 2 && echo ok > train.out"
    root = toy_project(tmp_path / "toy", {"train": command})
    result = run_train(root, retries=2)(str(root), None)
    assert result["ran"] is True
    assert (root / "attempts").read_text().split() == ["x", "x"]


def test_status_lists_every_stage_from_the_first_changed_one(tmp_path: Path) -> None:
    scripts = {name: f"echo {name} > {name}.out" for name in ("a", "b", "c")}
    root = toy_project(tmp_path / "toy", scripts)
    stages = ("a", "b", "c")
    assert pipeline_status.fn(root=str(root), stages=stages) == ["a", "b", "c"]  # nothing ran yet
    run(["dvc", "repro"], root)
    assert pipeline_status.fn(root=str(root), stages=stages) == []
    (root / "b.sh").write_text("echo changed > b.out\n")
    assert pipeline_status.fn(root=str(root), stages=stages) == ["b", "c"]
    (root / "a.out").unlink()
    assert pipeline_status.fn(root=str(root), stages=stages) == ["a", "b", "c"]
