"""Which storage errors are worth a retry, and the retry itself: throttling, timeouts and 5xx are
transient (retried with backoff), a missing bucket or a refused credential is permanent (one
line, no retry), and every error is described in one line without its secrets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
from voicebatch.locations.storage import UnsafeKeyError

log = logging.getLogger(__name__)


T = TypeVar("T")


# S3 error codes worth another try (throttling, server trouble) and those that no retry fixes.
TRANSIENT_CODES = {
    "500",
    "502",
    "503",
    "504",
    "RequestTimeout",
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "429",
}


PERMANENT_CODES = {
    "NoSuchBucket",
    "AccessDenied",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
    "ExpiredToken",
    "InvalidToken",
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "NoSuchKey",
    "400",
    "401",
    "403",
    "404",
    "405",
}


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what it wraps (boto3's transfer manager re-raises client errors as
    ``S3UploadFailedError`` / ``RetriesExceededError``, keeping the original inside)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = getattr(current, "last_exception", None) or current.__cause__ or current.__context__
    return chain


def _client_error(error: BaseException) -> ClientError | None:
    from botocore.exceptions import ClientError

    return next((e for e in _causes(error) if isinstance(e, ClientError)), None)


def _error_code(error: ClientError) -> str:
    response = error.response or {}
    return str(response.get("Error", {}).get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def is_transient(error: BaseException) -> bool:
    """Worth another try: network trouble (resets, timeouts, refused or dropped connections)
    or a retryable S3 status (5xx, throttling). Classified by type, never "any OSError": a
    missing file or a permission error is not cured by waiting."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError, IncompleteReadError
    from urllib3.exceptions import HTTPError as Urllib3Error

    client_error = _client_error(error)
    if client_error is not None:
        return _error_code(client_error) in TRANSIENT_CODES
    network = (BotoConnectionError, HTTPClientError, IncompleteReadError, Urllib3Error, ConnectionError, TimeoutError)
    return any(isinstance(e, network) for e in _causes(error))


def is_permanent(error: BaseException) -> bool:
    """No retry will help: a missing bucket, denied access, bad or missing credentials, an
    invalid request or key, a local path that is missing or not writable."""
    from botocore.exceptions import (
        NoCredentialsError,
        NoRegionError,
        ParamValidationError,
        PartialCredentialsError,
        UnknownEndpointError,
    )

    client_error = _client_error(error)
    if client_error is not None:
        return _error_code(client_error) in PERMANENT_CODES
    permanent = (
        NoCredentialsError,
        PartialCredentialsError,
        NoRegionError,
        ParamValidationError,
        UnknownEndpointError,
        UnsafeKeyError,
        FileNotFoundError,
        PermissionError,
        NotADirectoryError,
        IsADirectoryError,
    )
    return isinstance(error, permanent)


def describe_error(error: BaseException) -> str:
    """One line saying what went wrong in storage: the S3 code and message with the bucket,
    key and operation S3 named, or the OS error and its file. Never credentials."""
    client_error = _client_error(error)
    if client_error is not None:
        details = client_error.response.get("Error", {})
        context = [f"{name} {details[name]}" for name in ("BucketName", "Key") if details.get(name)]
        context += [client_error.operation_name] if getattr(client_error, "operation_name", None) else []
        text = f"{_error_code(client_error)}: {details.get('Message') or 'no message'}"
        return " ".join((text + (f" ({', '.join(context)})" if context else "")).split())
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def retrying(
    operation: Callable[[], T],
    *,
    attempts: int = 3,
    what: str = "storage operation",
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run one step of a multi-step operation, retrying transient failures a bounded number
    of times (botocore already retries each request; this covers a step that failed after
    those, e.g. a dropped connection in the middle of a publish)."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except Exception as e:
            if attempt == attempts or not is_transient(e):
                raise
            log.warning("%s failed (%s), try %d of %d", what, type(e).__name__, attempt + 1, attempts)
            (sleep or time.sleep)(min(2**attempt, 10))  # looked up per call, so tests can record the waits
    raise AssertionError("unreachable")
