"""One callback, POSTed until it is taken or clearly will not be.

Retried as botocore's ``standard`` mode retries (a few tries, full-jitter exponential waits, capped)
on what may pass: connection errors, timeouts, 5xx, 408 and 429 (its ``Retry-After`` honoured up to
the cap). Not retried: any other 4xx (the receiver refused this body: sending it again changes
nothing) and 3xx (redirects are never followed: the allow-list vetted this URL, not the next one).
The whole delivery, waits included, stays within ``RetryPolicy.total_seconds`` plus one timeout.

Nothing of the receiver's answer is kept or logged but its status code; the URL is logged without
its query (where tokens live).
"""

from __future__ import annotations

import http.client
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from voicebatch.publish.notify.allowed import CallbackAllowList, CallbackRefused, shown_url
from voicebatch.publish.notify.signing import signed_headers

log = logging.getLogger(__name__)

EVENT_HEADER = "X-Voicebatch-Event"
DELIVERY_HEADER = "X-Voicebatch-Delivery"
ATTEMPT_HEADER = "X-Voicebatch-Attempt"
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5  # the first try included
    base_seconds: float = 1.0  # the n-th retry waits a random time up to base * 2**(n-1) ...
    cap_seconds: float = 20.0  # ... and never more than this
    total_seconds: float = 60.0  # no retry would start past this (from the first try)
    timeout_seconds: float = 10.0  # connect and read, per try

    def wait(self, retry: int, draw: float) -> float:
        """Full jitter, as botocore's standard mode: ``draw`` in [0, 1)."""
        return draw * min(self.cap_seconds, self.base_seconds * 2 ** (retry - 1))


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of a callback: ``delivered`` (a 2xx), ``failed`` (given up) or ``refused``
    (not sent: not allowed, or nothing to sign with). ``outcomes``: each try's status code or
    error name, in order."""

    status: str
    url: str  # without query or credentials
    attempts: int = 0
    http_status: int | None = None
    error: str | None = None
    outcomes: tuple[str, ...] = ()
    seconds: float = 0.0

    def as_record(self) -> dict:
        return {
            "status": self.status,
            "url": self.url,
            "attempts": self.attempts,
            "http_status": self.http_status,
            "error": self.error,
            "outcomes": list(self.outcomes),
            "seconds": round(self.seconds, 3),
        }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirects())


def post(
    url: str, body: bytes, headers: Mapping[str, str], timeout: float, opener: urllib.request.OpenerDirector
) -> tuple[int, str | None]:
    """One POST: (status code, Retry-After) for any answer; raises ``OSError`` when none came."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, None
    except urllib.error.HTTPError as e:
        retry_after = e.headers.get("Retry-After") if e.headers else None
        e.close()  # the body is never read: it is the receiver's, not ours to log
        return e.code, retry_after


def deliver(
    url: str,
    body: bytes,
    secret: bytes,
    *,
    delivery_id: str,
    event: str = "run.finished",
    policy: RetryPolicy = DEFAULT_POLICY,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random.random,
    now: Callable[[], float] = time.time,
) -> Delivery:
    """POST ``body`` to ``url``, signed with ``secret``, retrying per ``policy``. Never raises for
    the receiver's sake: the outcome is in the returned ``Delivery``. Every try carries the same
    ``delivery_id`` (a receiver drops repeats by it) and a fresh timestamp and signature."""
    from voicebatch import __version__

    shown, opener, outcomes = shown_url(url), _opener(), []
    started = clock()
    base = {
        "Content-Type": "application/json",
        "User-Agent": f"voicebatch/{__version__}",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
    }
    status: int | None = None
    error: str | None = None
    for attempt in range(1, policy.attempts + 1):
        headers = {**base, ATTEMPT_HEADER: str(attempt), **signed_headers(secret, body, now=now())}
        retry_after = None
        try:
            status, retry_after = post(url, body, headers, policy.timeout_seconds, opener)
            error = None
        except (OSError, http.client.HTTPException) as e:  # refused, reset, DNS, TLS, timeout, garbled: no answer
            status, error = None, _error_name(e)
        outcomes.append(str(status) if status is not None else error or "error")
        if status is not None and 200 <= status < 300:
            log.info("callback to %s delivered (HTTP %d, try %d)", shown, status, attempt)
            return Delivery("delivered", shown, attempt, status, None, tuple(outcomes), clock() - started)
        if status is not None and status not in RETRIED_STATUSES:
            why = "a redirect, not followed" if 300 <= status < 400 else "refused by the receiver, not retried"
            error = f"HTTP {status}: {why}"
            log.warning("callback to %s not delivered: %s", shown, error)
            return Delivery("failed", shown, attempt, status, error, tuple(outcomes), clock() - started)
        if attempt == policy.attempts:
            break
        wait = max(policy.wait(attempt, draw()), _seconds(retry_after, policy.cap_seconds))
        if clock() - started + wait > policy.total_seconds:
            break
        log.warning("callback to %s: try %d got %s; trying again in %.1f s", shown, attempt, outcomes[-1], wait)
        sleep(wait)
    last = f"HTTP {status}" if status is not None else error
    error = f"gave up after {len(outcomes)} tries ({last})"
    log.warning("callback to %s not delivered: %s", shown, error)
    return Delivery("failed", shown, len(outcomes), status, error, tuple(outcomes), clock() - started)


def _seconds(retry_after: str | None, cap: float) -> float:
    """A Retry-After in seconds, capped (an HTTP date, or nonsense, counts as none)."""
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after.strip()), cap)
    return 0.0


def _error_name(error: BaseException) -> str:
    """A short, secret-free name for a failed try: the cause's type (and errno)."""
    cause = getattr(error, "reason", None)
    cause = cause if isinstance(cause, BaseException) else error
    if isinstance(cause, TimeoutError):
        return "timeout"
    name = type(cause).__name__
    return f"{name} (errno {cause.errno})" if isinstance(cause, OSError) and cause.errno else name


def send_callback(
    url: str, summary: Mapping, secret: bytes, *, allowed: CallbackAllowList, policy: RetryPolicy = DEFAULT_POLICY
) -> Delivery:
    """Check ``url`` against the deployment's allow-list, then deliver ``summary`` signed. A
    refused URL is sent nothing: the outcome says why, in one line naming the setting."""
    from voicebatch.publish.notify.summary import body_bytes

    try:
        allowed.check(url)
    except CallbackRefused as e:
        log.warning("callback not sent: %s", e)
        return Delivery("refused", shown_url(url), error=str(e))
    return deliver(url, body_bytes(summary), secret, delivery_id=summary["event_id"], policy=policy)
