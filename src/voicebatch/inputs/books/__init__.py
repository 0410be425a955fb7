"""Books in: EPUB 2 and 3 (``epub``) and Markdown or text (``markdown``) read into one record
(``records.Book``): metadata and chapters, each chapter's sentences tied to element ids of its
XHTML (``xhtml``), from a zip opened without trusting it (``archive``); a book as sections to
speak (``narration``) and ``voicebatch book`` (``produce``)."""

from __future__ import annotations

from pathlib import Path

from voicebatch.inputs.books.records import Book

BOOK_SUFFIXES = (".epub", ".md", ".markdown", ".txt")


def read_book(path: str | Path, *, include_untitled: bool = False) -> Book:
    """An EPUB, Markdown or text book by its suffix (raises ``archive.BookError``)."""
    path = Path(path)
    if path.suffix.lower() == ".epub":
        from voicebatch.inputs.books.epub import read_epub

        return read_epub(path, include_untitled=include_untitled)
    from voicebatch.inputs.books.markdown import read_markdown

    return read_markdown(path, include_untitled=include_untitled)
