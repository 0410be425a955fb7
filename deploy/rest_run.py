"""A voice_batch run over Airflow's public REST API (v2), without the UI: the recipe of
docs/arrivals.md ("Job status over REST"), runnable as it stands (Python's standard library only).

    AIRFLOW_URL=http://127.0.0.1:8080 AIRFLOW_USERNAME=admin AIRFLOW_PASSWORD=... \\
        python deploy/rest_run.py --conf '{"script_files": ["welcome.md"]}' [--download DIR]

1. POST /auth/token: a JWT for the user (Airflow's simple auth manager, or FAB's).
2. POST /api/v2/dags/voice_batch/dagRuns with the conf (Params, docs/params.md): the run's id.
3. GET /api/v2/dags/voice_batch/dagRuns/{run_id} every --poll seconds until success or failed.
4. GET .../taskInstances/report/xcomEntries/return_value: the run's summary (counts, report keys).
5. GET /voicebatch/runs/voice_batch/{run_id}/files/{key}: the report (JSON) and, with
   --download, every file it lists (audio, subtitles, timings, manifests), through the API
   server's voicebatch plugin, with the same token.

Prints one JSON document (run id, state, summary, each script's outcome and manifest, the files);
exits 0 when the run succeeded, 1 when it failed, 2 on a usage or HTTP error (one line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


class Failed(Exception):
    """A usage or HTTP error: one line, exit status 2."""


def call(url: str, token: str | None = None, body: dict | None = None, *, raw: bool = False) -> Any:
    """One request; JSON in and out (the answer's bytes when ``raw`` or when it is not JSON)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
            is_json = response.headers.get_content_type() == "application/json"
            return json.loads(payload) if is_json and not raw else payload
    except urllib.error.HTTPError as e:
        raise Failed(
            f"{request.get_method()} {url}: HTTP {e.code}: {e.read()[:500].decode(errors='replace')}"
        ) from None
    except urllib.error.URLError as e:
        raise Failed(f"{request.get_method()} {url}: {e.reason}") from None


def run(base: str, username: str, password: str, dag_id: str, conf: dict, poll: float, timeout: float) -> dict:
    token = call(f"{base}/auth/token", body={"username": username, "password": password})["access_token"]
    # logical_date null: a run of "now", its scripts in scripts_uri itself (not a dated sub-folder).
    created = call(f"{base}/api/v2/dags/{dag_id}/dagRuns", token, {"logical_date": None, "conf": conf})
    run_id = created["dag_run_id"]
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
