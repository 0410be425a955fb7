"""The stages of one pipeline run, as plain functions over storage (no Airflow here).

    ingest_voice (one per voice) -> plan_run -> synthesize_batch (one per batch spec)
        -> publish_run -> finish_run

Every stage reads and writes the output storage; what passes between stages (and so
through XCom) is keys, names and counts. Intermediate bytes live under
``_staging/<run_id>/`` and are removed by ``finish_run``:

    plan.json              scripts with their output hashes, chunks and status
    batches/<n>.json       the chunks one synthesize task speaks
    chunks/<key>.wav       synthesized chunk audio (float WAV: exact), <key>.json its timing
    voices/<voice>.json    each voice's outcome (ok with its clip, or the reason it failed)
    outcomes.json          what publish_run did per script
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.audio import wav_bytes
from voicebatch.chunking import Chunk
from voicebatch.errors import InputError
from voicebatch.names import key_segment
from voicebatch.pipeline import RunSettings, ScriptPlan, plan_scripts, publish_script_outputs
from voicebatch.publish import json_bytes, publish_voice, voice_prefix
from voicebatch.report import ScriptOutcome, VoiceOutcome, build_report, publish_report, report_prefix
from voicebatch.scripts import Script, ScriptPart, load_scripts
from voicebatch.storage import Storage, is_s3_uri, local_path
from voicebatch.synthesis.batching import DEFAULT_TASK_GPU_SECONDS, estimate_frames, plan_tasks
from voicebatch.synthesis.engine import ChunkRequest, Engine, Reference, SynthesisParams
from voicebatch.synthesis.jobs import log_progress
from voicebatch.synthesis.models import ModelFiles
from voicebatch.vocab import load_vocabulary
from voicebatch.voices import PreparedVoice, discover_voices, prepare_voice, voice_source

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

Opener = Callable[[str], Storage]  # URI -> Storage (the Airflow layer builds S3 from a connection)
# Tasks are sized by estimated GPU seconds (``task_gpu_seconds``); this only caps their count.
DEFAULT_CHUNKS_PER_TASK = 1024


@dataclass(frozen=True, slots=True)
class RunConfig:
    voices_uri: str
    scripts_uri: str
    settings: RunSettings = field(default_factory=RunSettings)
    batch_frames: int = 16_384
    chunks_per_task: int = DEFAULT_CHUNKS_PER_TASK
    task_gpu_seconds: float = DEFAULT_TASK_GPU_SECONDS
    voices: tuple[str, ...] = ()  # only these voices; empty: all
    force: bool = False


def staging_prefix(run_id: str) -> str:
    return f"_staging/{key_segment(run_id)}/"


def scripts_location(scripts_uri: str, day: datetime.date | None, open_uri: Opener) -> str:
    """``{scripts_uri}/{YYYY-MM-DD}/`` when that folder exists for the run's date, else ``scripts_uri``."""
    if day is None:
        return scripts_uri
    dated = f"{scripts_uri.rstrip('/')}/{day:%Y-%m-%d}"
    return dated if open_uri(dated).list("") else scripts_uri


