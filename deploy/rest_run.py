"""A voice_batch run over Airflow's public REST API (v2), without the UI: the recipe of
docs/arrivals.md ("Job status over REST"), runnable as it stands (Python's standard library only).

    AIRFLOW_URL=http://127.0.0.1:8080 AIRFLOW_USERNAME=admin AIRFLOW_PASSWORD=... \\
        python deploy/rest_run.py --conf '{"script_files": ["welcome.md"]}' [--download DIR]

1. POST /auth/token: a JWT for the user (Airflow's simple auth manager, or FAB's).
2. POST /api/v2/dags/voice_batch/dagRuns with the conf (Params, docs/params.md) and a run id
   chosen here (rest__<UTC time>_<random>), so a trigger sent again cannot start two runs.
3. GET /api/v2/dags/voice_batch/dagRuns/{run_id} every --poll seconds until success or failed.
4. GET .../taskInstances/report/xcomEntries/return_value: the run's summary (counts, report keys).
5. GET /voicebatch/runs/voice_batch/{run_id}/files/{key}: the report (JSON) and, with
   --download, every file it lists (audio, subtitles, timings, manifests), through the API
   server's voicebatch plugin, with the same token.

Prints one JSON document (run id, state, summary, each script's outcome and manifest, the files);
exits 0 when the run succeeded, 1 when it failed, 2 on a usage or HTTP error (one line).
A transient failure (HTTP 500/502/503/504, a timeout, a reset connection) is retried after 1, 2,
4, 8 and 16 seconds, each retry announced on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class Failed(Exception):
    """A usage or HTTP error: one line, exit status 2."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered


TRANSIENT = {500, 502, 503, 504}  # a busy database, a proxy or a restarting API server: worth another try
BACKOFF_S = (1, 2, 4, 8, 16)


