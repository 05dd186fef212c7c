"""How trainflow talks to S3: timeouts, retries and transfer sizes, and the boto3 client.

Credentials, region and endpoint come only from the standard AWS chain (``AWS_ACCESS_KEY_ID``
/ ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and ``~/.aws``, SSO,
container and instance roles; ``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3`` for an
S3-compatible store such as MinIO), which boto3 reads itself. Nothing here reads or stores a
credential, so none can end up in params.yaml, a log line or an error message.

Retries use botocore's ``standard`` mode (exponential backoff with jitter, connection errors and
throttling retried). The number of attempts is botocore's: ``AWS_MAX_ATTEMPTS`` or the profile's
``max_attempts``, else 3. Timeouts are shorter than botocore's 60 s so that an unreachable
endpoint fails in seconds, not minutes. The ``TRAINFLOW_S3_*`` variables below tune the rest.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainflow.errors import StorageError

MIB = 1024 * 1024
# Environment variable -> S3Settings field.
ENV_VARS = {
    "TRAINFLOW_S3_CONNECT_TIMEOUT": "connect_timeout",
    "TRAINFLOW_S3_READ_TIMEOUT": "read_timeout",
    "TRAINFLOW_S3_MULTIPART_THRESHOLD": "multipart_threshold",
    "TRAINFLOW_S3_MULTIPART_CHUNKSIZE": "multipart_chunksize",
    "TRAINFLOW_S3_MAX_CONCURRENCY": "max_concurrency",
}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": MIB, "gb": 1000**3, "gib": 1024**3}


@dataclass(frozen=True)
class S3Settings:
    """Timeouts (seconds), attempts and transfer sizes (bytes) for one S3 store.

    ``max_attempts`` counts the first try; ``None`` leaves it to the AWS chain (see the module
    docstring). Files of ``multipart_threshold`` bytes or more go up in parts of
    ``multipart_chunksize`` (S3 and boto3 raise parts below 5 MiB to 5 MiB), ``max_concurrency``
    parts at a time.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int | None = None
    multipart_threshold: int = 8 * MIB
    multipart_chunksize: int = 8 * MIB
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None and value <= 0:
                raise ValueError(f"S3Settings.{field.name} must be positive (got {value!r})")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings:
        """Defaults, overridden by the ``TRAINFLOW_S3_*`` variables that are set.

        Sizes accept a unit: ``16MiB``, ``5MB``, ``1048576``. A malformed value is a
        :class:`StorageError` naming the variable.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable, field in ENV_VARS.items():
            text = environ.get(variable, "").strip()
            if text:
                values[field] = _parse(variable, field, text)
        return cls(**values)


def _parse(variable: str, field: str, text: str) -> float | int:
    try:
        if field.endswith("timeout"):
            value: float | int = float(text)
        elif field in ("multipart_threshold", "multipart_chunksize"):
            match = _SIZE.match(text)
            if match is None:
                raise ValueError(text)
            value = int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
        else:
            value = int(text)
    except ValueError:
        kind = "a size such as 16MiB" if "multipart" in field else "a number"
        raise StorageError(f"{variable}={text!r}: expected {kind}") from None
    if value <= 0:
        raise StorageError(f"{variable}={text!r}: must be positive")
    return value


def make_client(settings: S3Settings) -> Any:
    """A boto3 S3 client from the standard AWS chain, with ``settings``' retries and timeouts.

    Raises botocore's own exceptions (e.g. ``ProfileNotFound``); callers translate them.
    """
    import boto3
    from botocore.config import Config

    retries: dict[str, Any] = {"mode": "standard"}
    if settings.max_attempts is not None:
        retries["total_max_attempts"] = settings.max_attempts
    config = Config(
        retries=retries,  # type: ignore[arg-type]
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max(10, settings.max_concurrency),
    )
    return boto3.session.Session().client("s3", config=config)


def transfer_config(settings: S3Settings) -> Any:
    """boto3's ``TransferConfig`` for ``settings``: multipart above the threshold, threaded parts."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=settings.multipart_threshold,
        multipart_chunksize=settings.multipart_chunksize,
        max_concurrency=settings.max_concurrency,
        use_threads=True,
        preferred_transfer_client="classic",
    )


def total_attempts(client: Any) -> int:
    """How many times the client tries a request, first try included (botocore's standard default: 3)."""
    retries = getattr(client.meta.config, "retries", None) or {}
    return int(retries.get("total_max_attempts", 3))
