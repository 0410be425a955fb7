"""A book as what is spoken: one script per section (the opening credits, each chapter, the
closing credits), and the options that shape the finished audiobook.

A chapter's script is its sentences as the reader found them, a paragraph a blank line apart,
so the chunker (``scripts.chunk_script``, the splitter the reader used too) finds the same
sentences and ``mastering.sync`` can place each one in the audio. Text that reads as markup
(``[pause]``, ``[speed 2]``, ``<break/>``) is a book's words, not an instruction: square brackets
and the ``<`` of a break become parentheses before chunking (the same number of characters either way).

Sections are scripts with ids ``<book>.opening``, ``<book>.c001`` ... and ``<book>.closing``,
so their chunks are planned, batched, synthesized and staged exactly as scripts' are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import InputError
from voicebatch.inputs.scripts import Script, ScriptPart, normalise_text
from voicebatch.locations.names import key_name_problem
from voicebatch.render.mastering.plan import credits
from voicebatch.render.mastering.profiles import PROFILE_NAMES

if TYPE_CHECKING:
    from voicebatch.inputs.books.records import Book
    from voicebatch.inputs.vocab import Vocabulary

FORMATS = ("mp3", "m4b", "epub")
_BREAK = re.compile(r"<(?=\s*break\b)", re.IGNORECASE)
_BRACKETS = str.maketrans("[]", "()")


@dataclass(frozen=True, slots=True)
class BookOptions:
    """What the finished audiobook is: the mastering profile, the files, the narrator's name."""

    master: str = "acx"
    formats: tuple[str, ...] = FORMATS
    narrator: str = ""

    def __post_init__(self) -> None:
        if self.master not in PROFILE_NAMES:
            raise InputError("--master", f"unknown profile {self.master!r}: use one of {', '.join(PROFILE_NAMES)}")
        if unknown := sorted(set(self.formats) - set(FORMATS)):
            raise InputError("--formats", f"unknown format(s) {', '.join(unknown)}: use {', '.join(FORMATS)}")
        if not self.formats:
            raise InputError("--formats", f"no format: use one or more of {', '.join(FORMATS)}")

    def hashed(self) -> dict:
        return asdict(self)


def parse_formats(text: str) -> tuple[str, ...]:
    """``mp3,m4b,epub`` -> a tuple in the canonical order (the output hash does not see the order)."""
    given = {f.strip().lower() for f in text.split(",") if f.strip()}
    if unknown := sorted(given - set(FORMATS)):
        raise InputError("--formats", f"unknown format(s) {', '.join(unknown)}: use {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in given)


@dataclass(frozen=True, slots=True)
class Section:
    """One spoken part of the book, its own script and its own file(s)."""

    script_id: str
    kind: str  # "opening" | "chapter" | "closing"
    title: str
    name: str  # the file stem: opening-credits, chapter-001, closing-credits
    chapter: int | None = None  # Chapter.index for a chapter


def book_id(path: str | Path) -> str:
    """The book's name as a storage key segment, from its file name."""
    stem = Path(path).stem
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "book"
    if not name[0].isalnum():
        name = "b" + name
    name = name[:100].replace("..", ".")
    if problem := key_name_problem(name):  # cannot happen after the cleaning above; said plainly if it does
        raise InputError(path, f"book name {name!r} {problem}")
    return name


def sections(book: Book, identifier: str) -> list[Section]:
    """Opening credits, the chapters in reading order, closing credits."""
    out = [Section(f"{identifier}.opening", "opening", "Opening Credits", "opening-credits")]
    for chapter in book.chapters:
        number = chapter.index + 1
        out.append(
            Section(f"{identifier}.c{number:03d}", "chapter", chapter.title, f"chapter-{number:03d}", chapter.index)
        )
    out.append(Section(f"{identifier}.closing", "closing", "Closing Credits", "closing-credits"))
    return out


def speakable(text: str) -> str:
    """A sentence of the book as the chunker is given it: markup-like brackets neutralised,
    quotes straightened and spaces collapsed (``scripts.normalise_text``)."""
    return normalise_text(_BREAK.sub("(", text.translate(_BRACKETS)))


def section_sentences(book: Book, section: Section, narrator: str) -> list[list[str]]:
    """The section's sentences, by paragraph, as spoken (``speakable``)."""
    if section.kind == "chapter":
        chapter = book.chapters[section.chapter]  # type: ignore[index]
        return [[speakable(s.text) for s in paragraph] for paragraph in chapter.paragraphs()]
    said = credits(book.metadata, narrator or None)
    return [[speakable(said.opening if section.kind == "opening" else said.closing)]]


def section_scripts(
    book: Book, identifier: str, voice: str, narrator: str, vocab: Vocabulary | None = None
) -> list[tuple[Section, Script]]:
    """Every section of the book as a script in ``voice``. Raises ``InputError`` naming the
    book, the chapter and the characters when the model cannot speak a sentence."""
    from voicebatch.text.markup import strip_markup
    from voicebatch.text.normalize import normalize

    out = []
    for section in sections(book, identifier):
        paragraphs = section_sentences(book, section, narrator)
        if vocab is not None:
            for paragraph in paragraphs:
                for sentence in paragraph:
                    if missing := vocab.unsupported_characters(normalize(strip_markup(sentence))):
                        where = (
                            f"chapter {section.chapter + 1} ({section.title})" if section.chapter is not None else ""
                        )
                        raise InputError(
                            book.source,
                            f"{where or section.title}: characters the model cannot speak: {' '.join(missing)}",
                        )
        text = "\n\n".join(" ".join(p) for p in paragraphs if p)
        if not text.strip():
            continue  # a chapter with no words (an image page): nothing to say, no file
        source = f"{book.source} {section.title}"
        out.append((section, Script(section.script_id, source, (ScriptPart(voice, text),))))
    return out


def spoken_sentences(book: Book, section: Section, narrator: str) -> list[str]:
    """The section's sentences in order, as spoken (what ``mastering.sync`` places)."""
    return [s for paragraph in section_sentences(book, section, narrator) for s in paragraph]


def check_sections(found: Sequence[tuple[Section, Script]], book: Book) -> None:
    if not any(s.kind == "chapter" for s, _ in found):
        raise InputError(book.source, "no chapter with text to speak")
