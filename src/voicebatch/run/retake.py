"""Re-take chosen chunks of a published output: a new output that supersedes it.

A chunk is asked for again with a new seed or edited text, or dropped (silence of its length,
flagged). All else comes from the published output: the manifest records the voices (in the
registry beside it), the model's checksum, every setting and each chunk as planned, and
``chunks.flac`` holds each chunk's own audio (``chunk_store``). The chosen chunks are synthesized
and verified with those settings; the script is assembled from every other chunk's kept audio
and the new takes, rendered, and published as a new content-addressed output naming the one it
supersedes (``supersedes``). Other chunks keep their samples (only the loudness gain is measured
again); subtitles, CSV and timings follow. ``latest.json`` names the new output; the old stays.
Its hash is the old one's with the edits: the same re-take twice finds it published.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from voicebatch.errors import InputError
from voicebatch.inputs.chunking import Chunk
from voicebatch.inputs.scripts import Script, ScriptPart, chunk_script
from voicebatch.keys import OUTPUT_FORMAT_VERSION, chunk_cache_key, retake_seed, stable_hash
from voicebatch.locations.storage import Storage, open_storage
from voicebatch.publish.publishing import is_published, point_latest, publish_voice, voice_prefix
from voicebatch.render.chunk_store import read_chunks
from voicebatch.render.outputs import OutputOptions
from voicebatch.render.subtitles import SubtitleRules
from voicebatch.run.pipeline import RunSettings, ScriptPlan, publish_script_outputs
from voicebatch.settings import DEFAULTS
from voicebatch.synthesis.engine import ChunkRequest, Reference, SynthesisParams
from voicebatch.text.markup import PauseRules
from voicebatch.verify.settings import VerifySettings

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
DROPPED_NOTE = "dropped in review: silence of the same length"


@dataclass(frozen=True, slots=True)
class ChunkEdit:
    """What to do with one chunk (``index`` as in the manifest's ``chunks``, from 0)."""

    index: int
    seed: int | None = None  # None (and no text): a new seed derived from the old take's
    text: str | None = None  # the chunk's new written text (its seed kept unless ``seed`` is given)
    drop: bool = False  # silence of the chunk's length, flagged

    @property
    def action(self) -> str:
        return "drop" if self.drop else "text" if self.text is not None else "seed"


@dataclass(frozen=True, slots=True)
class PublishedOutput:
    """A published manifest and the output location (root) it was published in."""

    uri: str
    root: Storage
    prefix: str  # audio/<script_id>/<output_hash>/
    manifest: dict


@dataclass(frozen=True, slots=True)
class RetakeResult:
    script_id: str
    output_hash: str
    supersedes: str  # the old output's hash
    manifest_uri: str
    skipped: bool  # this re-take was already published: nothing was synthesized
    chunks: tuple[dict, ...]  # per edited chunk: index, action, seed, text, status
    needs_review: bool

    def as_json(self) -> dict:
        return {
            "script": self.script_id,
            "output_hash": self.output_hash,
            "supersedes": self.supersedes,
            "manifest": self.manifest_uri,
            "status": "skipped" if self.skipped else "published",
            "chunks": list(self.chunks),
            "needs_review": self.needs_review,
        }


def open_published(uri: str, open_uri: Callable[[str], Storage] = open_storage) -> PublishedOutput:
    """The manifest at ``uri`` (``<root>/audio/<script>/<hash>/manifest.json``, local or s3://)."""
    parts = uri.rstrip("/").split("/")
    if len(parts) < 5 or parts[-1] != MANIFEST_NAME or parts[-4] != "audio":
        raise InputError(uri, "not a published manifest: expected <output>/audio/<script>/<hash>/manifest.json")
    root, prefix = open_uri("/".join(parts[:-4]) or "/"), "/".join(parts[-4:-1]) + "/"
    if not root.exists(prefix + MANIFEST_NAME):
        raise InputError(uri, "no such manifest")
    try:
        manifest = json.loads(root.get_bytes(prefix + MANIFEST_NAME))
    except ValueError as e:
        raise InputError(uri, f"not valid JSON: {e}") from None
    if manifest.get("schema") != "voicebatch.publish.manifest/1" or manifest.get("output_hash") != parts[-2]:
        raise InputError(uri, "not a voicebatch manifest of the output it lies in")
    missing = [n for n, c in enumerate(manifest.get("chunks", [])) if "audio" not in c or "sentences" not in c]
    if not manifest.get("chunk_audio") or missing:
        raise InputError(
            uri,
            "published without each chunk's own audio (an older voicebatch): synthesize it again (force) to re-take",
        )
    return PublishedOutput(uri, root, prefix, manifest)


def settings_of(manifest: Mapping) -> RunSettings:
    """The run settings the output was made with (its manifest's ``parameters``)."""
    p = manifest["parameters"]
    verify = p["verify"]
    return RunSettings(
        SynthesisParams(p["nfe_steps"], p["cfg_strength"], p["sway_sampling_coef"]),
        OutputOptions(p["audio_format"], p["loudness_lufs"], p["true_peak_dbtp"], SubtitleRules(**p["subtitles"])),
        seed=p["seed"],
        cross_fade=p["cross_fade"],
        verify=VerifySettings(mode="off") if verify["mode"] == "off" else VerifySettings(**verify),
        pauses=PauseRules(**p["pauses"]),
        language=p["language"],
    )


def retake(
    uri: str,
    edits: Sequence[ChunkEdit],
    out_uri: str | None = None,
    *,
    model: str | None = None,
    device: str | None = None,
    batch_frames: int = DEFAULTS["batch_frames"],
    run: Mapping[str, object] | None = None,
    engine: Any = None,
    models: Any = None,
    open_uri: Callable[[str], Storage] = open_storage,
) -> RetakeResult:
    """Re-take ``edits`` of the output at ``uri``; publish to ``out_uri`` (default: its own
    output location). ``model``: where the model is (default: the manifest's model name), checked
    against the manifest's checksum; ``engine``: a loaded engine (tests, a warm worker)."""
    published = open_published(uri, open_uri)
    manifest = published.manifest
    try:
        records = manifest["chunks"]
        settings = settings_of(manifest)
        voice_records = manifest["inputs"]["voices"]
    except (KeyError, TypeError) as e:
        raise InputError(uri, f"not a voicebatch manifest: missing {e}") from None
    edits = _checked(uri, edits, len(records))
    from voicebatch.run.ingest import load_registered_voice

    for v, r in voice_records.items():
        if not published.root.exists(voice_prefix(v, r["clip_hash"]) + "voice.json"):
            raise InputError(uri, f"voice {v} is gone from the voice registry ({voice_prefix(v, r['clip_hash'])})")
    voices = {v: load_registered_voice(published.root, v, r["clip_hash"]) for v, r in voice_records.items()}
    sid, old_hash = manifest["script_id"], manifest["output_hash"]
    chunks, requests = _edited(uri, manifest, edits, voices, settings)
    done = [_edit_record(e, chunks[e.index], requests[e.index]) for e in edits]
    output_hash = stable_hash("retake", OUTPUT_FORMAT_VERSION, old_hash, done)
    out = published.root if out_uri is None else open_uri(out_uri)
    if is_published(out, sid, output_hash):
        log.info("%s: this re-take is already published (%s)", sid, output_hash[:12])
        point_latest(out, sid, output_hash, run)
        key = f"audio/{sid}/{output_hash}/{MANIFEST_NAME}"
        review = bool(json.loads(out.get_bytes(key)).get("qa", {}).get("needs_review"))
        return RetakeResult(sid, output_hash, old_hash, out.uri_for(key), True, tuple(done), review)
    spoken = [e.index for e in edits if not e.drop]
    synthesized = [requests[n] for n in spoken]
    options = {"device": device, "engine": engine, "models": models, "batch_frames": batch_frames}
    takes, verification, seconds = _synthesize(synthesized, voices, settings, manifest, model, **options)
    new_audio = dict(zip(spoken, takes, strict=True))
    qa = [r.get("qa") for r in records]
    for edit, record in zip(edits, done, strict=True):
        qa[edit.index] = _dropped_qa() if edit.drop else new_audio[edit.index][1]
        record["status"] = (qa[edit.index] or {}).get("status", "not_checked")
    for name in sorted({c.voice for c in chunks}):
        publish_voice(out, voices[name])  # nothing to do in the same location; else the registry travels
    dropped = {e.index for e in edits if e.drop}
    plan = ScriptPlan(_script(manifest), output_hash, tuple(_renumbered(chunks)), tuple(requests), False)
    with tempfile.TemporaryDirectory(prefix="voicebatch-retake-") as tmp:
        stored = Path(tmp) / "chunks.flac"
        published.root.get_file(manifest["chunk_audio"]["key"], stored)

        def audio() -> Iterator[Any]:
            import numpy as np

            for n, samples in enumerate(read_chunks(stored, [r["audio"] for r in records])):
                yield new_audio[n][0] if n in new_audio else np.zeros_like(samples) if n in dropped else samples

        supersedes = {"output_hash": old_hash, "manifest": published.uri}
        result = publish_script_outputs(
            out,
            plan,
            audio(),
            voices,
            manifest["model"],
            settings,
            synthesis_seconds=seconds,
            run=run,
            qa=qa,
            verification=verification or _old_verification(manifest),
            extra={"supersedes": supersedes, "retake": {"chunks": done}, "inputs": manifest["inputs"]},
        )
    review = bool(json.loads(out.get_bytes(result.manifest_key))["qa"]["needs_review"])
    log.info("%s: %d chunk(s) re-taken: %s supersedes %s", sid, len(edits), output_hash[:12], old_hash[:12])
    return RetakeResult(
        sid, output_hash, old_hash, out.uri_for(result.manifest_key), result.skipped, tuple(done), review
    )


def _checked(uri: str, edits: Sequence[ChunkEdit], count: int) -> list[ChunkEdit]:
    if not edits:
        raise InputError(uri, "no chunk to re-take: name one (--chunk N)")
    seen = set()
    for edit in edits:
        where = f"chunk {edit.index}"
        if not 0 <= edit.index < count:
            raise InputError(uri, f"{where}: no such chunk (the output has chunks 0-{count - 1})")
        if edit.index in seen:
            raise InputError(uri, f"{where}: named twice")
        if edit.text is not None and not edit.text.strip():
            raise InputError(uri, f"{where}: the edited text is empty (drop the chunk instead)")
        if edit.drop and (edit.text is not None or edit.seed is not None):
            raise InputError(uri, f"{where}: a dropped chunk takes no seed or text")
        seen.add(edit.index)
    return sorted(edits, key=lambda e: e.index)


def _chunk(script_id: str, record: Mapping) -> Chunk:
    return Chunk(
        script_id,
        record["index"],
        record["voice"],
        record["spoken"],
        record["speed"],
        tuple(record["sentences"]),
        tuple(record.get("spoken_sentences") or record["sentences"]),
        tuple(record.get("sentence_ids") or ()),
        record["pause_after"],
    )


def _edited(
    uri: str, manifest: Mapping, edits: Sequence[ChunkEdit], voices: Mapping, settings: RunSettings
) -> tuple[list[Chunk], list[ChunkRequest]]:
    """Every chunk and its request, the edited ones changed: a new seed (given, or derived from
    the old one), or a new text (spoken with the old seed unless one is given)."""
    chunks = [_chunk(manifest["script_id"], r) for r in manifest["chunks"]]
    requests = [ChunkRequest(r["key"], r["voice"], r["spoken"], r["speed"], r["seed"]) for r in manifest["chunks"]]
    for edit in (e for e in edits if not e.drop):
        n, old = edit.index, requests[edit.index]
        if edit.text is not None:
            chunks[n] = _rewritten(uri, edit, chunks[n], voices[chunks[n].voice], settings, manifest)
        seed = (
            edit.seed
            if edit.seed is not None
            else old.seed
            if edit.text is not None
            else retake_seed(old.key, old.seed)
        )
        requests[n] = _request(chunks[n], seed, voices, settings, manifest["model"]["checksum"])
    return chunks, requests


def _rewritten(uri: str, edit: ChunkEdit, chunk: Chunk, voice: Any, settings: RunSettings, manifest: Mapping) -> Chunk:
    """The chunk with its new text, chunked as the planner chunks (spoken form, lexicon), in one piece."""
    lexicon = _lexicon(uri, manifest) if manifest["inputs"].get("lexicon") else None
    one = Script(chunk.script_id, uri, (ScriptPart(chunk.voice, edit.text.strip()),), chunk.speed)
    spoken = replace(settings, lexicon=lexicon).spoken_form
    found = chunk_script(one, {chunk.voice: (voice.text, voice.duration)}, spoken=spoken, pauses=PauseRules(0, 0, 0))
    if len(found) != 1:
        raise InputError(uri, f"chunk {edit.index}: the edited text is too long for one chunk ({len(found)} needed)")
    return replace(found[0], index=chunk.index, pause_after=chunk.pause_after, sentence_ids=())


def _lexicon(uri: str, manifest: Mapping) -> Any:
    """The output's lexicon, as it was (its sha256): an edited text is spoken with it."""
    from voicebatch.text.lexicon import read_lexicon

    record = manifest["inputs"]["lexicon"]
    lexicon = read_lexicon(record["uri"], open_storage)
    if lexicon.sha256 != record["sha256"]:
        raise InputError(uri, f"the lexicon {record['uri']} changed since the output was made: edit the text there")
    return lexicon


def _request(chunk: Chunk, seed: int, voices: Mapping, settings: RunSettings, checksum: str) -> ChunkRequest:
    from dataclasses import asdict

    key = chunk_cache_key(
        clip_hash=voices[chunk.voice].clip_hash,
        text=chunk.text,
        speed=chunk.speed,
        params=asdict(settings.params),
        model_checksum=checksum,
        seed=seed,
    )
    return ChunkRequest(key, chunk.voice, chunk.text, chunk.speed, seed)


def _edit_record(edit: ChunkEdit, chunk: Chunk, request: ChunkRequest) -> dict:
    return {
        "index": edit.index,
        "action": edit.action,
        "seed": None if edit.drop else request.seed,
        "text": " ".join(chunk.sentences) if edit.text is not None else None,
    }


def _dropped_qa() -> dict:
    return dict.fromkeys(("kept_take", "language", "alignment"), None) | {
        "status": "dropped", "notes": [DROPPED_NOTE], "takes": []
    }  # fmt: skip


def _renumbered(chunks: Sequence[Chunk]) -> list[Chunk]:
    """Sentence ids in order again (``whole_sentences`` joins consecutive pieces of one id into
    one sentence): an edited chunk's sentences (no ids) are new ones."""
    out, current, last = [], -1, None
    for chunk in chunks:
        ids = []
        for n in range(len(chunk.sentences)):
            old = chunk.sentence_ids[n] if chunk.sentence_ids else None
            if old is None or old != last:
                current += 1
            last = old
            ids.append(current)
        out.append(replace(chunk, sentence_ids=tuple(ids)))
    return out


def _script(manifest: Mapping) -> Script:
    """The script as far as the publisher needs it (its id, source, voices, speed)."""
    record = manifest["inputs"]["script"]
    parts = tuple(ScriptPart(p["voice"], "", p.get("speed", 1.0), p.get("lang")) for p in record["parts"])
    return Script(manifest["script_id"], record["uri"], parts, record["speed"])


def _old_verification(manifest: Mapping) -> dict | None:
    """What verified the kept chunks (a re-take that only drops verifies nothing new)."""
    qa = manifest.get("qa") or {}
    mode = qa.get("settings", {}).get("effective_mode") or qa.get("settings", {}).get("mode")
    return {"mode": mode, "models": qa.get("models", {}), "notes": qa.get("notes", [])} if qa else None


def _synthesize(
    requests: Sequence[ChunkRequest],
    voices: Mapping,
    settings: RunSettings,
    manifest: Mapping,
    model: str | None,
    *,
    device: str | None,
    engine: Any,
    models: Any,
    batch_frames: int,
) -> tuple[list[tuple[Any, dict | None]], dict | None, float | None]:
    """Each request's kept take and its QA record, what verified them, and the seconds it took."""
    if not requests:
        return [], None, None
    from voicebatch.run.speak import speak
    from voicebatch.synthesis.f5_output import f5_output_to_log

    lease = None
    started = time.perf_counter()
    try:
        if engine is None:
            from voicebatch.synthesis.engine import Engine
            from voicebatch.synthesis.model_store import ModelStore

            files = (models or ModelStore()).resolve(model or manifest["model"]["name"])
            if device is None:
                from voicebatch.synthesis.devices import lease_device

                lease = lease_device()
            engine = Engine(files, device=device or lease.device)
        if engine.files.checksum != manifest["model"]["checksum"]:
            what = "not the model the output was made with (its checksum differs from the manifest's)"
            raise InputError(model or manifest["model"]["name"], what)
        references = {r.voice: Reference(r.voice, voices[r.voice].samples, voices[r.voice].text) for r in requests}
        kept: dict[str, Any] = {}
        qa: dict[str, dict] = {}
        verification = None
        with f5_output_to_log(log):  # spoken and verified as the synthesize stage does (run.speak)
            for spoken in speak(engine, references, list(requests), settings.params, batch_frames, settings.verify):
                kept.update((a.key, a.samples) for a in spoken.audio)
                qa.update(spoken.qa)
                verification = spoken.verification
    finally:
        if lease is not None:
            lease.release()
    seconds = round(time.perf_counter() - started, 3)
    return [(kept[r.key], qa.get(r.key)) for r in requests], verification, seconds
