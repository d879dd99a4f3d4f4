"""boto3 clients built the same way everywhere: region from the config, the rest from boto3's own chain."""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Literal, overload

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

if TYPE_CHECKING:  # the boto3-stubs packages, installed for the type checker only
    from botocore.client import BaseClient
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ses import SESClient
    from mypy_boto3_sesv2 import SESV2Client

# botocore retries a few times quickly; longer outages are the durable queue's business.
_BOTO_CONFIG = BotoConfig(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3}
)

# Errors about the request itself: retrying the same image cannot help.
PERMANENT_ERROR_CODES = frozenset(
    {
        "InvalidImageFormatException",
        "ImageTooLargeException",
        "InvalidParameterException",
        "InvalidParameterValue",
        "MessageRejected",
        "ValidationError",
    }
)


# A session loads botocore's data files (~9 MB); its clients share them, so the whole process
# uses one. Sessions are not thread-safe (clients are), so clients are made one at a time.
_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


# S3-compatible stores (MinIO, Garage, Ceph) do not all take the checksums botocore sends by
# default since 1.36; the ones S3 requires are still sent.
_S3_CONFIG = _BOTO_CONFIG.merge(
    BotoConfig(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
)


@overload
def client(service: Literal["rekognition"], region: str | None) -> RekognitionClient: ...
@overload
def client(
    service: Literal["s3"], region: str | None, endpoint_url: str | None = None
) -> S3Client: ...
@overload
def client(service: Literal["ses"], region: str | None) -> SESClient: ...
@overload
def client(service: Literal["sesv2"], region: str | None) -> SESV2Client: ...
def client(
    service: Literal["rekognition", "s3", "ses", "sesv2"],
    region: str | None,
    endpoint_url: str | None = None,
) -> BaseClient:
    """A boto3 client; `AWS_ENDPOINT_URL`, profiles and credentials come from boto3's
    environment (`endpoint_url`, when given, wins over `AWS_ENDPOINT_URL`)."""
    config = _S3_CONFIG if service == "s3" else _BOTO_CONFIG
    with _SESSION_LOCK:
        return _session().client(
            service, region_name=region, endpoint_url=endpoint_url, config=config
        )


def describe_aws_error(exc: Exception) -> tuple[str, bool]:
    """A one-line cause for the user, and whether retrying later may succeed."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message", "")
        return f"{code}: {message}".rstrip(": "), code not in PERMANENT_ERROR_CODES
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found (set up ~/.aws/credentials, AWS_PROFILE or "
            "AWS_SHARED_CREDENTIALS_FILE)",
            True,
        )
    if isinstance(exc, NoRegionError):
        return "no AWS region: set aws_region in the config or AWS_DEFAULT_REGION", False
    if isinstance(exc, BotoConnectionError):
        return f"cannot reach AWS ({exc})", True
    if isinstance(exc, BotoCoreError):
        return f"AWS error ({exc})", True
    return f"{type(exc).__name__}: {exc}", True
