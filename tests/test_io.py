"""Atomic writes: all or nothing, with the usual file permissions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trainflow.io import atomic_write, atomic_write_text, replace_dir


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def half_then_fail(file) -> None:  # type: ignore[no-untyped-def]
        file.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_outputs_get_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "f.txt", "x")
        with replace_dir(tmp_path / "out") as staging:
            (staging / "g.txt").write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_replace_dir_is_all_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with replace_dir(target) as staging:
        (staging / "v1.txt").write_text("1")
    with pytest.raises(ValueError), replace_dir(target) as staging:
        (staging / "v2.txt").write_text("2")
        raise ValueError("stage failed")
    assert [p.name for p in target.iterdir()] == ["v1.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
