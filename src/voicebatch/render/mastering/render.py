"""A book's sections (credits and chapters), synthesized, into the finished audiobook.

Shared by ``voicebatch book`` and the pipeline's publish stage. Section by section, as each
one's chunks are read (one chunk at a time): the chunks are joined into a raw file
(``longform``), each sentence of the book is placed in it (``sync``), the section is cut into
files under the profile's length limit (``plan.split_chapter``), mastered (``master``),
encoded as MP3 and checked against ACX's rules (``acx``), and the joined file is removed.
``finish`` then encodes the M4B from the mastered files (a chapter mark per section) and
writes the read-along EPUB 3 from the chapter MP3s and the sentence times. Memory stays flat in
the book's length; disk holds the mastered raw audio until the M4B is written (4 bytes a
sample: 635 MB an hour at 44.1 kHz) and the encoded files.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.keys import OUTPUT_FORMAT_VERSION, stable_hash
from voicebatch.render.join_file import JoinedAudio, assemble_to_file
from voicebatch.render.mastering.narration import BookOptions, Section, spoken_sentences
from voicebatch.render.mastering.plan import Part, split_chapter
from voicebatch.render.mastering.profiles import profile
from voicebatch.render.mastering.sync import SyncError, sentence_times

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.inputs.books.records import Book
    from voicebatch.render.mastering.readalong import AudioTrack, Clip
    from voicebatch.run.pipeline import RunSettings, ScriptPlan

log = logging.getLogger(__name__)

CONTENT_TYPES = {".mp3": "audio/mpeg", ".m4b": "audio/mp4", ".epub": "application/epub+zip"}


def book_output_hash(section_hashes: Sequence[str], options: BookOptions, book_sha256: str) -> str:
    """The book's output key: every section's output hash (voice, text, model, parameters),
    the finishing options, and the book file itself (the read-along EPUB is made from it)."""
    return stable_hash("book", OUTPUT_FORMAT_VERSION, list(section_hashes), options.hashed(), book_sha256)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def join_section(
    plan: ScriptPlan, chunk_audio: Iterable[np.ndarray], qa: Sequence[Mapping | None], settings: RunSettings, path: Path
) -> JoinedAudio:
    """A section's chunks joined into a raw file, as ``pipeline.publish_script_outputs`` joins
    a script's (the same pauses, cross-fades and aligned word times)."""
    from voicebatch.verify.qa import word_times

    return assemble_to_file(
        chunk_audio,
        [c.sentences for c in plan.chunks],
        path,
        cross_fade=settings.cross_fade,
        pauses=[c.pause_after for c in plan.chunks],
        word_times=[word_times(c.sentences, record) for c, record in zip(plan.chunks, qa, strict=True)],
    )


@dataclass(frozen=True, slots=True)
class RenderedFile:
    name: str  # chapter-001.mp3, chapter-001-part-2.mp3
    section: str  # the section's script id
    kind: str  # opening | chapter | closing
    title: str
    part: int  # from 1
    duration: float
    sentences: int
    gain_db: float
    limited_db: float
    acx: dict  # mastering.acx.AcxReport.to_dict(), the path as the file's name


