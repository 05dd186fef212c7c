"""What users see when S3 fails: one line naming the bucket or endpoint, no secret, nothing lost.

The "server" failures run moto_server as its own process, which the tests stop, restart and
pause in the middle of an upload.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from botocore.config import Config

from tests.fixtures.s3 import (
    ACCESS_KEY_ID,
    SECRET_ACCESS_KEY,
    TEST_BUCKET,
    MotoProcess,
    free_port,
    s3_client,
    without_aws_credentials,
    write_sample_package,
)
from trainflow.errors import StorageError
from trainflow.storage import download_package
from trainflow.storage.manifest import MANIFEST_NAME, sha256_file
from trainflow.storage.stores import S3Store
from trainflow.storage.upload import upload_files, upload_order

EXP = "feedbeef0001"


def _hashes(files: dict[str, Path]) -> dict[str, str]:
    return {key: sha256_file(path) for key, path in files.items()}


def _assert_clean(error: StorageError, caplog: pytest.LogCaptureFixture) -> str:
    """One line, no secret in the message or in any captured log record."""
    message = str(error)
    assert "\n" not in message and "Traceback" not in message
    assert SECRET_ACCESS_KEY not in message and ACCESS_KEY_ID not in message
    assert SECRET_ACCESS_KEY not in caplog.text
    assert error.__cause__ is None and error.__suppress_context__  # raised `from None`: no chained traceback
    return message


@pytest.fixture(autouse=True)
def _debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Capture everything, botocore's debug logs included, to check that no secret is logged."""
    caplog.set_level(logging.DEBUG)


