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

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from voicebatch.cli.synth_inputs import plan_with_voice_speeds, prepare_inputs
from voicebatch.cli.synth_records import SynthRequest
from voicebatch.cli.synth_request import model_and_settings
from voicebatch.errors import InputError
from voicebatch.inputs.vocab import load_vocabulary
from voicebatch.locations.storage import is_s3_uri, open_storage
from voicebatch.publish.publishing import is_published, json_bytes, publish_script, publish_voice
from voicebatch.render.mastering.narration import BookOptions, book_id, check_sections, section_scripts
from voicebatch.render.mastering.render import BookRenderer, RenderedBook, book_output_hash, file_sha256, join_section
from voicebatch.run.books import book_manifest, chunk_rows
from voicebatch.run.pipeline import existing_output, local_manifest_name, written_locally
from voicebatch.run.speak import engine_for, speak
from voicebatch.synthesis.engine import Engine, Reference
from voicebatch.synthesis.jobs import log_progress
from voicebatch.synthesis.model_store import ModelStore
from voicebatch.text.lexicon import read_lexicon

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
    from voicebatch.inputs.books import read_book

    vocab = load_vocabulary()
    lexicon = read_lexicon(request.lexicon, open_storage) if request.lexicon else None
    book = read_book(path)
    voices, speeds = prepare_inputs(request.voices, vocab, request.verify)
    narrator_voice = next(iter(voices))
    identifier = book_id(path)
    found = section_scripts(book, identifier, narrator_voice, options.narrator, vocab)
    check_sections(found, book)
    files, settings = model_and_settings(request, lexicon, models)
    scripts = [s if request.speed is None else replace(s, speed=request.speed) for _, s in found]
    plans = plan_with_voice_speeds(scripts, voices, speeds, files.checksum, settings)
    key = book_output_hash([p.output_hash for p in plans], options, file_sha256(path))
    storage = open_storage(request.out)
    publishing = is_s3_uri(request.out)
    if not request.force and (
        is_published(storage, identifier, key) if publishing else written_locally(storage, identifier, key)
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
        engine_for(files, request.device, engine) as loaded,
    ):
        renderer = BookRenderer(book, identifier, options, Path(tmp), seed=request.seed)
        for (section, _), plan in zip(found, plans, strict=True):
            requests = list(plan.requests)
            spoken_audio: dict[str, Any] = {}
            spoken_qa: dict[str, dict] = {}
            for spoken in speak(loaded, references, requests, settings.params, request.batch_frames, settings.verify):
                spoken_audio.update((a.key, a.samples) for a in spoken.audio)
                spoken_qa.update(spoken.qa)
                verification = spoken.verification
            kept = [spoken_audio[r.key] for r in requests]
            qa = [spoken_qa.get(r.key) for r in requests]
            quarantined = sum(1 for q in qa if q and q["status"] == "quarantined")
            if quarantined and not settings.verify.publish_unverified:
                reason = (
                    f"{section.title}: {quarantined} chunk(s) never passed verification: held back (--hold-unverified)"
                )
                return BookResult(identifier, "held", str(path), output_hash=key, needs_review=True, reason=reason)
            joined = join_section(plan, iter(kept), qa, settings, Path(tmp) / f"{section.name}.f32")
            rows += chunk_rows(plan, joined, qa)
            qa_all += qa
            del spoken_audio, kept
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


def _write_local(storage: Any, identifier: str, rendered: RenderedBook, manifest: dict) -> tuple[str, ...]:
    """The files into the folder, then ``<book>.manifest.json`` last, in the published manifest's
    schema (its ``outputs`` with sizes and hashes, so a run asking for the same book skips it)."""
    outputs = []
    for name, file in rendered.files.items():
        content_type = rendered.content_types.get(name)
        storage.put_file(name, file, content_type)
        outputs.append(
            {"key": name, "size": file.stat().st_size, "sha256": file_sha256(file), "content_type": content_type}
        )
    name = local_manifest_name(identifier)
    storage.put_bytes(name, json_bytes({**manifest, "outputs": outputs}), "application/json")
    return tuple(storage.uri_for(n) for n in [*rendered.files, name])


def _skipped(storage: Any, identifier: str, key: str, source: str, publishing: bool) -> BookResult:
    manifest, names, reason = existing_output(storage, identifier, key, publishing)
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
    from voicebatch.inputs.books import BOOK_SUFFIXES

    if not path.is_file():
        raise InputError(path, "no such file")
    if path.suffix.lower() not in BOOK_SUFFIXES:
        raise InputError(path, f"not a book ({', '.join(BOOK_SUFFIXES)})")
