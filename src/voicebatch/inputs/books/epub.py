"""EPUB 2 and 3 books in: metadata, and chapters in spine order with their sentences.

Chapters are what the table of contents names: the navigation document's ``toc`` nav
(EPUB 3) or the NCX's navMap (EPUB 2, or an EPUB 3 without a nav). A table-of-contents
entry starts a chapter at the spine document it points to (and at its fragment, when a
document holds several chapters); an entry nested under one that points to the same document
is a section of that chapter. Spine documents the table of contents never points to are front
matter (before the first chapter: cover, title page, copyright), back matter (after the last)
or the rest of the chapter before them (a chapter split over files, as converters do).
Front and back matter are left out unless ``include_untitled``; non-linear spine items are
always left out. Titles come from the table of contents. Sentences come from
``books.xhtml.mark_sentences``, which says what it skipped.

Why no EPUB library: ebooklib, the maintained one, is AGPL-3.0 (this project is Apache-2.0),
reads every entry of the zip into memory when it opens a book, and parses with its own lxml
settings; an EPUB is a zip (``books.archive``: bounded, checked), an OPF, an NCX or a nav
(lxml through ``voicebatch.inputs.safexml``) and XHTML documents (the same), which is all it takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.inputs.books.archive import BookError, Package, entry_label, open_package, resolve
from voicebatch.inputs.books.records import Book, BookMetadata, Chapter, Cover, Sentence
from voicebatch.inputs.books.xhtml import EPUB_TYPE, XHTML, mark_sentences, parse_xhtml
from voicebatch.inputs.safexml import XMLProblem, local_name

if TYPE_CHECKING:
    from lxml import etree

log = logging.getLogger(__name__)

OPF = "http://www.idpf.org/2007/opf"
DC = "http://purl.org/dc/elements/1.1/"
NCX = "http://www.daisy.org/z3986/2005/ncx/"
CONTAINER = "urn:oasis:names:tc:opendocument:xmlns:container"
MAX_IMAGE_BYTES = 50_000_000


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    href: str  # package-relative
    media_type: str
    properties: frozenset[str]


@dataclass(frozen=True, slots=True)
class Package3:
    """What the OPF says (package-relative hrefs)."""

    opf: str
    version: str
    root: etree._Element
    items: dict[str, Item]
    spine: tuple[tuple[str, bool], ...]  # (href, linear)
    toc_ncx: str | None


@dataclass(frozen=True, slots=True)
class TocEntry:
    title: str
    href: str  # package-relative document
    fragment: str | None
    depth: int
    parent: int | None  # index of the enclosing entry


def read_epub(path: str | Path, *, include_untitled: bool = False) -> Book:
    path = Path(path)
    with open_package(path) as package:
        opf = read_package(package)
        toc = read_toc(package, opf)
        book = _build(package, opf, toc, include_untitled)
    for note in book.notes:
        log.info("%s: %s", path, note)
    return book


def read_entry(path: str | Path, href: str, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """One entry's bytes (the cover image, say), bounded like every read."""
    with open_package(path) as package:
        return package.read(href, limit)


def parse_entry(package: Package, name: str) -> etree._Element:
    try:
        return parse_xhtml(package.read_text(name))
    except XMLProblem as e:
        where = f"{entry_label(name)}, line {e.line}" if e.line else entry_label(name)
        raise BookError(package.path, str(e), where=where) from None


def read_package(package: Package) -> Package3:
    if package.has("mimetype") and package.read("mimetype", 100).strip() != b"application/epub+zip":
        raise BookError(package.path, "not application/epub+zip (not an EPUB)", where="mimetype")
    if not package.has("META-INF/container.xml"):
        raise BookError(
            package.path, "missing: an EPUB names its package document there", where="META-INF/container.xml"
        )
    container = parse_entry(package, "META-INF/container.xml")
    rootfile = next((e for e in container.iter(f"{{{CONTAINER}}}rootfile") if e.get("full-path")), None)
    if rootfile is None:
        raise BookError(package.path, "names no package document (rootfile)", where="META-INF/container.xml")
    opf = resolve("", rootfile.get("full-path", ""))
    if opf is None or not package.has(opf):
        raise BookError(package.path, "the package document it names is not in the zip", where="META-INF/container.xml")
    _refuse_encrypted(package)
    root = parse_entry(package, opf)
    if local_name(root) != "package":
        raise BookError(package.path, "not an OPF package document (no <package>)", where=entry_label(opf))
    items: dict[str, Item] = {}
    for element in root.iter(f"{{{OPF}}}item"):
        href = resolve(opf, element.get("href") or "")
        if href is None or not element.get("id"):
            raise BookError(
                package.path,
                "a manifest item without an id or with an href outside the package",
                where=f"{entry_label(opf)}, line {element.sourceline}",
            )
        props = frozenset((element.get("properties") or "").split())
        items[element.get("id", "")] = Item(element.get("id", ""), href, element.get("media-type") or "", props)
    spine_element = next(root.iter(f"{{{OPF}}}spine"), None)
    if spine_element is None:
        raise BookError(package.path, "no <spine> (the reading order)", where=entry_label(opf))
    spine = []
    for ref in spine_element.iter(f"{{{OPF}}}itemref"):
        item = items.get(ref.get("idref") or "")
        if item is None:
            raise BookError(
                package.path,
                "a spine itemref names no manifest item",
                where=f"{entry_label(opf)}, line {ref.sourceline}",
            )
        spine.append((item.href, (ref.get("linear") or "yes") != "no"))
    ncx = items.get(spine_element.get("toc") or "")
    if ncx is None:
        ncx = next((i for i in items.values() if i.media_type == "application/x-dtbncx+xml"), None)
    return Package3(opf, root.get("version") or "2.0", root, items, tuple(spine), ncx.href if ncx else None)


