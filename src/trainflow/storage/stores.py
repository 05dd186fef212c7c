"""Where result packages go: a local folder (through fsspec) or an S3 bucket (:class:`S3Store`).

Both kinds answer the same calls, so uploading, skipping what is already there and downloading
work the same way against ``file://`` and ``s3://`` targets. Keys are relative POSIX paths:

- ``url(key="")``: where ``key`` lives, as a ``file://`` or ``s3://`` URL;
- ``sizes(prefix="")``: ``{key: size}`` of every object whose key starts with ``prefix``;
- ``sha256(key)``: the object's sha256 as the store knows it, None if there is no such object;
- ``put(local_path, key, entry)``: store the file whole or not at all, refusing bytes that
  differ from ``entry`` (its manifest entry: ``sha256`` and ``size``);
- ``read(key)``: the object's bytes in chunks, None if there is no such object;
- ``delete(key)``: remove the object if it exists.

Failures are one-line :class:`StorageError` messages. :func:`open_store` turns an
``upload.target`` into a store.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeAlias

from trainflow.errors import StorageError, TrainflowError
from trainflow.io import atomic_write
from trainflow.storage.s3 import S3Store

__all__ = ["ArtifactStore", "LocalStore", "S3Store", "open_store"]
_CHUNK = 1 << 20


class LocalStore:
    """Objects as files below ``root``, through fsspec's local file system. Writes are atomic."""

    def __init__(self, root: Path) -> None:
        import fsspec

        self.root = Path(root).expanduser().absolute()
        self.fs = fsspec.filesystem("file")

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def url(self, key: str = "") -> str:
        return (self.root / key).as_uri() if key else self.root.as_uri()

    def sizes(self, prefix: str = "") -> dict[str, int]:
        folder = self.root / prefix.rpartition("/")[0]
        with self._os_errors("", "cannot list"):
            found = self.fs.find(str(folder), detail=True) if folder.is_dir() else {}
        keys = {Path(path).relative_to(self.root).as_posix(): info["size"] for path, info in found.items()}
        return {key: size for key, size in keys.items() if key.startswith(prefix) and not _is_temporary(key)}

    def sha256(self, key: str) -> str | None:
        chunks = self.read(key)
        if chunks is None:
            return None
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        return digest.hexdigest()

    def put(self, local_path: Path, key: str, entry: dict[str, Any]) -> None:
        def copy(target: IO[bytes]) -> None:
            digest, size = hashlib.sha256(), 0
            with open(local_path, "rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    target.write(chunk)
            if (digest.hexdigest(), size) != (entry["sha256"], entry["size"]):
                raise StorageError(f"{local_path}: changed while being copied (its sha256 differs from the manifest)")

        with self._os_errors(key, "cannot write"):
            try:
                atomic_write(self.root / key, copy)
            except StorageError:
                raise
            except TrainflowError as error:  # io.WriteError: names the file and the reason
                raise StorageError(f"{error}; or set upload.target") from None

    def read(self, key: str) -> Iterator[bytes] | None:
        path = self.root / key
        try:
            with self._os_errors(key, "cannot read"):
                return self._chunks(self.fs.open(str(path), "rb"), key) if path.is_file() else None
        except FileNotFoundError:  # removed since is_file()
            return None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError), self._os_errors(key, "cannot delete"):
            self.fs.rm_file(str(self.root / key))

    def _chunks(self, file: IO[bytes], key: str) -> Iterator[bytes]:
        with file, self._os_errors(key, "cannot read"):
            while chunk := file.read(_CHUNK):
                yield chunk

    @contextlib.contextmanager
    def _os_errors(self, key: str, what: str) -> Iterator[None]:
        """Re-raise an OSError as a one-line StorageError (a FileNotFoundError as itself)."""
        try:
            yield
        except FileNotFoundError:
            raise
        except OSError as error:
            reason = error.strerror or error
            raise StorageError(
                f"{self.url(key)}: {what} ({reason}); check the folder's permissions or set upload.target"
            ) from None


ArtifactStore: TypeAlias = LocalStore | S3Store


def _is_temporary(key: str) -> bool:
    """One of :func:`atomic_write`'s temporary files (``.name.XXXX.tmp``), not a stored object."""
    name = key.rpartition("/")[2]
    return name.startswith(".") and name.endswith(".tmp")


def _reject_parent_segments(target: str, path: str, valid: str) -> None:
    """Refuse a ``..`` segment: it would move a file:// target silently outside the folder
    it names, and S3 would store it as a literal ``..`` key part that no reader expects."""
    if ".." in path.replace("\\", "/").split("/"):
        raise StorageError(f"upload.target={target!r}: '..' is not allowed in the path; use {valid}")


def open_store(target: str, root: Path | None = None, **s3_options: Any) -> ArtifactStore:
    """The store for ``target``: ``file://folder`` (relative to ``root``, default the current
    directory, or ``file:///absolute``) or ``s3://bucket/prefix``; ``s3_options`` go to
    :class:`S3Store`. A ``..`` segment in either is a :class:`StorageError` naming ``upload.target``."""
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
        return S3Store(bucket, prefix, **s3_options)
    raise StorageError(f"{target!r}: unknown upload target; use s3://bucket/prefix or file://folder")
