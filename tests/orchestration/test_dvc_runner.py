"""The warm DVC process: many commands in one process, with the process-group rules kept."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.dvc import dvc_env
from tasks.dvc_runner import DvcRunner
from tasks.process import CommandFailed, CommandTimeout
from tests.orchestration.projects import toy_project
from tests.orchestration.test_process import read_pids, running, wait_gone

HANG = """(trap '' TERM; echo $BASHPID >> pids; sleep 300) & (echo $BASHPID >> pids; sleep 300) & wait"""


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DvcRunner]:
    root = toy_project(
        tmp_path / "toy",
        {
            "good": "echo good > good.out",
            "bad": "echo 'error: bad.key: must be positive' >&2; exit 2",
            "hang": HANG,
            "stdin": "cat > stdin.txt; echo ok > stdin.out",
            "stray": "(trap '' TERM; echo $BASHPID >> pids; exec sleep 300) & echo ok > stray.out",
        },
    )
    runner = DvcRunner(root, dvc_env(), grace_s=0.5)
    yield runner
    runner.close()
    if (root / "pids").is_file():
        assert wait_gone([int(pid) for pid in (root / "pids").read_text().split()]) == []


def test_commands_share_one_process(runner: DvcRunner) -> None:
    lines: list[str] = []
    first = runner.run(["repro", "--single-item", "good"], on_line=lines.append)
    assert "Running stage 'good'" in first.output and "Running stage 'good':" in lines
    pid = runner._process.pid if runner._process else None
    second = runner.run(["repro", "--single-item", "good"])
    assert "Stage 'good' didn't change, skipping" in second.output
    assert runner._process is not None and runner._process.pid == pid
    assert runner.run(["status", "--json"]).output.strip().splitlines()[-1].startswith("{")


def test_a_failed_command_reports_and_the_runner_goes_on(runner: DvcRunner) -> None:
    with pytest.raises(CommandFailed) as raised:
        runner.run(["repro", "--single-item", "bad"])
    assert raised.value.user_error == "error: bad.key: must be positive"
    assert raised.value.returncode != 0
    assert runner.alive
    assert runner.run(["repro", "--single-item", "good"]).returncode == 0


def test_a_timeout_stops_the_whole_group_then_a_new_runner_starts(runner: DvcRunner) -> None:
    with pytest.raises(CommandTimeout):
        runner.run(["repro", "--single-item", "hang"], timeout_s=3.0)
    assert not runner.alive
    assert wait_gone(read_pids(runner.root / "pids", 2)) == []
    assert runner.run(["repro", "--single-item", "good"]).returncode == 0


def test_an_error_in_the_caller_stops_the_group(runner: DvcRunner) -> None:
    class Cancelled(Exception):
        pass

    def cancel(signum: int, frame: object) -> None:
        raise Cancelled

    previous = signal.signal(signal.SIGALRM, cancel)
    signal.setitimer(signal.ITIMER_REAL, 3.0)
    try:
        with pytest.raises(Cancelled):
            runner.run(["repro", "--single-item", "hang"])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not runner.alive
    assert wait_gone(read_pids(runner.root / "pids", 2)) == []


def test_stages_read_no_commands_from_stdin(runner: DvcRunner) -> None:
    runner.run(["repro", "--single-item", "stdin"])
    assert (runner.root / "stdin.txt").read_text() == ""
    assert runner.run(["repro", "--single-item", "good"]).returncode == 0


def test_close_stops_what_a_stage_left_behind(runner: DvcRunner) -> None:
    runner.run(["repro", "--single-item", "stray"])
    pids = read_pids(runner.root / "pids", 1)
    assert all(running(pid) for pid in pids)  # kept while the runner serves the flow
    runner.close()
    assert wait_gone(pids) == []
