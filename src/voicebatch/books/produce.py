"""`voicebatch book`: a whole book narrated, mastered and packaged in one process, no Airflow.

The book is read (``books``), each section (opening credits, every chapter, closing credits)
becomes a script in the narrator's voice (``books.narration``) and is planned as ``voicebatch
synth`` plans scripts (same voices, model store, verification, lexicon and hashes:
``oneoff``). The model is loaded once; each section is spoken and checked in one engine call,
joined to disk and finished at once (``mastering.render``: mastered, MP3, ACX check), so memory
holds one section's chunks at most. Then the M4B and the read-along EPUB 3.

``--out DIR`` writes the files and ``<book>.manifest.json`` last (the sidecar ``voicebatch
synth`` writes: a run asking for the same book again finds it and skips it); ``--out
s3://bucket/prefix`` publishes through the protocol under ``audio/<book>/<output_hash>/``, the
manifest last, as the pipeline does.
"""

from __future__ import annotations

import datetime
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from voicebatch.books.narration import BookOptions, book_id, check_sections, section_scripts
from voicebatch.errors import InputError
from voicebatch.mastering.render import BookRenderer, RenderedBook, book_output_hash, file_sha256, join_section
from voicebatch.oneoff import (
    SIDECAR,
    SynthRequest,
    _written,
    plan_with_voice_speeds,
    prepare_inputs,
    speak,
    synthesis_engine,
)
from voicebatch.pipeline import RunSettings
from voicebatch.publish import is_published, json_bytes, publish_script, publish_voice
from voicebatch.storage import is_s3_uri, open_storage
from voicebatch.synthesis.engine import Engine, Reference
from voicebatch.synthesis.jobs import log_progress
from voicebatch.synthesis.models import ModelStore
from voicebatch.text.lexicon import read_lexicon
from voicebatch.vocab import load_vocabulary

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BookResult:
    book: str
    status: str  # written | published | skipped (already there) | held (a chunk never passed verification)
    source: str
    files: tuple[str, ...] = ()
    output_hash: str | None = None
    duration: float | None = None
    acx_passed: bool | None = None
    needs_review: bool = False
    reason: str | None = None

    def as_json(self) -> dict:
        return {
            "book": self.book,
            "status": self.status,
            "source": self.source,
            "files": list(self.files),
            "output_hash": self.output_hash,
            "duration": self.duration,
            "acx_passed": self.acx_passed,
            "needs_review": self.needs_review,
            "reason": self.reason,
        }


def produce_book(
    request: SynthRequest,
    path: Path,
    options: BookOptions,
    *,
    progress: Callable | None = log_progress,
    engine: Engine | None = None,
    models: ModelStore | None = None,
) -> BookResult:
    """Narrate the book at ``path`` with the request's first voice into ``request.out``."""
    from voicebatch.books import read_book

    vocab = load_vocabulary()
    lexicon = read_lexicon(request.lexicon, open_storage) if request.lexicon else None
    book = read_book(path)
    voices, speeds = prepare_inputs(request.voices, vocab, request.verify)
    narrator_voice = next(iter(voices))
    identifier = book_id(path)
    found = section_scripts(book, identifier, narrator_voice, options.narrator, vocab)
    check_sections(found, book)
    files = (models or ModelStore()).resolve(request.model)
    if files.random_weights:
        log.warning("model %s has random weights: the audio is noise, not a voice", files.name)
    settings = RunSettings(
        request.params,
        request.options,
        seed=request.seed,
        cross_fade=request.cross_fade,
        verify=request.verify,
        lexicon=lexicon,
    )
    scripts = [s if request.speed is None else replace(s, speed=request.speed) for _, s in found]
    plans = plan_with_voice_speeds(scripts, voices, speeds, files.checksum, settings)
    key = book_output_hash([p.output_hash for p in plans], options, file_sha256(path))
    storage = open_storage(request.out)
    publishing = is_s3_uri(request.out)
    if not request.force and (
        is_published(storage, identifier, key) if publishing else _written(storage, identifier, key)
    ):
        return _skipped(storage, identifier, key, str(path), publishing)
    if publishing:
        publish_voice(storage, voices[narrator_voice])
    references = {name: Reference(name, v.samples, v.text) for name, v in voices.items()}
    chunks = sum(len(p.requests) for p in plans)
    log.info("%s: %d sections, %d chunks to synthesize", identifier, len(plans), chunks)
    qa_all: list[dict | None] = []
    rows: list[dict] = []
    verification = None
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="voicebatch-book-") as tmp,
        synthesis_engine(files, request.device, engine) as loaded,
    ):
        renderer = BookRenderer(book, identifier, options, Path(tmp), seed=request.seed)
        for (section, _), plan in zip(found, plans, strict=True):
            requests = list(plan.requests)
            audio, verified, verification = speak(
                loaded, references, requests, settings, request.batch_frames, progress
            )
            kept = [v.audio.samples for v in verified] if verified else [a.samples for a in audio]
            qa = [v.qa_record() for v in verified] if verified else [None] * len(requests)
            quarantined = sum(1 for q in qa if q and q["status"] == "quarantined")
            if quarantined and not settings.verify.publish_unverified:
                reason = (
                    f"{section.title}: {quarantined} chunk(s) never passed verification: held back (--hold-unverified)"
                )
                return BookResult(identifier, "held", str(path), output_hash=key, needs_review=True, reason=reason)
            joined = join_section(plan, iter(kept), qa, settings, Path(tmp) / f"{section.name}.f32")
            rows += chunk_rows(plan, joined, qa)
            qa_all += qa
            del audio, verified, kept
            renderer.add(section, joined)
        rendered = renderer.finish()
        seconds = time.perf_counter() - started
        manifest = book_manifest(
            identifier,
            key,
            book,
            path,
            voices[narrator_voice],
            files.lineage(),
            settings,
            options,
            rendered,
            rows,
            qa_all,
            verification,
            seconds,
        )
        if publishing:
            published = publish_script(storage, identifier, key, rendered.files, rendered.content_types, manifest)
            uris = tuple(storage.uri_for(k) for k in published.keys)
            status = "published"
        else:
            uris = _write_local(storage, identifier, rendered, manifest)
            status = "written"
    qa_summary = manifest["qa"]
    return BookResult(
        identifier, status, str(path), uris, key, rendered.duration, rendered.acx["passed"], qa_summary["needs_review"]
    )


