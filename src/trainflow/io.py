"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Write to a temporary file in the same folder, flush and fsync, then rename over the target
(atomic on POSIX), then fsync the folder so the rename survives a power cut.

A disk that refuses the write (read-only, no permission, full, a file where a folder should
be) is a :class:`WriteError`: one line naming the path and what to do, with the previous file
or folder left exactly as it was. An output folder that is a mount point (a Docker volume)
cannot be renamed; :func:`replace_dir` then swaps its contents instead.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from trainflow.errors import TrainflowError

# Errors that only a write can cause: when one escapes a writer callback it is the disk's fault.
_WRITE_ONLY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
_KEPT = "nothing was half-written (a previous version is unchanged)"


class WriteError(TrainflowError):
    """An output file or folder cannot be written (read-only, no permission, disk full, ...)."""

    def __init__(self, message: str, path: Path, os_error: OSError) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.os_error = os_error


def _blocking_file(path: Path) -> Path | None:
    """The nearest of ``path``'s ancestors (or ``path`` itself) that exists as a non-folder."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None


def write_error(path: Path, error: OSError, kind: str = "file") -> WriteError:
    """The one-line :class:`WriteError` for ``error`` raised while writing ``path`` (a ``kind``)."""
    path = Path(path)
    code = error.errno
    reason = error.strerror or type(error).__name__
    blocker = _blocking_file(path.parent if kind == "file" else path)
    if code in (errno.ENOTDIR, errno.EEXIST) and blocker is not None:
        return WriteError(
            f"{path}: cannot write: {blocker} is a file where a folder is expected; move or delete it and re-run",
            path,
            error,
        )
    if code == errno.EISDIR:
        todo = "a folder is in the way of the file; move or delete that folder and re-run"
    elif code == errno.EROFS:
        todo = "the file system is read-only; mount it read-write (a Docker volume without :ro) and re-run"
    elif code in (errno.EACCES, errno.EPERM):
        todo = f"let this user write to {path.parent} (chmod/chown, or run as its owner) and re-run"
    elif code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        todo = f"free space on the disk holding {path.parent} (df -h) and re-run"
    elif code == errno.EBUSY:
        todo = "it is in use or a mount point; stop what uses it and re-run"
    else:
        todo = "check the disk and the folder's permissions, then re-run"
    return WriteError(f"{path}: cannot write {kind} ({reason}); {todo}; {_KEPT}", path, error)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _RecordingFile:
    """A writable file that remembers the OSError of a failed write.

    Writers such as ``torch.save`` turn a failed write into their own exception (RuntimeError);
    the recorded OSError says that the disk, not the writer, was at fault.
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._file.write(data)
        except OSError as error:
            self.error = error
            raise

    def writelines(self, lines: Iterable[Any]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as error:
            self.error = error
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


def atomic_write(path: Path, write: Callable[[IO[bytes]], Any], fsync: bool = True) -> None:
    """Call ``write(file)`` on a temporary file, then move it to ``path`` in one rename.

    A disk that refuses the write raises :class:`WriteError` naming ``path``; the previous file
    is then intact and no temporary file is left. Other exceptions of ``write`` propagate.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise write_error(path, error) from None
    recorder: _RecordingFile | None = None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as file:
            recorder = _RecordingFile(file)
            write(recorder)  # type: ignore[arg-type]  # duck-typed binary file
            recorder = None  # from here on, every OSError is the disk's
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(tmp_name, path)
        if fsync:
            _fsync_dir(path.parent)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        disk_error = _disk_error(error, recorder)
        if disk_error is not None:
            raise write_error(path, disk_error) from None
        raise


def _disk_error(error: BaseException, recorder: _RecordingFile | None) -> OSError | None:
    """The OSError to blame on the disk for ``error``, or None if ``error`` is the writer's own."""
    if recorder is None:  # raised by atomic_write's own file operations
        return error if isinstance(error, OSError) else None
    if recorder.error is not None:
        return recorder.error
    if isinstance(error, OSError) and error.errno in _WRITE_ONLY_ERRNOS:
        return error  # e.g. numpy's tofile, which writes to the descriptor directly
    return None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda file: file.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def replace_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success its contents replace ``target``'s.

    The folder is staged beside ``target`` and renamed over it. A ``target`` that is a mount
    point (a Docker volume) cannot be renamed (EBUSY): it is staged inside ``target`` instead,
    and its entries are swapped one rename each (see :func:`_swap_contents`). On any error the
    temporary folder is removed and ``target`` is left exactly as it was; a disk that refuses
    the write raises :class:`WriteError`.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise WriteError(
            f"{target}: cannot write folder: {target} is a file where a folder is expected; "
            "move or delete it and re-run",
            target,
            FileExistsError(errno.EEXIST, "File exists", str(target)),
        )
    in_place = os.path.ismount(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        where = target if in_place else target.parent
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=where))
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes 0700
    except OSError as error:
        raise write_error(target, error, "folder") from None
    body_done = False
    try:
        yield staging
        body_done = True
        if in_place:
            _swap_contents(target, staging)
        else:
            try:
                _swap(target, staging)
            except OSError as error:
                if error.errno != errno.EBUSY:
                    raise
                _swap_contents(target, staging)  # a mount point ismount() does not see (a bind mount)
    except WriteError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise _relocated(error, staging, target) from None
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        if body_done or error.errno in _WRITE_ONLY_ERRNOS:
            raise write_error(target, error, "folder") from None
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _relocated(error: WriteError, staging: Path, target: Path) -> WriteError:
    """``error`` about a file in ``staging``, told about the same file in ``target``."""
    if not error.path.is_relative_to(staging):
        return error
    return write_error(target / error.path.relative_to(staging), error.os_error)


def _swap(target: Path, staging: Path) -> None:
    """Rename ``staging`` over ``target`` (via ``.target.old``, restored if the second rename fails)."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    had_target = target.exists()
    if had_target:
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if had_target:
            os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _swap_contents(target: Path, staging: Path) -> None:
    """Replace the entries of ``target`` (a folder that cannot be renamed) by those of ``staging``.

    Staging must be on ``target``'s file system for the swap to be renames: if it is not, it is
    first copied into a hidden folder inside ``target``. The old entries are then moved into
    another hidden folder, the new ones moved in, and the old ones deleted; if a move fails,
    every entry is moved back. Each file appears whole, but a reader during the swap may see
    a mix of old and new entries: it is a short window of renames, not one atomic step.
    """
    if staging.parent != target:
        local = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target))
        try:
            shutil.copytree(staging, local, dirs_exist_ok=True)
        except BaseException:
            shutil.rmtree(local, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)
        staging = local
    try:
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", suffix=".tmp", dir=target))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for entry in sorted(target.iterdir()):
            if entry.name not in (staging.name, old.name):
                os.replace(entry, old / entry.name)
                moved_old.append(entry.name)
        for entry in sorted(staging.iterdir()):
            os.replace(entry, target / entry.name)
            moved_new.append(entry.name)
    except BaseException:
        for name in moved_new:
            with contextlib.suppress(OSError):
                os.replace(target / name, staging / name)
        for name in moved_old:
            with contextlib.suppress(OSError):
                os.replace(old / name, target / name)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)
    with contextlib.suppress(OSError):
        _fsync_dir(target)
