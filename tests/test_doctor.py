"""``trainflow doctor`` in real temporary git + DVC projects, checked by what DVC does afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.orchestration.projects import BIN, commit, env, run, toy_project

pytestmark = pytest.mark.e2e
DVC = str(BIN / "dvc")
TRAINFLOW = str(BIN / "trainflow")
STAGES = {"a": "echo a > a.out", "b": "echo b > b.out"}


def doctor(root: Path) -> list[str]:
    return run([TRAINFLOW, "doctor"], root).splitlines()


def dvc_fails(args: list[str], root: Path) -> str:
    result = subprocess.run([DVC, *args], cwd=root, env=env(), capture_output=True, text=True)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr


def dead_pid() -> int:
    """The PID of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A toy DVC project that ran once, with its dvc.lock committed."""
    root = toy_project(tmp_path / "project", STAGES)
    run([DVC, "repro"], root)
    commit(root, "outputs of the first run")
    return root


def test_a_healthy_project_needs_nothing(project: Path) -> None:
    lock = (project / "dvc.lock").read_bytes()
    assert doctor(project) == ["doctor: ok"]
    assert (project / "dvc.lock").read_bytes() == lock


def test_an_empty_tracked_dvc_lock_is_restored_from_git(project: Path) -> None:
    committed = (project / "dvc.lock").read_bytes()
    (project / "dvc.lock").write_bytes(b"")
    assert "dvc.lock' validation failed" in dvc_fails(["status"], project)

    assert doctor(project) == ["doctor: dvc.lock was empty; restored from git HEAD"]
    assert (project / "dvc.lock").read_bytes() == committed
    assert "up to date" in run([DVC, "status"], project)
    assert doctor(project) == ["doctor: ok"]


def test_a_half_written_dvc_lock_is_restored_from_git(project: Path) -> None:
    committed = (project / "dvc.lock").read_bytes()
    cut = committed.index(b"md5", committed.index(b"md5") + 1) + len(b"md5")  # killed mid-line
    (project / "dvc.lock").write_bytes(committed[:cut])
    assert "dvc.lock' is invalid" in dvc_fails(["status"], project)

    [line] = doctor(project)
    assert line.startswith("doctor: dvc.lock was ") and line.endswith("; restored from git HEAD"), line
    assert "up to date" in run([DVC, "status"], project)


def test_an_empty_untracked_dvc_lock_is_removed_and_the_run_cache_restores_it(tmp_path: Path) -> None:
    root = toy_project(tmp_path / "project", STAGES)
    run([DVC, "repro"], root)  # dvc.lock written, not committed
    rebuilt = (root / "dvc.lock").read_text()
    (root / "dvc.lock").write_bytes(b"")
    dvc_fails(["status"], root)

    assert doctor(root) == ["doctor: dvc.lock was empty; removed it (DVC reruns or restores from its run cache)"]
    assert not (root / "dvc.lock").exists()
    run([DVC, "status"], root)
    assert "skipping run" in run([DVC, "repro"], root)  # restored from the run cache, not rerun
    assert (root / "dvc.lock").read_text() == rebuilt


def test_an_unparsable_rwlock_is_removed(project: Path) -> None:
    rwlock = project / ".dvc" / "tmp" / "rwlock"
    rwlock.write_text('{"write": {"')  # cut short by a kill
    assert "RWLock" in dvc_fails(["repro", "--force", "a"], project)

    assert doctor(project) == ["doctor: .dvc/tmp/rwlock was unparsable; removed it"]
    run([DVC, "repro", "--force", "a"], project)


def test_rwlock_entries_of_dead_processes_are_dropped_and_live_ones_kept(project: Path) -> None:
    rwlock = project / ".dvc" / "tmp" / "rwlock"
    gone = {"pid": dead_pid(), "cmd": "dvc repro"}
    alive = {"pid": os.getpid(), "cmd": "dvc repro b"}
    rwlock.write_text(json.dumps({"write": {str(project / "a.out"): gone}, "read": {str(project / "b.sh"): [alive]}}))

    assert doctor(project) == [f"doctor: .dvc/tmp/rwlock named dead process(es) {gone['pid']}; dropped their entries"]
    assert json.loads(rwlock.read_text()) == {"write": {}, "read": {str(project / "b.sh"): [alive]}}

    rwlock.write_text(json.dumps({"write": {str(project / "a.out"): gone}, "read": {}}))
    assert doctor(project) == [f"doctor: .dvc/tmp/rwlock named only dead process(es) {gone['pid']}; removed it"]
    assert not rwlock.exists()


def test_nothing_is_changed_while_a_dvc_process_holds_the_repo_lock(project: Path) -> None:
    (project / "dvc.lock").write_bytes(b"")
    # DVC's own repository lock, taken the way DVC takes it, by a live process
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, zc.lockfile; lock = zc.lockfile.LockFile(sys.argv[1]); print('locked', flush=True); "
            "time.sleep(3600)",
            str(project / ".dvc" / "tmp" / "lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        [line] = doctor(project)
        assert line == f"doctor: DVC process {holder.pid} holds .dvc/tmp/lock; changed nothing while it runs"
        assert (project / "dvc.lock").read_bytes() == b""
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the lock with its holder: the file left behind blocks nothing
    assert (project / ".dvc" / "tmp" / "lock").exists()
    assert doctor(project) == ["doctor: dvc.lock was empty; restored from git HEAD"]
    assert "up to date" in run([DVC, "status"], project)


def test_make_run_calls_the_doctor_before_dvc_repro() -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    commands = [line.strip() for line in recipe]
    assert commands.index("trainflow doctor") < commands.index("dvc repro"), commands


@pytest.mark.usefixtures("prefect_api")
def test_the_pipeline_flow_repairs_an_empty_dvc_lock_before_it_runs_dvc(tmp_path: Path) -> None:
    from flows.training_pipeline import training_pipeline
    from tests.orchestration.projects import pipeline_project
    from tests.orchestration.test_pipeline_flows import flow_run_logs

    root = pipeline_project(tmp_path / "project")
    (root / "dvc.lock").write_bytes(b"")  # left by a killed run; git does not track it here

    state = training_pipeline(root=str(root), upload=False, return_state=True)
    assert state.is_completed(), state.message
    assert "doctor: dvc.lock was empty; removed it (DVC reruns or restores from its run cache)" in flow_run_logs(
        state.state_details.flow_run_id
    )
    assert "up to date" in run([DVC, "status"], root)
