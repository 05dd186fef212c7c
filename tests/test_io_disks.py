"""Writes on disks that refuse them: read-only, full, a mount point, a file where a folder should be.

The conditions are real: tmpfs mounts (read-only, or 64 KiB and full) and bind mounts, which
need root and a kernel that lets this process mount (skipped otherwise); files placed where a
folder should be; a folder without write permission (simulated under root, which ignores
permission bits). Each disk error is a one-line :class:`WriteError` and the previous file stays intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from trainflow.io import WriteError, atomic_write, atomic_write_bytes, atomic_write_text, replace_dir


def _mount(args: list[str]) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip() or result.returncode})")


@contextlib.contextmanager
def mounted(folder: Path, *args: str) -> Iterator[Path]:
    """``mount *args folder``; unmounted afterwards. Skips the test where mounting is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount([*args, str(folder)])
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False, capture_output=True)
        if os.path.ismount(folder):
            subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def tmpfs(folder: Path, size: str = "64k") -> contextlib.AbstractContextManager[Path]:
    return mounted(folder, "-t", "tmpfs", "-o", f"size={size}", "tmpfs")


def remount_read_only(folder: Path) -> None:
    _mount(["-o", "remount,ro", str(folder)])


def fill(folder: Path) -> None:
    """Write to ``folder`` until its file system is full."""
    with contextlib.suppress(OSError), open(folder / "filler", "wb", buffering=0) as file:
        while True:
            file.write(b"\0" * 4096)


def entries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def assert_one_line(error: BaseException, *parts: str) -> None:
    message = str(error)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


# --- full disk -------------------------------------------------------------------------------


