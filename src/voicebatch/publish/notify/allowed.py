"""Where callbacks may go: the deployment's list, never the run's conf.

A run's ``callback_url`` comes from whoever triggered it; the workers that POST it sit inside the
deployment's network. So, as with the locations of ``voicebatch.locations.allowlist``, conf only selects
among what the deployment names, in the workers' environment (or Airflow's ``[voicebatch]
callback_allowed``)::

    VOICEBATCH_CALLBACK_ALLOWED   entries separated by commas or newlines

An entry is a URL prefix (``https://hooks.example.com/voicebatch``: that scheme, host and port,
and paths at or below that path, segment by segment) or a bare host (``hooks.example.com``, or
``hooks.example.com:8443``: any path on it, over https or http, on the default port unless one is
named). Unset or empty: no callback is sent, and the run says so with one line naming the setting.
Only http and https; a URL carrying a user name or password is refused (it would end up in logs).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from voicebatch.errors import InputError

CALLBACK_ALLOWED_ENV = "VOICEBATCH_CALLBACK_ALLOWED"
SCHEMES = {"https": 443, "http": 80}
_SEPARATORS = re.compile(r"[,\n]")


class CallbackRefused(InputError):
    """A callback URL this deployment does not allow (one line naming the setting)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL in comparable form: scheme, lower-case host, port, path (no trailing slash)."""

    scheme: str
    host: str
    port: int
    path: str


def target(url: str) -> Target:
    """``url`` in comparable form. Raises ``ValueError`` for what is no http(s) URL to call."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{url!r} is not a valid URL ({e})") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{url!r}: only http:// and https:// URLs are called back")
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{parts.scheme}://{parts.hostname}: a user name or password in the URL is refused")
    return Target(parts.scheme, parts.hostname.lower(), port or SCHEMES[parts.scheme], parts.path.rstrip("/"))


@dataclass(frozen=True, slots=True)
class Entry:
    """One allowed place: a URL prefix (``schemes`` has its one scheme) or a bare host (both)."""

    schemes: tuple[str, ...]
    host: str
    port: int | None  # None: the scheme's default port
    path: str

    def allows(self, found: Target) -> bool:
        if found.scheme not in self.schemes or found.host != self.host:
            return False
        if found.port != (self.port or SCHEMES[found.scheme]):
            return False
        return not self.path or found.path == self.path or found.path.startswith(self.path + "/")

    def __str__(self) -> str:
        if len(self.schemes) > 1:
            return f"{self.host}:{self.port}" if self.port else self.host
        port = f":{self.port}" if self.port != SCHEMES[self.schemes[0]] else ""
        return f"{self.schemes[0]}://{self.host}{port}{self.path}"


def entry(text: str) -> Entry:
    """One entry of the setting. Raises ``ValueError``."""
    if "://" in text:
        found = target(text)
        return Entry((found.scheme,), found.host, found.port, found.path)
    host, _, port = text.partition(":")
    if not host or "/" in text or (port and not port.isdigit()):
        raise ValueError(f"{text!r}: neither a host (name or name:port) nor an http(s):// URL prefix")
    return Entry(tuple(SCHEMES), host.lower(), int(port) if port else None, "")


@dataclass(frozen=True, slots=True)
class CallbackAllowList:
    entries: tuple[Entry, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CallbackAllowList:
        value = (os.environ if env is None else env).get(CALLBACK_ALLOWED_ENV, "")
        try:
            return cls(tuple(entry(e.strip()) for e in _SEPARATORS.split(value) if e.strip()))
        except ValueError as e:
            raise InputError("deployment settings", f"{CALLBACK_ALLOWED_ENV}: {e}") from None

    def check(self, url: str) -> None:
        """Raises ``CallbackRefused`` unless a callback may be POSTed to ``url``."""
        if not self.entries:
            raise CallbackRefused(
                "callback_url",
                f"callbacks are off in this deployment ({CALLBACK_ALLOWED_ENV} is not set); to allow "
                f"{shown_url(url)}, add it to {CALLBACK_ALLOWED_ENV} where voicebatch runs",
            )
        try:
            found = target(url)
        except ValueError as e:
            raise CallbackRefused("callback_url", str(e)) from None
        if any(e.allows(found) for e in self.entries):
            return
        allowed = ", ".join(dict.fromkeys(str(e) for e in self.entries))
        raise CallbackRefused(
            "callback_url",
            f"{shown_url(url)} is outside the callback URLs this deployment allows (allowed: {allowed}); to allow "
            f"it, add it to {CALLBACK_ALLOWED_ENV} where voicebatch runs",
        )


def shown_url(url: str) -> str:
    """The URL without its query or fragment (where tokens live) and without credentials."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return repr(url[:80])
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else repr(url[:80])
