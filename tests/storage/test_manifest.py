"""Manifests: one layout whether built from a folder or from files gathered from several places."""

from __future__ import annotations

import hashlib
from pathlib import Path

from trainflow.storage.manifest import (
    MANIFEST_NAME,
    build_manifest,
    file_entry,
    manifest_bytes,
    manifest_of,
    verify_manifest,
    write_manifest,
)


def _tree(root: Path) -> dict[str, Path]:
    files = {"a.json": b"{}\n", "plots/b.png": b"\x89PNG" * 10, "deep/er/c.txt": b"c"}
    for key, data in files.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    return {key: root / key for key in files}


def test_file_entry() -> None:
    path = Path(__file__)
    assert file_entry(path) == {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": path.stat().st_size}


def test_manifest_of_matches_build_manifest(tmp_path: Path) -> None:
    files = _tree(tmp_path / "pkg")
    gathered = manifest_of({key: file_entry(path) for key, path in files.items()}, experiment_id="e1")
    assert gathered == build_manifest(tmp_path / "pkg", experiment_id="e1")
    assert list(gathered["files"]) == sorted(files)


def test_manifest_bytes_are_what_write_manifest_writes(tmp_path: Path) -> None:
    _tree(tmp_path)
    written = write_manifest(tmp_path, note="x")
    assert manifest_bytes(written) == (tmp_path / MANIFEST_NAME).read_bytes()
    assert manifest_bytes(dict(reversed(written.items()))) == manifest_bytes(written)  # key order does not matter


def test_a_gathered_manifest_verifies_a_folder_holding_the_files(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src")
    manifest = manifest_of({key: file_entry(path) for key, path in files.items()})
    copy = tmp_path / "copy"
    for key, path in files.items():
        (copy / key).parent.mkdir(parents=True, exist_ok=True)
        (copy / key).write_bytes(path.read_bytes())
    (copy / MANIFEST_NAME).write_bytes(manifest_bytes(manifest))
    assert verify_manifest(copy) == []
    (copy / "a.json").write_bytes(b"[]\n")
    (copy / "deep/er/c.txt").unlink()
    assert verify_manifest(copy) == ["a.json: sha256 differs from the manifest", "deep/er/c.txt: missing"]
