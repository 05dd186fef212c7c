"""botocore and boto3 exceptions -> one-line :class:`StorageError` messages that say what to do.

The messages are built from our own words plus the bucket, the endpoint and S3's error code;
never from a request, a header or the credential chain, so no secret can leak through them. As a
second guard, anything shaped like an AWS access key id is masked.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectionError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
)

from trainflow.errors import StorageError

CHECK_BUCKET = "check the bucket"  # the action whose 404 means "no such bucket"
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"})
REJECTED_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b")
CREDENTIALS_HINT = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (see `aws configure`)"


def display_endpoint(url: str | None) -> str:
    """``scheme://host:port`` of an endpoint URL, without any user info or path."""
    if not url:
        return "the default AWS endpoint"
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme else url


def redact(text: str) -> str:
    """``text`` with anything that looks like an AWS access key id masked."""
    return _ACCESS_KEY_ID.sub("***", text)


def unwrap(error: BaseException) -> BaseException:
    """The botocore error behind boto3/s3transfer wrappers (``S3UploadFailedError``, ``RetriesExceededError``)."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (ClientError, BotoCoreError)):
            return error
        inner = getattr(error, "last_exception", None) or error.__cause__ or error.__context__
        if inner is None:
            return error
        error = inner
    return error


def error_code(error: BaseException) -> str:
    """S3's error code of a ``ClientError`` (``"NoSuchBucket"``, ``"404"``, ...), else ``""``."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found(error: BaseException) -> bool:
    return error_code(error) in {"404", "NoSuchKey", "NotFound"}


def translate(
    error: BaseException, *, where: str, bucket: str, endpoint: str | None, action: str, attempts: int
) -> StorageError:
    """The :class:`StorageError` to raise for ``error`` raised while doing ``action`` on ``where``.

    ``where`` is the ``s3://`` URL concerned, ``endpoint`` the client's endpoint URL and
    ``attempts`` how many tries botocore made before giving up on a connection error.
    """
    error = unwrap(error)
    endpoint_text = display_endpoint(endpoint)
    if isinstance(error, (NoCredentialsError, PartialCredentialsError)):
        message = f"{where}: no AWS credentials found; {CREDENTIALS_HINT}"
    elif isinstance(error, ProfileNotFound):
        profile = error.kwargs.get("profile", "")
        message = f"{where}: AWS profile {profile!r} not found; fix AWS_PROFILE or add the profile (aws configure)"
    elif isinstance(error, CredentialRetrievalError):
        provider = error.kwargs.get("provider", "the credential chain")
        message = f"{where}: could not get AWS credentials from {provider}; {CREDENTIALS_HINT}"
    elif isinstance(error, SSLError):
        message = f"{where}: TLS error talking to {endpoint_text}; check AWS_ENDPOINT_URL and AWS_CA_BUNDLE"
    elif isinstance(error, (ConnectionError, HTTPClientError)):
        message = (
            f"{where}: cannot reach endpoint {endpoint_text} ({_connection_problem(error)}, {attempts} attempts); "
            f"check the network and AWS_ENDPOINT_URL, then re-run (objects already there are kept)"
        )
    elif isinstance(error, ClientError):
        message = _client_error_message(error, where=where, bucket=bucket, action=action, endpoint=endpoint_text)
    elif isinstance(error, BotoCoreError):
        message = f"{where}: could not {action}: {_one_line(str(error)) or type(error).__name__}"
    else:
        message = f"{where}: could not {action}: {type(error).__name__}: {error}"
    return StorageError(redact(message))


def _one_line(text: str) -> str:
    """``text`` with its lines joined: botocore's ``Parameter validation failed:`` puts the
    reason (e.g. an invalid bucket name) on the lines after the first."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _connection_problem(error: BaseException) -> str:
    if isinstance(error, ConnectTimeoutError):
        return "connect timed out"
    if isinstance(error, ReadTimeoutError):
        return "no response before the read timeout"
    if isinstance(error, ConnectionClosedError):
        return "connection closed by the server"
    if isinstance(error, EndpointConnectionError):
        return "connection failed"
    return type(error).__name__


def _client_error_message(error: ClientError, *, where: str, bucket: str, action: str, endpoint: str) -> str:
    code = error_code(error)
    if code in MISSING_BUCKET_CODES or (code in {"404", "NotFound"} and action == CHECK_BUCKET):
        return f"s3://{bucket}: bucket does not exist at {endpoint}; create it or set upload.target"
    if code in REJECTED_CREDENTIAL_CODES:
        return f"{where}: the AWS credentials were rejected ({code}); {CREDENTIALS_HINT}"
    if code in ACCESS_DENIED_CODES:
        return (
            f"{where}: access denied ({code}) to {action}; grant these credentials s3:ListBucket, "
            f"s3:GetObject, s3:PutObject and s3:DeleteObject on s3://{bucket}, or set upload.target"
        )
    if code == "RequestTimeTooSkewed":
        return f"{where}: the system clock differs too much from the server's ({code}); fix the clock and re-run"
    detail = str(error.response.get("Error", {}).get("Message", "")).splitlines()
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    return f"{where}: could not {action}: S3 error {code or status}{': ' + detail[0] if detail else ''}; re-run"