def test_full_disk_keeps_the_previous_file(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        atomic_write_text(disk / "a.json", "old")
        fill(disk)
        with pytest.raises(WriteError) as error:
            atomic_write_bytes(disk / "a.json", b"x" * 200_000)
        assert_one_line(error.value, f"{disk / 'a.json'}: cannot write file (No space left on device)", "free space")
        assert (disk / "a.json").read_text() == "old"
        assert entries(disk) == ["a.json", "filler"]


@pytest.mark.parametrize(
    "writer",
    [
        pytest.param(lambda file: torch.save({"w": torch.zeros(50_000)}, file), id="torch.save"),
        pytest.param(lambda file: np.save(file, np.zeros(50_000)), id="np.save"),
    ],
)
def test_full_disk_inside_a_writer_is_a_write_error(tmp_path: Path, writer: Callable[[object], None]) -> None:
    """torch.save reports a failed write as RuntimeError; it is still the disk's fault."""
    with tmpfs(tmp_path / "disk") as disk:
        atomic_write(disk / "ckpt.pt", lambda file: torch.save({"w": torch.ones(3)}, file))
        with pytest.raises(WriteError, match="No space left on device"):
            atomic_write(disk / "ckpt.pt", writer)  # type: ignore[arg-type]
        assert torch.equal(torch.load(disk / "ckpt.pt")["w"], torch.ones(3))
        assert entries(disk) == ["ckpt.pt"]


def test_full_disk_while_building_a_folder_keeps_the_previous_folder(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        with replace_dir(disk / "results") as staging:
            (staging / "v1.txt").write_text("1")
        fill(disk)
        with pytest.raises(WriteError) as error, replace_dir(disk / "results") as staging:
            atomic_write_bytes(staging / "big.bin", b"x" * 200_000)
        assert_one_line(error.value, f"{disk / 'results' / 'big.bin'}: cannot write file (No space left on device)")
        assert entries(disk / "results") == ["v1.txt"]
        assert entries(disk) == ["filler", "results"]


def test_full_disk_in_a_plain_copy_inside_replace_dir(tmp_path: Path) -> None:
    """A write that does not go through atomic_write (shutil.copyfile) still names the folder."""
    import shutil

    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 200_000)
    with tmpfs(tmp_path / "disk") as disk:
        with pytest.raises(WriteError) as error, replace_dir(disk / "results") as staging:
            shutil.copyfile(source, staging / "big.bin")
        assert_one_line(error.value, f"{disk / 'results'}: cannot write folder (No space left on device)")
        assert entries(disk) == []


# --- read-only -------------------------------------------------------------------------------


def test_read_only_file_system(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        atomic_write_text(disk / "a.json", "old")
        with replace_dir(disk / "out") as staging:
            (staging / "v1.txt").write_text("1")
        remount_read_only(disk)
        with pytest.raises(WriteError) as error:
            atomic_write_text(disk / "a.json", "new")
        assert_one_line(error.value, f"{disk / 'a.json'}: cannot write file (Read-only file system)", "read-write")
        with pytest.raises(WriteError, match="Read-only file system"), replace_dir(disk / "out") as staging:
            raise AssertionError("not reached: the staging folder cannot be created")
        assert (disk / "a.json").read_text() == "old"
        assert entries(disk / "out") == ["v1.txt"]


# --- mount points ----------------------------------------------------------------------------


def test_replace_dir_on_a_mount_point_replaces_its_contents(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "volume", size="1m") as volume:
        (volume / "old.txt").write_text("old")
        (volume / "sub").mkdir()
        (volume / "sub" / "f.txt").write_text("f")
        with replace_dir(volume) as staging:
            assert staging.parent == volume  # staged on the volume's own file system
            (staging / "new.txt").write_text("new")
        assert os.path.ismount(volume)
        assert entries(volume) == ["new.txt"]

        with pytest.raises(ValueError), replace_dir(volume) as staging:
            (staging / "newer.txt").write_text("x")
            raise ValueError("stage failed")
        assert entries(volume) == ["new.txt"]


def test_replace_dir_on_a_bind_mount_falls_back_when_the_rename_is_busy(tmp_path: Path) -> None:
    """A bind mount of a folder on the same disk is not seen by os.path.ismount: the rename
    fails with EBUSY, and the staged folder is moved in entry by entry."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "old.txt").write_text("old")
    with mounted(tmp_path / "volume", "--bind", str(source)) as volume:
        with replace_dir(volume) as staging:
            (staging / "new.txt").write_text("new")
            (staging / "d").mkdir()
            (staging / "d" / "g.txt").write_text("g")
        assert entries(volume) == ["d", "new.txt"]
        assert (volume / "d" / "g.txt").read_text() == "g"
    assert entries(source) == ["d", "new.txt"]
    assert entries(tmp_path) == ["source", "volume"]


# --- a file where a folder should be -----------------------------------------------------------


def test_a_file_where_a_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "models").write_text("not a folder")
    with pytest.raises(WriteError) as error:
        atomic_write_text(tmp_path / "models" / "checkpoints" / "a.pt", "x")
    assert_one_line(error.value, f"{tmp_path / 'models'} is a file where a folder is expected", "move or delete it")
    with pytest.raises(WriteError, match="is a file where a folder is expected"), replace_dir(tmp_path / "models"):
        raise AssertionError("not reached")
    with (
        pytest.raises(WriteError, match="is a file where a folder is expected"),
        replace_dir(tmp_path / "models" / "results"),
    ):
        raise AssertionError("not reached")
    assert (tmp_path / "models").read_text() == "not a folder"
    assert entries(tmp_path) == ["models"]


def test_a_folder_where_the_file_should_be(tmp_path: Path) -> None:
    (tmp_path / "best.pt").mkdir()
    with pytest.raises(WriteError) as error:
        atomic_write_text(tmp_path / "best.pt", "x")
    assert_one_line(error.value, f"{tmp_path / 'best.pt'}: cannot write file", "a folder is in the way")
    assert entries(tmp_path) == ["best.pt"]


# --- permissions -------------------------------------------------------------------------------


def test_no_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder this user may not write. Root ignores permission bits (and this interpreter is
    not reachable by other users), so under root the refusal is simulated: ``mkstemp`` raises
    the EACCES that the kernel gives any other user."""
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.json").write_text("old")
    folder.chmod(0o555)
    if os.geteuid() == 0:

        def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
            raise PermissionError(errno.EACCES, "Permission denied", str(folder / ".a.json.tmp"))

        monkeypatch.setattr("trainflow.io.tempfile.mkstemp", refuse)
    try:
        with pytest.raises(WriteError) as error:
            atomic_write_text(folder / "a.json", "new")
    finally:
        folder.chmod(0o755)
    assert_one_line(error.value, f"{folder / 'a.json'}: cannot write file (Permission denied)", "chmod/chown")
    assert (folder / "a.json").read_text() == "old"
    assert entries(folder) == ["a.json"]


def test_writer_errors_that_are_not_the_disk_propagate(tmp_path: Path) -> None:
    def fail(file: object) -> None:
        raise PermissionError(13, "Permission denied", "/some/input")  # e.g. reading an input

    with pytest.raises(PermissionError):
        atomic_write(tmp_path / "a.bin", fail)
    assert entries(tmp_path) == []


# --- through the real CLI ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project after prepare, fit-encoder, train, evaluate and package (run by the CLI)."""
    import yaml

    from tests.results.tiny_project import tiny_params, write_raw
    from trainflow.cli import main

    root = tmp_path_factory.mktemp("pipeline") / "project"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    write_raw(root / "data/raw/tiny.csv", "classification")
    for stage in ("prepare", "fit-encoder", "train", "evaluate", "package"):
        assert main([stage, "--root", str(root), "--params", str(root / "params.yaml")]) == 0, stage
    return root


@pytest.fixture
def project(pipeline: Path, tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(pipeline, tmp_path / "project", symlinks=True)
    return tmp_path / "project"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@contextlib.contextmanager
def on_own_disk(folder: Path, size: str = "1m") -> Iterator[Path]:
    """``folder``'s current contents on a tmpfs of ``size`` mounted at ``folder`` (a volume)."""
    import shutil

    saved = folder.with_name(folder.name + ".saved")
    shutil.copytree(folder, saved)
    with tmpfs(folder, size):
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        yield folder


def cli(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from trainflow.cli import main

    capsys.readouterr()
    code = main([args[0], "--root", str(project), "--params", str(project / "params.yaml"), *args[1:]])
    return code, capsys.readouterr().err


def assert_error_line(code: int, err: str, *parts: str) -> None:
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in err, err


@pytest.mark.parametrize(
    ("stage", "folder", "written"),
    [
        ("prepare", "data/prepared", "data/prepared: cannot write folder"),
        ("fit-encoder", "data/encoders", "data/encoders"),
    ],
)
def test_cli_stage_on_a_read_only_volume(
    project: Path, capsys: pytest.CaptureFixture[str], stage: str, folder: str, written: str
) -> None:
    before = snapshot(project / folder)
    with on_own_disk(project / folder) as volume:
        remount_read_only(volume)
        code, err = cli(project, capsys, stage)
        assert_error_line(code, err, written, "(Read-only file system)", "mount it read-write")
        assert snapshot(volume) == before


def test_cli_train_on_a_full_disk_keeps_the_models(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(project / "models")
    with on_own_disk(project / "models") as volume:
        fill(volume)
        code, err = cli(project, capsys, "train", "train.max_epochs=5")
        assert_error_line(code, err, "cannot write checkpoint: ", "(No space left on device)", "free space")
        (volume / "filler").unlink()
        assert snapshot(volume) == before


def test_cli_package_on_a_full_disk_keeps_the_package(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(project / "results")
    with on_own_disk(project / "results") as volume:
        fill(volume)
        code, err = cli(project, capsys, "package")
        assert_error_line(code, err, f"{project / 'results'}/", "(No space left on device)")
        (volume / "filler").unlink()
        assert snapshot(volume) == before


def test_cli_package_into_a_mounted_volume(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trainflow.storage.manifest import verify_manifest

    before = snapshot(project / "results")
    with on_own_disk(project / "results") as volume:
        (volume / "stale.txt").write_text("from an older package")
        code, err = cli(project, capsys, "package")
        assert code == 0, err
        assert os.path.ismount(volume)
        assert snapshot(volume) == before  # the same package, bit for bit, and nothing else
        assert verify_manifest(volume) == []


def test_cli_package_with_a_file_in_place_of_the_folder(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    shutil.rmtree(project / "results")
    (project / "results").write_text("not a folder")
    code, err = cli(project, capsys, "package")
    assert_error_line(code, err, f"{project / 'results'} is a file where a folder is expected", "move or delete it")
    assert (project / "results").read_text() == "not a folder"