@dataclass
class BookRenderer:
    """Add each section as it is synthesized (``add``), then ``finish``."""

    book: Book
    identifier: str
    options: BookOptions
    workdir: Path
    seed: int = 0
    files: list[RenderedFile] = field(default_factory=list)
    _clips: list[Clip] = field(default_factory=list)
    _tracks: list[AudioTrack] = field(default_factory=list)
    _masters: list[tuple[str, Path]] = field(default_factory=list)  # (M4B chapter title, mastered raw file)
    _rate: int = 0

    def add(self, section: Section, joined: JoinedAudio) -> list[RenderedFile]:
        from voicebatch.render.mastering.acx import check_acx
        from voicebatch.render.mastering.encode import encode_mp3_file
        from voicebatch.render.mastering.master import master_file
        from voicebatch.render.mastering.readalong import AudioTrack, Clip

        chosen = profile(self.options.master)
        sentences = spoken_sentences(self.book, section, self.options.narrator)
        pieces = [(cue.text, cue.start, cue.end) for cue in joined.timeline.sentences]
        try:
            times = sentence_times(sentences, pieces)
        except SyncError as e:
            raise SyncError(f"{self.book.source}: {section.title}: {e}") from None
        duration = joined.timeline.duration
        parts = (
            split_chapter(times, duration, chosen.max_file_seconds)
            if chosen.max_file_seconds
            else [Part(0, len(times), 0.0, duration)]
        )
        records = self.book.chapters[section.chapter].sentences if section.chapter is not None else ()
        made = []
        for number, part in enumerate(parts, start=1):
            stem = section.name if len(parts) == 1 else f"{section.name}-part-{number}"
            rate = joined.sample_rate
            end = None if number == len(parts) else round(part.end * rate)
            result = master_file(
                joined.path,
                rate,
                self.workdir / f"{stem}.master.f32",
                chosen,
                start=round(part.start * rate),
                end=end,
                seed=self.seed + len(self._masters),
            )
            self._rate = result.sample_rate
            title = section.title if len(parts) == 1 else f"{section.title} (part {number})"
            tags = {"title": title, "album": self.book.metadata.title, "artist": ", ".join(self.book.metadata.authors)}
            if self.options.narrator:
                tags["composer"] = self.options.narrator
            tags["track"] = str(len(self._masters) + 1)
            mp3 = self.workdir / f"{stem}.mp3"
            encode_mp3_file(result.path, result.sample_rate, mp3, bit_rate=chosen.mp3_bit_rate, tags=tags)
            report = check_acx(mp3).to_dict()
            report["path"] = mp3.name
            self._masters.append((title, Path(result.path)))
            if records:
                self._tracks.append(AudioTrack(mp3.name, mp3))
                for sentence, (a, b) in zip(
                    records[part.first : part.last], times[part.first : part.last], strict=True
                ):
                    # Within the file: a sentence's edge the mastering's cut moved past either end stops there.
                    begin = min(max(0.0, result.file_time(a)), result.duration - 0.001)
                    end = min(result.duration, max(begin + 0.001, result.file_time(b)))
                    self._clips.append(Clip(sentence.href, sentence.element_id, mp3.name, begin, end))
            made.append(
                RenderedFile(
                    mp3.name,
                    section.script_id,
                    section.kind,
                    title,
                    number,
                    round(result.duration, 3),
                    part.last - part.first,
                    result.gain_db,
                    result.limited_db,
                    report,
                )
            )
            log.info("%s: %.1f s, %s", mp3.name, result.duration, "ACX pass" if report["passed"] else "ACX FAIL")
        joined.path.unlink(missing_ok=True)  # mastered: the joined file is done with
        self.files += made
        return made

    def finish(self) -> RenderedBook:
        """The M4B and the read-along EPUB; every file to publish, in order."""
        from voicebatch.render.mastering.encode import BookTags, Cover, M4bChapter, encode_m4b

        meta = self.book.metadata
        out: dict[str, Path] = {}
        if "mp3" in self.options.formats:
            out.update((f.name, self.workdir / f.name) for f in self.files)
        m4b = readalong = None
        if "m4b" in self.options.formats:
            cover = None
            if meta.cover is not None and self.book.format.startswith("epub"):
                from voicebatch.inputs.books.epub import read_entry

                cover = Cover(read_entry(self.book.source, meta.cover.href), meta.cover.media_type)
            path = self.workdir / f"{self.identifier}.m4b"
            encoded = encode_m4b(
                [M4bChapter(title, raw) for title, raw in self._masters],
                self._rate,
                path,
                tags=BookTags(meta.title, meta.authors, self.options.narrator, meta.language),
                cover=cover,
            )
            m4b = {"name": path.name, "duration": round(encoded.duration, 3), "chapters": [t for t, _ in self._masters]}
            out[path.name] = path
        for _, raw in self._masters:
            raw.unlink(missing_ok=True)
        if "epub" in self.options.formats:
            from voicebatch.render.mastering.readalong import write_read_along

            path = self.workdir / f"{self.identifier}.epub"
            written = write_read_along(
                self.book, path, self._clips, self._tracks, narrator=self.options.narrator or None
            )
            readalong = {
                "name": path.name,
                "overlays": written.overlays,
                "clips": written.clips,
                "duration": written.duration,
            }
            out[path.name] = path
        chosen = profile(self.options.master)
        reports = [f.acx for f in self.files]
        record = {
            "title": meta.title,
            "authors": list(meta.authors),
            "language": meta.language,
            "identifier": meta.identifier,
            "format": self.book.format,
            "chapters": len(self.book.chapters),
            "sentences": self.book.sentence_count,
            "narrator": self.options.narrator or None,
            "formats": list(self.options.formats),
            "mastering": {"profile": chosen.name, "description": chosen.describe()},
            "files": [_file_row(f) for f in self.files],
            "m4b": m4b,
            "readalong": readalong,
        }
        acx = {
            "required": chosen.acx,
            "passed": all(r["passed"] for r in reports),
            "failed": [r["path"] for r in reports if not r["passed"]],
            "files": reports,
        }
        duration = sum(f.duration for f in self.files)
        return RenderedBook(out, {n: CONTENT_TYPES[Path(n).suffix] for n in out}, record, acx, round(duration, 3))


def _file_row(f: RenderedFile) -> dict:
    return {
        "name": f.name,
        "section": f.section,
        "kind": f.kind,
        "title": f.title,
        "part": f.part,
        "duration": f.duration,
        "sentences": f.sentences,
        "gain_db": f.gain_db,
        "limited_db": f.limited_db,
        "acx_passed": f.acx["passed"],
    }


@dataclass(frozen=True, slots=True)
class RenderedBook:
    files: dict[str, Path]  # name -> path, in the order to publish
    content_types: dict[str, str]
    record: dict  # the manifest's ``book`` section
    acx: dict  # the manifest's ``acx`` section: every file's checker report
    duration: float  # seconds of audio over all the files
