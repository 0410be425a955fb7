"""Documents as scripts: Word (.docx), web pages (.html, .htm) and SSML (.ssml).

Each document becomes script text in the project's own markup (``voicebatch.text.markup``):
paragraphs separated by a blank line, headings as paragraphs of their own, ``[pause 0.5s]``,
``[speed 0.9]`` and ``[voice]`` tags where SSML asks for them. Chunking, pauses and the spoken
form then treat a document exactly as a ``.txt`` script. ``read_document`` returns the text,
the voice and speed the document names (if any) and warnings (what it could not honour), or
raises ``ScriptError`` (one line: the file, the paragraph or line, what is wrong).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from voicebatch.errors import ScriptError

DOCUMENT_SUFFIXES = (".docx", ".html", ".htm", ".ssml")
# A document larger than this is refused before it is opened (a mis-saved video, a zip bomb):
# a 90-hour book is about 5 MB of text, its Word file rarely 50 MB.
MAX_DOCUMENT_BYTES = 100_000_000

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Document:
    text: str  # script text with markup; paragraphs separated by one blank line, none empty
    voice: str | None = None  # the voice the document names for its text (HTML <meta name="voice">)
    speed: object = 1.0  # as written (validated with the script), like front matter's speed:
    warnings: tuple[str, ...] = ()


def read_document(path: str | Path) -> Document:
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ScriptError(path, f"cannot read the file: {e.strerror or e}") from None
    if size > MAX_DOCUMENT_BYTES:
        raise ScriptError(path, f"{size:,} bytes, over the limit of {MAX_DOCUMENT_BYTES:,} for a document")
    suffix = path.suffix.lower()
    if suffix == ".docx":
        from voicebatch.inputs.documents.docx import read_docx

        document = read_docx(path)
    elif suffix in (".html", ".htm"):
        from voicebatch.inputs.documents.webpage import read_html

        document = read_html(path)
    elif suffix == ".ssml":
        from voicebatch.inputs.documents.ssml import read_ssml

        document = read_ssml(path)
    else:
        raise ScriptError(path, f"not a document type ({', '.join(DOCUMENT_SUFFIXES)})")
    for warning in document.warnings:  # each once per document, where logs are read
        log.warning("%s: %s", path, warning)
    return document


def paragraph_text(paragraphs: Sequence[str], *, headings: Collection[int] = ()) -> str:
    """Paragraphs (whitespace collapsed, empty ones dropped) joined by blank lines; a heading
    (its index in ``headings``) ends with a full stop so it is a sentence of its own, as a
    Markdown heading is."""
    out = []
    for index, paragraph in enumerate(paragraphs):
        text = " ".join(paragraph.split())
        if not text:
            continue
        if index in headings and text[-1] not in ".!?:;…":
            text += "."
        out.append(text)
    return "\n\n".join(out)
