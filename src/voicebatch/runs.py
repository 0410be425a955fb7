"""The stages of one pipeline run, as plain functions over storage (no Airflow here).

    ingest_voice (one per voice) -> plan_run -> synthesize_batch (one per batch spec)
        -> publish_run -> finish_run

Every stage reads and writes the output storage; what passes between stages (and so
through XCom) is keys, names and counts. Intermediate bytes live under
``_staging/<run_id>/`` and are removed by ``finish_run``:

    voices.json            the voices listed (and inputs refused while listing them)
    voices/<voice>.json    each voice's outcome (ok with its clip, or the reason it failed)
    plan.json              scripts with their output hashes, chunks and status; batch spec keys
    batches/<n>.json       the chunks one synthesize task speaks (and the scripts they belong to)
    chunks/<key>.wav       synthesized chunk audio (float WAV: exact), <key>.json its timing;
                           staged per synthesis batch as it finishes, so a killed try loses
                           at most the batch it was running
    outcomes.json          what publish_run did per script
    stages/                each stage's outcome (``voicebatch.stages``)

A stage whose upstream stage did not finish raises ``StageNotReady`` (skip it, it is not a
failure of its own); bad input and bad configuration raise ``InputError`` (permanent).
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, TypeVar

from voicebatch.audio import wav_bytes
from voicebatch.chunking import Chunk
from voicebatch.errors import InputError
from voicebatch.materialize import materialize
from voicebatch.names import key_name_problem, key_segment
from voicebatch.pipeline import RunSettings, ScriptPlan, plan_scripts, publish_script_outputs
from voicebatch.publish import json_bytes, point_latest, publish_voice, voice_prefix
from voicebatch.report import ScriptOutcome, StageFailure, VoiceOutcome, build_report, publish_report, report_prefix
from voicebatch.scripts import Script, ScriptError, ScriptPart, load_scripts, script_label
from voicebatch.stages import StageNotReady, error_line, stage_outcomes
from voicebatch.storage import PRESIGN_SECONDS, Storage, is_s3_uri, local_path
from voicebatch.synthesis.batching import DEFAULT_TASK_GPU_SECONDS, estimate_frames, plan_batches, plan_tasks
from voicebatch.synthesis.buckets import FrameBuckets, plan_bucketed_batches
from voicebatch.synthesis.engine import ChunkAudio, ChunkRequest, Engine, Reference, SynthesisParams
from voicebatch.synthesis.jobs import format_eta, log_progress
from voicebatch.synthesis.models import ModelFiles, ModelManifest
from voicebatch.verify.overlap import SharedEngine, overlap_enabled, synthesize_then_verify
from voicebatch.vocab import load_vocabulary
from voicebatch.voices import PreparedVoice, discover_voices, prepare_voice, voice_source

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

Opener = Callable[[str], Storage]  # URI -> Storage (the Airflow layer builds S3 from a connection)
T = TypeVar("T")
# Tasks are sized by estimated GPU seconds (``task_gpu_seconds``); this only caps their count.
DEFAULT_CHUNKS_PER_TASK = 1024
DEFAULT_MAX_TASKS = 1024  # Airflow's default [core] max_map_length
VOICE_DEPTH = 2  # <voice>/<file>, or <voice>.<suffix>: nothing deeper is a voice's


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
    max_tasks: int = DEFAULT_MAX_TASKS  # mapped tasks per stage at most: Airflow's [core] max_map_length


def staging_prefix(run_id: str) -> str:
    return f"_staging/{key_segment(run_id)}/"


def check_run_config(config: RunConfig, output_uri: str) -> None:
    """Reject Param combinations no run can succeed with. Raises ``InputError``."""
    locations = {"voices_uri": config.voices_uri, "scripts_uri": config.scripts_uri, "output_uri": output_uri}
    for name, uri in locations.items():
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        if scheme not in ("", "s3", "file"):
            raise InputError(name, f"{uri}: unsupported location (a local path, file:// or s3://bucket/prefix)")
        if scheme == "s3" and not uri[5:].split("/", 1)[0]:
            raise InputError(name, f"{uri}: no bucket in the S3 URI")
    out = _location(output_uri)
    for name in ("voices_uri", "scripts_uri"):
        source = _location(locations[name])
        if out == source or out.startswith(source + "/") or source.startswith(out + "/"):
            raise InputError(
                "output_uri",
                f"{output_uri} overlaps {name} {locations[name]}: outputs would be read back as inputs "
                "(or inputs overwritten); use separate locations",
            )
    for name in config.voices:
        if problem := key_name_problem(name):
            raise InputError("voices", f"voice name {name!r} {problem}")


def _location(uri: str) -> str:
    """A comparable form of a location: s3://bucket/prefix, or an absolute local path."""
    if is_s3_uri(uri):
        return uri.rstrip("/")
    return str(local_path(uri).expanduser().resolve())


