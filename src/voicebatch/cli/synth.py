"""`voicebatch synth`: texts and scripts spoken by one or more voices, no Airflow, through the
same functions the DAG's stages call.

Everything a call asks for is done in one process: voices are prepared once, the model is
loaded once (and only when something is left to speak), and the chunks of every script go to
the engine together, so they batch across scripts. The chunks are spoken as the synthesize
stage speaks them (``voicebatch.run.speak``: synthesis batches, each verified and re-taken
while the next synthesizes) and each script is rendered by ``voicebatch.run.pipeline``'s
``render_script``, so the audio, the files and the manifest are the DAG's.

``--out DIR`` writes ``<name>.wav/.srt/.vtt/.csv`` into DIR, then ``<name>.manifest.json`` last
(the published manifest's schema: chunks, seeds, QA, loudness, the files with their hashes): it
names the output hash, so a run asking for the same output again finds it and skips it.
``--out s3://bucket/prefix`` publishes through the protocol instead (voice registry,
content-addressed outputs, manifest last) and skips what is published the same way.

The request is read by ``voicebatch.cli.synth_request`` (flags over F5's TOML, ``f5_toml``); the
voices and scripts by ``voicebatch.cli.synth_inputs``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from voicebatch.audio import MODEL_SAMPLE_RATE
from voicebatch.inputs.vocab import load_vocabulary
from voicebatch.inputs.voices import PreparedVoice
from voicebatch.locations.storage import Storage, is_s3_uri, open_storage
from voicebatch.publish.publishing import Published, is_published, point_latest, publish_voice
from voicebatch.run.pipeline import (
    RunSettings,
    ScriptPlan,
    existing_output,
    publish_script_outputs,
    write_script_outputs,
    written_locally,
)
from voicebatch.run.speak import engine_for, speak
from voicebatch.synthesis.engine import Engine, Progress, Reference
from voicebatch.synthesis.f5_output import f5_output_to_log
from voicebatch.synthesis.jobs import log_progress
from voicebatch.synthesis.model_store import ModelStore
from voicebatch.text.lexicon import read_lexicon

if TYPE_CHECKING:
    pass
from voicebatch.cli.synth_inputs import plan_with_voice_speeds, prepare_inputs, request_scripts
from voicebatch.cli.synth_records import ScriptResult, SynthRequest
from voicebatch.cli.synth_request import model_and_settings

log = logging.getLogger(__name__)


def synthesize_scripts(
    request: SynthRequest,
    *,
    progress: Callable | None = log_progress,
    engine: Engine | None = None,
    models: ModelStore | None = None,
) -> list[ScriptResult]:
    """Every script of the request, in one process. ``engine``: a loaded engine to use (tests)."""
    vocab = load_vocabulary()
    # A bad lexicon fails first, before any voice is prepared.
    lexicon = read_lexicon(request.lexicon, open_storage) if request.lexicon else None
    voices, speeds = prepare_inputs(request.voices, vocab, request.verify)
    scripts, results = request_scripts(request, voices, vocab)
    if not scripts:
        return results
    files, settings = model_and_settings(request, lexicon, models)
    storage = open_storage(request.out)
    publishing = is_s3_uri(request.out)
    if request.speed is not None:
        scripts = [replace(s, speed=request.speed) for s in scripts]
    plans = plan_with_voice_speeds(scripts, voices, speeds, files.checksum, settings)
    pending = []
    for plan in plans:
        done = not request.force and (
            is_published(storage, plan.script.id, plan.output_hash)
            if publishing
            else written_locally(storage, plan.script.id, plan.output_hash)
        )
        if done:
            results.append(_skipped(storage, plan, publishing))
        else:
            pending.append(plan)
    if not pending:
        log.info("nothing to synthesize: %d script(s) already there", len(plans))
        return results
    if publishing:
        for name in sorted({v for p in pending for v in p.script.voices}):
            publish_voice(storage, voices[name])
    requests = [r for p in pending for r in p.requests]
    log.info(
        "synthesizing %d chunk(s) of %d script(s) (%d already there)",
        len(requests),
        len(pending),
        len(plans) - len(pending),
    )
    references = {name: Reference(name, v.samples, v.text) for name, v in voices.items()}
    kept: dict[str, Any] = {}  # chunk key -> its kept audio
    qa: dict[str, dict] = {}
    seconds: dict[str, float] = {}  # chunk key -> its share of the wall time (by frames)
    verification = None
    started, audio_seconds = time.perf_counter(), 0.0
    # The same path as the synthesize stage: synthesis batches, each verified beside the next.
    with engine_for(files, request.device, engine) as loaded, f5_output_to_log(log):  # F5's prints: not on stdout
        for spoken in speak(loaded, references, requests, settings.params, request.batch_frames, settings.verify):
            frames = sum(a.frames for a in spoken.audio) or 1
            for audio in spoken.audio:
                kept[audio.key] = audio
                seconds[audio.key] = spoken.seconds * audio.frames / frames
            qa.update(spoken.qa)
            verification = spoken.verification
            audio_seconds += sum(a.samples.shape[0] for a in spoken.audio) / MODEL_SAMPLE_RATE
            if progress is not None:
                progress(Progress(len(kept), len(requests), audio_seconds, time.perf_counter() - started))
    write = publish_script_outputs if publishing else write_script_outputs
    for plan in pending:
        records = [qa.get(r.key) for r in plan.requests] if qa else None
        results.append(_finish(storage, write, plan, kept, records, voices, files, settings, verification, seconds))
    order = {p.script.id: i for i, p in enumerate(plans)}
    return sorted(results, key=lambda r: order.get(r.script, -1))


def _finish(
    storage: Storage,
    write: Callable[..., Published],
    plan: ScriptPlan,
    kept: Mapping[str, Any],
    qa: list[dict | None] | None,
    voices: Mapping[str, PreparedVoice],
    files: Any,
    settings: RunSettings,
    verification: dict | None,
    seconds: Mapping[str, float],
) -> ScriptResult:
    """Write (or publish) one script's outputs from its chunks' audio: the same files and the
    same manifest either way (``render_script``)."""
    quarantined = [r for r in qa or () if r and r.get("status") == "quarantined"]
    source, sid = plan.script.source, plan.script.id
    if quarantined:
        log.warning("%s: %d of %d chunks never passed verification", sid, len(quarantined), len(plan.requests))
        if not settings.verify.publish_unverified:
            reason = f"{len(quarantined)} chunk(s) never passed verification: held back (--hold-unverified)"
            return ScriptResult(sid, "held", source, output_hash=plan.output_hash, needs_review=True, reason=reason)
    done = write(
        storage,
        plan,
        (kept[r.key].samples for r in plan.requests),
        voices,
        files.lineage(),
        settings,
        synthesis_seconds=round(sum(seconds[r.key] for r in plan.requests), 3),
        qa=qa,
        verification=verification,
    )
    manifest = json.loads(storage.get_bytes(done.manifest_key))
    return ScriptResult(
        sid,
        "published" if write is publish_script_outputs else "written",
        source,
        tuple(storage.uri_for(k) for k in done.keys),
        plan.output_hash,
        manifest["durations"]["audio_seconds"],
        bool(quarantined),
    )


def _skipped(storage: Storage, plan: ScriptPlan, publishing: bool) -> ScriptResult:
    sid = plan.script.id
    if publishing:
        log.info("%s is already published under %s: nothing to do", sid, storage.uri_for(f"audio/{sid}/"))
        point_latest(storage, sid, plan.output_hash)  # latest.json names what the latest run asked for
    else:
        log.info("%s is already written in %s: nothing to do", sid, storage.uri_for(""))
    manifest, keys, why = existing_output(storage, sid, plan.output_hash, publishing)
    return ScriptResult(
        sid,
        "skipped",
        plan.script.source,
        tuple(storage.uri_for(k) for k in keys),
        plan.output_hash,
        manifest["durations"]["audio_seconds"],
        bool(manifest.get("qa", {}).get("needs_review")),
        why,
    )
