"""Run a command in its own process group, and never let that group outlive the call.

A pipeline stage is a tree of processes: ``dvc repro`` starts ``trainflow train``, which may
start ``torchrun``, which starts one worker per rank. Killing only the top process leaves the
workers running (and holding the GPU). So every command runs with ``start_new_session=True``,
which makes it the leader of a fresh process group, and on timeout, on any error in the
caller (a Prefect cancellation, Ctrl-C) and after it exits, the whole group is sent SIGTERM,
given ``grace_s`` seconds, then SIGKILL. Ctrl-C in the caller is first passed on to the group
as SIGINT, as a terminal would have (the group's own session keeps the terminal's Ctrl-C from
it): a training stage then saves its position and exits, within ``interrupt_grace_s``.

The deadline is enforced here rather than by Prefect's ``timeout_seconds``: Prefect raises
its timeout inside the task's thread, which cannot interrupt a blocking wait in a worker
thread and never reaches the child processes. :class:`CommandTimeout` subclasses
``TimeoutError``, so Prefect still records a timed-out task as ``TimedOut`` and retries it.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TAIL_LINES = 40
_POLL_S = 0.05


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind: its exit code, duration and last output lines."""

    argv: tuple[str, ...]
    returncode: int
    seconds: float
    output: str

    @property
    def tail(self) -> str:
        return "\n".join(self.output.splitlines()[-TAIL_LINES:])


class CommandFailed(RuntimeError):
    """The command exited non-zero. ``returncode`` is kept so callers can tell user errors apart."""

    def __init__(self, result: CommandResult) -> None:
        self.result = result
        self.returncode = result.returncode
        reasons = [line for line in (self.user_error, _last_error_line(result.output)) if line]
        reason = " / ".join(dict.fromkeys(reasons)) or _last_line(result.output)
        super().__init__(f"`{' '.join(result.argv)}` exited with {result.returncode}: {reason}")

    @property
    def user_error(self) -> str | None:
        """The one-line ``error: ...`` a trainflow command prints for a user mistake, if any.

        Retrying cannot fix such a mistake (a bad param, a malformed data file).
        """
        lines = [line.strip() for line in self.result.output.splitlines() if line.startswith("error: ")]
        return lines[-1] if lines else None


class CommandTimeout(TimeoutError):
    """The command ran past its deadline; its whole process group was killed."""

    def __init__(self, argv: Sequence[str], timeout_s: float, output: str) -> None:
        self.argv = tuple(argv)
        self.timeout_s = timeout_s
        self.output = output
        super().__init__(f"`{' '.join(argv)}` ran past its {timeout_s:g} s timeout; its process group was killed")


def _last_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _last_error_line(output: str) -> str | None:
    lines = [line.strip() for line in output.splitlines() if line.lstrip().upper().startswith("ERROR")]
    return lines[-1] if lines else None


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to every process in group ``pgid``; False if the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies are left, or the id was reused by someone else's group
        return False
    return True


def group_alive(pgid: int) -> bool:
    """True while any process (zombies included) is still in group ``pgid``."""
    return signal_group(pgid, 0)


def terminate_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group led by ``process``, wait up to ``grace_s`` s, then SIGKILL it.

    The leader is reaped on the way, so a zombie leader does not keep the group "alive".
    """
    _signal_and_wait(process, signal.SIGTERM, grace_s)
    signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_and_wait(process: subprocess.Popen[bytes], signum: int, grace_s: float) -> None:
    """Send ``signum`` to the group led by ``process`` and wait up to ``grace_s`` s for it to end."""
    pgid = process.pid
    if signal_group(pgid, signum):
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            process.poll()
            if not group_alive(pgid):
                break
            time.sleep(_POLL_S)


def interrupt_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """Ctrl-C for the group led by ``process``: SIGINT, then wait up to ``grace_s`` s for the
    group to end (what is left then is terminated by the caller)."""
    _signal_and_wait(process, signal.SIGINT, grace_s)


def run_command(
    argv: Sequence[str],
    cwd: str | Path = ".",
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    grace_s: float = 10.0,
    on_line: Callable[[str], None] | None = None,
    check: bool = True,
    interrupt_grace_s: float = 60.0,
) -> CommandResult:
    """Run ``argv`` in a new process group under ``cwd``; stream its output to ``on_line``.

    stdout and stderr are merged and kept in full (stage output is short). Raises
    :class:`CommandTimeout` after ``timeout_s`` seconds and, with ``check``,
    :class:`CommandFailed` on a non-zero exit. In every case the process group is gone
    when this returns or raises.
    """
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: collections.deque[str] = collections.deque()
    reader = threading.Thread(target=_pump, args=(process, lines, on_line), daemon=True)
    reader.start()
    deadline = None if timeout_s is None else started + timeout_s
    try:
        # Short sleeps, not one blocking wait: an exception raised into this thread (a Prefect
        # cancellation, a signal handler) is delivered between two of them.
        while process.poll() is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(_POLL_S)
        timed_out = process.poll() is None
    except KeyboardInterrupt:
        interrupt_group(process, interrupt_grace_s)
        raise
    finally:
        # Whatever happened (timeout, error, normal exit), nothing of the group survives:
        # a normal exit may still leave a stray child (a torchrun worker) behind.
        if process.poll() is None or group_alive(process.pid):
            terminate_group(process, grace_s)
        reader.join(timeout=5)
    output = "".join(lines)
    if timed_out:
        raise CommandTimeout(argv, timeout_s or 0.0, output)
    result = CommandResult(tuple(argv), process.returncode, time.monotonic() - started, output)
    if check and result.returncode != 0:
        raise CommandFailed(result)
    return result


def _pump(
    process: subprocess.Popen[bytes], lines: collections.deque[str], on_line: Callable[[str], None] | None
) -> None:
    assert process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        line = raw.decode(errors="replace")
        lines.append(line)
        if on_line is not None:
            on_line(line.rstrip("\n"))
    process.stdout.close()
