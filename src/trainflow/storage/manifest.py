"""Manifests: the sha256 and size of every file in a folder, to verify a package anywhere.

``manifest.json`` lists each file by its POSIX path relative to the folder. It never lists
itself, and it is written last, so a folder with a manifest is a complete one.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainflow.errors import StorageError
from trainflow.io import atomic_write_json

MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """``{"sha256": ..., "size": ...}`` of one file: what a manifest records about it."""
    return {"sha256": sha256_file(path), "size": Path(path).stat().st_size}


def is_clean_name(name: object) -> bool:
    """Whether ``name`` is a plain relative POSIX path (no leading ``/``, no ``\\``, no ``.``,
    ``..`` or empty parts): the only names a manifest may list and a store may hold."""
    return isinstance(name, str) and "\\" not in name and all(part not in ("", ".", "..") for part in name.split("/"))


def build_manifest(folder: Path, **extra: Any) -> dict[str, Any]:
    """``{"files": {relpath: {"sha256": ..., "size": ...}}, **extra}`` for every file below ``folder``."""
    folder = Path(folder)
    files = {
        path.relative_to(folder).as_posix(): file_entry(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME and not path.name.startswith(".")
    }
    return {**extra, "files": files}


def manifest_of(entries: Mapping[str, Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    """The manifest of files gathered from several places: ``entries`` maps each file's key
    (its POSIX path in the package) to its :func:`file_entry`. Same layout as :func:`build_manifest`,
    so a folder holding these files under their keys verifies with :func:`verify_manifest`."""
    return {**extra, "files": {key: dict(entries[key]) for key in sorted(entries)}}


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The canonical ``manifest.json`` bytes (the format :func:`write_manifest` writes): equal
    manifests give equal bytes, so an unchanged manifest has an unchanged sha256."""
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    """The manifest in ``data`` (read from ``where``), checked before any file it lists is touched:
    a ``files`` mapping of clean relative names (see :func:`is_clean_name`) to a sha256 and a size.
    Anything else is a one-line :class:`StorageError` naming ``where`` and the entry."""
    try:
        manifest = json.loads(data)
    except ValueError:
        raise StorageError(f"{where}: not valid JSON; re-run the upload") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise StorageError(f"{where}: not a manifest (no 'files' mapping); re-run the upload")
    for name, entry in manifest["files"].items():
        if not is_clean_name(name) or name == MANIFEST_NAME:
            raise StorageError(f"{where}: refusing entry {name!r}: not a plain relative path inside the package")
        size = entry.get("size") if isinstance(entry, dict) else None
        if not (isinstance(size, int) and size >= 0 and _SHA256.match(str(entry.get("sha256")))):
            raise StorageError(f"{where}: entry {name!r} needs a hex 'sha256' and a 'size' in bytes")
    return manifest


def write_manifest(folder: Path, **extra: Any) -> dict[str, Any]:
    """Build the manifest of ``folder`` and write it to ``folder/manifest.json`` atomically."""
    manifest = build_manifest(folder, **extra)
    atomic_write_json(Path(folder) / MANIFEST_NAME, manifest)
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST_NAME).read_text())


def verify_manifest(folder: Path) -> list[str]:
    """Problems found comparing ``folder`` with its manifest; an empty list means it verifies."""
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except FileNotFoundError:
        return [f"{folder / MANIFEST_NAME}: missing"]
    problems = []
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != expected["size"]:
            problems.append(f"{name}: size {path.stat().st_size}, manifest says {expected['size']}")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems
