"""Word documents (.docx) as scripts.

What is spoken: the body's paragraphs in order (also inside tables, content controls and
hyperlinks), headings (styles Heading 1-9, Title, Subtitle, or an outline level) as paragraphs
of their own ending with a full stop, and field results (a date field says the date, not its
code). Tracked insertions are kept and tracked deletions dropped: the document as it reads with
the changes accepted. Comments (their text lives in comments.xml, never read), footnote and
endnote marks, hidden text (``w:vanish``), drawings and text boxes are not spoken; bold,
italic and other formatting only change how text looks, so they are dropped. Line and page
breaks and tabs are spaces. A document may use voicebatch's markup like a ``.txt`` script
(``[pause 2s]``, ``[narrator]``): writers type it in Word.

python-docx opens the package (content types and relationships find the main part, whatever
its name) and resolves paragraph styles to their names (a German Word writes the style id
``berschrift1`` for "heading 1"). Its ``Paragraph.text`` is not used: it skips runs inside
``w:ins`` (tracked insertions) and knows nothing of hidden text or fields, so the text is read
from the paragraph's XML here. python-docx parses the parts with entities off.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import ScriptError
from voicebatch.inputs.documents import Document, paragraph_text

if TYPE_CHECKING:
    from lxml import etree

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# Elements whose content is never spoken: deletions (and moved-away text), field codes,
# properties, note and comment marks, drawings and text boxes, ruby readings.
_SKIP = {
    f"{W}{name}"
    for name in (
        "del",
        "moveFrom",
        "delText",
        "instrText",
        "delInstrText",
        "rPr",
        "pPr",
        "footnoteReference",
        "endnoteReference",
        "commentReference",
        "annotationRef",
        "drawing",
        "pict",
        "object",
        "rt",
    )
}
_ALTERNATE = "{http://schemas.openxmlformats.org/markup-compatibility/2006}AlternateContent"
_HEADING = re.compile(r"^(heading \d|title|subtitle)$", re.IGNORECASE)
# The uncompressed parts together: a few hundred MB is far beyond any script (a zip bomb is not).
MAX_UNPACKED_BYTES = 500_000_000


def read_docx(path: Path) -> Document:
    _check_package(path)
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise ScriptError(path, f"not a readable Word document (.docx): {type(e).__name__}") from None
    except Exception as e:  # lxml's XMLSyntaxError and kin: a damaged part
        raise ScriptError(path, f"a damaged Word document (.docx): {type(e).__name__}") from None
    paragraphs: list[str] = []
    headings: set[int] = set()
    for p in _paragraphs(document.element.body):
        if _is_heading(p, document):
            headings.add(len(paragraphs))
        paragraphs.append(_text(p))
    text = paragraph_text(paragraphs, headings=headings)
    if not text:
        raise ScriptError(path, "the document has no text")
    return Document(text)


def _check_package(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as package:
            unpacked = sum(info.file_size for info in package.infolist())
    except (zipfile.BadZipFile, OSError):
        raise ScriptError(path, "not a Word document (.docx is a zip package; is it an old .doc renamed?)") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise ScriptError(path, f"unpacks to {unpacked:,} bytes, over the limit of {MAX_UNPACKED_BYTES:,}")


def _paragraphs(container: etree._Element) -> Iterator[etree._Element]:
    """The ``w:p`` of a body, table cell or content control, in reading order."""
    for child in container:
        if child.tag == f"{W}p":
            yield child
        elif child.tag in (f"{W}tbl", f"{W}tr", f"{W}tc", f"{W}sdt", f"{W}sdtContent", f"{W}customXml"):
            yield from _paragraphs(child)


def _is_heading(p: etree._Element, document: object) -> bool:
    from docx.text.paragraph import Paragraph

    if p.find(f"{W}pPr/{W}outlineLvl") is not None:
        return True
    style = Paragraph(p, document).style  # type: ignore[arg-type]
    while style is not None:
        if _HEADING.match(style.name or "") or style.element.find(f"{W}pPr/{W}outlineLvl") is not None:
            return True
        style = style.base_style
    return False


def _text(element: etree._Element) -> str:
    out: list[str] = []
    _collect(element, out)
    return "".join(out)


def _collect(element: etree._Element, out: list[str]) -> None:
    for child in element:
        tag = child.tag
        if tag in _SKIP or tag == _ALTERNATE or not isinstance(tag, str):
            continue
        if tag == f"{W}r" and _hidden(child):
            continue
        if tag == f"{W}t":
            out.append(child.text or "")
        elif tag in (f"{W}tab", f"{W}br", f"{W}cr", f"{W}ptab"):
            out.append(" ")
        elif tag == f"{W}noBreakHyphen":
            out.append("-")
        else:
            _collect(child, out)


def _hidden(run: etree._Element) -> bool:
    vanish = run.find(f"{W}rPr/{W}vanish")
    return vanish is not None and vanish.get(f"{W}val", "true").lower() not in ("0", "false", "off")
