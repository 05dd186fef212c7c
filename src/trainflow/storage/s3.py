"""An artifact store in an S3 bucket (or an S3-compatible store), through boto3.

Each object carries the sha256 of its content twice: in its metadata (``x-amz-meta-sha256``,
hex), which is what :meth:`S3Store.stat` reports so that a re-run can skip identical objects
with one HEAD request, and as S3's own ``ChecksumSHA256``, which the server checks on receipt
(each part, for a multipart upload) and which :meth:`S3Store.put_file` compares with the local
file after the upload, so a corrupted or half-changed object is caught and deleted.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import mimetypes
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from trainflow.errors import StorageError
from trainflow.storage.keys import check_key
from trainflow.storage.s3_config import S3Settings, make_client, total_attempts, transfer_config
from trainflow.storage.s3_errors import CHECK_BUCKET, error_code, is_not_found, translate

SHA256_METADATA = "sha256"
_CHUNK = 1 << 20


class S3Store:
    """Objects under ``s3://bucket/prefix/``; keys are POSIX paths relative to the prefix.

    ``client`` defaults to a boto3 client built from the standard AWS chain with ``settings``
    (default: :meth:`S3Settings.from_env`). Every failure is raised as a one-line
    :class:`StorageError` naming the bucket or endpoint.
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None, settings: S3Settings | None = None) -> None:
        if not bucket:
            raise StorageError("s3://: missing bucket name; use s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.settings = settings if settings is not None else S3Settings.from_env()
        self._client = client

    def __repr__(self) -> str:
        return f"S3Store({self.url()!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._translate("create the S3 client", ""):
                self._client = make_client(self.settings)
        return self._client

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._full(key)}".rstrip("/")

    def check(self) -> None:
        """Fail early, with a clear message, if the bucket is missing or unreachable."""
        with self._translate(CHECK_BUCKET, ""):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as error:
                if error_code(error) != "403":
                    raise
                # A HEAD response has no body, hence no error code to tell refused credentials from
                # missing permissions: ask again with a request whose error response has one.
                self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
                raise

    def stat(self, key: str) -> tuple[int, str | None] | None:
        """``(size, sha256)`` of the object, ``sha256`` None if it was not written by trainflow; None if absent."""
        check_key(key)
        try:
            with self._translate("read object metadata", key, allow_missing=True):
                head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except _NotFound:
            return None
        recorded = head.get("Metadata", {}).get(SHA256_METADATA)
        return int(head["ContentLength"]), recorded if _is_sha256(recorded) else None

    def put_file(self, local_path: Path, key: str, sha256: str) -> None:
        """Upload ``local_path`` (whose content hashes to ``sha256``) as ``key``, then verify it.

        Multipart above the settings' threshold, through boto3's transfer manager.
        """
        check_key(key)
        local_path = Path(local_path)
        extra = {
            "Metadata": {SHA256_METADATA: sha256},
            "ChecksumAlgorithm": "SHA256",
            "ContentType": mimetypes.guess_type(local_path.name)[0] or "application/octet-stream",
        }
        with self._translate("upload", key):
            self.client.upload_file(
                str(local_path), self.bucket, self._full(key), ExtraArgs=extra, Config=transfer_config(self.settings)
            )
        problem = self._verify(local_path, key, sha256)
        if problem:
            with contextlib.suppress(StorageError):
                self.delete(key)
            raise StorageError(f"{self.url(key)}: does not match {local_path} after upload ({problem}); re-run")

    def get_file(self, key: str, local_path: Path) -> None:
        """Download ``key`` to ``local_path`` (written whole or not at all)."""
        check_key(key)
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{local_path.name}.", suffix=".tmp", dir=local_path.parent)
        os.close(fd)
        try:
            try:
                with self._translate("download", key, allow_missing=True):
                    self.client.download_file(self.bucket, self._full(key), tmp, Config=transfer_config(self.settings))
            except _NotFound:
                raise StorageError(f"{self.url(key)}: object not found") from None
            os.replace(tmp, local_path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def list(self, prefix: str = "") -> list[str]:
        """Keys (relative to the store's prefix) that start with ``prefix``, sorted."""
        root = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with self._translate("list objects", prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=root + prefix):
                keys.extend(item["Key"][len(root) :] for item in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        check_key(key)
        with self._translate("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    # -----------------------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix and key else self.prefix or key

    def _verify(self, local_path: Path, key: str, sha256: str) -> str:
        """What differs between the object and the local file just uploaded ('' when nothing)."""
        with self._translate("verify", key):
            head = self.client.head_object(Bucket=self.bucket, Key=self._full(key), ChecksumMode="ENABLED")
        size = local_path.stat().st_size
        if int(head["ContentLength"]) != size:
            return f"size {head['ContentLength']}, local {size}"
        if head.get("Metadata", {}).get(SHA256_METADATA) != sha256:
            return "recorded sha256 differs"
        checksum = str(head.get("ChecksumSHA256") or "")
        if not checksum:
            return ""  # a store without S3 checksums: size and recorded sha256 are all there is
        value = checksum.split("-")[0]
        if value == base64.b64encode(bytes.fromhex(sha256)).decode():
            return ""
        # A multipart object's checksum is the sha256 of its parts' sha256s.
        with self._translate("verify", key):
            first = self.client.head_object(Bucket=self.bucket, Key=self._full(key), PartNumber=1)
        if first.get("PartsCount") and value == composite_sha256(local_path, int(first["ContentLength"])):
            return ""
        return "checksum differs"

    @contextlib.contextmanager
    def _translate(self, action: str, key: str, allow_missing: bool = False) -> Iterator[None]:
        """Re-raise boto errors as StorageError; with ``allow_missing``, a 404 as ``_NotFound``."""
        try:
            yield
        except StorageError:
            raise
        except Exception as error:
            if allow_missing and is_not_found(error):
                raise _NotFound from None
            client = self._client
            raise translate(
                error,
                where=self.url(key),
                bucket=self.bucket,
                endpoint=client.meta.endpoint_url if client is not None else os.environ.get("AWS_ENDPOINT_URL"),
                action=action,
                attempts=total_attempts(client) if client is not None else 1,
            ) from None


class _NotFound(Exception):
    """The object does not exist (HTTP 404)."""


def composite_sha256(path: Path, part_size: int) -> str:
    """S3's composite ``ChecksumSHA256`` of ``path`` uploaded in parts of ``part_size`` bytes (base64)."""
    digests = hashlib.sha256()
    remaining = Path(path).stat().st_size
    with open(path, "rb") as file:
        while remaining > 0:
            part, left = hashlib.sha256(), min(part_size, remaining)
            while left > 0:
                chunk = file.read(min(_CHUNK, left))
                if not chunk:
                    raise StorageError(f"{path}: changed while being read; re-run")
                part.update(chunk)
                left -= len(chunk)
            remaining -= min(part_size, remaining)
            digests.update(part.digest())
    return base64.b64encode(digests.digest()).decode()


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