def _refuse_encrypted(package: Package) -> None:
    """Font obfuscation is fine (fonts are not read); encrypted documents are DRM."""
    if not package.has("META-INF/encryption.xml"):
        return
    root = parse_entry(package, "META-INF/encryption.xml")
    for ref in root.iter("{http://www.w3.org/2001/04/xmlenc#}CipherReference"):
        uri = ref.get("URI") or ""
        if uri.lower().endswith((".xhtml", ".html", ".htm", ".xml", ".opf", ".ncx")):
            raise BookError(package.path, "encrypted content (DRM): cannot be read", where="META-INF/encryption.xml")


def read_toc(package: Package, opf: Package3) -> list[TocEntry]:
    nav = next((i for i in opf.items.values() if "nav" in i.properties), None)
    if nav is not None and package.has(nav.href):
        entries = _nav_entries(package, nav.href)
        if entries:
            return entries
    if opf.toc_ncx and package.has(opf.toc_ncx):
        return _ncx_entries(package, opf.toc_ncx)
    raise BookError(
        package.path, "no table of contents (neither a nav document nor an NCX)", where=entry_label(opf.opf)
    )


def _nav_entries(package: Package, href: str) -> list[TocEntry]:
    root = parse_entry(package, href)
    nav = next((n for n in root.iter(f"{{{XHTML}}}nav") if "toc" in (n.get(EPUB_TYPE) or "").split()), None)
    out: list[TocEntry] = []
    if nav is None:
        return out

    def walk(ol: etree._Element, depth: int, parent: int | None) -> None:
        for li in ol.iterchildren(f"{{{XHTML}}}li"):
            label = next((c for c in li if local_name(c) in ("a", "span")), None)
            index = parent
            if label is not None and label.get("href"):
                _add(out, package, href, label.get("href", ""), _text(label), depth, parent)
                index = len(out) - 1
            for child in li.iterchildren(f"{{{XHTML}}}ol"):
                walk(child, depth + 1, index)

    for ol in nav.iterchildren(f"{{{XHTML}}}ol"):
        walk(ol, 0, None)
    return out


def _ncx_entries(package: Package, href: str) -> list[TocEntry]:
    root = parse_entry(package, href)
    out: list[TocEntry] = []

    def walk(element: etree._Element, depth: int, parent: int | None) -> None:
        for point in element.iterchildren(f"{{{NCX}}}navPoint"):
            label = point.find(f"{{{NCX}}}navLabel/{{{NCX}}}text")
            content = point.find(f"{{{NCX}}}content")
            index = parent
            if content is not None and content.get("src"):
                _add(out, package, href, content.get("src", ""), _text(label), depth, parent)
                index = len(out) - 1
            walk(point, depth + 1, index)

    nav_map = root.find(f"{{{NCX}}}navMap")
    if nav_map is not None:
        walk(nav_map, 0, None)
    return out


def _add(
    out: list[TocEntry], package: Package, base: str, href: str, title: str, depth: int, parent: int | None
) -> None:
    target = resolve(base, href)
    if target is None:
        return  # a link out of the book: not a chapter
    fragment = href.split("#", 1)[1] if "#" in href else None
    out.append(TocEntry(title, target, fragment or None, depth, parent))


