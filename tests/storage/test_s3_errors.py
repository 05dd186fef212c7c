"""The wording of S3 failures, for botocore errors the moto tests cannot easily provoke."""

from __future__ import annotations

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from trainflow.storage.s3_errors import CHECK_BUCKET, display_endpoint, redact, translate

WHERE = "s3://bucket/team/exp/model/best.pt"


def _client_error(code: str, message: str = "", status: int = 400, operation: str = "PutObject") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
    )


def _translate(error: BaseException, action: str = "upload") -> str:
    return str(translate(error, where=WHERE, bucket="bucket", endpoint="http://minio:9000", action=action, attempts=3))


def test_endpoint_is_shown_without_user_info_or_path() -> None:
    assert display_endpoint("http://user:hunter2@minio.local:9000/some/path") == "http://minio.local:9000"
    assert display_endpoint("https://s3.eu-west-1.amazonaws.com") == "https://s3.eu-west-1.amazonaws.com"
    assert display_endpoint(None) == "the default AWS endpoint"


def test_access_key_ids_are_masked() -> None:
    assert redact("key AKIAIOSFODNN7EXAMPLE used") == "key *** used"
    assert redact("session ASIAY34FZKBOKMUTVV7A") == "session ***"


def test_unknown_s3_errors_keep_code_and_first_line() -> None:
    message = _translate(_client_error("InternalError", "We encountered an internal error.\nPlease try again.", 500))
    assert message == f"{WHERE}: could not upload: S3 error InternalError: We encountered an internal error.; re-run"


def test_upload_wrapper_is_unwrapped_to_the_s3_error() -> None:
    try:
        try:
            raise _client_error("NoSuchBucket", "The specified bucket does not exist", 404)
        except ClientError as inner:  # what boto3's upload_file does
            raise S3UploadFailedError(f"Failed to upload x to bucket/key: {inner}")  # noqa: B904
    except S3UploadFailedError as error:
        message = _translate(error)
    assert message.startswith("s3://bucket: bucket does not exist at http://minio:9000; create it")


def test_specific_codes() -> None:
    assert "the system clock" in _translate(_client_error("RequestTimeTooSkewed"))
    assert "credentials were rejected (SignatureDoesNotMatch)" in _translate(_client_error("SignatureDoesNotMatch"))
    assert "access denied (AccessDenied) to upload" in _translate(_client_error("AccessDenied", status=403))
    assert "bucket does not exist" in _translate(
        _client_error("404", status=404, operation="ListObjectsV2"), CHECK_BUCKET
    )
    assert "bucket does not exist" not in _translate(
        _client_error("404", status=404, operation="HeadObject"), "download"
    )
    assert _translate(_client_error("BadDigest", status=400)) == (
        f"{WHERE}: S3 refused the object (BadDigest): its bytes do not match their checksum; re-run"
    )


def test_connection_errors_name_the_endpoint_and_attempts() -> None:
    refused = _translate(EndpointConnectionError(endpoint_url="http://minio:9000/bucket"))
    assert refused.startswith(f"{WHERE}: cannot reach endpoint http://minio:9000 (connection failed, 3 attempts)")
    timed_out = _translate(ReadTimeoutError(endpoint_url="http://minio:9000/bucket"))
    assert "(no response before the read timeout, 3 attempts)" in timed_out
