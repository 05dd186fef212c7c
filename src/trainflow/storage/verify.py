"""Check and fetch an uploaded package through its ``manifest.json``.

An upload folder (``<target>/<experiment-id>/``) is complete when its manifest is there: the
manifest is written last and removed before any object it lists is replaced. These functions
compare the objects with the manifest, either cheaply (size and recorded sha256, one request
per object) or fully (download every object and hash it).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainflow.errors import StorageError
from trainflow.storage.keys import join_key
from trainflow.storage.manifest import MANIFEST_NAME, verify_manifest
from trainflow.storage.stores import ArtifactStore, open_store


def check_objects(store: ArtifactStore, folder: str, manifest: Mapping[str, Any]) -> list[str]:
    """Objects under ``folder`` whose size or recorded sha256 differ from ``manifest`` (one line each)."""
    problems = []
    for name, expected in manifest["files"].items():
        found = store.stat(join_key(folder, name))
        if found is None:
            problems.append(f"{name}: missing")
        elif found[0] != expected["size"]:
            problems.append(f"{name}: size {found[0]}, manifest says {expected['size']}")
        elif found[1] != expected["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems


def read_remote_manifest(store: ArtifactStore, folder: str) -> dict[str, Any] | None:
    """The manifest stored under ``folder``, or None when there is none (an incomplete upload)."""
    key = join_key(folder, MANIFEST_NAME)
    if store.stat(key) is None:
        return None
    with tempfile.TemporaryDirectory(prefix="trainflow-manifest-") as tmp:
        local = Path(tmp) / MANIFEST_NAME
        store.get_file(key, local)
        try:
            manifest = json.loads(local.read_text())
        except ValueError:
            raise StorageError(f"{store.url(key)}: not valid JSON; re-run the upload") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise StorageError(f"{store.url(key)}: not a manifest (no 'files' mapping); re-run the upload")
    return manifest


def download_package(
    target: str, experiment_id: str, dest: Path, *, store: ArtifactStore | None = None
) -> dict[str, Any]:
    """Download ``<target>/<experiment_id>/`` (every object its manifest lists, and the manifest)
    into ``dest``, verify it by sha256, and return the manifest.

    Raises :class:`StorageError` if the upload is incomplete (no manifest) or does not verify.
    """
    store = store if store is not None else open_store(target)
    manifest = read_remote_manifest(store, experiment_id)
    if manifest is None:
        raise StorageError(f"{store.url(experiment_id)}: no {MANIFEST_NAME}; the upload is incomplete, re-run it")
    dest = Path(dest)
    for name in manifest["files"]:
        store.get_file(join_key(experiment_id, name), dest / name)
    store.get_file(join_key(experiment_id, MANIFEST_NAME), dest / MANIFEST_NAME)
    problems = verify_manifest(dest)
    if problems:
        raise StorageError(f"{store.url(experiment_id)}: does not verify: {_summary(problems)}; re-run the upload")
    return manifest


def verify_upload(
    target: str, experiment_id: str, *, deep: bool = False, store: ArtifactStore | None = None
) -> list[str]:
    """Problems found comparing ``<target>/<experiment_id>/`` with its manifest; empty: it verifies.

    ``deep=False`` compares sizes and recorded sha256 (one metadata request per object);
    ``deep=True`` downloads every object into a temporary folder and hashes it.
    """
    store = store if store is not None else open_store(target)
    manifest = read_remote_manifest(store, experiment_id)
    if manifest is None:
        return [f"{MANIFEST_NAME}: missing (the upload is incomplete; re-run it)"]
    if not deep:
        return check_objects(store, experiment_id, manifest)
    with tempfile.TemporaryDirectory(prefix="trainflow-verify-") as tmp:
        for name in manifest["files"]:
            key = join_key(experiment_id, name)
            if store.stat(key) is not None:
                store.get_file(key, Path(tmp) / name)
        store.get_file(join_key(experiment_id, MANIFEST_NAME), Path(tmp) / MANIFEST_NAME)
        return verify_manifest(Path(tmp))


def _summary(problems: list[str]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more
