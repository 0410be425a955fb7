"""A callback receiver for tests: an HTTP server on 127.0.0.1 (a free port) that answers each POST
with the next scripted status and records what it got; and the receiver's signature check, written
here with ``hmac`` (not voicebatch's code), as docs/callbacks.md tells receivers to."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What a receiver answers in its body: never to appear in voicebatch's logs or records.
ANSWER_MARKER = "receiver-private-answer-7d1e"


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case (HTTP header names are case-insensitive)
    body: bytes
    status: int  # what the receiver answered


@dataclass
class Receiver:
    port: int
    statuses: list[int]
    extra_headers: dict[int, dict[str, str]] = field(default_factory=dict)
    got: list[Received] = field(default_factory=list)

    def url(self, path: str = "/hooks/voicebatch") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def payloads(self) -> list[dict]:
        return [json.loads(r.body) for r in self.got]


@contextmanager
def receiver(statuses: Sequence[int] = (200,), headers: dict[int, dict[str, str]] | None = None) -> Iterator[Receiver]:
    """Answers the n-th POST with ``statuses[n]`` (the last one once they run out); ``headers``:
    extra response headers by status (a 301's Location, a 429's Retry-After)."""
    found = Receiver(0, list(statuses), dict(headers or {}))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server's name for it
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                n = len(found.got)
                status = found.statuses[min(n, len(found.statuses) - 1)]
                found.got.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status))
            answer = json.dumps({"detail": ANSWER_MARKER}).encode()
            self.send_response(status)
            for name, value in found.extra_headers.get(status, {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST  # a followed redirect would arrive as a GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def signature_ok(secret: bytes, got: Received) -> bool:
    """docs/callbacks.md's recipe: HMAC-SHA256 over ``<timestamp>.<body>``, compared in constant time."""
    timestamp = got.headers["x-voicebatch-timestamp"]
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + got.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, got.headers["x-voicebatch-signature"])
