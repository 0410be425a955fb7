"""A book as records: its metadata and its chapters, each chapter's sentences in reading order.

Records only (frozen dataclasses, plain values): a book crosses processes in the pipeline
(chapters are mapped like scripts), so it round-trips through JSON (``to_dict`` /
``book_from_dict``) and holds no parsed trees and no file contents. The bytes stay in the
source file and are read again where they are needed (``books.epub.read_entry``,
``books.xhtml.mark_sentences``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence as written, tied to the element of its content document that holds it."""

    element_id: str  # an id in its content document: one the document had, or one the marking adds
    text: str  # as written, whitespace collapsed (a heading ends as it is written)
    paragraph: int  # index of its paragraph within the chapter, from 0 (for paragraph pauses)
    href: str  # its content document (a chapter may go on in the next spine document)
    heading: bool = False  # a heading (h1-h6): a sentence of its own


@dataclass(frozen=True, slots=True)
class Chapter:
    index: int  # position in the book, from 0
    title: str  # from the nav document (EPUB 3), the NCX (EPUB 2) or the heading (Markdown)
    href: str  # the content document it starts in, relative to the package's root (the zip)
    sentences: tuple[Sentence, ...]
    anchor: str | None = None  # where it starts when a document holds several chapters
    notes: tuple[str, ...] = ()  # what was left out and where (footnotes, images, tables)

    @property
    def text(self) -> str:
        return "\n\n".join(" ".join(s.text for s in p) for p in self.paragraphs())

    def paragraphs(self) -> list[tuple[Sentence, ...]]:
        out: list[list[Sentence]] = []
        for sentence in self.sentences:
            if not out or out[-1][-1].paragraph != sentence.paragraph:
                out.append([])
            out[-1].append(sentence)
        return [tuple(p) for p in out]


@dataclass(frozen=True, slots=True)
class Cover:
    href: str  # the image's entry in the package
    media_type: str


@dataclass(frozen=True, slots=True)
class BookMetadata:
    title: str
    authors: tuple[str, ...] = ()
    language: str = "en"
    identifier: str = ""
    cover: Cover | None = None


@dataclass(frozen=True, slots=True)
class Book:
    source: str  # the file it was read from
    format: str  # "epub2", "epub3", "markdown" or "text"
    metadata: BookMetadata
    chapters: tuple[Chapter, ...]
    left_out: tuple[str, ...] = ()  # documents not in the chapters (front and back matter), by href
    notes: tuple[str, ...] = field(default=(), compare=False)  # every note of every chapter, and the book's own

    @property
    def sentence_count(self) -> int:
        return sum(len(c.sentences) for c in self.chapters)

    def to_dict(self) -> dict:
        return asdict(self)


def book_from_dict(data: Mapping) -> Book:
    """The inverse of ``Book.to_dict`` (JSON gives lists back: records keep tuples)."""
    meta = dict(data["metadata"])
    cover = meta.pop("cover", None)
    metadata = BookMetadata(
        **{**meta, "authors": tuple(meta.get("authors", ()))}, cover=Cover(**cover) if cover else None
    )
    chapters = tuple(
        Chapter(
            **{
                **c,
                "sentences": tuple(Sentence(**s) for s in c["sentences"]),
                "notes": tuple(c.get("notes", ())),
            }
        )
        for c in data["chapters"]
    )
    return Book(
        data["source"],
        data["format"],
        metadata,
        chapters,
        tuple(data.get("left_out", ())),
        tuple(data.get("notes", ())),
    )
