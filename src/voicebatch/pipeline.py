"""Plan and publish: the steps the CLI and the Airflow tasks share.

``plan_scripts`` gives each script its output hash and marks those already published (the
work a retry, re-run or backfill skips); ``publish_script_outputs`` assembles synthesized
chunk audio, renders the files, builds the manifest and publishes through the protocol.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.audio import file_sha256
from voicebatch.chunk_store import CHUNK_AUDIO_FORMAT, CHUNK_AUDIO_NAME, ChunkAudioWriter
from voicebatch.chunking import Chunk
from voicebatch.longform import assemble_to_file
from voicebatch.manifest import build_manifest, output_hash
from voicebatch.outputs import DEFAULT_OUTPUT_OPTIONS, OutputOptions, render_files
from voicebatch.publish import Published, is_published, output_prefix, publish_script, voice_prefix
from voicebatch.scripts import MAX_SPEED, MIN_SPEED, Script
from voicebatch.storage import Storage, retrying
from voicebatch.synthesis.engine import DEFAULT_PARAMS, ChunkRequest, SynthesisParams
from voicebatch.synthesis.jobs import plan_requests
from voicebatch.text.lexicon import Lexicon
from voicebatch.text.markup import DEFAULT_PAUSES, PauseRules, strip_markup
from voicebatch.text.normalize import DEFAULT_LANGUAGE
from voicebatch.text.spoken import SpokenForm
from voicebatch.timings import CROSS_FADE_SECONDS, assemble
from voicebatch.verify.settings import VerifySettings
from voicebatch.voices import PreparedVoice

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.timings import Assembly


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunSettings:
    params: SynthesisParams = DEFAULT_PARAMS
    options: OutputOptions = DEFAULT_OUTPUT_OPTIONS
    seed: int = 0
    cross_fade: float = CROSS_FADE_SECONDS
    speed: float = 1.0  # multiplies each script's own speed (the result kept within 0.5-2.0)
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


def publish_script_outputs(
    storage: Storage,
    plan: ScriptPlan,
    chunk_audio: Iterable[np.ndarray],
    voices: Mapping[str, PreparedVoice],
    model: Mapping[str, object],
    settings: RunSettings,
    *,
    synthesis_seconds: float | None = None,
    run: Mapping[str, object] | None = None,
    qa: Sequence[Mapping | None] | None = None,
    verification: Mapping[str, object] | None = None,
    extra: Mapping[str, object] | None = None,
) -> Published:
    """Assemble, render and publish one script. ``chunk_audio``: each chunk's audio in order
    (a generator reads one at a time). The joined audio goes to a temporary file and is
    rendered from there block by block: memory stays flat however long the script (issue 11).
    ``qa``: each chunk's QA record (``VerifiedChunk.qa_record``), None where unverified;
    ``verification``: the settings and models that checked them, for the manifest; ``extra``:
    manifest fields set last (a re-take's ``supersedes``). Each chunk's own audio is kept
    beside the files (``chunk_store``), so a chunk can be re-taken later."""
    from voicebatch.verify.qa import script_qa, word_times

    with tempfile.TemporaryDirectory(prefix="voicebatch-publish-") as tmp_name:
        tmp = Path(tmp_name)
        qa = list(qa) if qa is not None else [None] * len(plan.chunks)
        kept = ChunkAudioWriter(tmp / CHUNK_AUDIO_NAME)
        joined = assemble_to_file(
            kept.keep(chunk_audio),
            [c.sentences for c in plan.chunks],
            tmp / "joined.f32",
            cross_fade=settings.cross_fade,
            pauses=[c.pause_after for c in plan.chunks],
            word_times=[word_times(c.sentences, record) for c, record in zip(plan.chunks, qa, strict=True)],
        )
        kept.close()
        rendered = render_files(joined, plan.script.id, tmp, settings.options, chunks=plan.chunks)
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
                # The chunk as planned, so a re-take rebuilds it (subtitles follow its sentences).
                "sentences": list(c.sentences),
                "spoken_sentences": list(c.spoken),
                "sentence_ids": list(c.sentence_ids),
                "speed": c.speed,
                "pause_after": c.pause_after,
                "key": r.key,
                "seed": r.seed,
                "start": round(s.start_sample / rate, 3),
                "end": round(s.end_sample / rate, 3),
                "qa": record,
                "audio": stored.as_json(),
            }
            for c, r, s, record, stored in zip(plan.chunks, plan.requests, spans, qa, kept.spans, strict=True)
        ]
        summary = script_qa(qa, settings.verify, verification)
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
            voices={v: _voice_lineage(storage, voices[v]) for v in plan.script.voices},
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
        manifest["qa"] = summary
        manifest["chunk_audio"] = _keep_chunk_audio(storage, plan, kept.path)
        manifest.update(extra or {})
        latest = {"needs_review": summary["needs_review"]}
        return publish_script(
            storage, plan.script.id, plan.output_hash, rendered.files, rendered.content_types, manifest, latest=latest
        )


def _keep_chunk_audio(storage: Storage, plan: ScriptPlan, path: Path) -> dict:
    """Upload the chunks' own audio (before the manifest: complete or absent, like the files)."""
    key = output_prefix(plan.script.id, plan.output_hash) + CHUNK_AUDIO_NAME
    if not is_published(storage, plan.script.id, plan.output_hash):
        retrying(lambda: storage.put_file(key, path, "audio/flac"), what=f"upload {key}")
    return {"key": key, "size": path.stat().st_size, "sha256": file_sha256(path), **CHUNK_AUDIO_FORMAT}


def assemble_chunks(
    chunk_audio: Sequence[np.ndarray],
    chunks: Sequence[Chunk],
    settings: RunSettings,
    qa: Sequence[dict | None] | None = None,
) -> Assembly:
    """The script's audio: chunks joined with the pauses the script asks for, its cues placed
    by the measured word times of each chunk's QA record where verification aligned it."""
    from voicebatch.verify.qa import word_times

    records = list(qa) if qa is not None else [None] * len(chunks)
    return assemble(
        chunk_audio,
        [c.sentences for c in chunks],
        cross_fade=settings.cross_fade,
        pauses=[c.pause_after for c in chunks],
        word_times=[word_times(c.sentences, r) for c, r in zip(chunks, records, strict=True)],
    )


def lexicon_record(lexicon: Lexicon | None, chunks: Sequence[Chunk]) -> dict | None:
    """The lexicon in force and the words of it this script used (the manifest's ``inputs.lexicon``)."""
    if lexicon is None:
        return None
    used = {e.word for c in chunks for s in c.sentences for e in lexicon.apply(strip_markup(s), c.voice)[1]}
    return {**lexicon.as_json(), "applied": sorted(used)}


def _voice_lineage(storage: Storage, voice: PreparedVoice) -> dict:
    meta = voice.metadata
    return {
        "uri": storage.uri_for(voice_prefix(voice.name, voice.clip_hash)),
        "clip_hash": voice.clip_hash,
        "reference_text": voice.text,
        "window": meta.get("window"),
        "source_audio": meta.get("sources", {}).get("audio"),
        "source_transcript": meta.get("sources", {}).get("transcript"),
    }
