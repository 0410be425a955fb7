"""The callback's JSON body (schema ``voicebatch.callback/1``), from the run report.

The run report (``runs/<dag_id>/<run_id>/report.json``) already says what the run did; the
summary keeps what a caller acts on: the verdict, the failed stage and why, every script's
outcome with the URIs of its files (storage URIs, never presigned links: a callback body ends up
in the receiver's logs), and the verification counts. No secret is in it: the report has none.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence

from voicebatch.publish.report import report_prefix

SCHEMA = "voicebatch.callback/1"
EVENT = "run.finished"
STATES = ("success", "failed")
QA_FIELDS = ("checked", "passed", "quarantined", "retakes", "pass_rate", "needs_review", "held")
TOTAL_FIELDS = ("scripts", "published", "skipped", "failed", "held", "voices_ok", "voices_failed", "audio_seconds")


def event_id(dag_id: str, run_id: str) -> str:
    """The same for every try and every re-run of the task: receivers drop repeats by it."""
    return hashlib.sha256(f"{EVENT}\n{dag_id}\n{run_id}".encode()).hexdigest()[:32]


def strict_failure(totals: Mapping[str, int]) -> str | None:
    """Why ``strict`` fails a run whose stages all finished, or None when nothing needs it."""
    quarantined = totals.get("quarantined_chunks", 0)
    problems = totals["failed"] + totals["voices_failed"] + totals["inputs_rejected"] + quarantined
    if not problems:
        return None
    return (
        f"strict: {totals['failed']} script(s), {totals['voices_failed']} voice(s) failed, "
        f"{totals['inputs_rejected']} input(s) refused, {quarantined} chunk(s) quarantined"
    )


def run_summary(
    *,
    dag_id: str,
    run_id: str,
    state: str,
    report: Mapping | None,
    uri_for: Callable[[str], str] | None,
    strict: bool = False,
    failed_tasks: Sequence[str] = (),
) -> dict:
    """The callback body. ``state``: the run's verdict (``success`` or ``failed``); ``report``:
    its report.json, None when none was published; ``uri_for``: storage key -> URI;
    ``failed_tasks``: the run's failed tasks in stage order, which name the failure when the
    report cannot (it was not published)."""
    if state not in STATES:
        raise ValueError(f"state {state!r}: one of {', '.join(STATES)}")
    stages = list(report.get("failed_stages", [])) if report else []
    failed_stage = reason = None
    if state == "failed":
        failed_stage, reason = _failure(report, stages, strict, failed_tasks)
    prefix = report_prefix(dag_id, run_id)
    return {
        "schema": SCHEMA,
        "event": EVENT,
        "event_id": event_id(dag_id, run_id),
        "dag_id": dag_id,
        "run_id": run_id,
        "state": state,
        "failed_stage": failed_stage,
        "reason": reason,
        "failed_stages": stages,
        "report_uri": uri_for(prefix + "report.json") if report and uri_for else None,
        "outputs": [_output(row, uri_for) for row in report["scripts"]] if report else [],
        "qa": {k: report["qa"].get(k) for k in QA_FIELDS} if report else None,
        "totals": {k: report["totals"].get(k) for k in TOTAL_FIELDS} if report else None,
        "rejected_inputs": list(report.get("rejected_inputs", [])) if report else [],
        "timings": dict(report.get("timings", {})) if report else None,
    }


def body_bytes(summary: Mapping) -> bytes:
    """The exact bytes sent (and signed): compact, keys sorted, UTF-8."""
    return json.dumps(summary, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _failure(
    report: Mapping | None, stages: Sequence[Mapping], strict: bool, failed_tasks: Sequence[str]
) -> tuple[str, str]:
    if stages:
        first = stages[0]
        name = f"{first['stage']}[{first['part']}]" if first.get("part") else first["stage"]
        return name, first.get("error") or "failed"
    if report is not None and strict and (why := strict_failure(report["totals"])):
        return "report", why
    if failed_tasks:
        return failed_tasks[0], "the task failed and no run report was published: see the task's log"
    return "report", "no run report was published: see the report task's log"


def _output(row: Mapping, uri_for: Callable[[str], str] | None) -> dict:
    keys = list(row.get("keys") or [])
    manifest = row.get("manifest_key")
    needs_review = bool((row.get("qa") or {}).get("needs_review")) or row.get("status") == "held"
    return {
        "script_id": row["script_id"],
        "status": row["status"],
        "output_hash": row.get("output_hash"),
        "error": row.get("error"),
        "duration": row.get("duration"),
        "needs_review": needs_review,
        "quarantined_chunks": len(row.get("quarantined") or []),
        "manifest_uri": uri_for(manifest) if manifest and uri_for and manifest in keys else None,
        "uris": {key.rsplit("/", 1)[-1]: uri_for(key) for key in keys} if uri_for else {},
    }
