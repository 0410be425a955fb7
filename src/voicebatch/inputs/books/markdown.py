"""Markdown and plain-text books: ``#`` headings are chapters.

The shallowest heading level the file uses (``#``, else ``##``, ...) starts a chapter and
titles it; deeper headings are sentences of their chapter. Text before the first chapter
heading (a title block, a dedication) is front matter, left out unless ``include_untitled``;
a file without headings is one chapter titled after the file. Paragraphs are separated by
blank lines; inline Markdown (emphasis, links, images: their alt text is dropped) is read as
the scripts read it. Sentences get ids (``c1-s3``: chapter 1, sentence 3) for the XHTML that
the read-along book generates from them (``Chapter.href`` names that document).
"""

from __future__ import annotations

import re
from pathlib import Path

from voicebatch.inputs.books.archive import BookError
from voicebatch.inputs.books.records import Book, BookMetadata, Chapter, Sentence
from voicebatch.inputs.chunking import split_sentences

BOOK_TEXT_SUFFIXES = (".md", ".markdown", ".txt")
MAX_BOOK_CHARS = 20_000_000  # about 400 hours of speech
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKS = re.compile(r"(\*\*|__|\*|`|~~)")
_LIST = re.compile(r"^(?:>\s*|[-*+]\s+|\d+[.)]\s+)")


def chapter_href(index: int) -> str:
    return f"text/chapter-{index + 1:03d}.xhtml"


def read_markdown(path: str | Path, *, include_untitled: bool = False, title: str | None = None) -> Book:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BookError(path, f"cannot read the file: {e.strerror or e}") from None
    if len(data) > MAX_BOOK_CHARS * 4:
        raise BookError(path, f"{len(data):,} bytes, over the limit for a book")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise BookError(path, f"not UTF-8 text (byte {e.start})") from None
    text, meta_title = _front_matter(text.replace("\r\n", "\n").replace("\r", "\n"))
    sections = _sections(text)
    front, chapters_text = sections[0], sections[1:]
    if not chapters_text:
        chapters_text = [(path.stem.replace("_", " ").replace("-", " "), front[1], front[2])]
        front = ("", [], 1)
    elif include_untitled and any(p.strip() for p in front[1]):
        chapters_text = [("Front matter", front[1], front[2]), *chapters_text]
    chapters = []
    for heading, lines, _line in chapters_text:
        sentences = _sentences(lines, len(chapters))
        if sentences:
            index = len(chapters)
            chapters.append(Chapter(index, heading, chapter_href(index), tuple(_relabel(sentences, index))))
    if not chapters:
        raise BookError(path, "no text to speak")
    book_title = title or meta_title or path.stem
    left_out = () if include_untitled or not any(p.strip() for p in front[1]) else ("front matter",)
    return Book(
        str(path),
        "markdown" if path.suffix.lower() != ".txt" else "text",
        BookMetadata(title=book_title),
        tuple(chapters),
        left_out,
    )


def _front_matter(text: str) -> tuple[str, str]:
    """The text without a YAML front matter block (``---`` ... ``---``), and its ``title:``."""
    if not text.startswith("---\n"):
        return text, ""
    end = text.find("\n---", 4)
    if end < 0:
        return text, ""
    block = text[4:end]
    title = next((m.group(1).strip().strip("\"'") for m in re.finditer(r"(?m)^title:\s*(.+)$", block)), "")
    rest = text[end + 4 :]
    return "\n" * (block.count("\n") + 2) + rest.split("\n", 1)[-1] if "\n" in rest else "", title


def _sections(text: str) -> list[tuple[str, list[str], int]]:
    """(heading, lines, first line number); the first is what precedes the first chapter."""
    lines = text.split("\n")
    levels = [len(m.group(1)) for line in _outside_fences(lines) if (m := _HEADING.match(line))]
    top = min(levels) if levels else 0
    out: list[tuple[str, list[str], int]] = [("", [], 1)]
    fenced = False
    for number, line in enumerate(lines, start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match and len(match.group(1)) == top:
            out.append((_inline(match.group(2)), [line], number))  # the title is spoken too
        elif not fenced:
            out[-1][1].append(line)
    return out


def _outside_fences(lines: list[str]) -> list[str]:
    out, fenced = [], False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append(line)
    return out


def _inline(text: str) -> str:
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    return " ".join(_MARKS.sub("", text).split())


def _sentences(lines: list[str], chapter: int) -> list[Sentence]:
    paragraphs: list[tuple[str, bool]] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            paragraphs.append((" ".join(current), False))
            current.clear()

    for line in lines:
        stripped = line.strip()
        heading = _HEADING.match(stripped)
        if not stripped or re.fullmatch(r"(-{3,}|\*{3,}|_{3,})", stripped):  # a blank line or a rule
            flush()
        elif heading:
            flush()
            paragraphs.append((_inline(heading.group(2)), True))
        else:
            current.append(_inline(_LIST.sub("", stripped)))
    flush()
    out = []
    for number, (paragraph, is_heading) in enumerate(p for p in paragraphs if p[0]):
        pieces = [paragraph] if is_heading else split_sentences(paragraph)
        out += [Sentence("", piece, number, chapter_href(chapter), is_heading) for piece in pieces]
    return out


def _relabel(sentences: list[Sentence], chapter: int) -> list[Sentence]:
    """Ids and hrefs for the chapter's final position (chapters without text are dropped)."""
    href = chapter_href(chapter)
    return [Sentence(f"c{chapter + 1}-s{n + 1}", s.text, s.paragraph, href, s.heading) for n, s in enumerate(sentences)]