@contextlib.contextmanager
def materialize(uri: str, open_uri: Opener, only: Callable[[str], bool] = lambda key: True) -> Iterator[Path]:
    """A local directory holding what ``uri`` holds (S3 is downloaded to a temporary one)."""
    if not is_s3_uri(uri):
        path = local_path(uri)
        if not path.is_dir():
            raise InputError(uri, "no such directory")
        yield path
        return
    storage = open_uri(uri)
    with tempfile.TemporaryDirectory(prefix="voicebatch-") as tmp:
        for key in storage.list(""):
            if only(key):
                target = Path(tmp, *key.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                storage.get_file(key, target)
        yield Path(tmp)


def list_voice_names(config: RunConfig, open_uri: Opener) -> list[str]:
    with materialize(config.voices_uri, open_uri) as root:
        names = [s.name for s in discover_voices(root)]
    if config.voices:
        unknown = sorted(set(config.voices) - set(names))
        if unknown:
            raise InputError(config.voices_uri, f"voices not found: {', '.join(unknown)} (found: {', '.join(names)})")
        names = [n for n in names if n in config.voices]
    if not names:
        raise InputError(config.voices_uri, "no voices found")
    return names


def ingest_voice(name: str, config: RunConfig, out: Storage, staging: str, open_uri: Opener) -> dict:
    """Prepare one voice and register it; its outcome is staged either way. Raises InputError."""
    record = {"voice": name, "status": "error"}

    def belongs(key: str) -> bool:  # the voice's own files only: a folder or a flat stem
        return key.startswith(f"{name}/") or key.rsplit(".", 1)[0] == name

    try:
        with materialize(config.voices_uri, open_uri, belongs) as root:
            voice = prepare_voice(voice_source(root / name), vocab=load_vocabulary())
        published = publish_voice(out, voice)
        window = voice.metadata["window"]
        record = {
            "voice": name,
            "status": "ok",
            "clip_hash": voice.clip_hash,
            "registry": published.prefix,
            "start": window["start"],
            "end": window["end"],
            "text": voice.text,
            "warnings": list(voice.warnings),
            "reused": published.skipped,
        }
        return {k: record[k] for k in ("voice", "status", "clip_hash")}
    except InputError as e:
        record["reason"] = str(e)
        raise
    except Exception as e:  # unexpected: retried by Airflow, and the report still says why
        record["reason"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise
    finally:
        out.put_bytes(f"{staging}voices/{name}.json", json_bytes(record), "application/json")


def load_registered_voice(out: Storage, name: str, clip_hash: str) -> PreparedVoice:
    import soundfile as sf

    prefix = voice_prefix(name, clip_hash)
    samples, _ = sf.read(io.BytesIO(out.get_bytes(prefix + "reference.wav")), dtype="float32")
    metadata = json.loads(out.get_bytes(prefix + "voice.json"))
    return PreparedVoice(name, samples, metadata["reference_text"], clip_hash, metadata, tuple(metadata["warnings"]))


def _voice_records(out: Storage, staging: str) -> dict[str, dict]:
    records = [json.loads(out.get_bytes(k)) for k in out.list(f"{staging}voices/") if k.endswith(".json")]
    return {r["voice"]: r for r in records}


def plan_run(
    config: RunConfig, out: Storage, staging: str, model: ModelFiles, open_uri: Opener, day: datetime.date | None
) -> dict:
    """Load and check the scripts, skip what is published, write batch specs. Returns counts and keys."""
    records = _voice_records(out, staging)
    voices = {n: load_registered_voice(out, n, r["clip_hash"]) for n, r in records.items() if r["status"] == "ok"}
    location = scripts_location(config.scripts_uri, day, open_uri)
    log.info("scripts from %s; voices ready: %s", location, ", ".join(sorted(voices)) or "none")
    with materialize(location, open_uri) as root:
        scripts, problems = load_scripts(root, set(records), load_vocabulary())
    entries = [{"id": Path(p.path).name, "status": "failed", "error": str(p)} for p in problems]
    usable = []
    for script in scripts:
        missing = [v for v in script.voices if v not in voices]
        if missing:
            error = f"{script.source}: voice(s) {', '.join(missing)} unusable (see the voice tasks)"
            entries.append({"id": script.id, "status": "failed", "error": error})
        else:
            usable.append(script)
    plans = plan_scripts(usable, voices, model.checksum, config.settings, out, force=config.force)
    entries += [_plan_json(p) for p in plans]
    pending = [p for p in plans if not p.published]
    batches = _batch_specs(
        pending, voices, config.chunks_per_task, config.task_gpu_seconds, asdict(config.settings.params)
    )
    keys = []
    for n, spec in enumerate(batches):
        spec["verify"] = asdict(config.settings.verify)
        keys.append(f"{staging}batches/{n:04d}.json")
        out.put_bytes(keys[-1], json_bytes(spec), "application/json")
    document = {
        "scripts": entries,
        "voices": {n: r["clip_hash"] for n, r in records.items() if r["status"] == "ok"},
        "model": model.lineage(),  # publish and report read it here instead of resolving the model again
    }
    out.put_bytes(f"{staging}plan.json", json_bytes(document), "application/json")
    counts = {s: sum(e["status"] == s for e in entries) for s in ("pending", "skipped", "failed")}
    chunks = sum(len(b["requests"]) for b in batches)
    log.info("plan: %d scripts (%s), %d chunks in %d synthesize tasks", len(entries), counts, chunks, len(keys))
    return {"batches": keys, "scripts": len(entries), "chunks": chunks, **counts}


def _plan_json(plan: ScriptPlan) -> dict:
    return {
        "id": plan.script.id,
        "status": "skipped" if plan.published else "pending",
        "output_hash": plan.output_hash,
        "source": plan.script.source,
        "speed": plan.script.speed,
        "parts": [asdict(p) for p in plan.script.parts],
        "chunks": [asdict(c) for c in plan.chunks],
        "requests": [asdict(r) for r in plan.requests],
    }


def _plan_from_json(entry: dict) -> ScriptPlan:
    script = Script(entry["id"], entry["source"], tuple(ScriptPart(**p) for p in entry["parts"]), entry["speed"])
    chunks = tuple(Chunk(**{**c, "sentences": tuple(c["sentences"])}) for c in entry["chunks"])
    return ScriptPlan(script, entry["output_hash"], chunks, tuple(ChunkRequest(**r) for r in entry["requests"]), False)


def _batch_specs(
    pending: Sequence[ScriptPlan],
    voices: Mapping[str, PreparedVoice],
    per_task: int,
    task_gpu_seconds: float,
    params: dict,
) -> list[dict]:
    def frames(r: ChunkRequest) -> int:
        return estimate_frames(voices[r.voice].samples.shape[0], voices[r.voice].text, r.text, r.speed)

    requests = [r for p in pending for r in p.requests]
    # Sorted by length, so each task's engine batches hold similar lengths.
    requests.sort(key=lambda r: -frames(r))
    # Sized by estimated GPU time, so a task's fixed cost (model load, warm-up) stays small
    # against its work (issue 12); chunks_per_task caps the count.
    tasks = plan_tasks([frames(r) for r in requests], params["nfe_steps"], task_gpu_seconds, per_task)
    specs = []
    for task in tasks:
        group = [requests[i] for i in task]
        used = sorted({r.voice for r in group})
        specs.append(
            {"voices": {v: voices[v].clip_hash for v in used}, "params": params, "requests": [asdict(r) for r in group]}
        )
    return specs


def synthesize_batch(
    spec_key: str, out: Storage, staging: str, engine: Engine, batch_frames: int, *, speech_models: object = None
) -> dict:
    """Speak one batch spec; chunk audio goes to staging. Chunks staged by an earlier try are kept."""
    spec = json.loads(out.get_bytes(spec_key))
    requests = [ChunkRequest(**r) for r in spec["requests"]]
    todo = [r for r in requests if not out.exists(f"{staging}chunks/{r.key}.json")]
    if len(todo) < len(requests):
        log.info("%d of %d chunks already staged by an earlier try", len(requests) - len(todo), len(requests))
    references = {}
    for voice, clip_hash in spec["voices"].items():
        prepared = load_registered_voice(out, voice, clip_hash)
        references[voice] = Reference(voice, prepared.samples, prepared.text)
    started = time.perf_counter()
    params = SynthesisParams(**spec["params"])
    audio = engine.synthesize(references, todo, params, batch_frames=batch_frames, progress=log_progress)
    audio, qa = verify_batch(
        spec, spec_key, engine, references, todo, params, audio, out, staging, speech_models, batch_frames
    )
    wall = time.perf_counter() - started
    total_frames = sum(a.frames for a in audio) or 1
    for result in audio:
        out.put_bytes(f"{staging}chunks/{result.key}.wav", _float_wav(result.samples), "audio/wav")
        share = {"frames": result.frames, "seconds": round(wall * result.frames / total_frames, 4)}
        share["qa"] = qa.get(result.key)
        out.put_bytes(f"{staging}chunks/{result.key}.json", json_bytes(share), "application/json")  # written last
    seconds = sum(a.samples.shape[0] for a in audio) / 24_000
    return {
        "chunks": len(todo),
        "reused": len(requests) - len(todo),
        "audio_seconds": round(seconds, 2),
        "wall_seconds": round(wall, 2),
        "rtf": round(wall / seconds, 4) if seconds else None,
        "device": engine.device,
    }


def verify_batch(
    spec: Mapping,
    spec_key: str,
    engine: Engine,
    references: Mapping[str, Reference],
    requests: Sequence[ChunkRequest],
    params: SynthesisParams,
    audio: list,
    out: Storage,
    staging: str,
    speech_models: object = None,
    batch_frames: int | None = None,
) -> tuple[list, dict[str, dict]]:
    """Issue 14's hook, right after the engine call: check every chunk, re-take failures
    with the engine still loaded, keep the best take. Returns the kept audio (same order)
    and each chunk's QA record; stages every take of a quarantined chunk for the report
    and the verification's settings and models (``verification/<batch>.json``)."""
    from voicebatch.verify import build_verifier
    from voicebatch.verify.settings import VerifySettings
    from voicebatch.verify.store import SpeechModelStore
    from voicebatch.verify.takes import verify_chunks

    settings = VerifySettings(**spec.get("verify", {"mode": "off"}))
    if settings.mode == "off" or not requests:
        return audio, {}
    store = speech_models if isinstance(speech_models, SpeechModelStore) else SpeechModelStore()
    verifier = build_verifier(settings, models=store, device=engine.device)
    started = time.perf_counter()
    verified = verify_chunks(
        engine,
        references,
        requests,
        params,
        audio,
        verifier,
        max_takes=settings.max_takes,
        random_weights=engine.files.random_weights,
        batch_frames=batch_frames,
        progress=log_progress,
    )
    for chunk in verified:
        if chunk.status == "quarantined":
            for take in chunk.takes:
                key = f"{staging}takes/{chunk.request.key}/{take.number}.wav"
                out.put_bytes(key, wav_bytes(take.audio.samples, 24_000), "audio/wav")  # PCM16: for listening
    document = {
        "mode": verifier.mode,
        "models": verifier.lineage(),
        "notes": list(verifier.notes),
        "seconds": round(time.perf_counter() - started, 2),
    }
    name = spec_key.rsplit("/", 1)[-1]
    out.put_bytes(f"{staging}verification/{name}", json_bytes(document), "application/json")
    counts = {s: sum(c.status == s for c in verified) for s in ("passed", "quarantined", "not_checked")}
    log.info(
        "verification: %s, %d re-takes, %.1f s", counts, sum(len(c.takes) - 1 for c in verified), document["seconds"]
    )
    return [c.audio for c in verified], {c.request.key: c.qa_record() for c in verified}


def _float_wav(samples: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, 24_000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def publish_run(out: Storage, staging: str, settings: RunSettings, run: Mapping[str, object]) -> dict:
    """Assemble and publish every script whose chunks were all synthesized."""
    import soundfile as sf

    document = json.loads(out.get_bytes(f"{staging}plan.json"))
    voices = {n: load_registered_voice(out, n, h) for n, h in document["voices"].items()}
    verification = _verification(out, staging)
    outcomes = []
    for entry in document["scripts"]:
        if entry["status"] != "pending":
            outcomes.append(
                {
                    "id": entry["id"],
                    "status": entry["status"],
                    "output_hash": entry.get("output_hash"),
                    "error": entry.get("error"),
                }
            )
            continue
        plan = _plan_from_json(entry)
        missing = [r.key for r in plan.requests if not out.exists(f"{staging}chunks/{r.key}.json")]
        if missing:
            error = f"{len(missing)} of {len(plan.requests)} chunks were not synthesized (a synthesize task failed)"
            outcomes.append({"id": plan.script.id, "status": "failed", "output_hash": plan.output_hash, "error": error})
            continue
        audio, seconds, qa = [], 0.0, []
        for r in plan.requests:
            audio.append(sf.read(io.BytesIO(out.get_bytes(f"{staging}chunks/{r.key}.wav")), dtype="float32")[0])
            staged = json.loads(out.get_bytes(f"{staging}chunks/{r.key}.json"))
            seconds += staged["seconds"]
            qa.append(staged.get("qa"))
        review = _quarantined(plan, qa)
        if review and not settings.verify.publish_unverified:
            error = f"held back: {len(review)} chunk(s) never passed verification (publish_unverified is off)"
            log.warning("%s: %s", plan.script.id, error)
            outcomes.append(
                {"id": plan.script.id, "status": "held", "output_hash": plan.output_hash, "error": error, "qa": review}
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
            {
                "id": plan.script.id,
                "status": "skipped" if published.skipped else "published",
                "output_hash": plan.output_hash,
                "error": None,
                "keys": list(published.keys),
                "qa": review,
            }
        )
    out.put_bytes(f"{staging}outcomes.json", json_bytes(outcomes), "application/json")
    counts = {s: sum(o["status"] == s for o in outcomes) for s in ("published", "skipped", "failed", "held")}
    counts["needs_review"] = sum(bool(o.get("qa")) for o in outcomes if o["status"] == "published")
    return counts


def _verification(out: Storage, staging: str) -> dict | None:
    """The synthesize tasks' verification records, merged: effective mode, models, notes."""
    documents = [json.loads(out.get_bytes(k)) for k in out.list(f"{staging}verification/") if k.endswith(".json")]
    if not documents:
        return None
    return {
        "mode": documents[0]["mode"],
        "models": documents[0]["models"],
        "notes": sorted({n for d in documents for n in d["notes"]}),
        "seconds": round(sum(d["seconds"] for d in documents), 2),
    }


def _quarantined(plan: ScriptPlan, qa: Sequence[dict | None]) -> list[dict]:
    """The script's chunks that never passed, with their takes (for the report)."""
    return [
        {"index": c.index, "key": r.key, "text": c.text, "kept_take": q["kept_take"], "takes": q["takes"]}
        for c, r, q in zip(plan.chunks, plan.requests, qa, strict=True)
        if q and q["status"] == "quarantined"
    ]


def finish_run(
    out: Storage, staging: str, *, dag_id: str, run_id: str, started_at: str | None, keep_staging: bool = False
) -> dict:
    """Build and publish the run report, then remove the staging prefix."""
    voices = [
        VoiceOutcome(
            r["voice"],
            r["status"],
            r.get("reason"),
            r.get("clip_hash"),
            r.get("start"),
            r.get("end"),
            tuple(r.get("warnings", ())),
        )
        for r in sorted(_voice_records(out, staging).values(), key=lambda r: r["voice"])
    ]
    plan = json.loads(out.get_bytes(f"{staging}plan.json")) if out.exists(f"{staging}plan.json") else {"scripts": []}
    outcomes_key = f"{staging}outcomes.json"
    outcomes = json.loads(out.get_bytes(outcomes_key)) if out.exists(outcomes_key) else []
    if not outcomes:  # publishing never ran: every pending script failed upstream
        outcomes = [
            {
                "id": e["id"],
                "status": "failed" if e["status"] == "pending" else e["status"],
                "output_hash": e.get("output_hash"),
                "error": e.get("error") or "not published (an upstream task failed)",
            }
            for e in plan["scripts"]
        ]
    scripts = [
        ScriptOutcome(
            o["id"],
            o["status"],
            o.get("output_hash"),
            f"audio/{o['id']}/{o['output_hash']}/manifest.json" if o["status"] in ("published", "skipped") else None,
            o.get("error"),
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
    )
    json_key, html_key = publish_report(out, report, page)
    if not keep_staging:
        removed = out.delete_prefix(staging)
        log.info("removed %d staged objects under %s", removed, staging)
    return {"report": html_key, "report_json": json_key, **report["totals"]}


def _publish_takes(out: Storage, staging: str, prefix: str, outcome: dict) -> list[dict]:
    """Every take of the script's quarantined chunks, copied next to the report (the staging
    prefix is about to go), each take with the key of its audio."""
    chunks = []
    for chunk in outcome.get("qa") or []:
        takes = []
        for take in chunk["takes"]:
            staged = f"{staging}takes/{chunk['key']}/{take['take']}.wav"
            key = f"{prefix}takes/{key_segment(outcome['id'])}/{chunk['index']:04d}-take{take['take']}.wav"
            if out.exists(staged):
                out.put_bytes(key, out.get_bytes(staged), "audio/wav")
                take = {**take, "audio_key": key}
            takes.append(take)
        chunks.append({**chunk, "takes": takes})
    return chunks
