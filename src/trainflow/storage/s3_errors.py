"""botocore and boto3 exceptions -> one-line :class:`StorageError` messages that say what to do.

Messages are built from our own words plus the bucket, the endpoint and S3's error code, never
from a request, a header or the credential chain, so no secret can leak through them; as a
second guard, anything shaped like an AWS access key id is masked.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from botocore import exceptions as boto

from trainflow.errors import StorageError

CHECK_BUCKET = "list objects"  # the first request of every upload: its 404 means "no such bucket"
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"})
REJECTED_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)
CREDENTIALS_HINT = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (see `aws configure`)"
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b")
_CONNECTION_PROBLEMS = (  # most specific first: ConnectTimeoutError is an EndpointConnectionError
    (boto.ConnectTimeoutError, "connect timed out"),
    (boto.ReadTimeoutError, "no response before the read timeout"),
    (boto.ConnectionClosedError, "connection closed by the server"),
    (boto.EndpointConnectionError, "connection failed"),
)


def display_endpoint(url: str | None) -> str:
    """``scheme://host:port`` of an endpoint URL, without any user info or path."""
    if not url:
        return "the default AWS endpoint"
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}" if parts.scheme else url


def redact(text: str) -> str:
    """``text`` with anything that looks like an AWS access key id masked."""
    return _ACCESS_KEY_ID.sub("***", text)


def unwrap(error: BaseException) -> BaseException:
    """The botocore error behind boto3/s3transfer wrappers (``S3UploadFailedError``, ``RetriesExceededError``)."""
    seen = set()
    while id(error) not in seen and not isinstance(error, (boto.ClientError, boto.BotoCoreError)):
        seen.add(id(error))
        inner = getattr(error, "last_exception", None) or error.__cause__ or error.__context__
        if inner is None:
            break
        error = inner
    return error


def error_code(error: BaseException) -> str:
    """S3's error code of a ``ClientError`` (``"NoSuchBucket"``, ``"404"``, ...), else ``""``."""
    return str(error.response.get("Error", {}).get("Code", "")) if isinstance(error, boto.ClientError) else ""


def is_not_found(error: BaseException) -> bool:
    return error_code(unwrap(error)) in {"404", "NoSuchKey", "NotFound"}


def translate(
    error: BaseException, *, where: str, bucket: str, endpoint: str | None, action: str, attempts: int
) -> StorageError:
    """The :class:`StorageError` to raise for ``error``, raised while doing ``action`` on ``where``
    (an ``s3://`` URL); ``attempts`` is how many tries botocore made before giving up."""
    error = unwrap(error)
    endpoint_text = display_endpoint(endpoint)
    if isinstance(error, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        message = f"{where}: no AWS credentials found; {CREDENTIALS_HINT}"
    elif isinstance(error, boto.ProfileNotFound):
        profile = error.kwargs.get("profile", "")
        message = f"{where}: AWS profile {profile!r} not found; fix AWS_PROFILE or add the profile (aws configure)"
    elif isinstance(error, boto.CredentialRetrievalError):
        provider = error.kwargs.get("provider", "the credential chain")
        message = f"{where}: could not get AWS credentials from {provider}; {CREDENTIALS_HINT}"
    elif isinstance(error, boto.SSLError):
        message = f"{where}: TLS error talking to {endpoint_text}; check AWS_ENDPOINT_URL and AWS_CA_BUNDLE"
    elif isinstance(error, (boto.ConnectionError, boto.HTTPClientError)):
        problem = next((text for kind, text in _CONNECTION_PROBLEMS if isinstance(error, kind)), type(error).__name__)
        message = (
            f"{where}: cannot reach endpoint {endpoint_text} ({problem}, {attempts} attempts); "
            f"check the network and AWS_ENDPOINT_URL, then re-run (objects already there are kept)"
        )
    elif isinstance(error, boto.ClientError):
        message = _client_error_message(error, where=where, bucket=bucket, action=action, endpoint=endpoint_text)
    elif isinstance(error, boto.BotoCoreError):  # e.g. "Parameter validation failed:" + the reason on later lines
        reason = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        message = f"{where}: could not {action}: {reason or type(error).__name__}"
    else:
        message = f"{where}: could not {action}: {type(error).__name__}: {error}"
    return StorageError(redact(message))


def _client_error_message(error: boto.ClientError, *, where: str, bucket: str, action: str, endpoint: str) -> str:
    code = error_code(error)
    if code == "NoSuchBucket" or (code in {"404", "NotFound"} and action == CHECK_BUCKET):
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
    if code in {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}:
        return f"{where}: S3 refused the object ({code}): its bytes do not match their checksum; re-run"
    detail = str(error.response.get("Error", {}).get("Message", "")).splitlines()
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    return f"{where}: could not {action}: S3 error {code or status}{': ' + detail[0] if detail else ''}; re-run"
