"""Plan and publish: the steps the CLI and the Airflow tasks share.

``plan_scripts`` gives each script its output hash and marks those already published (the
work a retry, re-run or backfill skips); ``render_script`` assembles synthesized chunk audio,
renders the files and builds the manifest, which ``publish_script_outputs`` publishes through
the protocol and ``write_script_outputs`` writes into a plain folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.audio import file_sha256
from voicebatch.inputs.chunking import Chunk
from voicebatch.inputs.scripts import MAX_SPEED, MIN_SPEED, Script
from voicebatch.inputs.voices import PreparedVoice
from voicebatch.keys import output_hash
from voicebatch.locations.retry import retrying
from voicebatch.locations.storage import Storage
from voicebatch.publish.manifest import build_manifest
from voicebatch.publish.publishing import (
    Published,
    is_published,
    json_bytes,
    output_prefix,
    publish_script,
    voice_prefix,
)
from voicebatch.render.chunk_store import CHUNK_AUDIO_FORMAT, CHUNK_AUDIO_NAME, ChunkAudioWriter
from voicebatch.render.join import CROSS_FADE_SECONDS
from voicebatch.render.join_file import assemble_to_file
from voicebatch.render.outputs import DEFAULT_OUTPUT_OPTIONS, OutputOptions, render_files
from voicebatch.settings import DEFAULTS
from voicebatch.synthesis.engine import DEFAULT_PARAMS, ChunkRequest, SynthesisParams
from voicebatch.synthesis.jobs import plan_requests
from voicebatch.text.lexicon import Lexicon
from voicebatch.text.markup import DEFAULT_PAUSES, PauseRules, strip_markup
from voicebatch.text.normalize import DEFAULT_LANGUAGE
from voicebatch.text.spoken import SpokenForm
from voicebatch.verify.settings import VerifySettings

if TYPE_CHECKING:
    import numpy as np


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunSettings:
    params: SynthesisParams = DEFAULT_PARAMS
    options: OutputOptions = DEFAULT_OUTPUT_OPTIONS
    seed: int = DEFAULTS["seed"]
    cross_fade: float = CROSS_FADE_SECONDS
    speed: float = DEFAULTS["speed"]  # multiplies each script's own speed (the result kept within 0.5-2.0)
    verify: VerifySettings = field(default_factory=VerifySettings)
    pauses: PauseRules = DEFAULT_PAUSES
    language: str = DEFAULT_LANGUAGE  # of the spoken form, unless a voice tag says lang=
    # The lexicon changes the spoken text, which the hashes cover: a lexicon change
    # re-renders only the scripts whose spoken text it changes (its hash is in the manifest).
    lexicon: Lexicon | None = field(default=None, compare=False)

    def hashed(self) -> dict:
        """Everything that changes the bytes of an output, for its hash (speed is in the script)."""
        return {
            **asdict(self.params),
            **asdict(self.options),
            "seed": self.seed,
            "cross_fade": self.cross_fade,
            "pauses": asdict(self.pauses),
            "language": self.language,
            "verify": self.verify.hashed(),
        }

    @property
    def spoken_form(self) -> SpokenForm:
        return SpokenForm(self.language, self.lexicon)

    def script_speed(self, speed: float) -> float:
        return min(MAX_SPEED, max(MIN_SPEED, round(speed * self.speed, 4)))


@dataclass(frozen=True, slots=True)
class ScriptPlan:
    script: Script
    output_hash: str
    chunks: tuple[Chunk, ...]
    requests: tuple[ChunkRequest, ...]
    published: bool  # already published: nothing to do


def plan_scripts(
    scripts: Sequence[Script],
    voices: Mapping[str, PreparedVoice],
    model_checksum: str,
    settings: RunSettings,
    storage: Storage | None = None,
    *,
    force: bool = False,
) -> list[ScriptPlan]:
    plans = []
    scripts = [replace(s, speed=settings.script_speed(s.speed)) for s in scripts]
    planned = plan_requests(
        scripts,
        voices,
        settings.params,
        model_checksum,
        settings.seed,
        spoken=settings.spoken_form,
        pauses=settings.pauses,
    )
    for script, chunks, requests in planned:
        used = {v: voices[v] for v in script.voices}
        # What F5 speaks (the spoken form, lexicon applied) is hashed beside what is written.
        spoken = "\n".join(c.text for c in chunks)
        key = output_hash(
            clip_hashes={v: p.clip_hash for v, p in used.items()},
            reference_texts={v: p.text for v, p in used.items()},
            script_text=f"{script.speed}|{script.text}|{spoken}",
            params=settings.hashed(),
            model_checksum=model_checksum,
        )
        done = storage is not None and not force and is_published(storage, script.id, key)
        if done:
            log.info("%s: already published (%s), skipped", script.id, key[:12])
        plans.append(ScriptPlan(script, key, tuple(chunks), tuple(requests), done))
    return plans


@dataclass(frozen=True, slots=True)
class RenderedScript:
    """One script's files (name -> bytes, or the path of a long file) and its manifest, before
    they are put anywhere."""

    files: Mapping[str, bytes | Path]
    content_types: Mapping[str, str]
    manifest: dict
    chunk_audio: Path  # each chunk's own audio (render.chunk_store), kept beside the files


def render_script(
    plan: ScriptPlan,
    chunk_audio: Iterable[np.ndarray],
    voices: Mapping[str, dict],
    model: Mapping[str, object],
    settings: RunSettings,
    directory: Path,
    *,
    synthesis_seconds: float | None = None,
    run: Mapping[str, object] | None = None,
    qa: Sequence[Mapping | None] | None = None,
    verification: Mapping[str, object] | None = None,
) -> RenderedScript:
    """Assemble and render one script, and build its manifest: the one function behind the DAG's
    outputs and ``voicebatch synth``'s. ``chunk_audio``: each chunk's audio in order (a generator
    reads one at a time); the joined audio goes to a file in ``directory`` and is rendered from
    there block by block, so memory stays flat however long the script. ``voices``: each voice's
    lineage record; ``qa``: each chunk's QA record (``VerifiedChunk.qa_record``), None where
    unverified; ``verification``: the settings and models that checked them."""
    from voicebatch.verify.qa import script_qa, word_times

    qa = list(qa) if qa is not None else [None] * len(plan.chunks)
    # Each chunk's own audio kept beside the files (render.chunk_store), so a chunk can be re-taken.
    kept = ChunkAudioWriter(directory / CHUNK_AUDIO_NAME)
    chunk_audio = kept.keep(chunk_audio)
    timed = None
    if plan.script.cues:  # a timed script: each take at its cue's start (voicebatch.render.timed_render)
        from voicebatch.render.timed_render import assemble_timed_to_file

        joined, timed = assemble_timed_to_file(chunk_audio, plan.script, plan.chunks, directory / "joined.f32")
    else:
        joined = assemble_to_file(
            chunk_audio,
            [c.sentences for c in plan.chunks],
            directory / "joined.f32",
            cross_fade=settings.cross_fade,
            pauses=[c.pause_after for c in plan.chunks],
            word_times=[word_times(c.sentences, record) for c, record in zip(plan.chunks, qa, strict=True)],
        )
    kept.close()
    rendered = render_files(joined, plan.script.id, directory, settings.options, chunks=plan.chunks)
    if timed is not None:  # the published subtitles are the source cues with their own times
        from voicebatch.render.timed_render import with_source_subtitles

        rendered = with_source_subtitles(rendered, plan.script)
    joined.path.unlink()  # the encoded file is what is published: half the disk
    # The cues are in the files now; the manifest needs only where each chunk lies. Letting
    # go of them here keeps a book's 100,000 word cues out of the manifest's memory peak.
    spans, rate, duration = joined.timeline.chunks, joined.sample_rate, joined.timeline.duration
    del joined
    chunks = [
        {
            "index": c.index,
            "voice": c.voice,
            "text": " ".join(c.sentences),  # as written
            "spoken": c.text,  # what F5 spoke
            "speed": c.speed,
            "pause_after": c.pause_after,
            # The chunk as planned, so a re-take rebuilds it (subtitles follow its sentences).
            "sentences": list(c.sentences),
            "spoken_sentences": list(c.spoken),
            "sentence_ids": list(c.sentence_ids),
            "key": r.key,
            "seed": r.seed,
            "start": round(s.start_sample / rate, 3),
            "end": round(s.end_sample / rate, 3),
            "qa": record,
            "audio": stored.as_json(),
        }
        for c, r, s, record, stored in zip(plan.chunks, plan.requests, spans, qa, kept.spans, strict=True)
    ]
    script_text = plan.script.text
    manifest = build_manifest(
        script_id=plan.script.id,
        output_hash=plan.output_hash,
        script={
            "uri": plan.script.source,
            "sha256": hashlib.sha256(script_text.encode("utf-8")).hexdigest(),
            "speed": plan.script.speed,
            "parts": [{"voice": p.voice, "speed": p.speed, "lang": p.lang} for p in plan.script.parts],
            "voices": list(plan.script.voices),
        },
        voices={v: dict(voices[v]) for v in plan.script.voices},
        model=dict(model),  # ModelFiles.lineage(): publishing never needs the weights themselves
        parameters={**settings.hashed(), "python": platform.python_version()},
        chunks=chunks,
        durations={
            "audio_seconds": round(duration, 3),
            "synthesis_seconds": synthesis_seconds,
            "rtf": round(synthesis_seconds / duration, 4) if synthesis_seconds else None,
        },
        loudness=asdict(rendered.loudness) if rendered.loudness else None,
        run=run,
        lexicon=lexicon_record(settings.lexicon, plan.chunks),
        subtitle_problems=[asdict(p) for p in rendered.subtitle_problems],
    )
    manifest["qa"] = script_qa(qa, settings.verify, verification)
    if timed is not None:
        manifest["timed"] = timed.record
    return RenderedScript(rendered.files, rendered.content_types, manifest, kept.path)


def publish_script_outputs(
    storage: Storage,
    plan: ScriptPlan,
    chunk_audio: Iterable[np.ndarray],
    voices: Mapping[str, PreparedVoice],
    model: Mapping[str, object],
    settings: RunSettings,
    *,
    extra: Mapping[str, object] | None = None,
    **made: object,
) -> Published:
    """Render one script (``render_script``, whose keywords ``made`` are) and publish it through
    the protocol: content-addressed under ``audio/<script>/<output_hash>/``, the chunks' own audio
    and the files, the manifest last, then ``latest.json``. ``extra``: manifest fields set last (a
    re-take's ``supersedes``)."""
    lineage = {
        v: voice_lineage(voices[v], storage.uri_for(voice_prefix(v, voices[v].clip_hash))) for v in plan.script.voices
    }
    with tempfile.TemporaryDirectory(prefix="voicebatch-publish-") as tmp:
        script = render_script(plan, chunk_audio, lineage, model, settings, Path(tmp), **made)
        script.manifest["chunk_audio"] = _keep_chunk_audio(storage, plan, script.chunk_audio)
        script.manifest.update(extra or {})
        latest = {"needs_review": script.manifest["qa"]["needs_review"]}
        return publish_script(
            storage,
            plan.script.id,
            plan.output_hash,
            script.files,
            script.content_types,
            script.manifest,
            latest=latest,
        )


def write_script_outputs(
    storage: Storage,
    plan: ScriptPlan,
    chunk_audio: Iterable[np.ndarray],
    voices: Mapping[str, PreparedVoice],
    model: Mapping[str, object],
    settings: RunSettings,
    **made: object,
) -> Published:
    """Render one script (``render_script``) into a plain folder: the same files and the same
    manifest as a published output, flat (``<script>.wav`` ...), then ``<script>.manifest.json``
    last (its presence means the output is complete; it names the output hash)."""
    lineage = {v: voice_lineage(voices[v], None) for v in plan.script.voices}  # not registered anywhere: no URI
    with tempfile.TemporaryDirectory(prefix="voicebatch-write-") as tmp:
        script = render_script(plan, chunk_audio, lineage, model, settings, Path(tmp), **made)
        outputs = []
        for name, data in script.files.items():
            content_type = script.content_types.get(name)
            if isinstance(data, Path):
                storage.put_file(name, data, content_type)
                size, digest = data.stat().st_size, file_sha256(data)
            else:
                storage.put_bytes(name, data, content_type)
                size, digest = len(data), hashlib.sha256(data).hexdigest()
            outputs.append({"key": name, "size": size, "sha256": digest, "content_type": content_type})
        manifest_name = local_manifest_name(plan.script.id)
        storage.put_bytes(manifest_name, json_bytes({**script.manifest, "outputs": outputs}), "application/json")
    return Published("", manifest_name, (*(o["key"] for o in outputs), manifest_name), False)


def _keep_chunk_audio(storage: Storage, plan: ScriptPlan, path: Path) -> dict:
    """Upload the chunks' own audio (before the manifest: complete or absent, like the files)."""
    key = output_prefix(plan.script.id, plan.output_hash) + CHUNK_AUDIO_NAME
    if not is_published(storage, plan.script.id, plan.output_hash):
        retrying(lambda: storage.put_file(key, path, "audio/flac"), what=f"upload {key}")
    return {"key": key, "size": path.stat().st_size, "sha256": file_sha256(path), **CHUNK_AUDIO_FORMAT}


def existing_output(
    storage: Storage, script_id: str, output_hash: str, publishing: bool
) -> tuple[dict, tuple[str, ...], str]:
    """An output already there (published, or written in a plain folder): its manifest, every key
    it lists with the manifest last, and why it is skipped."""
    key = output_prefix(script_id, output_hash) + "manifest.json" if publishing else local_manifest_name(script_id)
    manifest = json.loads(storage.get_bytes(key))
    keys = (*(o["key"] for o in manifest["outputs"]), key)
    return manifest, keys, "already published" if publishing else "already written"


def local_manifest_name(script_id: str) -> str:
    return f"{script_id}.manifest.json"


def lexicon_record(lexicon: Lexicon | None, chunks: Sequence[Chunk]) -> dict | None:
    """The lexicon in force and the words of it this script used (the manifest's ``inputs.lexicon``)."""
    if lexicon is None:
        return None
    used = {e.word for c in chunks for s in c.sentences for e in lexicon.apply(strip_markup(s), c.voice)[1]}
    return {**lexicon.as_json(), "applied": sorted(used)}


def voice_lineage(voice: PreparedVoice, uri: str | None) -> dict:
    """A voice's record in a manifest; ``uri``: where it is registered (None: nowhere)."""
    meta = voice.metadata
    return {
        "uri": uri,
        "clip_hash": voice.clip_hash,
        "reference_text": voice.text,
        "window": meta.get("window"),
        "source_audio": meta.get("sources", {}).get("audio"),
        "source_transcript": meta.get("sources", {}).get("transcript"),
    }


def written_locally(storage: Storage, script_id: str, output_hash: str) -> bool:
    """A local --out already holds this output: its manifest (written last) names the same hash,
    and every file it lists is there with its size."""
    name = local_manifest_name(script_id)
    if not storage.exists(name):
        return False
    try:
        manifest = json.loads(storage.get_bytes(name))
    except (ValueError, OSError):
        return False
    if manifest.get("output_hash") != output_hash:
        return False
    for entry in manifest.get("outputs", []):
        path = Path(storage.uri_for(entry["key"]))
        if not path.is_file() or path.stat().st_size != entry["size"]:
            return False
    return True
