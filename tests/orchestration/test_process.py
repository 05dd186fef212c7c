"""run_command: a command's whole process group is gone when the call returns or raises."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainflow.training.supervisor import CommandFailed, CommandTimeout, run_command

# A process tree like a stage's: a child that ignores SIGTERM (as a busy torchrun worker may),
# its PID written to a file, and a parent that waits for it.
TREE = """
(trap '' TERM; echo $BASHPID >> "$1"; sleep 300) &
(echo $BASHPID >> "$1"; sleep 300) &
echo started
wait
"""


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_gone(pids: list[int]) -> list[int]:
    """The PIDs still running after giving a SIGKILLed process a moment to be reaped."""
    for _ in range(100):
        if not any(running(pid) for pid in pids):
            return []
        time.sleep(0.05)
    return [pid for pid in pids if running(pid)]


def read_pids(path: Path, expected: int) -> list[int]:
    for _ in range(200):
        if path.is_file() and len(path.read_text().split()) >= expected:
            break
        time.sleep(0.05)
    return [int(pid) for pid in path.read_text().split()]


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pids"
    yield path
    if path.is_file():  # never leave a test's processes behind, even when it fails
        for pid in map(int, path.read_text().split()):
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def test_output_and_exit_code(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_command([sys.executable, "-c", "print('one'); print('two')"], cwd=tmp_path, on_line=lines.append)
    assert result.returncode == 0
    assert lines == ["one", "two"]
    assert result.output == "one\ntwo\n"


def test_failure_names_the_user_error(tmp_path: Path) -> None:
    script = "echo 'Running stage'; echo 'error: train.max_epochs: must be >= 1' >&2; exit 2"
    with pytest.raises(CommandFailed) as raised:
        run_command(["bash", "-c", script], cwd=tmp_path)
    assert raised.value.returncode == 2
    assert raised.value.user_error == "error: train.max_epochs: must be >= 1"
    assert "train.max_epochs" in str(raised.value)


def test_check_false_returns_the_failure(tmp_path: Path) -> None:
    result = run_command(["bash", "-c", "exit 3"], cwd=tmp_path, check=False)
    assert result.returncode == 3


def test_timeout_kills_the_whole_group(tmp_path: Path, pid_file: Path) -> None:
    with pytest.raises(CommandTimeout) as raised:
        run_command(["bash", "-c", TREE, "tree", str(pid_file)], cwd=tmp_path, timeout_s=1.5, grace_s=0.5)
    assert isinstance(raised.value, TimeoutError)  # Prefect records it as TimedOut
    assert "started" in raised.value.output
    pids = read_pids(pid_file, 2)
    assert len(pids) == 2
    assert wait_gone(pids) == []


def test_an_error_in_the_caller_kills_the_group(tmp_path: Path, pid_file: Path) -> None:
    """A cancellation raised into the waiting thread (here by a signal handler) stops the tree."""

    class Cancelled(Exception):
        pass

    def cancel(signum: int, frame: object) -> None:
        raise Cancelled

    previous = signal.signal(signal.SIGALRM, cancel)
    signal.setitimer(signal.ITIMER_REAL, 1.5)
    try:
        with pytest.raises(Cancelled):
            run_command(["bash", "-c", TREE, "tree", str(pid_file)], cwd=tmp_path, grace_s=0.5)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert wait_gone(read_pids(pid_file, 2)) == []


def test_a_stray_child_does_not_outlive_a_finished_command(tmp_path: Path, pid_file: Path) -> None:
    script = """(trap '' TERM; echo $BASHPID >> "$1"; exec sleep 300) & sleep 0.5; echo done"""
    result = run_command(["bash", "-c", script, "stray", str(pid_file)], cwd=tmp_path, grace_s=0.5)
    assert result.returncode == 0
    assert wait_gone(read_pids(pid_file, 1)) == []


CALLER = """
import sys
from trainflow.training.supervisor import run_command
run_command(["bash", "-c", 'echo $$ >> "$1"; sleep 300', "leader", sys.argv[1]])
"""


def test_the_command_dies_with_a_caller_killed_outright(tmp_path: Path, pid_file: Path) -> None:
    """SIGKILL leaves the caller no chance to clean up: the parent-death signal stops the command."""
    import subprocess

    caller = subprocess.Popen([sys.executable, "-c", CALLER, str(pid_file)])
    try:
        (leader,) = read_pids(pid_file, 1)
        assert running(leader)
    finally:
        caller.kill()
        caller.wait()
    assert wait_gone([leader]) == []


def test_a_process_that_left_the_group_is_found_by_its_launch_token(tmp_path: Path, pid_file: Path) -> None:
    """A child that starts a session of its own escapes the group kill, not the launch token."""
    script = """setsid bash -c 'echo $$ >> "$1"; exec sleep 300' escaped "$1" & sleep 0.5; echo done"""
    result = run_command(["bash", "-c", script, "escape", str(pid_file)], cwd=tmp_path, grace_s=0.5)
    assert result.returncode == 0
    assert wait_gone(read_pids(pid_file, 1)) == []