def scripts_location(scripts_uri: str, day: datetime.date | None, open_uri: Opener) -> str:
    """``{scripts_uri}/{YYYY-MM-DD}/`` when that folder exists for the run's date, else ``scripts_uri``."""
    if day is None:
        return scripts_uri
    dated = f"{scripts_uri.rstrip('/')}/{day:%Y-%m-%d}"
    return dated if open_uri(dated).list("") else scripts_uri


def list_voice_names(config: RunConfig, out: Storage, staging: str, open_uri: Opener) -> list[str]:
    """The voices to ingest. The listing, with any input refused while listing, is staged
    for ``plan_run`` (which runs only after a listing) and the report. Only keys are listed:
    no recording or transcript is downloaded here (a prepared voice's small ``voice.json``
    is, as it names the voice)."""
    with materialize(config.voices_uri, open_uri, fetch=_names_a_voice, depth=VOICE_DEPTH) as found:
        names = [s.name for s in discover_voices(found.root)]
    refused = [str(e) for e in found.rejected]
    for line in refused:
        log.warning("%s", line)
    if config.voices:
        unknown = sorted(set(config.voices) - set(names))
        if unknown:
            raise InputError(config.voices_uri, f"voices not found: {', '.join(unknown)} (found: {', '.join(names)})")
        names = [n for n in names if n in config.voices]
    if not names:
        refusals = f" ({len(refused)} inputs refused)" if refused else ""
        raise InputError(config.voices_uri, f"no voices found{refusals}")
    out.put_bytes(f"{staging}voices.json", json_bytes({"voices": names, "rejected": refused}), "application/json")
    return names


def ingest_voice(name: str, config: RunConfig, out: Storage, staging: str, open_uri: Opener) -> dict:
    """Prepare one voice and register it; its outcome is staged either way. Raises InputError."""
    record = {"voice": name, "status": "error"}

    def belongs(key: str) -> bool:  # the voice's own files only: a folder or a flat stem
        return key.startswith(f"{name}/") or key.rsplit(".", 1)[0] == name

    found = None
    try:
        # Only this voice's keys are listed and downloaded (a folder or a flat stem share the prefix).
        with materialize(config.voices_uri, open_uri, belongs, prefix=name, depth=VOICE_DEPTH) as found:
            voice = prepare_voice(voice_source(found.root / name), vocab=load_vocabulary())
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
        log.info(
            "voice %s: clip %.2f–%.2f s of %s (%s), text %r%s",
            name,
            window["start"],
            window["end"],
            voice.metadata["sources"]["audio"]["name"],
            "already registered" if published.skipped else "registered",
            voice.text,
            "".join(f"; warning: {w}" for w in voice.warnings),
        )
        return {k: record[k] for k in ("voice", "status", "clip_hash")}
    except InputError as e:
        error = found.relabel(e) if found else e  # name the input's own location, not a temporary copy
        record["reason"] = str(error)
        raise error from None
    except Exception as e:  # unexpected: retried by Airflow, and the report still says why
        record["reason"] = error_line(e)
        raise
    finally:
        out.put_bytes(f"{staging}voices/{name}.json", json_bytes(record), "application/json")


