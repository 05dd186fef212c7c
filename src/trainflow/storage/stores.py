"""Artifact stores: where result packages are uploaded, a local folder or an S3 bucket.

Both kinds answer the same few questions (:class:`ArtifactStore`), so uploading, skipping
what is already there and verifying work the same way against ``file://`` and ``s3://``
targets. :func:`open_store` turns an ``upload.target`` string into a store.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Protocol, runtime_checkable

from trainflow.errors import StorageError
from trainflow.io import atomic_write
from trainflow.storage.keys import check_key
from trainflow.storage.manifest import file_entry
from trainflow.storage.s3 import S3Store
from trainflow.storage.s3_config import S3Settings

__all__ = ["ArtifactStore", "LocalStore", "S3Settings", "S3Store", "open_store"]


@runtime_checkable
class ArtifactStore(Protocol):
    """Objects addressed by keys (relative POSIX paths). Failures raise :class:`StorageError`."""

    def url(self, key: str = "") -> str:
        """Where ``key`` lives, as a ``file://`` or ``s3://`` URL (the store's root for ``""``)."""
        ...

    def check(self) -> None:
        """Raise a clear StorageError now if the store cannot be used (missing bucket, no access, ...)."""
        ...

    def stat(self, key: str) -> tuple[int, str | None] | None:
        """``(size, sha256 hex or None if unknown)`` of the object, or None if there is none."""
        ...

    def put_file(self, local_path: Path, key: str, sha256: str) -> None:
        """Store ``local_path``, whose content hashes to ``sha256``, as ``key``; verify it once written."""
        ...

    def get_file(self, key: str, local_path: Path) -> None:
        """Copy the object to ``local_path``, atomically."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if it exists."""
        ...


class LocalStore:
    """Objects as files below ``root`` (created on first use). Writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def url(self, key: str = "") -> str:
        return (self.root / key).as_uri() if key else self.root.as_uri()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise self._error("", "cannot create the folder", error) from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"{self.url()}: folder is not writable; choose another upload.target")

    def stat(self, key: str) -> tuple[int, str | None] | None:
        path = self._path(key)
        try:
            if not path.is_file():
                return None
            entry = file_entry(path)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._error(key, "cannot read", error) from None
        return entry["size"], entry["sha256"]

    def put_file(self, local_path: Path, key: str, sha256: str) -> None:
        path = self._path(key)
        try:
            with open(local_path, "rb") as source:
                atomic_write(path, lambda target: shutil.copyfileobj(source, target, 1 << 20))
        except OSError as error:
            raise self._error(key, "cannot write", error) from None
        written = self.stat(key)
        expected = (Path(local_path).stat().st_size, sha256)
        if written != expected:
            with contextlib.suppress(OSError):
                path.unlink()
            raise StorageError(f"{self.url(key)}: does not match {local_path} after copying; re-run")

    def get_file(self, key: str, local_path: Path) -> None:
        path = self._path(key)
        try:
            with open(path, "rb") as source:
                atomic_write(Path(local_path), lambda target: shutil.copyfileobj(source, target, 1 << 20))
        except FileNotFoundError:
            raise StorageError(f"{self.url(key)}: object not found") from None
        except OSError as error:
            raise self._error(key, "cannot read", error) from None

    def list(self, prefix: str = "") -> list[str]:
        folder = self.root / prefix.rpartition("/")[0]
        if not folder.is_dir():
            return []
        keys = (path.relative_to(self.root).as_posix() for path in folder.rglob("*") if _is_object(path))
        return sorted(key for key in keys if key.startswith(prefix))

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as error:
            raise self._error(key, "cannot delete", error) from None

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _error(self, key: str, what: str, error: OSError) -> StorageError:
        return StorageError(
            f"{self.url(key)}: {what} ({error.strerror or error}); check the folder's permissions or set upload.target"
        )


def _is_object(path: Path) -> bool:
    """A stored file, not one of :func:`atomic_write`'s temporary files (``.name.XXXX.tmp``)."""
    return path.is_file() and not (path.name.startswith(".") and path.name.endswith(".tmp"))


def _reject_parent_segments(target: str, path: str, valid: str) -> None:
    """Refuse a ``..`` segment: it would move a file:// target silently outside the folder
    it names, and S3 would store it as a literal ``..`` key part that no reader expects."""
    if ".." in path.replace("\\", "/").split("/"):
        raise StorageError(f"upload.target={target!r}: '..' is not allowed in the path; use {valid}")


def open_store(target: str, settings: S3Settings | None = None, root: Path | None = None) -> ArtifactStore:
    """The store for ``target``: ``file://folder`` (relative to ``root``, default the current
    directory, or ``file:///absolute``) or ``s3://bucket/prefix``. ``settings`` apply to S3 only.
    A ``..`` segment in either is a :class:`StorageError` naming ``upload.target``."""
    if target.startswith("file://"):
        folder = target.removeprefix("file://")
        if not folder:
            raise StorageError(f"{target!r}: missing folder; use file://folder or file:///absolute/folder")
        _reject_parent_segments(target, folder, "file://folder (inside the project) or file:///absolute/folder")
        return LocalStore(Path(root or ".") / folder)
    if target.startswith("s3://"):
        bucket, _, prefix = target.removeprefix("s3://").partition("/")
        if not bucket:
            raise StorageError(f"{target!r}: missing bucket name; use s3://bucket/prefix")
        _reject_parent_segments(target, prefix, "s3://bucket/prefix with plain folder names")
        return S3Store(bucket, prefix, settings=settings)
    raise StorageError(f"{target!r}: unknown upload target; use s3://bucket/prefix or file://folder")
