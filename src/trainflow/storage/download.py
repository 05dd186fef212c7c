"""Fetch an uploaded result package, verified file by file against its ``manifest.json``.

The manifest is read first and checked (:func:`~trainflow.storage.manifest.parse_manifest`):
only plain relative names inside the package are accepted. Every file it lists is streamed into
a staging folder beside ``dest`` while its sha256 is computed, compared with the manifest, and
the folder is renamed into place only when all of them match, so ``dest`` is never half done.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from trainflow.errors import StorageError
from trainflow.io import replace_dir
from trainflow.storage.manifest import MANIFEST_NAME, parse_manifest
from trainflow.storage.stores import ArtifactStore, LocalStore, S3Store


def package_store(url: str) -> ArtifactStore:
    """The store rooted at a package: ``s3://bucket/prefix/<id>/``, ``file://…/<id>/`` or a folder."""
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return S3Store(bucket, prefix)
    return LocalStore(Path(url.removeprefix("file://")))


def download_package(url: str, dest: Path) -> Path:
    """Download the package at ``url`` (see :func:`package_store`) into ``dest`` and return it.

    ``dest`` then holds ``manifest.json`` and every file it lists, each checked against its
    sha256 and size; a previous ``dest`` is replaced only once all of them are. A missing or
    differing file, a missing manifest or a manifest entry outside the package is a one-line
    :class:`StorageError` naming it, and ``dest`` is left as it was.
    """
    store, dest = package_store(url), Path(dest)
    data = _read_whole(store, MANIFEST_NAME)
    if data is None:
        raise StorageError(f"{store.url()}: no {MANIFEST_NAME}; the upload is incomplete or this is not a package")
    manifest = parse_manifest(data, store.url(MANIFEST_NAME))
    with replace_dir(dest) as staging:
        for name, expected in manifest["files"].items():
            try:
                found = _copy(store, name, staging / name, expected["size"])
            except OSError as error:
                raise StorageError(f"{dest / name}: cannot write ({error.strerror or error})") from None
            problem = _problem(found, expected)
            if problem:
                raise StorageError(f"{store.url(name)}: {problem}; refusing the package (re-run the upload)")
        (staging / MANIFEST_NAME).write_bytes(data)
    return dest


def _problem(found: dict[str, Any] | None, expected: dict[str, Any]) -> str:
    """How a downloaded file differs from its manifest entry ('' when it does not)."""
    if found is None:
        return "missing"
    if found["size"] > expected["size"]:  # read only up to the first byte too many
        return f"larger than the manifest's {expected['size']} bytes"
    if found["size"] < expected["size"]:
        return f"size {found['size']}, manifest says {expected['size']}"
    return "sha256 differs from the manifest" if found["sha256"] != expected["sha256"] else ""


def _read_whole(store: ArtifactStore, key: str) -> bytes | None:
    chunks = store.read(key)
    return None if chunks is None else b"".join(chunks)


def _copy(store: ArtifactStore, key: str, dest: Path, limit: int) -> dict[str, Any] | None:
    """Copy object ``key`` to the new file ``dest``; its ``{"sha256", "size"}``, or None if absent.
    Stops once past ``limit`` bytes: a larger object differs from its entry anyway."""
    chunks = store.read(key)
    if chunks is None:
        return None
    digest, size = hashlib.sha256(), 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "xb") as file:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            if size > limit:
                break
            file.write(chunk)
    return {"sha256": digest.hexdigest(), "size": size}