def _text(element: etree._Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _build(package: Package, opf: Package3, toc: list[TocEntry], include_untitled: bool) -> Book:
    linear = [href for href, is_linear in opf.spine if is_linear]
    starts: dict[str, list[TocEntry]] = {}
    for entry in toc:
        if entry.href not in linear or _section(toc, entry):
            continue
        starts.setdefault(entry.href, [])
        if entry.fragment or not starts[entry.href]:
            starts[entry.href].append(entry)
    if not starts:
        raise BookError(
            package.path, "the table of contents points at no document of the spine", where=entry_label(opf.opf)
        )
    first = min(linear.index(h) for h in starts)
    last = max(linear.index(h) for h in starts)
    chapters: list[tuple[str, str, str | None, list[Sentence]]] = []
    left_out = [h for h, is_linear in opf.spine if not is_linear]
    notes: list[str] = []
    for position, href in enumerate(linear):
        entries = starts.get(href, [])
        inside = first <= position <= last
        if not entries and not (inside or include_untitled):
            left_out.append(href)
            continue
        if not package.has(href):
            raise BookError(package.path, "a spine document missing from the zip", where=entry_label(href))
        root = parse_entry(package, href)
        anchors = tuple(e.fragment or "" for e in entries[1:])
        marked = mark_sentences(root, href, anchors)
        notes += marked.notes
        if entries:
            for entry, sentences in zip(entries, marked.parts, strict=True):
                chapters.append((entry.title, href, entry.fragment, sentences))
        elif inside and chapters:  # the rest of the chapter before (a chapter split over files)
            chapters[-1][3].extend(_renumbered(marked.parts[0], chapters[-1][3]))
        else:
            chapters.append((_document_title(root) or "", href, None, marked.parts[0]))
    records = []
    for title, href, anchor, sentences in chapters:
        if not sentences:
            notes.append(f"{href}: a chapter with no text to speak: left out")
            continue
        index = len(records)
        title = title or next((s.text for s in sentences if s.heading), f"Chapter {index + 1}")
        own = tuple(n for n in notes if n.startswith(f"{href}: "))
        records.append(Chapter(index, title, href, tuple(sentences), anchor, own))
    if not records:
        raise BookError(package.path, "no chapter has text to speak")
    return Book(
        str(package.path),
        "epub3" if opf.version.startswith("3") else "epub2",
        _metadata(opf),
        tuple(records),
        tuple(left_out),
        tuple(notes),
    )


def _section(toc: list[TocEntry], entry: TocEntry) -> bool:
    """An entry nested under an entry for the same document: a section, not a chapter."""
    parent = entry.parent
    while parent is not None:
        if toc[parent].href == entry.href:
            return True
        parent = toc[parent].parent
    return False


def _renumbered(sentences: list[Sentence], before: list[Sentence]) -> list[Sentence]:
    offset = before[-1].paragraph + 1 if before else 0
    return [replace(s, paragraph=s.paragraph + offset) for s in sentences]


def _document_title(root: etree._Element) -> str:
    for name in ("h1", "h2", "h3", "title"):
        element = next(root.iter(f"{{{XHTML}}}{name}"), None)
        if element is not None and _text(element):
            return _text(element)
    return ""


def _metadata(opf: Package3) -> BookMetadata:
    meta = next(opf.root.iter(f"{{{OPF}}}metadata"), None)
    if meta is None:
        return BookMetadata(title="")
    roles = {
        (m.get("refines") or "").lstrip("#"): (m.text or "").strip()
        for m in meta.iter(f"{{{OPF}}}meta")
        if m.get("property") == "role"
    }
    authors = []
    for creator in meta.iter(f"{{{DC}}}creator"):
        role = creator.get(f"{{{OPF}}}role") or roles.get(creator.get("id") or "", "")
        if role in ("", "aut") and _text(creator):
            authors.append(_text(creator))
    unique = opf.root.get("unique-identifier") or ""
    identifiers = list(meta.iter(f"{{{DC}}}identifier"))
    identifier = next((i for i in identifiers if i.get("id") == unique), identifiers[0] if identifiers else None)
    language = next(meta.iter(f"{{{DC}}}language"), None)
    title = next(meta.iter(f"{{{DC}}}title"), None)
    return BookMetadata(
        title=_text(title),
        authors=tuple(authors),
        language=_text(language) or "und",
        identifier=_text(identifier),
        cover=_cover(opf, meta),
    )


def _cover(opf: Package3, meta: etree._Element) -> Cover | None:
    item = next((i for i in opf.items.values() if "cover-image" in i.properties), None)
    if item is None:
        named = next((m.get("content") for m in meta.iter(f"{{{OPF}}}meta") if m.get("name") == "cover"), None)
        item = opf.items.get(named or "")
    if item is None or not item.media_type.startswith("image/"):
        return None
    return Cover(item.href, item.media_type)
