"""A content document's sentences, each wrapped in an element with an id.

One function does both jobs, so what the reader reports and what the read-along book holds
can never disagree: ``mark_sentences`` walks the document's body in reading order, splits
each paragraph's text into sentences (``chunking.sentence_spans``, the rule the scripts use)
and wraps every sentence in ``<span id="...">``, splitting inline elements (``<em>``, ``<a>``,
...) where a sentence ends inside one, so the XHTML stays well-formed and looks the same. A
paragraph that is one sentence and already has an id keeps it and gets no span. The ids it
adds are the same every time for the same document.

Not spoken, each with a note naming the element and its line (never its text): images, SVG,
formulas, tables, embedded media, footnotes (``epub:type``/``role`` note, endnote and
footnote sections, and whatever a note reference points at) and footnote marks. Not spoken
and not noted: scripts, styles, ruby readings, page-break marks, hidden elements.

Parsing: lxml through the project's safe parser (``voicebatch.inputs.safexml``: no entities, no
DTD, no network). A content document may begin with ``<!DOCTYPE html>`` or XHTML 1.1's public
DOCTYPE (EPUB 2): a DOCTYPE without an internal subset declares nothing and is removed
before parsing; one with an internal subset is refused. HTML's named character references
(``&nbsp;``), which XHTML 1.1's DTD would define, are replaced by their characters.
"""

from __future__ import annotations

import html.entities
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voicebatch.inputs.books.records import Sentence
from voicebatch.inputs.chunking import sentence_spans
from voicebatch.inputs.safexml import line_of, local_name, parse_xml

if TYPE_CHECKING:
    from lxml import etree