def _names_a_voice(key: str) -> bool:
    """A prepared voice folder's ``voice.json``: the one file whose bytes the listing reads."""
    return key.count("/") == 1 and key.endswith("/voice.json")


def task_groups(items: Sequence[T], max_tasks: int) -> list[list[T]]:
    """``items`` in order, in at most ``max_tasks`` groups of consecutive items: one item a
    group while they fit, else ``ceil(n / max_tasks)`` a group. Airflow fails a mapped task
    that would expand past ``[core] max_map_length`` (1024 by default); grouping keeps any
    number of voices under it."""
    size = max(1, math.ceil(len(items) / max(1, max_tasks)))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def ingest_voices(names: Sequence[str], config: RunConfig, out: Storage, staging: str, open_uri: Opener) -> list[dict]:
    """Ingest one mapped task's group of voices. Every voice is tried whatever happens to the
    others, and each outcome is staged; then the task fails if any voice did: at once on bad
    input (``InputError`` naming every bad voice), or with the first unexpected error (retried;
    voices a previous try registered are not ingested again)."""
    results, bad, unexpected = [], [], []
    for name in names:
        staged = f"{staging}voices/{name}.json"
        if out.exists(staged) and (done := json.loads(out.get_bytes(staged)))["status"] == "ok":
            results.append({k: done[k] for k in ("voice", "status", "clip_hash")})
            continue
        try:
            results.append(ingest_voice(name, config, out, staging, open_uri))
        except InputError as e:
            bad.append(e)
        except Exception as e:  # the others are still tried; raised below (and retried)
            unexpected.append(e)
    if unexpected:
        raise unexpected[0]
    if len(bad) == 1 and len(names) == 1:
        raise bad[0]
    if bad:
        raise InputError(config.voices_uri, f"{len(bad)} of {len(names)} voices unusable: " + "; ".join(map(str, bad)))
    return results


def group_label(names: Sequence[str]) -> str:
    """A mapped task's label: the voice, or the first and last of its group."""
    return names[0] if len(names) == 1 else f"{names[0]} … {names[-1]} ({len(names)} voices)"


def load_registered_voice(out: Storage, name: str, clip_hash: str) -> PreparedVoice:
    import soundfile as sf

    prefix = voice_prefix(name, clip_hash)
    samples, _ = sf.read(io.BytesIO(out.get_bytes(prefix + "reference.wav")), dtype="float32")
    metadata = json.loads(out.get_bytes(prefix + "voice.json"))
    return PreparedVoice(name, samples, metadata["reference_text"], clip_hash, metadata, tuple(metadata["warnings"]))


def _voice_records(out: Storage, staging: str) -> dict[str, dict]:
    records = [json.loads(out.get_bytes(k)) for k in out.list(f"{staging}voices/") if k.endswith(".json")]
    return {r["voice"]: r for r in records}


def voices_listed(out: Storage, staging: str) -> dict:
    """The staged voice listing; raises ``StageNotReady`` when list_voices did not finish."""
    return _staged_json(out, f"{staging}voices.json", "list_voices did not finish: no voices to plan with")


