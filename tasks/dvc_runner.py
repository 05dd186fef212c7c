"""A warm ``dvc`` process: many DVC commands for the price of one interpreter start.

Each ``dvc`` command costs about a second before it does anything (Python, DVC's imports);
a flow runs seven or more of them (status, one repro per stage, metrics diff, push). A
:class:`DvcRunner` starts ``python -m tasks.dvc_runner`` once per project root: a process in
a session of its own that reads one command per line (a JSON list of arguments) and runs it
with DVC's own entry point, ``dvc.cli.main``, exactly as the ``dvc`` executable would. Stage
commands are its children, in its process group.

The deadline and clean-up rules of :mod:`tasks.process` hold per command: on timeout, or
on any error in the caller, the runner's whole process group (the stage's processes
included) is stopped, and the next command starts a fresh runner.

    python -m tasks.dvc_runner      # the runner itself; not meant to be started by hand
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tasks.process import CommandFailed, CommandResult, CommandTimeout, signal_group, terminate_group

#: Printed by the runner after each command: ``<MARKER> <exit code>``. The NUL byte keeps it
#: from ever matching a line that DVC or a stage prints.
MARKER = "\x00trainflow-dvc-runner-done"
_POLL_S = 0.05
INTERRUPT_GRACE_S = 60.0  # for a command to end after Ctrl-C was passed on to it


def serve() -> None:
    """The runner's loop: run each command read from stdin, then print the marker and its code."""
    from dvc.cli import main

    # Commands arrive on stdin; stage commands inherit stdin, so they get /dev/null instead.
    commands = os.fdopen(os.dup(sys.stdin.fileno()), "r")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, sys.stdin.fileno())
    os.close(devnull)
    for line in commands:
        try:
            code = main(json.loads(line))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = 255
        sys.stderr.flush()
        print(f"{MARKER} {code}", flush=True)


class DvcRunner:
    """One warm DVC process for the project at ``root``; :meth:`run` is one ``dvc`` command.

    Commands run one at a time. A process a stage leaves behind lives in the runner's group
    until :meth:`close`, which stops the whole group.
    """

    def __init__(self, root: str | Path, env: Mapping[str, str], grace_s: float = 10.0) -> None:
        self.root = Path(root)
        self.env = dict(env)
        self.grace_s = grace_s
        self._process: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> subprocess.Popen[bytes]:
        self._lines = queue.Queue()
        process = subprocess.Popen(
            [sys.executable, "-m", "tasks.dvc_runner"],
            cwd=self.root,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=_pump, args=(process, self._lines), daemon=True).start()
        self._process = process
        return process

    def run(
        self,
        args: Sequence[str],
        timeout_s: float | None = None,
        on_line: Callable[[str], None] | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Run ``dvc ARGS``; same contract as :func:`tasks.process.run_command`."""
        argv = ("dvc", *args)
        with self._lock:
            process = self._process if self.alive else self._start()
            assert process is not None and process.stdin is not None
            started = time.monotonic()
            deadline = None if timeout_s is None else started + timeout_s
            output: list[str] = []
            code: int | None = None
            try:
                process.stdin.write((json.dumps(list(args)) + "\n").encode())
                process.stdin.flush()
                while code is None:
                    if deadline is not None and time.monotonic() >= deadline:
                        self._stop()
                        raise CommandTimeout(argv, timeout_s or 0.0, "".join(output))
                    try:
                        line = self._lines.get(timeout=_POLL_S)
                    except queue.Empty:
                        continue
                    if line is None:  # the runner died (killed from outside, or crashed)
                        code = process.wait()
                        code = code if code != 0 else 255
                    elif line.startswith(MARKER):
                        code = int(line.split()[-1])
                    else:
                        output.append(line)
                        if on_line is not None:
                            on_line(line.rstrip("\n"))
            except CommandTimeout:
                raise
            except KeyboardInterrupt:
                self._finish_after_interrupt(process, on_line)
                raise
            except BaseException:
                self._stop()
                raise
            result = CommandResult(argv, code, time.monotonic() - started, "".join(output))
        if check and result.returncode != 0:
            raise CommandFailed(result)
        return result

    def _finish_after_interrupt(self, process: subprocess.Popen[bytes], on_line: Callable[[str], None] | None) -> None:
        """Ctrl-C in the caller: pass it on to the runner's group as SIGINT, as a terminal would (a
        training stage saves its position and exits), let the command end (its output still
        streamed), then stop the runner. A second Ctrl-C stops it at once."""
        signal_group(process.pid, signal.SIGINT)
        deadline = time.monotonic() + INTERRUPT_GRACE_S
        with contextlib.suppress(KeyboardInterrupt):
            while time.monotonic() < deadline:
                try:
                    line = self._lines.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if line is None or line.startswith(MARKER):
                    break
                if on_line is not None:
                    on_line(line.rstrip("\n"))
        self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            terminate_group(process, self.grace_s)

    def close(self) -> None:
        """End the runner: it exits at the end of its input; its group is then cleaned up."""
        with self._lock:
            process = self._process
            if process is None:
                return
            if process.poll() is None and process.stdin is not None:
                process.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=self.grace_s)
            self._stop()


def _pump(process: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for raw in iter(process.stdout.readline, b""):
        lines.put(raw.decode(errors="replace"))
    lines.put(None)


_runners: dict[Path, DvcRunner] = {}
_runners_lock = threading.Lock()


def runner_for(root: str | Path, env: Mapping[str, str]) -> DvcRunner:
    """The runner of the project at ``root`` in this process, created on first use."""
    key = Path(root).resolve()
    with _runners_lock:
        runner = _runners.get(key)
        if runner is None:
            runner = _runners[key] = DvcRunner(key, env)
        return runner


@atexit.register
def close_runners(root: Path | None = None) -> None:
    """End the runner of ``root``, or every runner of this process (also done at exit)."""
    key = None if root is None else Path(root).resolve()
    with _runners_lock:
        closing = [runner for path, runner in _runners.items() if key is None or path == key]
        for runner in closing:
            del _runners[runner.root]
    for runner in closing:
        runner.close()


if __name__ == "__main__":
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    serve()
