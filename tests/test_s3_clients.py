"""The S3 clients retry as docs/connections.md says: botocore's `standard` mode, 5 attempts, SigV4.

Against a local endpoint that answers every request with 503 SlowDown and counts them: the
CLI's client (the standard AWS environment) and the DAG's (an Airflow AWS connection, in an
Airflow process). Backoff waits are recorded instead of slept.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicebatch.locations.storage import open_storage, s3_client

from airflow_helpers import ROOT, airflow_env

SLOW_DOWN = b"""<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"""


@pytest.fixture
def throttling_endpoint() -> Iterator[tuple[str, list[dict]]]:
    """An S3 endpoint on 127.0.0.1 that throttles every request; yields (URL, requests seen)."""
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" at once

        def do_PUT(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"path": self.path, "authorization": self.headers.get("Authorization", "")})
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(SLOW_DOWN)))
            self.end_headers()
            self.wfile.write(SLOW_DOWN)

        def log_message(self, *args: object) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_cli_client_tries_five_times_with_sigv4(throttling_endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    endpoint, seen = throttling_endpoint
    waits: list[float] = []
    monkeypatch.setattr("time.sleep", waits.append)  # botocore looks time.sleep up at each retry
    client = s3_client(endpoint, "us-east-1", aws_access_key_id="AKIATEST", aws_secret_access_key="secret")
    with pytest.raises(ClientError, match="SlowDown"):
        open_storage("s3://bucket/out", client=client).put_bytes("a.txt", b"x")
    assert len(seen) == 6 and len(waits) == 5, "the first attempt and 5 retries"
    assert all(s["path"] == "/bucket/out/a.txt" for s in seen), "path-style addressing"
    assert all(s["authorization"].startswith("AWS4-HMAC-SHA256 ") for s in seen), "SigV4"


DAG_CLIENTS = r"""
import json, sys, time
waits = []
time.sleep = waits.append
from voicebatch_airflow import s3_client
out = {}
for conn_id in sys.argv[1:]:
    waits.clear()
    try:
        s3_client(conn_id).put_object(Bucket=conn_id, Key="out/a.txt", Body=b"x")
    except Exception as e:
        out[conn_id] = {"error": type(e).__name__ + ": " + str(e), "waits": len(waits)}
print(json.dumps(out))
"""


def connection(endpoint: str, **extra: object) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "AKIATEST",
            "password": "secret",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1", **extra},
        }
    )


def test_dag_client_from_the_airflow_connection_retries(throttling_endpoint, tmp_path: Path) -> None:
    """Default: 5 retries; the connection's extra "config_kwargs" can ask for others (docs/connections.md)."""
    endpoint, seen = throttling_endpoint
    more = {"config_kwargs": {"retries": {"mode": "adaptive", "max_attempts": 2}}}
    env = airflow_env(
        tmp_path / "airflow",
        AIRFLOW_CONN_PLAIN=connection(endpoint),
        AIRFLOW_CONN_TUNED=connection(endpoint, **more),
    )
    result = subprocess.run(
        [sys.executable, "-c", DAG_CLIENTS, "plain", "tuned"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    for conn_id, attempts in (("plain", 6), ("tuned", 3)):
        assert "SlowDown" in outcome[conn_id]["error"]
        requests = [s for s in seen if s["path"] == f"/{conn_id}/out/a.txt"]  # path-style addressing
        assert len(requests) == attempts and outcome[conn_id]["waits"] == attempts - 1, conn_id
        assert all(s["authorization"].startswith("AWS4-HMAC-SHA256 ") for s in requests), "SigV4"
    assert len(seen) == 6 + 3