def planned(out: Storage, staging: str) -> dict:
    """The staged plan; raises ``StageNotReady`` when plan did not finish."""
    return _staged_json(out, f"{staging}plan.json", "plan did not finish: nothing to publish")


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
    records = _voice_records(out, staging)
    usable = {n: records[n]["clip_hash"] for n in listing["voices"] if records.get(n, {}).get("status") == "ok"}
    voices = {n: load_registered_voice(out, n, h) for n, h in usable.items()}
    location = scripts_location(config.scripts_uri, day, open_uri)
    log.info("scripts from %s; voices ready: %s", location, ", ".join(sorted(voices)) or "none")
    # Only the folder's own files are scripts (dated sub-folders are other days' scripts).
    with materialize(location, open_uri, only=lambda key: "/" not in key, depth=1) as found:
        scripts, problems = load_scripts(found.root, set(listing["voices"]), load_vocabulary())
        from voicebatch.run_books import plan_books  # .epub files: books, their chapters planned as scripts

        books, book_plans = plan_books(
            found, listing["voices"], voices, model.checksum, config.settings, out, staging, force=config.force
        )
    scripts = [replace(s, source=found.label(s.source)) for s in scripts]
    entries = [_failed_entry(found.relabel(p)) for p in problems]
    entries += [{"id": "(refused input)", "status": "failed", "error": str(e)} for e in found.rejected]
    ready = []
    for script in scripts:
        missing = [v for v in script.voices if v not in voices]
        if missing:
            error = f"{script.source}: voice(s) {', '.join(missing)} unusable (see the voice tasks)"
            entries.append({"id": script.id, "status": "failed", "error": error})
        else:
            ready.append(script)
    plans = plan_scripts(ready, voices, model.checksum, config.settings, out, force=config.force)
    entries += [_plan_json(p) for p in plans] + books
    pending = [p for p in plans if not p.published] + book_plans
    batches = _batch_specs(
        pending,
        voices,
        config.chunks_per_task,
        config.task_gpu_seconds,
        asdict(config.settings.params),
        config.max_tasks,
    )
    keys = []
    for n, spec in enumerate(batches):
        spec["verify"] = asdict(config.settings.verify)
        keys.append(f"{staging}batches/{n:04d}.json")
        out.put_bytes(keys[-1], json_bytes(spec), "application/json")
    document = {
        "scripts": entries,
        "voices": usable,
        "model": model.lineage(),  # publish and report read it here instead of resolving the model again
        "batches": keys,
    }
    out.put_bytes(f"{staging}plan.json", json_bytes(document), "application/json")  # last: publish waits for it
    counts = {s: sum(e["status"] == s for e in entries) for s in ("pending", "skipped", "failed")}
    chunks = sum(len(b["requests"]) for b in batches)
    for entry in entries:  # what was decided for each script, and why
        if entry["status"] == "pending":
            log.info(
                "planned %s: %d chunk(s), output %s",
                entry["id"],
                len(entry.get("requests") or [r for s in entry.get("sections", ()) for r in s["plan"]["requests"]]),
                entry["output_hash"][:12],
            )
        elif entry["status"] == "skipped":
            log.info(
                "skipped %s: already published (output %s; force re-does it)", entry["id"], entry["output_hash"][:12]
            )
        else:
            log.warning("failed %s: %s", entry["id"], entry["error"])
    log.info("plan: %d scripts (%s), %d chunks in %d synthesize tasks", len(entries), counts, chunks, len(keys))
    return {"batches": keys, "scripts": len(entries), "chunks": chunks, **counts}


def _failed_entry(problem: ScriptError) -> dict:
    return {"id": script_label(problem), "status": "failed", "error": str(problem)}


def _staged_json(out: Storage, key: str, missing: str) -> dict:
    """A document an upstream stage writes last; its absence means that stage did not finish."""
    if not out.exists(key):
        raise StageNotReady(missing)
    return json.loads(out.get_bytes(key))


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
    max_tasks: int = DEFAULT_MAX_TASKS,
) -> list[dict]:
    def frames(r: ChunkRequest) -> int:
        return estimate_frames(voices[r.voice].samples.shape[0], voices[r.voice].text, r.text, r.speed)

    requests = [r for p in pending for r in p.requests]
    owner = {r.key: p for p in pending for r in p.requests}
    # Sorted by length, so each task's engine batches hold similar lengths.
    requests.sort(key=lambda r: -frames(r))
    # Sized by estimated GPU time, so a task's fixed cost (model load, warm-up) stays small
    # against its work (issue 12); chunks_per_task caps the count.
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
                "requests": [asdict(r) for r in group],
                "scripts": [
                    {"id": p.script.id, "output_hash": p.output_hash, "source": p.script.source}
                    for p in scripts.values()
                ],
            }
        )
    return specs


