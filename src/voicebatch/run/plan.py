"""The plan stage: load and check the scripts, skip what is published, and write the batch specs
the synthesize tasks speak.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from voicebatch.errors import InputError
from voicebatch.inputs.chunking import Chunk
from voicebatch.inputs.materialize import materialize
from voicebatch.inputs.scripts import Script, ScriptError, ScriptPart, load_scripts, script_label
from voicebatch.inputs.transcripts import Segment
from voicebatch.inputs.vocab import load_vocabulary
from voicebatch.inputs.voices import PreparedVoice
from voicebatch.locations.storage import Storage
from voicebatch.publish.publishing import json_bytes
from voicebatch.run.pipeline import ScriptPlan, plan_scripts
from voicebatch.synthesis.batching import estimate_frames, plan_tasks
from voicebatch.synthesis.engine import ChunkRequest
from voicebatch.synthesis.models import ModelFiles, ModelManifest

if TYPE_CHECKING:
    pass
from voicebatch.run.config import DEFAULT_MAX_TASKS, Opener, RunConfig, scripts_location
from voicebatch.run.ingest import load_registered_voice, task_groups, voice_records, voices_listed
from voicebatch.run.layout import batch_key, plan_key, staged_json
from voicebatch.run.records import PlanEntry, RecordError, count

log = logging.getLogger(__name__)


def planned(out: Storage, staging: str) -> dict:
    """The staged plan; raises ``StageNotReady`` when plan did not finish."""
    return staged_json(out, plan_key(staging), "plan did not finish: nothing to publish")


def plan_run(
    config: RunConfig,
    out: Storage,
    staging: str,
    model: ModelFiles | ModelManifest,
    open_uri: Opener,
    day: datetime.date | None,
) -> dict:
    """Load and check the scripts, skip what is published, write batch specs. Returns counts and keys."""
    listing = voices_listed(out, staging)
    records = voice_records(out, staging)
    usable = {n: records[n].clip_hash for n in listing["voices"] if n in records and records[n].ok}
    voices = {n: load_registered_voice(out, n, h) for n, h in usable.items()}
    location = scripts_location(config.scripts_uri, day, open_uri)
    log.info("scripts from %s; voices ready: %s", location, ", ".join(sorted(voices)) or "none")
    # Only the folder's own files are scripts (dated sub-folders are other days' scripts).
    wanted = set(config.script_files)  # empty: every file

    def only(key: str) -> bool:
        return "/" not in key and (not wanted or key in wanted)

    with materialize(location, open_uri, only=only, depth=1) as found:
        if missing := sorted(wanted - {p.name for p in found.root.iterdir()}):
            refused = "".join(f"; {e}" for e in found.rejected)  # a file refused is not there either
            raise InputError(location, f"script files not found: {', '.join(missing)} (script_files){refused}")
        scripts, problems = load_scripts(found.root, set(listing["voices"]), load_vocabulary())
        from voicebatch.run.books import plan_books  # .epub files: books, their chapters planned as scripts

        books, book_plans = plan_books(
            found, listing["voices"], voices, model.checksum, config.settings, out, staging, force=config.force
        )
    scripts = [replace(s, source=found.label(s.source)) for s in scripts]
    entries = [_failed_entry(found.relabel(p)) for p in problems]
    entries += [PlanEntry(id="(refused input)", status="failed", error=str(e)) for e in found.rejected]
    ready = []
    for script in scripts:
        missing = [v for v in script.voices if v not in voices]
        if missing:
            error = f"{script.source}: voice(s) {', '.join(missing)} unusable (see the voice tasks)"
            entries.append(PlanEntry(id=script.id, status="failed", error=error))
        else:
            ready.append(script)
    plans = plan_scripts(ready, voices, model.checksum, config.settings, out, force=config.force)
    entries += [plan_entry(p) for p in plans] + books
    pending = [p for p in plans if not p.published] + book_plans
    batches = _batch_specs(
        pending,
        voices,
        config.chunks_per_task,
        config.task_gpu_seconds,
        asdict(config.settings.params),
        config.batch_frames,
        config.max_tasks,
    )
    keys = []
    for n, spec in enumerate(batches):
        spec["verify"] = asdict(config.settings.verify)
        keys.append(batch_key(staging, n))
        out.put_bytes(keys[-1], json_bytes(spec), "application/json")
    document = {
        "scripts": [e.to_json() for e in entries],
        "voices": usable,
        "model": model.lineage(),  # publish and report read it here instead of resolving the model again
        "batches": keys,
    }
    out.put_bytes(plan_key(staging), json_bytes(document), "application/json")  # last: publish waits for it
    counts = count(entries, "pending", "skipped", "failed")
    chunks = sum(len(b["requests"]) for b in batches)
    for entry in entries:  # what was decided for each script, and why
        if entry.status == "pending":
            log.info(
                "planned %s: %d chunk(s), output %s", entry.id, entry.chunk_count(), (entry.output_hash or "")[:12]
            )
        elif entry.status == "skipped":
            log.info(
                "skipped %s: already published (output %s; force re-does it)", entry.id, (entry.output_hash or "")[:12]
            )
        else:
            log.warning("failed %s: %s", entry.id, entry.error)
    log.info("plan: %d scripts (%s), %d chunks in %d synthesize tasks", len(entries), counts, chunks, len(keys))
    return {"batches": keys, "scripts": len(entries), "chunks": chunks, **counts}


def _failed_entry(problem: ScriptError) -> PlanEntry:
    return PlanEntry(id=script_label(problem), status="failed", error=str(problem))


def plan_entry(plan: ScriptPlan) -> PlanEntry:
    """A planned script's entry: everything synthesize and publish need to rebuild its plan."""
    return PlanEntry(
        id=plan.script.id,
        status="skipped" if plan.published else "pending",
        output_hash=plan.output_hash,
        source=plan.script.source,
        speed=plan.script.speed,
        parts=tuple(asdict(p) for p in plan.script.parts),
        cues=tuple([c.start, c.end, c.text, c.speaker] for c in plan.script.cues),  # a timed script's
        chunks=tuple(asdict(c) for c in plan.chunks),
        requests=tuple(asdict(r) for r in plan.requests),
    )


