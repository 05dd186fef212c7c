"""Uploading a result package to S3 (moto's server) and to a folder: skip, re-upload, verify."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.s3 import s3_client, write_sample_package
from trainflow.errors import StorageError
from trainflow.storage import download_package
from trainflow.storage.manifest import MANIFEST_NAME, file_entry, sha256_file, verify_manifest
from trainflow.storage.stores import LocalStore
from trainflow.storage.upload import UploadReport, upload_files, upload_order, upload_results

EXP = "0123abcd4567"


def _hashes(files: dict[str, Path]) -> dict[str, str]:
    return {key: sha256_file(path) for key, path in files.items()}


def _verified_copy(target: str, dest: Path, experiment: str = EXP) -> Path:
    """Download ``<target>/<experiment>/`` (every file checked against the manifest's sha256)."""
    folder = download_package(f"{target}/{experiment}/", dest)
    assert verify_manifest(folder) == []
    return folder


@pytest.fixture(params=["s3", "file"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty upload target of each kind."""
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        return f"s3://{bucket}/team/runs"
    return f"file://{tmp_path}/uploads"


def test_upload_then_download_verifies(target: str, tmp_path: Path) -> None:
    files = write_sample_package(tmp_path / "project")
    before = _hashes(files)

    report = upload_files(files, target, EXP, {"note": "nightly"})

    assert isinstance(report, UploadReport)
    assert report.uploaded == [*upload_order(list(files)), MANIFEST_NAME]
    assert report.skipped == []
    assert report.location.endswith(f"/{EXP}")
    assert report.manifest["experiment_id"] == EXP
    assert report.manifest["note"] == "nightly"
    assert report.manifest["files"] == {key: file_entry(path) for key, path in files.items()}
    assert json.loads(json.dumps(report.to_dict())) == report.to_dict()

    _verified_copy(target, tmp_path / "download")
    for key, path in files.items():
        assert sha256_file(tmp_path / "download" / key) == before[key] == sha256_file(path)
    assert json.loads((tmp_path / "download" / MANIFEST_NAME).read_text()) == report.manifest


def test_objects_land_under_the_experiment_folder(s3_bucket: str, tmp_path: Path) -> None:
    files = write_sample_package(tmp_path)
    report = upload_files(files, f"s3://{s3_bucket}/team", EXP)
    assert report.location == f"s3://{s3_bucket}/team/{EXP}"
    listed = s3_client(os.environ["AWS_ENDPOINT_URL"]).list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert sorted(item["Key"] for item in listed) == sorted(f"team/{EXP}/{key}" for key in [*files, MANIFEST_NAME])


def test_second_upload_uploads_nothing(target: str, tmp_path: Path) -> None:
    files = write_sample_package(tmp_path / "project")
    upload_files(files, target, EXP)
    again = upload_files(files, target, EXP)
    assert again.uploaded == []
    assert again.skipped == sorted([*files, MANIFEST_NAME])
    _verified_copy(target, tmp_path / "download")


def test_a_modified_file_is_the_only_one_uploaded_again(target: str, tmp_path: Path) -> None:
    files = write_sample_package(tmp_path / "project")
    first = upload_files(files, target, EXP)
    files["results/metrics.json"].write_text('{"test": {"accuracy": 0.99}}\n')

    second = upload_files(files, target, EXP)

    assert second.uploaded == ["results/metrics.json", MANIFEST_NAME]
    assert MANIFEST_NAME not in second.skipped and len(second.skipped) == len(files) - 1
    assert second.manifest["files"]["results/metrics.json"] != first.manifest["files"]["results/metrics.json"]
    _verified_copy(target, tmp_path / "download")
    assert (tmp_path / "download" / "results/metrics.json").read_text() == '{"test": {"accuracy": 0.99}}\n'


def test_an_object_missing_at_the_target_is_uploaded_again(s3_bucket: str, tmp_path: Path) -> None:
    files = write_sample_package(tmp_path)
    upload_files(files, f"s3://{s3_bucket}", EXP)
    s3_client(os.environ["AWS_ENDPOINT_URL"]).delete_object(Bucket=s3_bucket, Key=f"{EXP}/model/best.pt")
    with pytest.raises(StorageError, match=rf"{EXP}/model/best\.pt: missing"):
        _verified_copy(f"s3://{s3_bucket}", tmp_path / "download")
    report = upload_files(files, f"s3://{s3_bucket}", EXP)
    assert report.uploaded == ["model/best.pt", MANIFEST_NAME]
    _verified_copy(f"s3://{s3_bucket}", tmp_path / "download")


class RecordingStore(LocalStore):
    """A LocalStore that records the order of its writes and deletes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.events: list[tuple[str, str, bool]] = []  # (operation, key, manifest present at that time)

    def put(self, local_path: Path, key: str, entry: dict[str, Any]) -> None:
        self.events.append(("put", key, self.sha256(f"{EXP}/{MANIFEST_NAME}") is not None))
        super().put(local_path, key, entry)

    def delete(self, key: str) -> None:
        self.events.append(("delete", key, self.sha256(f"{EXP}/{MANIFEST_NAME}") is not None))
        super().delete(key)


def test_manifest_is_written_last_and_removed_before_changes(tmp_path: Path) -> None:
    files = write_sample_package(tmp_path / "project")
    store = RecordingStore(tmp_path / "uploads")
    upload_files(files, "file://unused", EXP, store=store)
    assert [key for _, key, _ in store.events] == [
        f"{EXP}/{key}" for key in [*upload_order(list(files)), MANIFEST_NAME]
    ]
    assert not any(present for _, _, present in store.events)

    store.events.clear()
    files["model/best.pt"].write_bytes(b"new weights")
    upload_files(files, "file://unused", EXP, store=store)
    assert store.events == [
        ("delete", f"{EXP}/{MANIFEST_NAME}", True),
        ("put", f"{EXP}/model/best.pt", False),
        ("put", f"{EXP}/{MANIFEST_NAME}", False),
    ]


def test_interrupted_upload_leaves_no_manifest_and_a_rerun_completes_it(target: str, tmp_path: Path) -> None:
    files = write_sample_package(tmp_path / "project", n_extra=6)
    before = _hashes(files)
    done: list[str] = []

    def interrupt_after_three(key: str) -> None:
        done.append(key)
        if len(done) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upload_files(files, target, EXP, on_uploaded=interrupt_after_three)
    with pytest.raises(StorageError, match=r"no manifest\.json; the upload is incomplete"):
        download_package(f"{target}/{EXP}/", tmp_path / "download")

    report = upload_files(files, target, EXP)
    assert set(done) <= set(report.skipped)
    assert sorted(report.uploaded + report.skipped) == sorted([*files, MANIFEST_NAME])
    _verified_copy(target, tmp_path / "download")
    assert _hashes(files) == before


def test_upload_results_uploads_the_package_model_config_and_lock(s3_bucket: str, tmp_path: Path) -> None:
    from trainflow.config import experiment_id, resolve
    from trainflow.paths import ProjectPaths

    files = write_sample_package(tmp_path)
    config = resolve({"upload": {"target": f"s3://{s3_bucket}/nightly"}})

    report = upload_results(config, ProjectPaths(tmp_path))

    eid = experiment_id(config)
    assert report.location == f"s3://{s3_bucket}/nightly/{eid}"
    assert report.uploaded == [*upload_order(list(files)), MANIFEST_NAME]
    assert "results/manifest.json" in report.uploaded  # the package's own manifest travels with it
    assert report.manifest["experiment_id"] == eid
    assert "trainflow_version" in report.manifest
    assert "git_revision" not in report.manifest  # not a git checkout
    _verified_copy(config.upload.target, tmp_path / "download", eid)
    assert upload_results(config, ProjectPaths(tmp_path)).uploaded == []


def test_upload_results_without_optional_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainflow.config import resolve
    from trainflow.paths import ProjectPaths

    write_sample_package(tmp_path / "project")
    (tmp_path / "project" / "dvc.lock").unlink()
    (tmp_path / "project" / "models" / "config.yaml").unlink()
    monkeypatch.chdir(tmp_path)
    report = upload_results(resolve({"upload": {"target": "file://uploads"}}), ProjectPaths(tmp_path / "project"))
    assert "dvc.lock" not in report.manifest["files"] and "config.yaml" not in report.manifest["files"]
    assert report.location.startswith((tmp_path / "project" / "uploads").as_uri())  # relative to the project root
    assert not (tmp_path / "uploads").exists()


def test_upload_results_needs_the_pipeline_outputs(tmp_path: Path) -> None:
    from trainflow.config import resolve
    from trainflow.paths import ProjectPaths

    config = resolve({"upload": {"target": f"file://{tmp_path}/uploads"}})
    with pytest.raises(StorageError, match=r"result package not found; run the pipeline first \(dvc repro\)"):
        upload_results(config, ProjectPaths(tmp_path))
    write_sample_package(tmp_path)
    (tmp_path / "models" / "best.pt").unlink()
    with pytest.raises(StorageError, match=r"best\.pt: model snapshot not found"):
        upload_results(config, ProjectPaths(tmp_path))
    assert not (tmp_path / "uploads").exists()


def test_upload_files_rejects_bad_arguments(tmp_path: Path) -> None:
    files = write_sample_package(tmp_path)
    target = f"file://{tmp_path}/uploads"
    with pytest.raises(ValueError, match="experiment_id"):
        upload_files(files, target, "a/b")
    with pytest.raises(ValueError, match="written by upload_files"):
        upload_files({MANIFEST_NAME: files["dvc.lock"]}, target, EXP)
    with pytest.raises(ValueError, match="'files'"):
        upload_files(files, target, EXP, {"files": {}})
    with pytest.raises(StorageError, match=r"nope\.bin: file not found; nothing was uploaded"):
        upload_files({"nope.bin": tmp_path / "nope.bin"}, target, EXP)
    assert LocalStore(tmp_path / "uploads").sizes() == {}


def test_requests_per_object(s3_bucket: str, tmp_path: Path) -> None:
    """One LIST for the folder, then one PUT per new object and at most one HEAD per object
    already there; nothing is read back after an upload."""
    from trainflow.storage.s3 import S3Store, make_client

    client = make_client()
    sent: list[str] = []
    client.meta.events.register("before-send.s3", lambda **event: sent.append(event["event_name"].split(".")[-1]))
    store = S3Store(s3_bucket, "team", client=client)
    files = write_sample_package(tmp_path)
    objects = len(files) + 1  # the files and manifest.json

    upload_files(files, "unused", EXP, store=store)
    assert sorted(sent) == ["ListObjectsV2"] + ["PutObject"] * objects
    sent.clear()
    upload_files(files, "unused", EXP, store=store)
    assert sorted(sent) == ["HeadObject"] * objects + ["ListObjectsV2"]
    sent.clear()
    files["model/best.pt"].write_bytes(os.urandom(4096))  # same size: told apart by the stored sha256
    upload_files(files, "unused", EXP, store=store)
    # a HEAD per file (the manifest is replaced, not compared), the stale manifest deleted first
    assert sorted(sent) == ["DeleteObject"] + ["HeadObject"] * len(files) + ["ListObjectsV2"] + ["PutObject"] * 2


def test_upload_records_the_git_revision_of_a_checkout(tmp_path: Path) -> None:
    import subprocess

    from trainflow.config import resolve
    from trainflow.paths import ProjectPaths

    write_sample_package(tmp_path / "project")
    project = tmp_path / "project"
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for command in (["init", "-q"], ["add", "dvc.lock"], ["commit", "-qm", "lock"]):
        subprocess.run(["git", *command], cwd=project, check=True, env={**os.environ, **env})
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    config = resolve({"upload": {"target": "file://uploads"}})
    report = upload_results(config, ProjectPaths(project))
    assert report.manifest["git_revision"] == head and report.manifest["git_dirty"] is False
    (project / "dvc.lock").write_text("changed\n")
    assert upload_results(config, ProjectPaths(project)).manifest["git_dirty"] is True