def chunk_rows(plan: Any, joined: Any, qa: list) -> list[dict]:
    rate = joined.sample_rate
    return [
        {
            "section": plan.script.id,
            "index": c.index,
            "text": " ".join(c.sentences),
            "spoken": c.text,
            "key": r.key,
            "seed": r.seed,
            "start": round(s.start_sample / rate, 3),
            "end": round(s.end_sample / rate, 3),
            "qa": record,
        }
        for c, r, s, record in zip(plan.chunks, plan.requests, joined.timeline.chunks, qa, strict=True)
    ]


def book_manifest(
    identifier: str,
    key: str,
    book: Any,
    path: Path,
    voice: Any,
    model: dict,
    settings: RunSettings,
    options: BookOptions,
    rendered: RenderedBook,
    chunks: list[dict],
    qa: list,
    verification: dict | None,
    synthesis_seconds: float | None,
    run: dict | None = None,
    uri: str | None = None,
) -> dict:
    """The book's manifest: the script manifest's lineage (``manifest.build_manifest``), plus
    ``book`` (metadata, profile, every file) and ``acx`` (the checker's report per file)."""
    import platform

    from voicebatch.manifest import build_manifest
    from voicebatch.verify.qa import script_qa

    duration = rendered.duration
    manifest = build_manifest(
        script_id=identifier,
        output_hash=key,
        script={"uri": uri or str(path), "sha256": file_sha256(path), "voices": [voice.name], "kind": "book"},
        voices={voice.name: {"clip_hash": voice.clip_hash, "reference_text": voice.text}},
        model=model,
        parameters={**settings.hashed(), **options.hashed(), "python": platform.python_version()},
        chunks=chunks,
        durations={
            "audio_seconds": duration,
            "synthesis_seconds": round(synthesis_seconds, 3) if synthesis_seconds else None,
            "rtf": round(synthesis_seconds / duration, 4) if synthesis_seconds and duration else None,
        },
        loudness=None,
        run=run,
    )
    manifest["book"] = rendered.record
    manifest["acx"] = rendered.acx
    manifest["qa"] = script_qa(qa, settings.verify, verification)
    return manifest


def _write_local(storage: Any, identifier: str, rendered: RenderedBook, manifest: dict) -> tuple[str, ...]:
    """The files into the folder, then ``<book>.manifest.json`` last (``oneoff``'s sidecar
    shape: a file list with sizes, so a run asking for the same book skips it)."""
    listed = []
    for name, file in rendered.files.items():
        storage.put_file(name, file, rendered.content_types.get(name))
        listed.append({"name": name, "size": file.stat().st_size, "sha256": file_sha256(file)})
    sidecar = {
        "schema": "voicebatch.book/1",
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **manifest,
        "files": listed,
    }
    storage.put_bytes(identifier + SIDECAR, json_bytes(sidecar), "application/json")
    return tuple(storage.uri_for(n) for n in [*rendered.files, identifier + SIDECAR])


def _skipped(storage: Any, identifier: str, key: str, source: str, publishing: bool) -> BookResult:
    if publishing:
        manifest_key = f"audio/{identifier}/{key}/manifest.json"
        manifest = json.loads(storage.get_bytes(manifest_key))
        names = [o["key"] for o in manifest["outputs"]] + [manifest_key]
        reason = "already published"
    else:
        manifest = json.loads(storage.get_bytes(identifier + SIDECAR))
        names = [f["name"] for f in manifest["files"]] + [identifier + SIDECAR]
        reason = "already written"
    log.info("%s: %s, nothing to do", identifier, reason)
    return BookResult(
        identifier,
        "skipped",
        source,
        tuple(storage.uri_for(n) for n in names),
        key,
        manifest["durations"]["audio_seconds"],
        manifest["acx"]["passed"],
        bool(manifest.get("qa", {}).get("needs_review")),
        reason,
    )


def check_book_path(path: Path) -> None:
    from voicebatch.books import BOOK_SUFFIXES

    if not path.is_file():
        raise InputError(path, "no such file")
    if path.suffix.lower() not in BOOK_SUFFIXES:
        raise InputError(path, f"not a book ({', '.join(BOOK_SUFFIXES)})")