def script_plan(entry: PlanEntry) -> ScriptPlan:
    """The plan a script's entry was made from (``plan_entry``)."""
    if entry.source is None or entry.speed is None or entry.output_hash is None:
        raise RecordError(f"PlanEntry: {entry.id} is {entry.status} but has no script plan")
    cues = tuple(Segment(*c) for c in entry.cues or ())
    parts = tuple(ScriptPart(**p) for p in entry.parts or ())
    script = Script(entry.id, entry.source, parts, entry.speed, cues=cues)
    chunks = tuple(Chunk(**{**c, "sentences": tuple(c["sentences"])}) for c in entry.chunks or ())
    requests = tuple(ChunkRequest(**r) for r in entry.requests or ())
    return ScriptPlan(script, entry.output_hash, chunks, requests, False)


def _batch_specs(
    pending: Sequence[ScriptPlan],
    voices: Mapping[str, PreparedVoice],
    per_task: int,
    task_gpu_seconds: float,
    params: dict,
    batch_frames: int,
    max_tasks: int = DEFAULT_MAX_TASKS,
) -> list[dict]:
    def frames(r: ChunkRequest) -> int:
        return estimate_frames(voices[r.voice].samples.shape[0], voices[r.voice].text, r.text, r.speed)

    requests = [r for p in pending for r in p.requests]
    owner = {r.key: p for p in pending for r in p.requests}
    # Sorted by length, so each task's engine batches hold similar lengths.
    requests.sort(key=lambda r: -frames(r))
    # Sized by estimated GPU time, so a task's fixed cost (model load, warm-up) stays small
    # against its work; chunks_per_task caps the count.
    tasks = plan_tasks([frames(r) for r in requests], params["nfe_steps"], task_gpu_seconds, per_task)
    if len(tasks) > max_tasks:  # more than Airflow can map: neighbouring tasks (similar lengths) merged
        merged = [[i for task in group for i in task] for group in task_groups(tasks, max_tasks)]
        log.info("%d synthesize tasks merged into %d (max_map_length %d)", len(tasks), len(merged), max_tasks)
        tasks = merged
    specs = []
    for task in tasks:
        group = [requests[i] for i in task]
        used = sorted({r.voice for r in group})
        scripts = {owner[r.key].script.id: owner[r.key] for r in group}  # what the task reads and writes (lineage)
        specs.append(
            {
                "voices": {v: voices[v].clip_hash for v in used},
                "params": params,
                "batch_frames": batch_frames,  # the synthesize task's padded frames per forward pass
                "requests": [asdict(r) for r in group],
                "scripts": [
                    {"id": p.script.id, "output_hash": p.output_hash, "source": p.script.source}
                    for p in scripts.values()
                ],
            }
        )
    return specs
