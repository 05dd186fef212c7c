"""Upload safety: manifests after what they describe, targets that stay where they say, whole errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.s3 import s3_client, write_sample_package
from trainflow.cli import main
from trainflow.errors import StorageError
from trainflow.storage.manifest import MANIFEST_NAME, write_manifest
from trainflow.storage.s3 import S3Store
from trainflow.storage.stores import open_store
from trainflow.storage.upload import upload_files, upload_order

EXP = "0123abcd4567"


def _recording_store(endpoint: str, bucket: str, puts: list[str]) -> S3Store:
    """An S3Store on moto whose real boto3 client records every object key it starts writing."""
    client = s3_client(endpoint)

    def record(params: dict[str, Any], **_: Any) -> None:
        puts.append(params["Key"].removeprefix("team/"))

    client.meta.events.register("before-parameter-build.s3.PutObject", record)
    client.meta.events.register("before-parameter-build.s3.CreateMultipartUpload", record)
    return S3Store(bucket, "team", client=client)


def _assert_manifests_last(keys: list[str]) -> None:
    """Every ``<folder>/manifest.json`` comes after every other key below ``<folder>``."""
    for index, key in enumerate(keys):
        if key.rpartition("/")[2] != MANIFEST_NAME:
            continue
        folder = key.rpartition("/")[0]
        later = [other for other in keys[index + 1 :] if not folder or other.startswith(folder + "/")]
        assert later == [], f"{key} was written before {later}"


def test_every_manifest_is_put_after_every_file_of_its_folder(s3_server: str, s3_bucket: str, tmp_path: Path) -> None:
    files = write_sample_package(tmp_path)
    (tmp_path / "results" / "plots" / "extra.txt").write_text("x\n")
    write_manifest(tmp_path / "results" / "plots")  # a nested manifest too
    files["results/plots/extra.txt"] = tmp_path / "results" / "plots" / "extra.txt"
    files["results/plots/manifest.json"] = tmp_path / "results" / "plots" / MANIFEST_NAME
    puts: list[str] = []

    upload_files(files, "s3://unused", EXP, store=_recording_store(s3_server, s3_bucket, puts))

    assert sorted(puts) == sorted(f"{EXP}/{key}" for key in [*files, MANIFEST_NAME])
    _assert_manifests_last(puts)
    assert puts[-3:] == [f"{EXP}/results/plots/manifest.json", f"{EXP}/results/manifest.json", f"{EXP}/manifest.json"]


def test_an_interrupted_upload_leaves_no_package_manifest_beside_missing_files(
    s3_server: str, s3_bucket: str, tmp_path: Path
) -> None:
    files = write_sample_package(tmp_path)
    store = _recording_store(s3_server, s3_bucket, [])

    def stop_at_the_first_result_file(key: str) -> None:
        if key.startswith("results/"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upload_files(files, "s3://unused", EXP, store=store, on_uploaded=stop_at_the_first_result_file)
    keys = store.sizes(f"{EXP}/")
    assert f"{EXP}/results/manifest.json" not in keys
    assert f"{EXP}/{MANIFEST_NAME}" not in keys


def test_a_stale_package_manifest_is_removed_before_its_files_change(
    s3_server: str, s3_bucket: str, tmp_path: Path
) -> None:
    files = write_sample_package(tmp_path)
    upload_files(files, "s3://unused", EXP, store=_recording_store(s3_server, s3_bucket, []))
    (tmp_path / "results" / "metrics.json").write_text('{"test": {"accuracy": 0.99}}\n')
    write_manifest(tmp_path / "results")
    puts: list[str] = []
    store = _recording_store(s3_server, s3_bucket, puts)

    def stop_after_the_first(key: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upload_files(files, "s3://unused", EXP, store=store, on_uploaded=stop_after_the_first)
    assert puts == [f"{EXP}/results/metrics.json"]
    assert f"{EXP}/results/manifest.json" not in store.sizes(f"{EXP}/")  # the old one described the old metrics

    report = upload_files(files, "s3://unused", EXP, store=store)
    assert report.uploaded == ["results/manifest.json", MANIFEST_NAME]
    _assert_manifests_last(puts)


def test_upload_order_puts_deeper_manifests_first() -> None:
    keys = ["results/manifest.json", "a.txt", "results/x/manifest.json", "results/x/y.txt", "results/metrics.json"]
    assert upload_order(keys) == [
        "a.txt",
        "results/metrics.json",
        "results/x/y.txt",
        "results/x/manifest.json",
        "results/manifest.json",
    ]


@pytest.mark.parametrize(
    "target", ["file://../../x", "file://uploads/../../x", "file:///srv/../x", "s3://bucket/team/../other"]
)
def test_parent_segments_are_rejected(target: str) -> None:
    with pytest.raises(StorageError, match=r"^upload\.target='.*': '\.\.' is not allowed in the path; use ") as error:
        open_store(target)
    assert "\n" not in str(error.value)


def _project(root: Path) -> None:
    write_sample_package(root)
    (root / "params.yaml").write_text("{}\n")


def test_cli_rejects_a_target_outside_the_project_by_dots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _project(tmp_path / "a" / "b" / "project")
    root = tmp_path / "a" / "b" / "project"
    code = main(["upload", "--root", str(root), "--params", str(root / "params.yaml"), "upload.target=file://../../x"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("error: upload.target='file://../../x': '..' is not allowed") and err.count("\n") == 1
    assert not (tmp_path / "a" / "x").exists()


def test_cli_says_where_an_outside_file_target_resolves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "project"
    _project(root)
    (root / "uploads").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    for target, resolved in [
        (f"file://{tmp_path}/shared", tmp_path / "shared"),
        ("file://uploads", tmp_path / "elsewhere"),
    ]:
        code = main(["upload", "--root", str(root), "--params", str(root / "params.yaml"), f"upload.target={target}"])
        out = capsys.readouterr().out
        assert code == 0
        lines = [line for line in out.splitlines() if "outside the project" in line]
        assert lines == [f"upload: upload.target={target} resolves to {resolved}, outside the project {root}"]

    main(["upload", "--root", str(root), "--params", str(root / "params.yaml"), "upload.target=file://inside"])
    assert "outside the project" not in capsys.readouterr().out


def test_malformed_bucket_name_error_keeps_botocores_reason(s3_server: str) -> None:
    with pytest.raises(StorageError) as error:
        open_store("s3://bad_bucket!/runs").sizes()
    message = str(error.value)
    assert "\n" not in message
    assert "Parameter validation failed: Invalid bucket name" in message
    assert "bad_bucket!" in message.partition("Invalid bucket name")[2]
