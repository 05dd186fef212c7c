"""Ctrl-C a command as a terminal would, and find what it left running.

The command runs in a session of its own (``start_new_session=True``), like a shell's
foreground job; :func:`interrupt_when` waits for a line of its output, then sends SIGINT to its
whole process group (what Ctrl-C does) and measures how long the command takes to exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Interrupted:
    """How an interrupted command ended: exit code, output, and seconds from SIGINT to exit."""

    returncode: int
    output: str
    exit_s: float
    signalled: bool


def interrupt_when(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], marker: str, exit_timeout_s: float = 120.0
) -> Interrupted:
    """Run ``argv``; on the first output line containing ``marker`` Ctrl-C its process group.

    Returns after the command exits; raises ``subprocess.TimeoutExpired`` (after killing the
    group) if it is still running ``exit_timeout_s`` seconds after the SIGINT.
    """
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_as_a_terminal_job,
    )
    lines: list[str] = []
    sent: list[float] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if not sent and marker in line:
                sent.append(time.monotonic())
                os.killpg(process.pid, signal.SIGINT)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        process.wait()  # the run up to the marker: as long as the command needs
        if sent:
            remaining = exit_timeout_s - (time.monotonic() - sent[0])
            process.wait(timeout=max(remaining, 0))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    reader.join(timeout=10)
    exit_s = time.monotonic() - sent[0] if sent else 0.0
    return Interrupted(process.returncode, "".join(lines), exit_s, bool(sent))


def _as_a_terminal_job() -> None:
    """Start the command with SIGINT at its default, as a shell starts a foreground job: a signal
    that this (test) process happens to ignore would otherwise be ignored by the command too,
    since ignored signals survive ``exec``, and the Ctrl-C under test would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of the live processes (zombies left out) whose command line or current
    directory contains ``text``: what a run in a temporary project left behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if state != "Z" and (text in cmdline or text in cwd):
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found