XHTML = "http://www.w3.org/1999/xhtml"
OPS = "http://www.idpf.org/2007/ops"
EPUB_TYPE = f"{{{OPS}}}type"
_PLAIN_DOCTYPE = re.compile(r"<!DOCTYPE\s+[A-Za-z_][\w.:-]*\b[^\[>]*>", re.IGNORECASE)
_NAMED = re.compile(r"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_NAMED = {"amp", "lt", "gt", "quot", "apos"}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
BLOCKS = HEADINGS | {
    "p", "div", "section", "article", "main", "header", "footer", "li", "ul", "ol", "dl", "dt", "dd",
    "blockquote", "pre", "figcaption", "address", "details", "summary", "body", "hgroup", "hr", "center",
}  # fmt: skip
SILENT = {"script", "style", "head", "title", "rt", "rp", "template", "noscript", "button", "input", "select"}
NOTED = {
    "img": "an image",
    "svg": "an image",
    "picture": "an image",
    "figure": "a figure",
    "math": "a formula",
    "table": "a table",
    "video": "a video",
    "audio": "an audio clip",
    "object": "an embedded object",
    "embed": "an embedded object",
    "iframe": "an embedded document",
    "canvas": "a drawing",
    "nav": "a navigation list",
}
_NOTE_TYPES = {"footnote", "endnote", "rearnote", "note", "footnotes", "endnotes", "rearnotes"}
_NOTE_ROLES = {"doc-footnote", "doc-endnote", "doc-endnotes"}
SENTENCE_ID = "vbs"


def parse_xhtml(text: str) -> etree._Element:
    """The root of a content document, or of a package's other XML (OPF, NCX, container), whose
    DOCTYPE (EPUB 2's NCX has one) is treated the same way. Raises ``XMLProblem``, whose message
    names no content."""
    doctype = _PLAIN_DOCTYPE.search(text, 0, 4096)
    if doctype:  # declares nothing without an internal subset; lines kept for error positions
        text = text[: doctype.start()] + "\n" * doctype.group().count("\n") + text[doctype.end() :]
    return parse_xml(_NAMED.sub(_character, text))


def _character(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _XML_NAMED:
        return match.group()
    return html.entities.html5.get(name + ";", match.group())


@dataclass(slots=True)
class MarkedDocument:
    """What ``mark_sentences`` found: the sentences of each part of the document (a part starts
    at each anchor; part 0 is what comes before the first anchor, or the whole document)."""

    parts: list[list[Sentence]]
    notes: list[str] = field(default_factory=list)
    added: int = 0  # spans added


def mark_sentences(root: etree._Element, href: str, anchors: tuple[str, ...] = ()) -> MarkedDocument:
    """Wrap every sentence of the document's body in place; see the module's docstring."""
    body = next((e for e in root.iter() if isinstance(e.tag, str) and local_name(e) == "body"), None)
    marker = _Marker(href, root, anchors)
    if body is not None:
        marker.note_skipped(body)
        marker.container(body)
    return marker.result


class _Marker:
    def __init__(self, href: str, root: etree._Element, anchors: tuple[str, ...]) -> None:
        self.href = href
        self.anchors = {a: i + 1 for i, a in enumerate(anchors)}
        self.result = MarkedDocument([[] for _ in range(len(anchors) + 1)])
        self.part = 0
        self.paragraphs = [0] * (len(anchors) + 1)
        self.ids = {v for e in root.iter() if isinstance(e.tag, str) for v in [e.get("id")] if v}
        self.next_id = 1
        self.notes_at = _footnote_targets(root)

    # -- walking ----------------------------------------------------------------------------

    def container(self, element: etree._Element) -> None:
        """An element holding blocks: its inline runs are paragraphs, its blocks are visited."""
        self._anchor(element)
        children = list(element)
        run: list[etree._Element] = []
        lead_owner, lead_is_text = element, True
        for child in children:
            if self._opaque(child) or not self._has_blocks(child):
                run.append(child)
                continue
            self.paragraph(element, lead_owner, lead_is_text, run)
            run = []
            if local_name(child) in BLOCKS and not any(self._has_blocks(c) for c in child):
                self._anchor(child)
                self.paragraph(child, child, True, list(child), heading=local_name(child) in HEADINGS, block=child)
            else:
                self.container(child)
            lead_owner, lead_is_text = child, False
        self.paragraph(element, lead_owner, lead_is_text, run)

    def _anchor(self, element: etree._Element) -> None:
        part = self.anchors.get(element.get("id") or "")
        if part is not None and part > self.part:
            self.part = part

    def _has_blocks(self, element: etree._Element) -> bool:
        if not isinstance(element.tag, str) or self._opaque(element):
            return False
        return local_name(element) in BLOCKS or any(self._has_blocks(c) for c in element)

    def _opaque(self, element: etree._Element) -> bool:
        """Not spoken (a pure test: elements split in two are asked again)."""
        return not isinstance(element.tag, str) or self._skip_reason(element) is not None

    def note_skipped(self, element: etree._Element) -> None:
        """A note for each outermost element not spoken (before anything is split)."""
        for child in element:
            if not isinstance(child.tag, str):
                continue
            what = self._skip_reason(child)
            if what is None:
                self.note_skipped(child)
            elif what:
                self.result.notes.append(f"{self.href}: skipped {what} ({local_name(child)} at {line_of(child)})")

    def _skip_reason(self, element: etree._Element) -> str | None:
        """'' for silently skipped, a description for noted, None for spoken."""
        name = local_name(element)
        types = set((element.get(EPUB_TYPE) or "").split())
        role = element.get("role") or ""
        if name in SILENT or element.get("hidden") is not None or "pagebreak" in types or role == "doc-pagebreak":
            return ""
        if types & _NOTE_TYPES or role in _NOTE_ROLES or (element.get("id") or "") in self.notes_at:
            return "a footnote"
        if "noteref" in types or role == "doc-noteref" or _is_note_mark(element):
            return "a footnote mark"
        return NOTED.get(name)

    # -- one paragraph ---------------------------------------------------------------------

    def paragraph(
        self,
        parent: etree._Element,
        lead_owner: etree._Element,
        lead_is_text: bool,
        run: list[etree._Element],
        *,
        heading: bool = False,
        block: etree._Element | None = None,
    ) -> None:
        for child in run:
            for element in child.iter():
                if isinstance(element.tag, str):
                    self._anchor(element)  # a chapter may start at an inline anchor
        lead = (lead_owner.text if lead_is_text else lead_owner.tail) or ""
        position = parent.index(run[0]) if run else (0 if lead_is_text else parent.index(lead_owner) + 1)
        items: list[str | etree._Element] = [lead]
        for child in run:
            tail, child.tail = child.tail or "", None
            parent.remove(child)  # taken out while the paragraph is rebuilt; _put_back inserts the result
            items += [child, tail]
        text = "".join(self._text(i) for i in items)
        spans = sentence_spans(text)
        if not spans:
            _put_back(parent, lead_owner, lead_is_text, position, items)
            return
        sentences = self._sentences(text, spans, heading, block)
        if block is not None and len(spans) == 1 and block.get("id") and not _cut(text, spans):
            _put_back(parent, lead_owner, lead_is_text, position, items)  # the block is the sentence
            return
        pieces = self._split(items, sorted({p for span in spans for p in span if 0 < p < len(text)}))
        new: list[str | etree._Element] = []
        position = 0
        current: tuple[int, etree._Element] | None = None
        for piece in pieces:
            length = sum(len(self._text(i)) for i in piece)
            index = _inside(spans, position, position + length)
            if index is None:
                current = None
                new += piece
            else:
                if current is None or current[0] != index:
                    span = _element(parent, "span", {"id": sentences[index].element_id})
                    current = (index, span)
                    new.append(span)
                _append(current[1], piece)
            position += length
        _put_back(parent, lead_owner, lead_is_text, position, new)

    def _sentences(
        self, text: str, spans: list[tuple[int, int]], heading: bool, block: etree._Element | None
    ) -> list[Sentence]:
        own = block is not None and len(spans) == 1 and block.get("id") and not _cut(text, spans)
        part, number = self.part, self.paragraphs[self.part]
        out = []
        for a, b in spans:
            element_id = block.get("id") if own and block is not None else self._new_id()
            out.append(Sentence(str(element_id), " ".join(text[a:b].split()), number, self.href, heading))
        self.paragraphs[part] += 1
        self.result.parts[part].extend(out)
        return out

    def _new_id(self) -> str:
        while f"{SENTENCE_ID}{self.next_id}" in self.ids:
            self.next_id += 1
        self.ids.add(value := f"{SENTENCE_ID}{self.next_id}")
        self.result.added += 1
        return value

    def _text(self, item: str | etree._Element) -> str:
        """The spoken text of an item (what sentence offsets count)."""
        if isinstance(item, str):
            return item
        if self._opaque(item):
            return ""
        if local_name(item) == "br":
            return " "
        out = [item.text or ""]
        for child in item:
            out += [self._text(child), child.tail or ""]
        return "".join(out)

    def _split(self, items: list[str | etree._Element], cuts: list[int]) -> list[list[str | etree._Element]]:
        """``items`` cut at the text offsets ``cuts`` (elements split into shallow copies)."""
        pieces: list[list[str | etree._Element]] = [[]]
        position, k = 0, 0
        for item in items:
            text = self._text(item)
            end = position + len(text)
            inner = [c - position for c in cuts[k:] if position < c < end]
            if not inner:
                pieces[-1].append(item)
            elif isinstance(item, str):
                bounds = [0, *inner, len(text)]
                for j in range(len(bounds) - 1):
                    if j:
                        pieces.append([])
                    pieces[-1].append(text[bounds[j] : bounds[j + 1]])
            else:
                for j, clone in enumerate(self._split_element(item, inner)):
                    if j:
                        pieces.append([])
                    pieces[-1].append(clone)
            while k < len(cuts) and cuts[k] <= end:
                if cuts[k] == end:
                    pieces.append([])  # a sentence starts or ends right after this item
                k += 1
            position = end
        return [p for p in pieces if p]

    def _split_element(self, element: etree._Element, cuts: list[int]) -> list[etree._Element]:
        items: list[str | etree._Element] = [element.text or ""]
        for child in list(element):
            tail, child.tail = child.tail or "", None
            element.remove(child)
            items += [child, tail]
        out = []
        for j, piece in enumerate(self._split(items, cuts)):
            attributes = {k: v for k, v in element.attrib.items() if j == 0 or k != "id"}
            clone = _element(element, local_name(element), attributes, tag=element.tag)
            _append(clone, piece)
            out.append(clone)
        return out


def _footnote_targets(root: etree._Element) -> set[str]:
    """Ids that a note reference in this document points at (the notes themselves)."""
    targets = set()
    for a in root.iter(f"{{{XHTML}}}a"):
        href = a.get("href") or ""
        types = set((a.get(EPUB_TYPE) or "").split())
        parent = a.getparent()
        mark = _is_note_mark(a) or (parent is not None and _is_note_mark(parent))
        if "#" in href and ("noteref" in types or a.get("role") == "doc-noteref" or mark):
            targets.add(href.split("#", 1)[1])
    return targets


def _is_note_mark(element: etree._Element) -> bool:
    """``<sup><a href="#n1">1</a></sup>`` or ``<a href="#n1"><sup>1</sup></a>``: a footnote mark."""
    name = local_name(element)
    if name == "sup":
        links = [c for c in element if local_name(c) == "a" and "#" in (c.get("href") or "")]
        return bool(links) and len(list(element)) == 1 and not (element.text or "").strip()
    if name == "a" and "#" in (element.get("href") or ""):
        children = list(element)
        return len(children) == 1 and local_name(children[0]) == "sup" and not (element.text or "").strip()
    return False


def _cut(text: str, spans: list[tuple[int, int]]) -> bool:
    """Whether the one sentence leaves spoken text of the block outside it (it never does, but
    a block's id may only stand for the sentence when the sentence is the whole block)."""
    a, b = spans[0]
    return bool(text[:a].strip() or text[b:].strip())


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> int | None:
    """The sentence a piece [start, end) belongs to; a piece without text (an image, a mark)
    belongs to a sentence only strictly inside it."""
    for index, (a, b) in enumerate(spans):
        if a <= start and end <= b and (start < end or a < start < b):
            return index
    return None


def _element(like: etree._Element, name: str, attributes: dict[str, str], *, tag: str | None = None) -> etree._Element:
    from lxml import etree

    namespace = like.tag[1:].split("}", 1)[0] if isinstance(like.tag, str) and like.tag.startswith("{") else ""
    element = etree.Element(tag or (f"{{{namespace}}}{name}" if namespace else name), nsmap=like.nsmap)
    for key, value in attributes.items():
        element.set(key, value)
    return element


def _append(parent: etree._Element, items: list[str | etree._Element]) -> None:
    for item in items:
        if isinstance(item, str):
            if len(parent):
                parent[-1].tail = (parent[-1].tail or "") + item
            else:
                parent.text = (parent.text or "") + item
        else:
            parent.append(item)


def _put_back(
    parent: etree._Element,
    lead_owner: etree._Element,
    lead_is_text: bool,
    position: int,
    items: list[str | etree._Element],
) -> None:
    """Put a paragraph's ``items`` back where its run was taken from (``position`` in ``parent``)."""
    lead: list[str] = []
    index = 0
    while index < len(items) and isinstance(items[index], str):
        lead.append(items[index])  # type: ignore[arg-type]
        index += 1
    if lead_is_text:
        lead_owner.text = "".join(lead) or None
    else:
        lead_owner.tail = "".join(lead) or None
    last: etree._Element | None = None
    for item in items[index:]:
        if isinstance(item, str):
            assert last is not None
            last.tail = (last.tail or "") + item
        else:
            parent.insert(position, item)
            position += 1
            last = item


def serialize(root: etree._Element) -> bytes:
    """XHTML as EPUB 3 wants it: UTF-8, an XML declaration and ``<!DOCTYPE html>``."""
    from lxml import etree

    return etree.tostring(root, encoding="utf-8", xml_declaration=True, doctype="<!DOCTYPE html>")
