"""The one process supervisor: run a command so that no process of it outlives its caller.

Used for every child process the project supervises: ``torchrun`` and its workers
(:mod:`trainflow.training.launch`), and the ``dvc`` and stage commands of the Prefect tasks
(``tasks/``). A command is a tree of processes (``dvc repro`` starts ``trainflow train``, which
may start ``torchrun``, which starts one worker per rank); killing only its top process
leaves the rest running, holding the GPU. So each command

- runs in a session of its own (``start_new_session=True``): it leads a fresh process group,
  which a timeout or a failure in the caller stops whole (SIGTERM, ``grace_s``, SIGKILL);
  the session also keeps a terminal's Ctrl-C away from it, so the caller decides;
- gets Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``): if the caller is killed
  outright (SIGKILL, OOM) and cannot clean up, the command's leader is sent SIGTERM;
- carries a launch token in its environment (:data:`LAUNCH_TOKEN_ENV`), so that processes
  which left its group (a daemonised child) are still found and killed at the end.

Ctrl-C in the caller is passed on to the command as SIGINT, as a terminal would have: a
training stage then saves its position and exits, within ``interrupt_grace_s``.

The deadline is enforced here rather than by Prefect's ``timeout_seconds``: Prefect raises
its timeout inside the task's thread, which cannot interrupt a blocking wait and never
reaches the child processes. :class:`CommandTimeout` subclasses ``TimeoutError``, so Prefect
still records a timed-out task as ``TimedOut`` and retries it.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

LAUNCH_TOKEN_ENV = "TRAINFLOW_LAUNCH_TOKEN"
TAIL_LINES = 40
_POLL_S = 0.05
_PR_SET_PDEATHSIG = 1


# ---------------------------------------------------------------------------------------------
# Results and errors


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind: its exit code, duration and output."""

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


# ---------------------------------------------------------------------------------------------
# Starting and stopping a process tree


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent exits (no-op elsewhere).

    A launcher killed outright cannot clean up its children; this makes them go with it.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


class Supervised:
    """A command started in a session of its own, with the parent-death signal and a launch token.

    ``stdout``/``stderr`` are passed to :class:`subprocess.Popen` as they are. :meth:`stop`
    ends the whole tree; :meth:`interrupt` is Ctrl-C for it.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        stdin: int | IO[Any] | None = subprocess.DEVNULL,
        stdout: int | IO[Any] | None = None,
        stderr: int | IO[Any] | None = None,
    ) -> None:
        self.argv = tuple(argv)
        self.token = uuid.uuid4().hex
        full_env = {**(os.environ if env is None else env), LAUNCH_TOKEN_ENV: self.token}
        self.process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM),
        )
        self.pid = self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def signal_group(self, signum: int) -> bool:
        """Send ``signum`` to the command's process group; False if the group no longer exists."""
        return signal_group(self.pid, signum)

    def alive(self) -> bool:
        """True while the leader runs or any process of the group (zombies included) is left."""
        return self.process.poll() is None or signal_group(self.pid, 0)

    def _signal_and_wait(self, signum: int, grace_s: float) -> None:
        if self.signal_group(signum):
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline:
                self.process.poll()  # reap the leader, so that a zombie leader does not count
                if not signal_group(self.pid, 0):
                    break
                time.sleep(_POLL_S)

    def interrupt(self, grace_s: float) -> None:
        """Ctrl-C for the tree: SIGINT to the group, then up to ``grace_s`` s for it to end
        (what is left then is stopped by :meth:`stop`)."""
        self._signal_and_wait(signal.SIGINT, grace_s)

    def stop(self, grace_s: float) -> None:
        """SIGTERM to the group, up to ``grace_s`` s, then SIGKILL to the group and to every
        process carrying the launch token; the leader is reaped."""
        self._signal_and_wait(signal.SIGTERM, grace_s)
        self.signal_group(signal.SIGKILL)
        self.process.wait()
        kill_leftovers(self.token)


def signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to every process in group ``pgid``; False if the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):  # gone, only zombies left, or the id was reused
        return False
    return True


def processes_with_env(name: str, value: str) -> list[int]:
    """PIDs of the live processes (zombies left out) whose environment holds ``name=value``."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:  # gone, or not ours
            continue
        if state != "Z":
            found.append(int(entry.name))
    return found


def kill_leftovers(token: str, rounds: int = 50) -> None:
    """SIGKILL every process with launch ``token`` until none is left (children that are
    forked while their parent is being killed are caught by the next round)."""
    if not Path("/proc").is_dir():
        return
    for _ in range(rounds):
        pids = processes_with_env(LAUNCH_TOKEN_ENV, token)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(_POLL_S)


# ---------------------------------------------------------------------------------------------
# A command to its end


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
    """Run ``argv`` under ``cwd`` as a :class:`Supervised` tree; stream its output to ``on_line``.

    stdout and stderr are merged and kept in full (stage output is short). Raises
    :class:`CommandTimeout` after ``timeout_s`` seconds and, with ``check``,
    :class:`CommandFailed` on a non-zero exit. In every case the whole tree is gone
    when this returns or raises.
    """
    started = time.monotonic()
    child = Supervised(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: collections.deque[str] = collections.deque()
    reader = threading.Thread(target=_pump, args=(child.process, lines, on_line), daemon=True)
    reader.start()
    deadline = None if timeout_s is None else started + timeout_s
    try:
        # Short sleeps, not one blocking wait: an exception raised into this thread (a Prefect
        # cancellation, a signal handler) is delivered between two of them.
        while child.poll() is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(_POLL_S)
        timed_out = child.poll() is None
    except KeyboardInterrupt:
        child.interrupt(interrupt_grace_s)
        raise
    finally:
        # Whatever happened (timeout, error, normal exit), nothing of the tree survives:
        # a normal exit may still leave a stray child (a torchrun worker) behind.
        if child.alive():
            child.stop(grace_s)
        else:
            kill_leftovers(child.token)
        reader.join(timeout=5)
    output = "".join(lines)
    if timed_out:
        raise CommandTimeout(argv, timeout_s or 0.0, output)
    result = CommandResult(tuple(argv), child.process.returncode, time.monotonic() - started, output)
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
