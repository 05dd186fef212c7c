"""``trainflow doctor``: repair what a killed DVC process leaves behind, before DVC runs again.

A ``dvc repro`` killed (SIGKILL, OOM, a lost CI runner) at the wrong moment can leave:

- ``dvc.lock`` empty or half written, after which every ``dvc`` command fails with
  ``'./dvc.lock' validation failed``. It is restored from git ``HEAD`` when git tracks it (DVC
  then reruns the stages whose outputs differ from that commit), or removed otherwise (DVC then
  reruns the stages, or restores them from its run cache).
- ``.dvc/tmp/rwlock``, DVC's record of which process reads or writes which output, unparsable
  (DVC refuses to run) or naming processes that are gone. An unparsable one is removed; entries
  of dead processes are dropped.

Nothing is repaired while another process holds DVC's repository lock (``.dvc/tmp/lock``, an
``flock`` that the kernel releases when its holder dies, so the file itself is never stale):
the doctor takes that lock itself for the repairs, so no DVC command can start half way
through them. ``make run`` and the Prefect pipeline flows call :func:`diagnose_and_repair`
before they run DVC.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from trainflow.io import atomic_write_bytes, atomic_write_text

LOCKFILE = "dvc.lock"
REPO_LOCK = Path(".dvc") / "tmp" / "lock"
RWLOCK = Path(".dvc") / "tmp" / "rwlock"
OK = "doctor: ok"


class RepoBusy(Exception):
    """Another process holds DVC's repository lock: a DVC command is running."""


def lockfile_problem(path: Path) -> str | None:
    """Why ``dvc.lock`` at ``path`` is unusable (``"empty"``, ``"unparsable"``, ...), or None if it is fine.

    The check is DVC's own schema for lock files, so what passes here DVC accepts.
    """
    if not path.is_file():
        return None
    text = path.read_text(errors="replace")
    if not text.strip():
        return "empty"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return "unparsable"
    from dvc.schema import LOCKFILE_SCHEMA
    from voluptuous import Invalid, Schema

    try:
        Schema(LOCKFILE_SCHEMA)(data)
    except Invalid:
        return "invalid"
    return None


def _git_head_version(root: Path, name: str) -> bytes | None:
    """The file ``name`` as committed at git ``HEAD`` in ``root``, or None when git does not track it."""
    try:
        result = subprocess.run(
            ["git", "show", f"HEAD:{name}"], cwd=root, capture_output=True, stdin=subprocess.DEVNULL, check=False
        )
    except OSError:  # no git on PATH
        return None
    return result.stdout if result.returncode == 0 else None


def repair_lockfile(root: Path) -> list[str]:
    """Restore an unusable ``dvc.lock`` from git HEAD (when that version is usable) or remove it."""
    path = root / LOCKFILE
    problem = lockfile_problem(path)
    if problem is None:
        return []
    committed = _git_head_version(root, LOCKFILE)
    if committed is not None:
        atomic_write_bytes(path, committed)
        if lockfile_problem(path) is None:
            return [f"doctor: {LOCKFILE} was {problem}; restored from git HEAD"]
    path.unlink()
    return [f"doctor: {LOCKFILE} was {problem}; removed it (DVC reruns or restores from its run cache)"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _live(info: Any) -> bool:
    return isinstance(info, dict) and isinstance(info.get("pid"), int) and _pid_alive(info["pid"])


def repair_rwlock(root: Path) -> list[str]:
    """Remove an unparsable ``.dvc/tmp/rwlock``; drop its entries whose processes are gone."""
    path = root / RWLOCK
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(errors="replace"))
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except ValueError:
        path.unlink()
        return [f"doctor: {RWLOCK.as_posix()} was unparsable; removed it"]
    write = {out: info for out, info in (data.get("write") or {}).items() if _live(info)}
    read = {out: [info for info in infos if _live(info)] for out, infos in (data.get("read") or {}).items()}
    read = {out: infos for out, infos in read.items() if infos}
    dead = {info["pid"] for info in (data.get("write") or {}).values() if isinstance(info, dict)}
    dead |= {info["pid"] for infos in (data.get("read") or {}).values() for info in infos if isinstance(info, dict)}
    dead -= {info["pid"] for info in write.values()} | {info["pid"] for infos in read.values() for info in infos}
    if not dead:
        return []
    pids = ", ".join(str(pid) for pid in sorted(dead))
    if not write and not read:
        path.unlink()
        return [f"doctor: {RWLOCK.as_posix()} named only dead process(es) {pids}; removed it"]
    atomic_write_text(path, json.dumps({"write": write, "read": read}))
    return [f"doctor: {RWLOCK.as_posix()} named dead process(es) {pids}; dropped their entries"]


def _holder(path: Path) -> str:
    """The PID that DVC wrote into its lock file, for the message; ``?`` when unreadable."""
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


@contextmanager
def repo_lock(root: Path) -> Iterator[None]:
    """Hold DVC's repository lock (``.dvc/tmp/lock``) for the block; :class:`RepoBusy` if someone else does."""
    path = root / REPO_LOCK
    if not path.parent.is_dir():  # not a DVC project, or one DVC never ran in
        yield
        return
    with open(path, "a+") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RepoBusy(_holder(path)) from None
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)


def diagnose_and_repair(root: str | Path = ".") -> list[str]:
    """Check the DVC project in ``root`` and repair it; returns one line per repair, or ``["doctor: ok"]``.

    While a DVC process holds the repository lock nothing is changed and the only line says so.
    """
    root = Path(root)
    try:
        with repo_lock(root):
            lines = repair_lockfile(root) + repair_rwlock(root)
    except RepoBusy as busy:
        return [f"doctor: DVC process {busy} holds {REPO_LOCK.as_posix()}; changed nothing while it runs"]
    return lines or [OK]
