"""One stage at a time per workspace: ``trainflow train`` beside a ``dvc repro`` of the same
folder would have both write ``models/``.

Every stage command holds an exclusive ``flock`` on ``<root>/.trainflow.lock`` while it runs.
The kernel releases it when the process ends, however it ends, so a killed run never leaves a
stale lock. A second stage fails at once with one line naming the holder (its PID and command,
which the holder writes into the file). torchrun workers run under their launcher's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from trainflow.errors import TrainflowError

LOCK_FILE = ".trainflow.lock"


class WorkspaceBusy(TrainflowError):
    """Another trainflow stage is running in the same workspace."""

    exit_code = 3


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "another process"


@contextlib.contextmanager
def workspace_lock(root: Path, command: str) -> Iterator[None]:
    """Hold the workspace lock of ``root`` for the body; WorkspaceBusy if another process has it."""
    if "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ:  # torchrun worker: launcher holds it
        yield
        return
    path = Path(root) / LOCK_FILE
    try:
        handle = open(path, "a+")  # noqa: SIM115 - held open for the whole body
    except OSError as error:
        raise TrainflowError(f"{path}: cannot create the workspace lock ({error.strerror})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkspaceBusy(
                f"{path}: the workspace is in use by {_holder(path)}; wait for it to finish or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        handle.write(f"pid {os.getpid()} (trainflow {command}, since {started}, {sys.executable})\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
