"""Objects under ``s3://bucket/prefix/`` (or an S3-compatible store), through boto3.

Settings come from botocore alone: credentials, region and endpoint from the standard AWS
chain (``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``..., ``AWS_ENDPOINT_URL`` for MinIO and the like),
attempts and retry mode from ``AWS_MAX_ATTEMPTS`` / ``AWS_RETRY_MODE`` (or the profile; the mode
defaults to ``standard`` here), plus a botocore ``Config`` and a ``TransferConfig`` that code may
pass. Nothing here reads or stores a credential.

Integrity is S3's own: every object is sent with a SHA-256 checksum that S3 checks on receipt
(the whole object for a single request, each part for a multipart upload), and the bytes sent
are the ones whose sha256 the manifest records: a single request sends the bytes it hashed, a
multipart upload reads the file through :class:`_Checked`, which fails the upload, before S3
completes it, if they differ. So nothing is read back after an upload. The sha256 is also kept
as ``x-amz-meta-sha256``, which one HEAD returns to tell an identical object from a stale one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mimetypes
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from trainflow.errors import StorageError
from trainflow.storage.s3_errors import CHECK_BUCKET, is_not_found, translate

SHA256_METADATA = "sha256"
MIB = 1 << 20


def make_client(config: Any = None) -> Any:
    """A boto3 S3 client from the standard AWS chain; ``config`` (a botocore ``Config``) is merged
    over the defaults: 5 s to connect, 30 s to read, ``standard`` retries unless AWS_RETRY_MODE
    or the profile's ``retry_mode`` says otherwise. Raises botocore's own exceptions."""
    import boto3
    import botocore.session
    from botocore.config import Config

    core = botocore.session.get_session()
    merged = Config(connect_timeout=5, read_timeout=30).merge(config or Config())
    retries = dict(merged.retries or {})
    if "mode" not in retries and "AWS_RETRY_MODE" not in os.environ and "retry_mode" not in core.get_scoped_config():
        merged = merged.merge(Config(retries={**retries, "mode": "standard"}))
    return boto3.session.Session(botocore_session=core).client("s3", config=merged)


def default_transfer() -> Any:
    """Multipart from 8 MiB in 8 MiB parts, 4 at a time (boto3's classic transfer manager)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4, preferred_transfer_client="classic"
    )