def test_successful_upload_logs_no_secret(s3_bucket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    upload_files(write_sample_package(tmp_path), f"s3://{s3_bucket}/p", EXP)
    assert "Retry needed" not in caplog.text
    assert "Sending http request" in caplog.text  # botocore's debug logs were captured
    assert SECRET_ACCESS_KEY not in caplog.text
    ours = [record.getMessage() for record in caplog.records if record.name.startswith("trainflow")]
    assert ours and not any(ACCESS_KEY_ID in line for line in ours)


def test_missing_bucket(s3_server: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = write_sample_package(tmp_path)
    with pytest.raises(StorageError) as error:
        upload_files(files, "s3://no-such-bucket/team", EXP)
    message = _assert_clean(error.value, caplog)
    assert message.startswith("s3://no-such-bucket: bucket does not exist")
    assert "create it or set upload.target" in message


def test_no_credentials(
    s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s3_client(s3_server).create_bucket(Bucket=TEST_BUCKET)
    files = write_sample_package(tmp_path / "project")
    before = _hashes(files)
    without_aws_credentials(monkeypatch, tmp_path / "empty-aws")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    with pytest.raises(StorageError) as error:
        upload_files(files, f"s3://{TEST_BUCKET}/team", EXP)
    message = _assert_clean(error.value, caplog)
    assert message.startswith(f"s3://{TEST_BUCKET}/team: no AWS credentials found")
    assert "AWS_ACCESS_KEY_ID" in message and "AWS_PROFILE" in message
    assert _hashes(files) == before
    assert s3_client(s3_server).list_objects_v2(Bucket=TEST_BUCKET).get("Contents") is None


def test_unknown_profile(s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nightly")
    with pytest.raises(StorageError, match=r"AWS profile 'nightly' not found; fix AWS_PROFILE"):
        upload_files(write_sample_package(tmp_path), f"s3://{TEST_BUCKET}", EXP)


def test_unreachable_endpoint(
    s3_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    files = write_sample_package(tmp_path)
    with pytest.raises(StorageError) as error:
        upload_files(files, f"s3://{TEST_BUCKET}/team", EXP)
    message = _assert_clean(error.value, caplog)
    assert message.startswith(
        f"s3://{TEST_BUCKET}/team: cannot reach endpoint {endpoint} (connection failed, 2 attempts)"
    )
    assert "AWS_ENDPOINT_URL" in message
    assert "Retry needed" in caplog.text  # botocore retried before giving up


def test_access_denied_and_rejected_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The first 3 requests are let through without authentication, to set up a user with no rights.
    with MotoProcess(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"}, log=tmp_path / "moto.log") as server:
        import boto3

        iam = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name="us-east-1"
        ).client("iam", endpoint_url=server.endpoint)
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        s3_client(server.endpoint).create_bucket(Bucket=TEST_BUCKET)
        caplog.clear()  # the set-up's own requests logged the new key; only the upload's logs count
        files = write_sample_package(tmp_path / "project")
        without_aws_credentials(monkeypatch, tmp_path / "aws")
        monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        with pytest.raises(StorageError) as denied:
            upload_files(files, f"s3://{TEST_BUCKET}/team", EXP)
        message = str(denied.value)
        assert message.startswith(f"s3://{TEST_BUCKET}/team: access denied (")
        assert "s3:PutObject" in message and "\n" not in message
        assert key["SecretAccessKey"] not in message + caplog.text

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
        with pytest.raises(StorageError) as rejected:
            upload_files(files, f"s3://{TEST_BUCKET}/team", EXP)
        message = _assert_clean(rejected.value, caplog)
        assert message.startswith(f"s3://{TEST_BUCKET}/team: the AWS credentials were rejected (InvalidAccessKeyId)")


def test_server_stopped_mid_upload_then_restarted(
    moto_process: MotoProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3_client(moto_process.endpoint).create_bucket(Bucket=TEST_BUCKET)
    files = write_sample_package(tmp_path / "project", n_extra=10)
    before = _hashes(files)
    target = f"s3://{TEST_BUCKET}/team"
    done: list[str] = []

    def stop_server_after_five(key: str) -> None:
        done.append(key)
        if len(done) == 5:
            moto_process.stop()

    with pytest.raises(StorageError) as error:
        upload_files(files, target, EXP, on_uploaded=stop_server_after_five)
    message = _assert_clean(error.value, caplog)
    assert message.startswith(f"{target}/{EXP}/") and f"cannot reach endpoint {moto_process.endpoint}" in message
    assert "(connection failed, 2 attempts)" in message and "re-run" in message
    assert "Retry needed" in caplog.text
    assert len(done) == 5
    assert _hashes(files) == before  # local results untouched

    moto_process.restart()  # same port; moto kept its data in memory, so the bucket is gone
    with pytest.raises(StorageError, match=rf"s3://{TEST_BUCKET}: bucket does not exist"):
        upload_files(files, target, EXP)
    s3_client(moto_process.endpoint).create_bucket(Bucket=TEST_BUCKET)
    report = upload_files(files, target, EXP)
    assert report.uploaded == [*upload_order(list(files)), MANIFEST_NAME]
    download_package(f"{target}/{EXP}/", tmp_path / "download")  # every file checked against the manifest
    assert _hashes(files) == before


def test_server_hung_mid_upload_then_resumed_completes_the_partial_upload(
    moto_process: MotoProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s3_client(moto_process.endpoint).create_bucket(Bucket=TEST_BUCKET)
    files = write_sample_package(tmp_path / "project", n_extra=10)
    before = _hashes(files)
    done: list[str] = []

    def pause_server_after_five(key: str) -> None:
        done.append(key)
        if len(done) == 5:
            moto_process.pause()

    store = S3Store(TEST_BUCKET, "team", config=Config(read_timeout=2, retries={"total_max_attempts": 2}))
    with pytest.raises(StorageError) as error:
        upload_files(files, "unused", EXP, store=store, on_uploaded=pause_server_after_five)
    message = _assert_clean(error.value, caplog)
    assert "no response before the read timeout, 2 attempts" in message
    assert _hashes(files) == before

    moto_process.resume()
    store = S3Store(TEST_BUCKET, "team")
    assert store.sha256(f"{EXP}/{MANIFEST_NAME}") is None  # an interrupted upload never has a manifest
    assert set(done) <= {key.removeprefix(f"{EXP}/") for key in store.sizes(f"{EXP}/")}
    report = upload_files(files, f"s3://{TEST_BUCKET}/team", EXP)
    assert set(done) <= set(report.skipped)
    assert sorted(report.uploaded + report.skipped) == sorted([*files, MANIFEST_NAME])
    download_package(f"s3://{TEST_BUCKET}/team/{EXP}/", tmp_path / "download")
    assert _hashes(files) == before


def test_moto_process_restarts_on_the_same_port_and_leaves_nothing_running(tmp_path: Path) -> None:
    server = MotoProcess(log=tmp_path / "moto.log")
    with server:
        port, pid = server.port, server._process.pid  # type: ignore[union-attr]
        server.restart()
        assert server.port == port and server.running
        assert server._process.pid != pid  # type: ignore[union-attr]
        process = server._process
    assert not server.running
    assert process is not None and process.poll() is not None
