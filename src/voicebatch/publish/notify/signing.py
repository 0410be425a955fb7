"""Signing a callback, and the check a receiver makes.

The signature is HMAC-SHA256 with the shared secret over ``<timestamp>.<body>``: the exact bytes
sent, prefixed by the Unix time of the attempt, so a captured request replayed later fails the
receiver's freshness check, and a changed timestamp fails the signature. Headers::

    X-Voicebatch-Timestamp: 1767225600
    X-Voicebatch-Signature: sha256=<hex digest>
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Voicebatch-Timestamp"
SIGNATURE_HEADER = "X-Voicebatch-Signature"
PREFIX = "sha256="
# How old (or how far ahead) a timestamp a receiver accepts, in seconds.
TOLERANCE_SECONDS = 300


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def signed_headers(secret: bytes, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: bytes,
    body: bytes,
    timestamp: str,
    signed: str,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: a fresh timestamp and a signature that matches (compared in
    constant time). ``timestamp`` and ``signed`` are the two headers as received."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, sent, body), signed or "")