def synthesize_batch(
    spec_key: str, out: Storage, staging: str, engine: Engine, batch_frames: int, *, speech_models: object = None
) -> dict:
    """Speak one batch spec. Each synthesis batch is checked (verification, re-takes) and its
    chunk audio staged as soon as it is done, and chunks staged by an earlier (killed or
    failed) try are not spoken again."""
    spec = json.loads(out.get_bytes(spec_key))
    requests = [ChunkRequest(**r) for r in spec["requests"]]
    todo = [r for r in requests if not out.exists(f"{staging}chunks/{r.key}.json")]
    if len(todo) < len(requests):
        log.info("%d of %d chunks already staged by an earlier try", len(requests) - len(todo), len(requests))
    references = {}
    for voice, clip_hash in spec["voices"].items():
        prepared = load_registered_voice(out, voice, clip_hash)
        references[voice] = Reference(voice, prepared.samples, prepared.text)
    params = SynthesisParams(**spec["params"])
    started, seconds, done = time.perf_counter(), 0.0, 0
    # Batch N is verified while batch N+1 synthesizes (verify/overlap.py); re-takes share the engine.
    overlap = spec.get("verify", {}).get("mode", "off") != "off" and overlap_enabled()
    engine = SharedEngine(engine) if overlap else engine
    verification = BatchVerification(spec, spec_key, engine, out, staging, speech_models, batch_frames)
    groups = synthesis_batches(todo, references, batch_frames, getattr(engine, "buckets", None))
    for checked in synthesize_then_verify(
        groups,
        lambda group: synthesize_chunks(engine, references, group, params, batch_frames),
        lambda group, audio: verification.check(references, group, params, audio),
        deliver=lambda checked: _stage_chunks(out, staging, *checked.result, checked.synthesis_s + checked.verify_s),
        overlap=overlap,
    ):
        audio = checked.result[0]
        done += len(checked.group)
        seconds += sum(a.samples.shape[0] for a in audio) / 24_000
        elapsed = time.perf_counter() - started
        eta = format_eta(elapsed / done * (len(todo) - done)) if done < len(todo) else "done"
        rtf = elapsed / seconds if seconds else 0.0
        log.info(
            "chunks %d/%d staged: %.1f s of audio in %.1f s (RTF %.2f), ETA %s",
            done,
            len(todo),
            seconds,
            elapsed,
            rtf,
            eta,
        )
    wall = time.perf_counter() - started
    return {
        "chunks": len(todo),
        "reused": len(requests) - len(todo),
        "audio_seconds": round(seconds, 2),
        "wall_seconds": round(wall, 2),
        "rtf": round(wall / seconds, 4) if seconds else None,
        "device": engine.device,
        "verify_overlapped": overlap,
    }


def synthesis_batches(
    requests: Sequence[ChunkRequest],
    references: Mapping[str, Reference],
    batch_frames: int,
    buckets: FrameBuckets | None = None,
) -> list[list[ChunkRequest]]:
    """The chunks of one forward pass each, as the engine would pack them (same frame
    estimate, same packing, its frame buckets if it has any): the unit that is staged as soon
    as it is done."""
    frames = [
        estimate_frames(references[r.voice].samples.shape[0], references[r.voice].text, r.text, r.speed)
        for r in requests
    ]
    if buckets is not None:
        return [[requests[i] for i in batch.items] for batch in plan_bucketed_batches(frames, buckets, batch_frames)]
    return [[requests[i] for i in batch.items] for batch in plan_batches(frames, batch_frames)]


