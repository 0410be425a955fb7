"""The report stage: the run report from every stage's outcome, the quarantined takes published
beside it, and the staging folder removed.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from voicebatch.locations.names import key_segment
from voicebatch.locations.storage import PRESIGN_SECONDS, Storage
from voicebatch.publish.report import (
    ScriptOutcome,
    StageFailure,
    VoiceOutcome,
    build_report,
    publish_report,
    report_prefix,
)
from voicebatch.run.outcomes import stage_outcomes
from voicebatch.run.records import PlanEntry, PublishOutcome, unpublished

if TYPE_CHECKING:
    pass
from voicebatch.run.ingest import voice_records
from voicebatch.run.layout import outcomes_key, plan_key, take_key, voices_key

log = logging.getLogger(__name__)


def report_run(
    out: Storage,
    staging: str,
    *,
    dag_id: str,
    run_id: str,
    started_at: str | None,
    keep_staging: bool = False,
    expires: int = PRESIGN_SECONDS,
) -> dict:
    """Build and publish the run report, then remove the staging prefix. The report names
    every stage that failed (or never finished) with its error, and every input refused."""
    voices = [
        VoiceOutcome(
            r.voice,
            r.status,
            r.reason,
            r.clip_hash,
            r.start,
            r.end,
            tuple(r.warnings or ()),
            r.text,
            f"{r.registry}reference.wav" if r.registry else None,
        )
        for r in sorted(voice_records(out, staging).values(), key=lambda r: r.voice)
    ]
    plan = _staged_or(out, plan_key(staging), {"scripts": [], "batches": []})
    listing = _staged_or(out, voices_key(staging), {"voices": [], "rejected": []})
    failed_stages = [
        StageFailure(s.stage, s.part, s.error or "failed")
        for s in stage_outcomes(out, staging, plan["batches"])
        if s.status == "failed"
    ]
    staged = _staged_or(out, outcomes_key(staging), None)
    if staged is None:  # publishing did not finish: nothing pending was published
        not_finished = "not published: the publish stage did not finish"
        outcomes = [unpublished(PlanEntry.from_json(e), not_finished) for e in plan["scripts"]]
    else:
        outcomes = [PublishOutcome.from_json(o) for o in staged]
    scripts = [
        ScriptOutcome(
            o.id,
            o.status,
            o.output_hash,
            o.manifest_key,
            o.error,
            tuple(_publish_takes(out, staging, report_prefix(dag_id, run_id), o)),
        )
        for o in outcomes
    ]
    report, page = build_report(
        out,
        dag_id=dag_id,
        run_id=run_id,
        model=plan.get("model", {}),
        scripts=scripts,
        voices=voices,
        started_at=started_at,
        stages=failed_stages,
        rejected=tuple(listing["rejected"]),
        expires=expires,
    )
    json_key, html_key = publish_report(out, report, page)
    if not keep_staging:
        removed = out.delete_prefix(staging)
        log.info("removed %d staged objects under %s", removed, staging)
    failed = [f"{f.name}: {f.error}" for f in failed_stages]
    return {"report": html_key, "report_json": json_key, **report["totals"], "failed_stages": failed}


def _publish_takes(out: Storage, staging: str, prefix: str, outcome: PublishOutcome) -> list[dict]:
    """Every take of the script's quarantined chunks, copied next to the report (the staging
    prefix is about to go), each take with the key of its audio."""
    chunks = []
    for chunk in outcome.qa or ():
        takes = []
        for take in chunk["takes"]:
            staged = take_key(staging, chunk["key"], take["take"])
            key = f"{prefix}takes/{key_segment(outcome.id)}/{chunk['index']:04d}-take{take['take']}.wav"
            if out.exists(staged):
                out.put_bytes(key, out.get_bytes(staged), "audio/wav")
                take = {**take, "audio_key": key}
            takes.append(take)
        chunks.append({**chunk, "takes": takes})
    return chunks


def _staged_or(out: Storage, key: str, default: Any) -> Any:
    return json.loads(out.get_bytes(key)) if out.exists(key) else default