class S3Store:
    """Objects under ``s3://bucket/prefix/``; keys are POSIX paths relative to the prefix.

    ``client`` (default: :func:`make_client` with ``config``) and ``transfer`` (a boto3
    ``TransferConfig``, default :func:`default_transfer`) may be given. Every failure is raised
    as a one-line :class:`StorageError` naming the bucket, the object or the endpoint.
    """

    def __init__(self, bucket: str, prefix: str = "", *, client: Any = None, config: Any = None, transfer: Any = None):
        if not bucket:
            raise StorageError("s3://: missing bucket name; use s3://bucket/prefix")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self._client, self._config = client, config
        self.transfer = transfer if transfer is not None else default_transfer()

    def __repr__(self) -> str:
        return f"S3Store({self.url()!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._translate("create the S3 client", ""):
                self._client = make_client(self._config)
        return self._client

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._full(key)}".rstrip("/")

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """``{key: size}`` of the objects whose key starts with ``prefix``: one LIST request per
        1000 objects. Being the first request of an upload, it also reports a missing bucket,
        refused credentials or missing permissions."""
        root = f"{self.prefix}/" if self.prefix else ""
        found: dict[str, int] = {}
        with self._translate(CHECK_BUCKET, ""):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=root + prefix):
                found.update({item["Key"][len(root) :]: int(item["Size"]) for item in page.get("Contents", [])})
        return found

    def sha256(self, key: str) -> str | None:
        """The sha256 recorded with the object (one HEAD request); None if absent or not trainflow's."""
        try:
            with self._translate("read object metadata", key, allow_missing=True):
                head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except _NotFound:
            return None
        return head.get("Metadata", {}).get(SHA256_METADATA)

    def put(self, local_path: Path, key: str, entry: dict[str, Any]) -> None:
        """Upload ``local_path`` as ``key``; its bytes must have ``entry``'s sha256 and size, or
        nothing is stored and a :class:`StorageError` says the file changed."""
        local_path = Path(local_path)
        sha256, size = entry["sha256"], entry["size"]
        extra = {
            "Metadata": {SHA256_METADATA: sha256},
            "ContentType": mimetypes.guess_type(local_path.name)[0] or "application/octet-stream",
        }
        with self._translate("upload", key), open(local_path, "rb") as file:
            if size < self.transfer.multipart_threshold:
                data = file.read()
                if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
                    raise _changed(local_path)
                checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
                self.client.put_object(
                    Bucket=self.bucket, Key=self._full(key), Body=data, ChecksumSHA256=checksum, **extra
                )
            else:
                self.client.upload_fileobj(
                    _Checked(file, local_path, sha256, size),
                    self.bucket,
                    self._full(key),
                    ExtraArgs={**extra, "ChecksumAlgorithm": "SHA256"},
                    Config=self.transfer,
                )

    def read(self, key: str) -> Iterator[bytes] | None:
        """The object's bytes in chunks (one GET request); None if there is no such object."""
        try:
            with self._translate("download", key, allow_missing=True):
                body = self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"]
        except _NotFound:
            return None
        return self._chunks(body, key)

    def delete(self, key: str) -> None:
        with self._translate("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    # -----------------------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix and key else self.prefix or key

    def _chunks(self, body: Any, key: str) -> Iterator[bytes]:
        with self._translate("download", key), contextlib.closing(body):
            yield from body.iter_chunks(MIB)

    @contextlib.contextmanager
    def _translate(self, action: str, key: str, allow_missing: bool = False) -> Iterator[None]:
        """Re-raise boto errors as one-line StorageErrors naming the object and the endpoint;
        with ``allow_missing``, a 404 as :class:`_NotFound`."""
        try:
            yield
        except StorageError:
            raise
        except Exception as error:
            if allow_missing and is_not_found(error):
                raise _NotFound from None
            client = self._client
            meta = client.meta if client is not None else None
            retries = (getattr(meta.config, "retries", None) or {}) if meta is not None else {}
            raise translate(
                error,
                where=self.url(key),
                bucket=self.bucket,
                endpoint=meta.endpoint_url if meta is not None else os.environ.get("AWS_ENDPOINT_URL"),
                action=action,
                attempts=int(retries.get("total_max_attempts", 3 if retries.get("mode") != "legacy" else 5)),
            ) from None


class _NotFound(Exception):
    """The object does not exist (HTTP 404)."""


def _changed(path: Path) -> StorageError:
    return StorageError(f"{path}: changed while being uploaded (its sha256 differs from the manifest); re-run")


class _Checked:
    """``file`` read for a multipart upload: exactly ``size`` bytes, in order, which must hash to
    ``sha256``. s3transfer reads a seekable file's parts one after another before sending them,
    so raising here on the last read stops the upload before S3 completes the object."""

    def __init__(self, file: IO[bytes], path: Path, sha256: str, size: int) -> None:
        self._file, self._path, self._sha256, self._size = file, path, sha256, size
        self._digest, self._done = hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        """s3transfer measures the size by seeking to the end; report the manifest's size."""
        if whence == os.SEEK_END:
            return self._file.seek(self._size + offset)
        position = self._file.seek(offset, whence)
        if position != self._done:  # reads must stay in order for the digest to mean anything
            if position != 0:
                raise RuntimeError(f"{self._path}: unexpected seek to {position} during a multipart upload")
            self._digest, self._done = hashlib.sha256(), 0
        return position

    def read(self, amount: int = -1) -> bytes:
        wanted = self._size - self._done if amount < 0 else min(amount, self._size - self._done)
        data = self._file.read(wanted)
        self._digest.update(data)
        self._done += len(data)
        if len(data) < wanted or (self._done == self._size and self._digest.hexdigest() != self._sha256):
            raise _changed(self._path)
        return data