def synthesize_chunks(
    engine: Engine,
    references: Mapping[str, Reference],
    requests: Sequence[ChunkRequest],
    params: SynthesisParams,
    batch_frames: int,
) -> list[ChunkAudio]:
    """The one call into the engine for a synthesis batch."""
    return engine.synthesize(references, list(requests), params, batch_frames=batch_frames)


def _stage_chunks(out: Storage, staging: str, audio: Sequence[ChunkAudio], qa: Mapping[str, dict], wall: float) -> None:
    total_frames = sum(a.frames for a in audio) or 1
    for result in audio:
        out.put_bytes(f"{staging}chunks/{result.key}.wav", _float_wav(result.samples), "audio/wav")
        share = {"frames": result.frames, "seconds": round(wall * result.frames / total_frames, 4)}
        share["qa"] = (qa or {}).get(result.key)
        out.put_bytes(f"{staging}chunks/{result.key}.json", json_bytes(share), "application/json")  # written last


class BatchVerification:
    """Issue 14's hook, right after each engine call of a synthesize task: check every chunk,
    re-take failures with the engine still loaded, keep the best take. Stages every take of a
    quarantined chunk for the report, and the verification's settings, models and notes
    (``verification/<batch>.json``, rewritten after each synthesis batch so a killed try
    leaves what it checked)."""

    def __init__(
        self,
        spec: Mapping,
        spec_key: str,
        engine: Engine,
        out: Storage,
        staging: str,
        speech_models: object = None,
        batch_frames: int | None = None,
    ) -> None:
        from voicebatch.verify.settings import VerifySettings

        self.settings = VerifySettings(**spec.get("verify", {"mode": "off"}))
        self.engine, self.out, self.staging, self.batch_frames = engine, out, staging, batch_frames
        self.speech_models = speech_models
        self.name = spec_key.rsplit("/", 1)[-1]
        self.verifier = None
        self.seconds = 0.0

    def check(
        self,
        references: Mapping[str, Reference],
        requests: Sequence[ChunkRequest],
        params: SynthesisParams,
        audio: list[ChunkAudio],
    ) -> tuple[list[ChunkAudio], dict[str, dict]]:
        """The kept audio (same order) and each chunk's QA record."""
        from voicebatch.verify.takes import verify_chunks

        if self.settings.mode == "off" or not requests:
            return audio, {}
        verifier = self._verifier()
        started = time.perf_counter()
        verified = verify_chunks(
            self.engine,
            references,
            requests,
            params,
            audio,
            verifier,
            max_takes=self.settings.max_takes,
            random_weights=self.engine.files.random_weights,
            batch_frames=self.batch_frames,
            progress=log_progress,
        )
        for chunk in verified:
            if chunk.status == "quarantined":
                for take in chunk.takes:
                    key = f"{self.staging}takes/{chunk.request.key}/{take.number}.wav"
                    self.out.put_bytes(key, wav_bytes(take.audio.samples, 24_000), "audio/wav")  # PCM16: to listen
        self.seconds += time.perf_counter() - started
        document = {
            "mode": verifier.mode,
            "models": verifier.lineage(),
            "notes": list(verifier.notes),
            "seconds": round(self.seconds, 2),
        }
        self.out.put_bytes(f"{self.staging}verification/{self.name}", json_bytes(document), "application/json")
        counts = {s: sum(c.status == s for c in verified) for s in ("passed", "quarantined", "not_checked")}
        retakes = sum(len(c.takes) - 1 for c in verified)
        log.info("verification: %s, %d re-takes, %.1f s", counts, retakes, time.perf_counter() - started)
        return [c.audio for c in verified], {c.request.key: c.qa_record() for c in verified}

    def _verifier(self):
        if self.verifier is None:
            from voicebatch.verify import build_verifier
            from voicebatch.verify.store import SpeechModelStore

            store = self.speech_models if isinstance(self.speech_models, SpeechModelStore) else SpeechModelStore()
            self.verifier = build_verifier(self.settings, models=store, device=self.engine.device)
        return self.verifier


