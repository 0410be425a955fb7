"""The publish stage: each planned script assembled from its staged chunks, rendered and published
(the manifest last); Asset counts for the DAG.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from voicebatch.locations.storage import Storage
from voicebatch.publish.publishing import json_bytes, point_latest
from voicebatch.run.pipeline import RunSettings, ScriptPlan, publish_script_outputs

if TYPE_CHECKING:
    pass
from voicebatch.run.ingest import load_registered_voice, voice_records
from voicebatch.run.layout import chunk_audio_key, chunk_record_key, outcomes_key, verification_prefix
from voicebatch.run.plan import planned, script_plan
from voicebatch.run.records import PlanEntry, PublishOutcome, count, unpublished

log = logging.getLogger(__name__)


def publish_run(out: Storage, staging: str, settings: RunSettings, run: Mapping[str, object]) -> dict:
    """Assemble and publish every script whose chunks were all synthesized. Returns counts of
    scripts and of voices newly registered in this run (what downstream consumers care about)."""
    import soundfile as sf

    document = planned(out, staging)
    voices = {n: load_registered_voice(out, n, h) for n, h in document["voices"].items()}
    verification = _verification(out, staging)
    outcomes: list[PublishOutcome] = []
    for entry in map(PlanEntry.from_json, document["scripts"]):
        if entry.status == "skipped" and entry.output_hash:  # latest.json still names what this run asked for
            point_latest(out, entry.id, entry.output_hash, run)
        if entry.status != "pending":
            outcomes.append(unpublished(entry))
            continue
        if entry.is_book:  # a book's sections become its files (run.books)
            from voicebatch.run.books import publish_book

            outcomes.append(publish_book(entry, out, staging, settings, run, voices, document["model"], verification))
            continue
        plan = script_plan(entry)
        missing = [r.key for r in plan.requests if not out.exists(chunk_record_key(staging, r.key))]
        if missing:
            error = f"{len(missing)} of {len(plan.requests)} chunks were not synthesized (a synthesize task failed)"
            failed = PublishOutcome(id=plan.script.id, status="failed", output_hash=plan.output_hash, error=error)
            outcomes.append(failed)
            continue
        seconds, qa = 0.0, []
        for r in plan.requests:
            staged = json.loads(out.get_bytes(chunk_record_key(staging, r.key)))
            seconds += staged["seconds"]
            qa.append(staged.get("qa"))
        # Read one chunk at a time as assembly asks for it: a book is never all in memory.
        audio = (
            sf.read(io.BytesIO(out.get_bytes(chunk_audio_key(staging, r.key))), dtype="float32")[0]
            for r in plan.requests
        )
        review = quarantined_chunks(plan, qa)
        if review and not settings.verify.publish_unverified:
            error = f"held back: {len(review)} chunk(s) never passed verification (publish_unverified is off)"
            log.warning("%s: %s", plan.script.id, error)
            outcomes.append(
                PublishOutcome(
                    id=plan.script.id, status="held", output_hash=plan.output_hash, error=error, qa=tuple(review)
                )
            )
            continue
        published = publish_script_outputs(
            out,
            plan,
            audio,
            voices,
            document["model"],
            settings,
            synthesis_seconds=seconds,
            run=run,
            qa=qa,
            verification=verification,
        )
        outcomes.append(
            PublishOutcome(
                id=plan.script.id,
                status="skipped" if published.skipped else "published",
                output_hash=plan.output_hash,
                keys=tuple(published.keys),
                qa=tuple(review),
            )
        )
    out.put_bytes(outcomes_key(staging), json_bytes([o.to_json() for o in outcomes]), "application/json")
    records = voice_records(out, staging).values()
    counts = count(outcomes, "published", "skipped", "failed", "held")
    counts["needs_review"] = sum(bool(o.qa) for o in outcomes if o.status == "published")
    return {
        **counts,
        "voices_registered": sum(r.ok and not r.reused for r in records),
        "voices_reused": sum(r.ok and bool(r.reused) for r in records),
        "voices_failed": sum(not r.ok for r in records),
    }


def _verification(out: Storage, staging: str) -> dict | None:
    """The synthesize tasks' verification records, merged: effective mode, models, notes."""
    documents = [json.loads(out.get_bytes(k)) for k in out.list(verification_prefix(staging)) if k.endswith(".json")]
    if not documents:
        return None
    return {
        "mode": documents[0]["mode"],
        "models": documents[0]["models"],
        "notes": sorted({n for d in documents for n in d["notes"]}),
        "seconds": round(sum(d["seconds"] for d in documents), 2),
    }


def quarantined_chunks(plan: ScriptPlan, qa: Sequence[dict | None]) -> list[dict]:
    """The script's chunks that never passed, with their takes (for the report)."""
    return [
        {"index": c.index, "key": r.key, "text": c.text, "kept_take": q["kept_take"], "takes": q["takes"]}
        for c, r, q in zip(plan.chunks, plan.requests, qa, strict=True)
        if q and q["status"] == "quarantined"
    ]
