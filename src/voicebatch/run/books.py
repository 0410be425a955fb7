"""Books in a pipeline run: ``.epub`` files in ``scripts_uri``, each one work.

``plan_books`` (called by ``runs.plan_run``) reads each book, makes its sections (credits and
chapters, ``books.narration``) scripts and plans them as scripts are planned: their chunks go
into the same batch specs, so chapters are synthesized by the same mapped tasks, staged as
each synthesis batch finishes, and a retried task speaks only what is not staged yet. The book
itself is one entry of the plan (``"kind": "book"``) with its sections' plans and one output
hash over all of them; the EPUB is staged beside the plan (``books/<book>.epub``) for publish.

``publish_book`` (called by ``runs.publish_run``) waits for every chunk of every section,
then joins, masters, encodes and checks section by section, one chunk in memory at a time
(``mastering.render``), and publishes the files under ``audio/<book>/<output_hash>/`` with the
manifest last (the publish protocol: complete or absent). Its outcome carries the ACX
checker's summary for the run report.

A book's options sit beside it in ``<book>.json`` (optional): ``{"voice": "anna", "narrator":
"Anna Reader", "master": "acx", "formats": ["mp3", "m4b", "epub"]}``, the options of ``voicebatch
book``. Without ``voice`` the narrator is the run's only voice; without the others, ``acx``,
every format and no narrator's name (``books.narration.BookOptions``' defaults).
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicebatch.errors import InputError
from voicebatch.locations.storage import Storage
from voicebatch.publish.publishing import is_published, publish_script
from voicebatch.render.mastering.narration import BookOptions, Section, book_id, check_sections, section_scripts
from voicebatch.render.mastering.render import BookRenderer, RenderedBook, book_output_hash, file_sha256, join_section
from voicebatch.run.records import PlanEntry, PublishOutcome, RecordError

if TYPE_CHECKING:
    from voicebatch.inputs.materialize import Materialized
    from voicebatch.inputs.voices import PreparedVoice
    from voicebatch.run.pipeline import RunSettings, ScriptPlan

log = logging.getLogger(__name__)

BOOK_SUFFIX = ".epub"
OPTION_KEYS = ("voice", "narrator", "master", "formats")


def book_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == BOOK_SUFFIX)


def book_options(path: Path, voices: Sequence[str]) -> tuple[str, BookOptions]:
    """(the narrating voice, the options) from ``<book>.json`` beside the book, if there is one.
    Raises ``InputError`` naming that file (or the book) and what is wrong."""
    sidecar = path.with_suffix(".json")
    given: dict = {}
    if sidecar.is_file():
        try:
            given = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise InputError(sidecar, f"not a JSON object of book options: {e}") from None
        if not isinstance(given, dict):
            raise InputError(sidecar, "not a JSON object of book options")
        if unknown := sorted(set(given) - set(OPTION_KEYS)):
            raise InputError(sidecar, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(OPTION_KEYS)}")
    voice = given.get("voice") or (voices[0] if len(voices) == 1 else "")
    if not voice:
        raise InputError(
            path, f'the run has {len(voices)} voices: name the narrator in {sidecar.name} ({{"voice": ...}})'
        )
    formats = given.get("formats", BookOptions().formats)
    if isinstance(formats, str) or not all(isinstance(f, str) for f in formats):
        raise InputError(sidecar, 'formats: a list such as ["mp3", "m4b", "epub"]')
    try:
        options = BookOptions(
            str(given.get("master", "acx")), tuple(f.lower() for f in formats), str(given.get("narrator", ""))
        )
    except InputError as e:
        raise InputError(sidecar, e.message) from None
    return str(voice), options


def plan_books(
    found: Materialized,
    listed: Sequence[str],
    voices: Mapping[str, PreparedVoice],
    model_checksum: str,
    settings: RunSettings,
    out: Storage,
    staging: str,
    *,
    force: bool = False,
) -> tuple[list[PlanEntry], list[ScriptPlan]]:
    """(plan entries, one per book; the section plans still to synthesize)."""
    from voicebatch.inputs.books import read_book
    from voicebatch.inputs.vocab import load_vocabulary
    from voicebatch.run.pipeline import plan_scripts
    from voicebatch.run.plan import plan_entry

    entries, pending = [], []
    for path in book_files(found.root):
        label = found.label(str(path))
        identifier = book_id(path)
        try:
            voice, options = book_options(path, list(listed))
            if voice not in voices:
                known = "unusable (see the voice tasks)" if voice in listed else "not among the run's voices"
                raise InputError(path, f"voice {voice} {known}")
            book = read_book(path)
            sections = section_scripts(book, identifier, voice, options.narrator, load_vocabulary())
            check_sections(sections, book)
        except InputError as e:
            error = found.relabel(e)
            log.warning("failed book %s: %s", path.name, error)
            entries.append(PlanEntry(id=identifier, kind="book", status="failed", error=str(error)))
            continue
        plans = plan_scripts([s for _, s in sections], voices, model_checksum, settings)
        key = book_output_hash([p.output_hash for p in plans], options, file_sha256(path))
        done = not force and is_published(out, identifier, key)
        if not done:
            out.put_file(f"{staging}books/{identifier}.epub", path, "application/epub+zip")
            pending += plans
        log.info(
            "%s book %s: %d sections, %d chunks",
            "skipped" if done else "planned",
            identifier,
            len(plans),
            sum(len(p.requests) for p in plans),
        )
        entries.append(
            PlanEntry(
                id=identifier,
                kind="book",
                status="skipped" if done else "pending",
                output_hash=key,
                source=label,
                voice=voice,
                options=asdict(options),
                book={**book.to_dict(), "source": label},
                sections=tuple(
                    {"section": asdict(s), "plan": plan_entry(p).to_json()}
                    for (s, _), p in zip(sections, plans, strict=True)
                ),
            )
        )
    return entries, pending


def publish_book(
    entry: PlanEntry,
    out: Storage,
    staging: str,
    settings: RunSettings,
    run: Mapping[str, object],
    voices: Mapping[str, PreparedVoice],
    model: Mapping[str, object],
    verification: dict | None,
) -> PublishOutcome:
    """Finish and publish one planned book; its outcome (as ``runs.publish_run`` records them)."""
    import soundfile as sf

    from voicebatch.inputs.books.records import book_from_dict
    from voicebatch.run.plan import script_plan
    from voicebatch.run.publish import quarantined_chunks

    identifier, key, narrator = entry.id, entry.output_hash, entry.voice
    if key is None or narrator is None or entry.source is None:
        raise RecordError(f"PlanEntry: book {identifier} is {entry.status} but has no book plan")
    plans = [script_plan(s) for s in entry.section_entries()]
    sections = [Section(**s["section"]) for s in entry.sections or ()]
    requests = [r for p in plans for r in p.requests]
    missing = [r.key for r in requests if not out.exists(f"{staging}chunks/{r.key}.json")]
    if missing:
        error = f"{len(missing)} of {len(requests)} chunks were not synthesized (a synthesize task failed)"
        return PublishOutcome(id=identifier, kind="book", status="failed", output_hash=key, error=error)
    seconds, qa = 0.0, {}
    for r in requests:
        staged = json.loads(out.get_bytes(f"{staging}chunks/{r.key}.json"))
        seconds += staged["seconds"]
        qa[r.key] = staged.get("qa")
    review = [c for p in plans for c in quarantined_chunks(p, [qa[r.key] for r in p.requests])]
    if review and not settings.verify.publish_unverified:
        error = f"held back: {len(review)} chunk(s) never passed verification (publish_unverified is off)"
        return PublishOutcome(id=identifier, kind="book", status="held", output_hash=key, error=error, qa=tuple(review))
    given = dict(entry.options or {})
    options = BookOptions(**{**given, "formats": tuple(given["formats"])})
    with tempfile.TemporaryDirectory(prefix="voicebatch-book-") as tmp:
        epub = Path(tmp) / f"{identifier}.epub"
        out.get_file(f"{staging}books/{identifier}.epub", epub)
        book = replace(book_from_dict(dict(entry.book or {})), source=str(epub))
        renderer = BookRenderer(book, identifier, options, Path(tmp), seed=settings.seed)
        rows: list[dict] = []
        for section, plan in zip(sections, plans, strict=True):
            records = [qa[r.key] for r in plan.requests]
            # One chunk at a time, as joining asks for it: a book is never all in memory.
            audio = (
                sf.read(io.BytesIO(out.get_bytes(f"{staging}chunks/{r.key}.wav")), dtype="float32")[0]
                for r in plan.requests
            )
            joined = join_section(plan, audio, records, settings, Path(tmp) / f"{section.name}.f32")
            rows += chunk_rows(plan, joined, records)
            renderer.add(section, joined)
        rendered = renderer.finish()
        manifest = book_manifest(
            identifier,
            key,
            book,
            epub,
            voices[narrator],
            dict(model),
            settings,
            options,
            rendered,
            rows,
            [qa[r.key] for r in requests],
            verification,
            seconds,
            run=dict(run),
            uri=entry.source,
        )
        latest = {"needs_review": manifest["qa"]["needs_review"]}
        published = publish_script(
            out, identifier, key, rendered.files, rendered.content_types, manifest, latest=latest
        )
    acx = rendered.acx
    return PublishOutcome(
        id=identifier,
        kind="book",
        status="skipped" if published.skipped else "published",
        output_hash=key,
        keys=tuple(published.keys),
        qa=tuple(review),
        acx={"required": acx["required"], "passed": acx["passed"], "failed": acx["failed"]},
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

    from voicebatch.publish.manifest import build_manifest
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