def _float_wav(samples: np.ndarray) -> bytes:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, samples, 24_000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def publish_run(out: Storage, staging: str, settings: RunSettings, run: Mapping[str, object]) -> dict:
    """Assemble and publish every script whose chunks were all synthesized. Returns counts of
    scripts and of voices newly registered in this run (what downstream consumers care about)."""
    import soundfile as sf

    document = planned(out, staging)
    voices = {n: load_registered_voice(out, n, h) for n, h in document["voices"].items()}
    verification = _verification(out, staging)
    outcomes = []
    for entry in document["scripts"]:
        if entry["status"] == "skipped":  # already published: latest.json still names what this run asked for
            point_latest(out, entry["id"], entry["output_hash"], run)
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
        if entry.get("kind") == "book":  # a book's sections become its files (run_books)
            from voicebatch.run_books import publish_book

            outcomes.append(publish_book(entry, out, staging, settings, run, voices, document["model"], verification))
            continue
        plan = _plan_from_json(entry)
        missing = [r.key for r in plan.requests if not out.exists(f"{staging}chunks/{r.key}.json")]
        if missing:
            error = f"{len(missing)} of {len(plan.requests)} chunks were not synthesized (a synthesize task failed)"
            outcomes.append({"id": plan.script.id, "status": "failed", "output_hash": plan.output_hash, "error": error})
            continue
        seconds, qa = 0.0, []
        for r in plan.requests:
            staged = json.loads(out.get_bytes(f"{staging}chunks/{r.key}.json"))
            seconds += staged["seconds"]
            qa.append(staged.get("qa"))
        # Read one chunk at a time as assembly asks for it: a book is never all in memory.
        audio = (
            sf.read(io.BytesIO(out.get_bytes(f"{staging}chunks/{r.key}.wav")), dtype="float32")[0]
            for r in plan.requests
        )
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
    records = _voice_records(out, staging).values()
    counts = {s: sum(o["status"] == s for o in outcomes) for s in ("published", "skipped", "failed", "held")}
    counts["needs_review"] = sum(bool(o.get("qa")) for o in outcomes if o["status"] == "published")
    return {
        **counts,
        "voices_registered": sum(r["status"] == "ok" and not r.get("reused") for r in records),
        "voices_reused": sum(r["status"] == "ok" and bool(r.get("reused")) for r in records),
        "voices_failed": sum(r["status"] != "ok" for r in records),
    }


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
            r["voice"],
            r["status"],
            r.get("reason"),
            r.get("clip_hash"),
            r.get("start"),
            r.get("end"),
            tuple(r.get("warnings", ())),
            r.get("text"),
            f"{r['registry']}reference.wav" if r.get("registry") else None,
        )
        for r in sorted(_voice_records(out, staging).values(), key=lambda r: r["voice"])
    ]
    plan = _staged_or(out, f"{staging}plan.json", {"scripts": [], "batches": []})
    listing = _staged_or(out, f"{staging}voices.json", {"voices": [], "rejected": []})
    failed_stages = [
        StageFailure(s["stage"], s.get("part"), s.get("error") or "failed")
        for s in stage_outcomes(out, staging, plan["batches"])
        if s["status"] == "failed"
    ]
    outcomes = _staged_or(out, f"{staging}outcomes.json", None)
    if outcomes is None:  # publishing did not finish: nothing pending was published
        outcomes = [
            {
                "id": e["id"],
                "status": "failed" if e["status"] == "pending" else e["status"],
                "output_hash": e.get("output_hash"),
                "error": e.get("error") or "not published: the publish stage did not finish",
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


def _staged_or(out: Storage, key: str, default: object) -> object:
    return json.loads(out.get_bytes(key)) if out.exists(key) else default
