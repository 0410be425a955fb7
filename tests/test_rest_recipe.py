"""deploy/rest_run.py against a stand-in API server that fails the way a busy one does.

The real recipe runs against a real Airflow in test_arrivals_airflow; here the server is a
small HTTP server of the test's own, so the failures can be chosen: a trigger whose run was
created but whose answer was a 500 (SQLite locked on commit of the response, a proxy timing
out) must not start a second run, and transient answers are retried, permanent ones are not.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import airflow_helpers  # noqa: F401 - puts deploy/ (not a package) on sys.path

rest_run = importlib.import_module("rest_run")


class FakeAirflow(BaseHTTPRequestHandler):
    """POST /auth/token, POST and GET dagRuns; ``self.server.script`` lists the answers to give first."""

    def log_message(self, *args: object) -> None:  # quiet: the test reads self.server.seen instead
        pass

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(("POST", self.path))
        if self.path == "/auth/token":
            return self.answer(201, {"access_token": "t"})
        runs = self.server.runs
        run_id = body["dag_run_id"]
        if run_id in runs:
            return self.answer(409, {"detail": f"DAGRun with dag_run_id: '{run_id}' already exists"})
        runs[run_id] = body["conf"]
        if self.server.lose_answers:  # created, but the client never hears it
            self.server.lose_answers -= 1
            return self.answer(500, {"detail": {"reason": "Database error"}})
        return self.answer(200, {"dag_run_id": run_id, "state": "queued"})

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path))
        if self.server.unavailable:
            self.server.unavailable -= 1
            return self.answer(503, {"detail": "restarting"})
        parts = self.path.split("/")
        if self.path.endswith("/xcomEntries/return_value"):
            return self.answer(404, {"detail": "no XCom"})
        run_id = parts[6]
        if run_id in self.server.runs:
            return self.answer(200, {"dag_run_id": run_id, "state": "success"})
        return self.answer(404, {"detail": "no such run"})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    monkeypatch.setattr(rest_run, "BACKOFF_S", (0, 0, 0, 0, 0))  # the same tries, without the waits
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflow)
    httpd.runs, httpd.seen, httpd.lose_answers, httpd.unavailable = {}, [], 0, 0
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def base(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def test_a_trigger_whose_answer_was_lost_starts_one_run(server: ThreadingHTTPServer) -> None:
    server.lose_answers = 1
    result = rest_run.run(base(server), "admin", "pw", "voice_batch", {"nfe_steps": 8}, poll=0, timeout=5)
    assert list(server.runs) == [result["dag_run_id"]] and server.runs[result["dag_run_id"]] == {"nfe_steps": 8}
    assert result["dag_run_id"].startswith("rest__") and result["state"] == "success"
    posts = [path for method, path in server.seen if method == "POST" and "dagRuns" in path]
    assert len(posts) == 2, "sent again once, answered 409, taken as the same run"
    assert "summary_error" in result  # the stand-in has no report XCom


def test_two_triggers_are_two_runs(server: ThreadingHTTPServer) -> None:
    first = rest_run.run(base(server), "admin", "pw", "voice_batch", {}, poll=0, timeout=5)
    second = rest_run.run(base(server), "admin", "pw", "voice_batch", {}, poll=0, timeout=5)
    assert first["dag_run_id"] != second["dag_run_id"] and len(server.runs) == 2


def test_transient_answers_are_retried_then_reported(server: ThreadingHTTPServer) -> None:
    server.runs["r1"] = {}
    server.unavailable = 2
    assert rest_run.call(f"{base(server)}/api/v2/dags/voice_batch/dagRuns/r1", "t")["state"] == "success"
    server.unavailable = len(rest_run.BACKOFF_S) + 1  # one more than the retries
    with pytest.raises(rest_run.Failed, match=r"HTTP 503") as failed:
        rest_run.call(f"{base(server)}/api/v2/dags/voice_batch/dagRuns/r1", "t")
    assert failed.value.status == 503


def test_a_permanent_answer_is_not_retried(server: ThreadingHTTPServer) -> None:
    with pytest.raises(rest_run.Failed, match=r"HTTP 404: .*no such run"):
        rest_run.call(f"{base(server)}/api/v2/dags/voice_batch/dagRuns/nope", "t")
    assert server.seen == [("GET", "/api/v2/dags/voice_batch/dagRuns/nope")]
