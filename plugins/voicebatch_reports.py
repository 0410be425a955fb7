"""Run reports served by Airflow's API server: a plugin FastAPI app under
``/voicebatch`` and a "Run report" tab on every DAG run page.

    /voicebatch/                                   recent voicebatch runs you may read
    /voicebatch/runs/<dag_id>/<run_id>/            the run's report (or "not ready yet")
    /voicebatch/runs/<dag_id>/<run_id>/files/<key> a file the report links to, streamed from the
                                                   run's storage (local, or S3 through its connection)

Links never expire: nothing is presigned, the API server reads the storage itself. The report
task records where the run's report is (XCom ``voicebatch_report``: output location, connection
id, report prefix); only the files that report names are served (``files`` in report.json),
so the app cannot be used to read anything else in the bucket.

Auth: Airflow does not authenticate plugin apps (a mounted app inherits none of the core API's
dependencies), so the app checks the caller itself, with Airflow's own security functions: a
middleware authenticates every request before it is routed (the JWT from the ``Authorization:
Bearer`` header or the UI's ``_token`` cookie), so a caller without a valid token gets nothing,
not even a 404; each route then asks the auth manager for the permission to read the DAG's runs.
Anonymous callers get 401, forged tokens 403, users without the permission 403. The app has no
interactive docs and no OpenAPI schema (FastAPI's defaults, served to anyone, from a CDN).

Deliberately light to import (FastAPI only): plugins are loaded by every Airflow component,
and the control image has no voicebatch library, so this module does not use it.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

URL_PREFIX = "/voicebatch"
XCOM_KEY = "voicebatch_report"  # pushed by RunReportOperator: where the run's report lives
# The report's own page must not run scripts even if a name slipped through unescaped.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; media-src 'self' data:; "
    "frame-ancestors 'self'"
)
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".vtt": "text/vtt; charset=utf-8",
    ".srt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
}
CHUNK = 256 * 1024

# No interactive docs, no schema: FastAPI's /docs, /redoc and /openapi.json would be served to
# anyone (a mounted app inherits no auth) and /docs loads Swagger from a CDN.
app = FastAPI(
    title="voicebatch reports",
    description="Run reports and outputs of voicebatch runs",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    swagger_ui_oauth2_redirect_url=None,
)


@app.middleware("http")
async def authenticated_only(request: Request, call_next: Any) -> Response:
    """Nothing at all for a caller without a valid token (not even a 404): every request is
    authenticated before it is routed; each route then checks the caller's permission."""
    try:
        await _user(request)
    except HTTPException as e:
        return JSONResponse({"detail": e.detail}, status_code=e.status_code, headers=e.headers)
    return await call_next(request)


async def _user(request: Request) -> Any:
    """The caller from the ``Authorization: Bearer`` JWT or the UI's cookie; else 401/403."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


async def authorize(request: Request, dag_id: str | None) -> Any:
    """The caller, if allowed to read ``dag_id``'s runs (any DAG's when None); else 401/403."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi.concurrency import run_in_threadpool

    user = await _user(request)
    if dag_id is not None:
        await run_in_threadpool(requires_access_dag("GET", DagAccessEntity.RUN, dag_id), request, user)
    return user


def report_url(dag_id: str, run_id: str, base_url: str | None = None) -> str:
    """The run's report on the API server (relative to the UI when no ``[api] base_url`` is set)."""
    return f"{(base_url or '').rstrip('/')}{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}/"


def _location(dag_id: str, run_id: str) -> tuple[dict | None, str]:
    """(where the report is, or None before the report task ran; the run's state)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            raise HTTPException(404, f"no run {run_id!r} of DAG {dag_id!r}")
        found = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == XCOM_KEY)
        ).first()
        location = XComModel.deserialize_value(found) if found is not None else None
        return location, str(getattr(run.state, "value", run.state))


def _s3(location: dict) -> tuple[Any, str, str]:
    """(client, bucket, key prefix) for an s3:// output, through the run's Airflow connection."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    bucket, _, prefix = location["output_uri"][5:].partition("/")
    client = S3Hook(aws_conn_id=location.get("aws_conn_id") or None).get_conn()
    return client, bucket, prefix.strip("/")


def _report(location: dict) -> dict:
    data = _read(location, location["prefix"] + "report.json")
    return json.loads(data)


def _read(location: dict, key: str) -> bytes:
    uri = location["output_uri"]
    if uri.startswith("s3://"):
        client, bucket, prefix = _s3(location)
        return client.get_object(Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key)["Body"].read()
    return (_local_root(uri) / key).read_bytes()


def _local_root(uri: str) -> Path:
    return Path(uri[7:] if uri.startswith("file://") else uri).expanduser()


def _page(title: str, body: str, refresh: int | None = None) -> HTMLResponse:
    meta = f"<meta http-equiv='refresh' content='{refresh}'>" if refresh else ""
    text = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>{meta}<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;color:#222}td,th{padding:.2rem .6rem;"
        "text-align:left}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_POLICY})