def call(url: str, token: str | None = None, body: dict | None = None, *, raw: bool = False) -> Any:
    """One request, sent again after a transient failure (``TRANSIENT``, a timeout or a reset
    connection) with backoff; JSON in and out (the answer's bytes when ``raw`` or when it is not
    JSON). Every request here is safe to repeat: reads, a token, and a trigger whose run id the
    client chose (a repeat answered 409 is handled by the caller)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    for attempt, pause in enumerate((*BACKOFF_S, None)):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                payload = response.read()
                is_json = response.headers.get_content_type() == "application/json"
                return json.loads(payload) if is_json and not raw else payload
        except urllib.error.HTTPError as e:
            answer = e.read()[:500].decode(errors="replace")
            if e.code not in TRANSIENT or pause is None:
                raise Failed(f"{request.get_method()} {url}: HTTP {e.code}: {answer}", status=e.code) from None
            why = f"HTTP {e.code}"
        except (TimeoutError, ConnectionResetError) as e:
            if pause is None:
                raise Failed(f"{request.get_method()} {url}: {e}") from None
            why = type(e).__name__
        except urllib.error.URLError as e:
            transient = isinstance(e.reason, (TimeoutError, ConnectionResetError))
            if not transient or pause is None:
                raise Failed(f"{request.get_method()} {url}: {e.reason}") from None
            why = str(e.reason)
        print(f"{request.get_method()} {url}: {why}, again in {pause} s (try {attempt + 2})", file=sys.stderr)
        time.sleep(pause)  # backoff before the next try
    raise AssertionError("unreachable: the last try raises")


def trigger(base: str, token: str, dag_id: str, conf: dict) -> str:
    """A new run of ``dag_id`` with ``conf``; its id. The id is chosen here, so a trigger sent
    again after a lost answer cannot start a second run: the repeat is answered 409."""
    run_id = f"rest__{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%S}_{secrets.token_hex(4)}"
    # logical_date null: a run of "now", its scripts in scripts_uri itself (not a dated sub-folder).
    body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
    try:
        return call(f"{base}/api/v2/dags/{dag_id}/dagRuns", token, body)["dag_run_id"]
    except Failed as e:
        if e.status != 409:
            raise
    # 409: a try whose answer was lost created it; it is ours if it is there.
    quoted = urllib.parse.quote(run_id, safe="")
    return call(f"{base}/api/v2/dags/{dag_id}/dagRuns/{quoted}", token)["dag_run_id"]


def run(base: str, username: str, password: str, dag_id: str, conf: dict, poll: float, timeout: float) -> dict:
    token = call(f"{base}/auth/token", body={"username": username, "password": password})["access_token"]
    run_id = trigger(base, token, dag_id, conf)
    quoted = urllib.parse.quote(run_id, safe="")
    print(f"triggered {dag_id} run {run_id}", file=sys.stderr)
    deadline = time.monotonic() + timeout
    while True:
        state = call(f"{base}/api/v2/dags/{dag_id}/dagRuns/{quoted}", token)["state"]
        if state in ("success", "failed"):
            break
        if time.monotonic() > deadline:
            raise Failed(f"run {run_id}: still {state} after {timeout:.0f} s")
        time.sleep(poll)  # the run's state changes when its tasks end: nothing to wait on but the API
    result: dict[str, Any] = {"dag_run_id": run_id, "state": state}
    xcom = f"{base}/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/report/xcomEntries/return_value"
    try:
        value = call(xcom, token)["value"]
    except Failed as e:  # the report task did not return (a run refused before it ran)
        result["summary_error"] = str(e)
        return result
    summary = json.loads(value) if isinstance(value, str) else value
    files = f"{base}/voicebatch/runs/{dag_id}/{quoted}/files/"
    report = json.loads(call(files + urllib.parse.quote(summary["report_json"]), token, raw=True))
    result |= {
        "summary": summary,
        "report": files + urllib.parse.quote(summary["report"]),
        "scripts": [
            {
                "script_id": s["script_id"],
                "status": s["status"],  # published, skipped (published before), held or failed
                "manifest": s.get("manifest_key"),
                "outputs": s.get("keys") or [],
                "error": s.get("error"),
            }
            for s in report["scripts"]
        ],
        "files": sorted(report.get("files", ())),
        "_files_url": files,
        "_token": token,
    }
    return result


def download(result: dict, folder: Path) -> list[str]:
    """Every file the report lists, under ``folder`` by its key."""
    saved = []
    for key in result.get("files", ()):
        target = folder / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(call(result["_files_url"] + urllib.parse.quote(key), result["_token"], raw=True))
        saved.append(str(target))
    return saved


def main() -> None:
    try:
        sys.exit(cli())
    except Failed as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conf", default="{}", help="the run's conf, a JSON object of Params (default {})")
    parser.add_argument("--dag", default="voice_batch")
    parser.add_argument("--poll", type=float, default=10.0, help="seconds between state checks (default 10)")
    parser.add_argument("--timeout", type=float, default=6 * 3600, help="give up after this many seconds")
    parser.add_argument("--download", type=Path, help="save every file the report lists under this folder")
    args = parser.parse_args()
    missing = [name for name in ("AIRFLOW_URL", "AIRFLOW_USERNAME", "AIRFLOW_PASSWORD") if not os.environ.get(name)]
    if missing:
        raise Failed(f"set {', '.join(missing)} (the API server's URL and a user's login)")
    try:
        conf = json.loads(args.conf)
    except json.JSONDecodeError as e:
        raise Failed(f"--conf: not JSON ({e})") from None
    if not isinstance(conf, dict):
        raise Failed("--conf: a JSON object of Params, e.g. '{\"nfe_steps\": 16}'")
    env = os.environ
    result = run(
        env["AIRFLOW_URL"].rstrip("/"),
        env["AIRFLOW_USERNAME"],
        env["AIRFLOW_PASSWORD"],
        args.dag,
        conf,
        args.poll,
        args.timeout,
    )
    if args.download and "files" in result:
        result["downloaded"] = download(result, args.download)
    print(json.dumps({k: v for k, v in result.items() if not k.startswith("_")}, indent=2))
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    main()
