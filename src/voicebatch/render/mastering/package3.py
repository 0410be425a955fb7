"""The EPUB 3 package document (OPF) and navigation document of a read-along book.

An EPUB 3 source keeps its package document, with what Media Overlays need added: the audio
and SMIL items, ``media-overlay`` on each content document that has one, ``media:duration``
for every overlay and the book, ``media:active-class`` (and ``media:narrator`` when named) and
a fresh ``dcterms:modified``. An EPUB 2 source is upgraded to a valid EPUB 3 package on the
way: ``version="3.0"``, its ``opf:`` attributes turned into EPUB 3 refinements (a creator's
role) or dropped (file-as, scheme, event), one ``dc:date``, the cover item marked
``cover-image``, content documents' ``svg``/``mathml``/``scripted`` properties declared, and a
navigation document made from its NCX (which stays, for EPUB 2 reading systems). A Markdown or
text book gets a package made from nothing (``new_package``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicebatch.inputs.books.archive import relative
from voicebatch.inputs.books.epub import DC, OPF, Package3, TocEntry
from voicebatch.inputs.books.xhtml import OPS, XHTML
from voicebatch.inputs.safexml import local_name

if TYPE_CHECKING:
    from lxml import etree

    from voicebatch.inputs.books.records import Book

ACTIVE_CLASS = "-epub-media-overlay-active"
ACTIVE_STYLE = f".{ACTIVE_CLASS} {{ background-color: #fff3a8; color: inherit; }}"
_NS = {"opf": OPF, "dc": DC}


@dataclass(frozen=True, slots=True)
class NewItem:
    id: str
    href: str  # package-relative
    media_type: str
    properties: str = ""


def clock(seconds: float) -> str:
    """A SMIL clock value (``0:01:02.345``), as ``media:duration`` and clips are written."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def upgrade_package(
    opf: Package3,
    *,
    new_items: Sequence[NewItem],
    overlays: Mapping[str, tuple[str, float]],  # content document href -> (SMIL item id, duration)
    document_properties: Mapping[str, set[str]],  # content document href -> properties it needs
    narrator: str | None,
    modified: str,
) -> bytes:
    """The source's package document as EPUB 3 with Media Overlays (see the module)."""
    from lxml import etree

    root = opf.root
    root.set("version", "3.0")
    metadata = root.find(f"{{{OPF}}}metadata")
    manifest = root.find(f"{{{OPF}}}manifest")
    assert metadata is not None and manifest is not None
    _upgrade_metadata(metadata)
    for item in manifest.iterchildren(f"{{{OPF}}}item"):
        href = opf.items[item.get("id", "")].href
        properties = set((item.get("properties") or "").split())
        if href in document_properties:
            properties = (properties - {"svg", "mathml", "scripted"}) | document_properties[href]
        if href in overlays:
            item.set("media-overlay", overlays[href][0])
        if opf.version.startswith("2") and _is_cover(metadata, item):
            properties.add("cover-image")
        if properties:
            item.set("properties", " ".join(sorted(properties)))
    for new in new_items:
        element = etree.SubElement(manifest, f"{{{OPF}}}item", id=new.id, href=relative(opf.opf, new.href))
        element.set("media-type", new.media_type)
        if new.properties:
            element.set("properties", new.properties)
    _media_metadata(metadata, overlays, narrator, modified)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def _upgrade_metadata(metadata: etree._Element) -> None:
    from lxml import etree

    dates = list(metadata.iterchildren(f"{{{DC}}}date"))
    for extra in dates[1:]:
        metadata.remove(extra)  # EPUB 3 allows one publication date
    for element in list(metadata):
        if not isinstance(element.tag, str):
            continue
        role = element.get(f"{{{OPF}}}role")
        for name in list(element.attrib):
            if name.startswith(f"{{{OPF}}}"):
                del element.attrib[name]
        if role and local_name(element) in ("creator", "contributor"):
            if not element.get("id"):
                element.set("id", f"{local_name(element)}-{len(metadata)}")
            meta = etree.SubElement(metadata, f"{{{OPF}}}meta", refines="#" + element.get("id", ""), property="role")
            meta.set("scheme", "marc:relators")
            meta.text = role
        if local_name(element) == "meta" and element.get("property") in (
            "dcterms:modified",
            "media:duration",
            "media:active-class",
        ):
            metadata.remove(element)


def _is_cover(metadata: etree._Element, item: etree._Element) -> bool:
    named = next((m.get("content") for m in metadata.iterchildren(f"{{{OPF}}}meta") if m.get("name") == "cover"), None)
    return named == item.get("id") and (item.get("media-type") or "").startswith("image/")