@app.get("/", response_class=HTMLResponse, summary="Recent voicebatch runs you may read")
async def index(request: Request) -> HTMLResponse:
    from airflow.api_fastapi.app import get_auth_manager
    from fastapi.concurrency import run_in_threadpool

    user = await authorize(request, None)
    readable = await run_in_threadpool(lambda: get_auth_manager().get_authorized_dag_ids(user=user, method="GET"))
    rows = await run_in_threadpool(_recent_runs, readable)
    cells = "".join(
        f"<tr><td>{html.escape(d)}</td><td><a href='{html.escape(report_url(d, r)[len(URL_PREFIX) + 1 :])}'>"
        f"{html.escape(r)}</a></td><td>{html.escape(s)}</td></tr>"
        for d, r, s in rows
    )
    table = f"<table><tr><th>DAG</th><th>run</th><th>state</th></tr>{cells}</table>" if rows else "<p>No runs yet.</p>"
    return _page("voicebatch runs", f"<h1>voicebatch runs</h1>{table}")


def _recent_runs(readable: set[str]) -> list[tuple[str, str, str]]:
    """The latest 200 runs of the DAGs tagged ``voicebatch`` that the user may read."""
    from airflow.models.dag import DagTag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dags = set(session.scalars(select(DagTag.dag_id).where(DagTag.name == "voicebatch"))) & readable
        runs = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.state)
            .where(DagRun.dag_id.in_(dags))
            .order_by(DagRun.id.desc())
            .limit(200)
        ).all()
    return [(d, r, str(getattr(s, "value", s))) for d, r, s in runs]


@app.get("/runs/{dag_id}/{run_id}/", summary="The run's report")
async def run_report(request: Request, dag_id: str, run_id: str) -> Response:
    from fastapi.concurrency import run_in_threadpool

    await authorize(request, dag_id)
    location, state = await run_in_threadpool(_location, dag_id, run_id)
    if location is None:
        what = html.escape(f"{dag_id} / {run_id}")
        if state in ("running", "queued"):
            body = f"<h1>Run report</h1><p>{what}: the run is {state}; its report appears when it ends.</p>"
            return _page("Run report", body, refresh=15)
        body = f"<h1>Run report</h1><p>{what} has no voicebatch report (its report task did not run).</p>"
        return _page("Run report", body)
    return RedirectResponse(f"files/{quote(location['prefix'])}report.html", status_code=307)


@app.get("/runs/{dag_id}/{run_id}/files/{key:path}", summary="A file the run's report links to")
async def run_file(request: Request, dag_id: str, run_id: str, key: str) -> Response:
    from fastapi.concurrency import run_in_threadpool

    await authorize(request, dag_id)
    location, _ = await run_in_threadpool(_location, dag_id, run_id)
    if location is None:
        raise HTTPException(404, "the run has no report yet")
    allowed = {location["prefix"] + "report.html", location["prefix"] + "report.json"}
    if key not in allowed:
        report = await run_in_threadpool(_report, location)
        allowed.update(report.get("files", ()))
    if key not in allowed:
        raise HTTPException(404, f"{key!r} is not a file of this run's report")
    suffix = Path(key).suffix.lower()
    media = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"
    headers = {"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff"}
    uri = location["output_uri"]
    if not uri.startswith("s3://"):
        path = _local_root(uri) / key
        if not path.is_file():
            raise HTTPException(404, f"{key!r} is gone from {uri}")
        return FileResponse(path, media_type=media, headers=headers)  # answers Range requests (audio seeking)
    return await run_in_threadpool(_stream_s3, location, key, request.headers.get("range"), media, headers)


_RANGE = re.compile(r"^bytes=\d*-\d*$")


def _stream_s3(location: dict, key: str, byte_range: str | None, media: str, headers: dict) -> Response:
    """Stream the object (never presign): a browser's Range request is passed on, so players seek."""
    from botocore.exceptions import ClientError

    client, bucket, prefix = _s3(location)
    extra = {"Range": byte_range} if byte_range and _RANGE.match(byte_range) else {}
    try:
        found = client.get_object(Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key, **extra)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404"):
            raise HTTPException(404, f"{key!r} is gone from {location['output_uri']}") from None
        if code == "InvalidRange":
            raise HTTPException(416, "range not satisfiable") from None
        raise
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(found["ContentLength"])}
    if "ContentRange" in found:
        headers["Content-Range"] = found["ContentRange"]
    body = found["Body"]
    status = 206 if "ContentRange" in found else 200
    return StreamingResponse(body.iter_chunks(CHUNK), status_code=status, media_type=media, headers=headers)


class VoicebatchReportsPlugin(AirflowPlugin):
    name = "voicebatch_reports"
    fastapi_apps: ClassVar[list[dict]] = [{"app": app, "url_prefix": URL_PREFIX, "name": "voicebatch reports"}]
    # A "Run report" tab on the DAG run page: the report in the UI, for any run, even one that
    # synthesized nothing (every script already published) or failed before synthesis.
    external_views: ClassVar[list[dict]] = [
        {
            "name": "Run report",
            "href": f"{URL_PREFIX.lstrip('/')}/runs/{{DAG_ID}}/{{RUN_ID}}/",
            "destination": "dag_run",
            "url_route": "voicebatch-run-report",
        }
    ]
