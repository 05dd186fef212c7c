"""download_package: an uploaded package (moto's S3, file://, a plain folder), verified file by file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.fixtures.s3 import s3_client, write_sample_package
from trainflow.errors import StorageError
from trainflow.storage import download_package
from trainflow.storage.manifest import MANIFEST_NAME, manifest_bytes, sha256_file, verify_manifest
from trainflow.storage.upload import upload_files

EXP = "0123abcd4567"


@pytest.fixture(params=["s3", "file", "folder"])
def uploaded(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Path]]:
    """``(url of an uploaded package, its local files)`` for each kind of location."""
    files = write_sample_package(tmp_path / "project")
    if request.param == "s3":
        target = f"s3://{request.getfixturevalue('s3_bucket')}/team/runs"
    else:
        target = f"file://{tmp_path}/uploads"
    upload_files(files, target, EXP)
    url = f"{target}/{EXP}/" if request.param != "folder" else str(tmp_path / "uploads" / EXP)
    return url, files


def _tamper(url: str, key: str, data: bytes) -> None:
    """Replace one stored object behind trainflow's back."""
    if url.startswith("s3://"):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        s3_client(os.environ["AWS_ENDPOINT_URL"]).put_object(Bucket=bucket, Key=f"{prefix}{key}", Body=data)
    else:
        (Path(url.removeprefix("file://")) / key).write_bytes(data)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_download_returns_the_verified_folder(uploaded: tuple[str, dict[str, Path]], tmp_path: Path) -> None:
    url, files = uploaded
    folder = download_package(url, tmp_path / "pkg")
    assert folder == tmp_path / "pkg"
    assert verify_manifest(folder) == []
    assert sorted(_snapshot(folder)) == sorted([*files, MANIFEST_NAME])
    for key, path in files.items():
        assert sha256_file(folder / key) == sha256_file(path)
    assert json.loads((folder / MANIFEST_NAME).read_text())["experiment_id"] == EXP
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pkg")] == []  # no staging left


def test_a_tampered_file_is_refused_by_name_and_nothing_is_written(
    uploaded: tuple[str, dict[str, Path]], tmp_path: Path
) -> None:
    url, files = uploaded
    previous = download_package(url, tmp_path / "pkg")
    before = _snapshot(previous)
    _tamper(url, "model/best.pt", b"x" * files["model/best.pt"].stat().st_size)  # same size, other bytes

    with pytest.raises(StorageError) as error:
        download_package(url, tmp_path / "pkg")
    message = str(error.value)
    assert "model/best.pt: sha256 differs from the manifest; refusing the package" in message
    assert "\n" not in message
    assert _snapshot(tmp_path / "pkg") == before  # the earlier download is untouched
    with pytest.raises(StorageError, match=r"model/best\.pt: sha256 differs"):
        download_package(url, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    _tamper(url, "model/best.pt", files["model/best.pt"].read_bytes())
    _tamper(url, "results/metrics.json", b"{}")
    with pytest.raises(StorageError, match=r"results/metrics\.json: size 2, manifest says \d+; refusing"):
        download_package(url, tmp_path / "fresh")
    _tamper(url, "results/metrics.json", b"x" * (3 << 20))
    with pytest.raises(StorageError, match=r"results/metrics\.json: larger than the manifest's \d+ bytes; refusing"):
        download_package(url, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()


def test_a_missing_file_or_manifest_is_refused(s3_bucket: str, tmp_path: Path) -> None:
    files = write_sample_package(tmp_path / "project")
    target = f"s3://{s3_bucket}/team"
    upload_files(files, target, EXP)
    client = s3_client(os.environ["AWS_ENDPOINT_URL"])
    client.delete_object(Bucket=s3_bucket, Key=f"team/{EXP}/config.yaml")
    with pytest.raises(StorageError, match=rf"^s3://{s3_bucket}/team/{EXP}/config\.yaml: missing; refusing"):
        download_package(f"{target}/{EXP}/", tmp_path / "pkg")
    client.delete_object(Bucket=s3_bucket, Key=f"team/{EXP}/{MANIFEST_NAME}")
    incomplete = rf"^s3://{s3_bucket}/team/{EXP}: no manifest\.json; the upload is incomplete"
    with pytest.raises(StorageError, match=incomplete):
        download_package(f"{target}/{EXP}", tmp_path / "pkg")
    with pytest.raises(StorageError, match=r"no manifest\.json"):
        download_package(str(tmp_path / "nowhere"), tmp_path / "pkg")
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize(
    "name", ["../outside.txt", "/etc/passwd", "a/../../b", "a//b", "./a", "a\\..\\b", "", MANIFEST_NAME]
)
def test_manifest_entries_outside_the_package_are_refused(tmp_path: Path, name: str) -> None:
    package = tmp_path / "uploads" / EXP
    package.mkdir(parents=True)
    (package / "ok.txt").write_text("ok\n")
    entry = {"sha256": sha256_file(package / "ok.txt"), "size": 3}
    (package / MANIFEST_NAME).write_bytes(manifest_bytes({"files": {"ok.txt": entry, name: entry}}))
    with pytest.raises(StorageError, match=r"refusing entry .*: not a plain relative path inside the package") as error:
        download_package(f"file://{package}/", tmp_path / "dest" / "pkg")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "dest" / "pkg").exists() and not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not json", "not valid JSON"),
        (b'{"no": "files"}', "no 'files' mapping"),
        (b'{"files": {"a": {"size": 1}}}', "entry 'a' needs a hex 'sha256'"),
        (b'{"files": {"a": {"sha256": "' + b"0" * 64 + b'", "size": -1}}}', "entry 'a' needs"),
    ],
)
def test_a_malformed_manifest_is_refused(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / MANIFEST_NAME).write_bytes(content)
    with pytest.raises(StorageError, match=expected):
        download_package(str(tmp_path / "pkg"), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