def _media_metadata(
    metadata: etree._Element, overlays: Mapping[str, tuple[str, float]], narrator: str | None, modified: str
) -> None:
    from lxml import etree

    def meta(prop: str, text: str, refines: str | None = None) -> None:
        element = etree.SubElement(metadata, f"{{{OPF}}}meta", property=prop)
        if refines:
            element.set("refines", "#" + refines)
        element.text = text

    meta("dcterms:modified", modified)
    for smil_id, duration in sorted(overlays.values()):
        meta("media:duration", clock(duration), smil_id)
    meta("media:duration", clock(sum(d for _, d in overlays.values())))
    meta("media:active-class", ACTIVE_CLASS)
    if narrator:
        meta("media:narrator", narrator)


def nav_document(entries: Sequence[TocEntry], nav_href: str, title: str, language: str) -> bytes:
    """An EPUB 3 navigation document listing ``entries`` (the NCX's) at their depths."""
    from xml.sax.saxutils import escape, quoteattr

    lines = []
    depth = -1
    for entry in entries:
        target = relative(nav_href, entry.href) + (f"#{entry.fragment}" if entry.fragment else "")
        level = min(entry.depth, depth + 1)
        if level > depth:
            lines.append("<ol>")
        else:
            lines.append("</li>")
            for _ in range(depth - level):
                lines.append("</ol></li>")
        lines.append(f"<li><a href={quoteattr(target)}>{escape(entry.title or 'Untitled')}</a>")
        depth = level
    for _ in range(depth + 1):
        lines.append("</li></ol>")
    body = "\n".join(lines)
    return _xhtml(title, language, f'<nav epub:type="toc" id="toc"><h1>{escape(title)}</h1>\n{body}\n</nav>')


def chapter_document(book: Book, index: int) -> bytes:
    """The XHTML of a Markdown book's chapter: headings and paragraphs, each sentence with its id."""
    from xml.sax.saxutils import escape, quoteattr

    chapter = book.chapters[index]
    parts = []
    for paragraph in chapter.paragraphs():
        if paragraph[0].heading:
            level = 1 if paragraph is chapter.paragraphs()[0] else 2
            parts += [f"<h{level} id={quoteattr(s.element_id)}>{escape(s.text)}</h{level}>" for s in paragraph]
        else:
            spans = " ".join(f"<span id={quoteattr(s.element_id)}>{escape(s.text)}</span>" for s in paragraph)
            parts.append(f"<p>{spans}</p>")
    body = '<section epub:type="chapter">\n' + "\n".join(parts) + "\n</section>"
    return _xhtml(chapter.title, book.metadata.language, body)


def _xhtml(title: str, language: str, body: str) -> bytes:
    from xml.sax.saxutils import escape, quoteattr

    lang = quoteattr(language or "en")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="{XHTML}" xmlns:epub="{OPS}" xml:lang={lang} lang={lang}>\n'
        f"<head><title>{escape(title)}</title><style>{ACTIVE_STYLE}</style></head>\n<body>\n{body}\n</body>\n</html>\n"
    ).encode()


def new_package(book: Book, identifier: str) -> tuple[str, bytes]:
    """(the OPF's name, a minimal package document) for a book that had none; ``upgrade_package``
    adds its items and Media Overlays metadata afterwards."""
    from xml.sax.saxutils import escape

    meta = book.metadata
    authors = "".join(f"<dc:creator>{escape(a)}</dc:creator>" for a in meta.authors)
    items = "".join(
        f'<item id="ch{i + 1}" href="{c.href}" media-type="application/xhtml+xml"/>'
        for i, c in enumerate(book.chapters)
    )
    spine = "".join(f'<itemref idref="ch{i + 1}"/>' for i in range(len(book.chapters)))
    text = (
        f'<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="{OPF}" version="3.0" unique-identifier="uid">'
        f'<metadata xmlns:dc="{DC}"><dc:identifier id="uid">{escape(identifier)}</dc:identifier>'
        f"<dc:title>{escape(meta.title)}</dc:title>{authors}<dc:language>{escape(meta.language or 'en')}</dc:language>"
        f"</metadata><manifest>{items}</manifest><spine>{spine}</spine></package>"
    )
    return "content.opf", text.encode()


def content_properties(root: etree._Element) -> set[str]:
    """The manifest properties a content document needs for what it holds."""
    names = {local_name(e) for e in root.iter() if isinstance(e.tag, str)}
    out = set()
    if "svg" in names:
        out.add("svg")
    if "math" in names:
        out.add("mathml")
    if "script" in names or "form" in names:
        out.add("scripted")
    return out


__all__ = ["ACTIVE_CLASS", "NewItem", "chapter_document", "clock", "nav_document", "new_package", "upgrade_package"]
