"""A read-along book: EPUB 3 with Media Overlays, each sentence highlighted as it is spoken.

The book is the original EPUB with every sentence of its chapters wrapped in an element with
an id (``books.xhtml.mark_sentences``, the same marking that read the sentences, so the ids
are the ones the clips name), the chapter audio inside the package, and one SMIL document per
content document whose ``<par>`` entries pair ``text src="chapter.xhtml#id"`` with ``audio src
clipBegin clipEnd``, as W3C's Media Overlays 3 and aeneas's SMIL output do. Each clip runs to
the next sentence's start in the same audio file (a reading system then plays the pauses
between sentences instead of cutting them). The package document is upgraded or made by
``package3``; EPUBCheck is the judge (the tests run it).

The archive is written entry by entry (``mimetype`` first and stored, as OCF requires), large
entries copied in pieces and audio stored as it is (it is compressed already), so memory does
not grow with the book's length. A Markdown or text book gets XHTML made from its chapters.
"""

from __future__ import annotations

import hashlib
import posixpath
import shutil
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.inputs.books.archive import Package, open_package, relative
from voicebatch.inputs.books.epub import Package3, TocEntry, parse_entry, read_package, read_toc
from voicebatch.inputs.books.xhtml import XHTML, mark_sentences, serialize
from voicebatch.inputs.safexml import local_name
from voicebatch.render.mastering.package3 import (
    ACTIVE_STYLE,
    NewItem,
    chapter_document,
    clock,
    content_properties,
    nav_document,
    new_package,
    upgrade_package,
)

if TYPE_CHECKING:
    from lxml import etree

    from voicebatch.inputs.books.records import Book

SMIL = "http://www.w3.org/ns/SMIL"
AUDIO_TYPES = {".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".mp4": "audio/mp4", ".aac": "audio/mp4"}
_STORED = (".mp3", ".m4a", ".mp4", ".aac", ".jpg", ".jpeg", ".png", ".gif", ".webp", ".woff", ".woff2")


@dataclass(frozen=True, slots=True)
class Clip:
    href: str  # the sentence's content document (``Sentence.href``)
    sentence_id: str  # ``Sentence.element_id``
    audio: str  # the name of its AudioTrack
    begin: float  # seconds in that audio file
    end: float


@dataclass(frozen=True, slots=True)
class AudioTrack:
    name: str  # its file name inside the book (``chapter-001.mp3``)
    path: Path  # an MP3 or an AAC (.m4a) file: EPUB 3's core audio types


@dataclass(frozen=True, slots=True)
class ReadAlongBook:
    path: str
    overlays: int  # SMIL documents
    clips: int  # sentences synchronised
    duration: float  # seconds of audio the overlays play


def write_read_along(
    book: Book,
    out: str | Path,
    clips: Sequence[Clip],
    audio: Sequence[AudioTrack],
    *,
    narrator: str | None = None,
    modified: datetime | None = None,
) -> ReadAlongBook:
    """The read-along EPUB 3 of ``book`` at ``out``; see the module."""
    names = {t.name for t in audio}
    if missing := sorted({c.audio for c in clips} - names):
        raise ValueError(f"clips name audio that is not given: {', '.join(missing)}")
    for clip in clips:
        if not 0 <= clip.begin < clip.end:
            raise ValueError(f"{clip.href}#{clip.sentence_id}: clip {clip.begin}-{clip.end} s is empty or negative")
    stamp = (modified or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        if book.format in ("epub2", "epub3"):
            with open_package(book.source) as package:
                opf = read_package(package)
                result = _from_epub(zf, package, opf, read_toc(package, opf), book, clips, audio, narrator, stamp)
        else:
            result = _from_text(zf, book, clips, audio, narrator, stamp)
    tmp.replace(out)
    return ReadAlongBook(str(out), *result)


def _from_epub(
    zf: zipfile.ZipFile,
    package: Package,
    opf: Package3,
    toc: list[TocEntry],
    book: Book,
    clips: Sequence[Clip],
    audio: Sequence[AudioTrack],
    narrator: str | None,
    stamp: str,
) -> tuple[int, int, float]:
    base = posixpath.dirname(opf.opf)
    taken = set(package.names())
    by_doc = _grouped(clips)
    upgrade = opf.version.startswith("2")
    documents: dict[str, bytes] = {}
    properties: dict[str, set[str]] = {}
    for item in opf.items.values():
        if item.media_type != "application/xhtml+xml" or not (item.href in by_doc or upgrade):
            continue
        root = parse_entry(package, item.href)
        if item.href in by_doc:
            mark_sentences(root, item.href)
            _check_ids(root, item.href, by_doc[item.href])
            _add_style(root)
        if upgrade:
            _clean_epub2(root)
        properties[item.href] = content_properties(root)
        documents[item.href] = serialize(root)
    if upgrade and opf.toc_ncx and package.has(opf.toc_ncx):
        # EPUB 3 keeps the NCX for old reading systems, but without the DOCTYPE EPUB 2 gave it.
        from lxml import etree

        documents[opf.toc_ncx] = etree.tostring(
            parse_entry(package, opf.toc_ncx), encoding="utf-8", xml_declaration=True
        )
    media = _media(by_doc, audio, base, taken, set(opf.items))
    new_items = list(media.items)
    if upgrade or not any("nav" in i.properties for i in opf.items.values()):
        nav = _free(posixpath.join(base, "nav.xhtml"), taken)
        documents[nav] = nav_document(toc, nav, book.metadata.title, book.metadata.language)
        new_items.append(NewItem(_free_id("vb-nav", set(opf.items)), nav, "application/xhtml+xml", "nav"))
    package_bytes = upgrade_package(
        opf,
        new_items=new_items,
        overlays=media.overlays,
        document_properties=properties,
        narrator=narrator,
        modified=stamp,
    )
    for name in package.names():
        if name == "mimetype":
            continue
        if name == opf.opf:
            zf.writestr(name, package_bytes)
        elif name in documents:
            zf.writestr(name, documents.pop(name))
        else:
            _copy(zf, package, name)
    for name, data in documents.items():  # the new navigation document
        zf.writestr(name, data)
    return media.write(zf, len(clips))


def _from_text(
    zf: zipfile.ZipFile,
    book: Book,
    clips: Sequence[Clip],
    audio: Sequence[AudioTrack],
    narrator: str | None,
    stamp: str,
) -> tuple[int, int, float]:
    from voicebatch.inputs.books.xhtml import parse_xhtml

    digest = hashlib.sha256(repr(book.to_dict()).encode()).hexdigest()
    identifier = f"urn:uuid:{uuid.UUID(digest[:32])}"
    opf_name, text = new_package(book, identifier)
    opf = Package3(opf_name, "3.0", parse_xhtml(text.decode()), {}, (), None)
    opf = Package3(opf_name, "3.0", opf.root, _items(opf.root), (), None)
    taken = {c.href for c in book.chapters} | {opf_name}
    media = _media(_grouped(clips), audio, "", taken, set(opf.items))
    new_items = [*media.items, NewItem("nav", "nav.xhtml", "application/xhtml+xml", "nav")]
    toc = [TocEntry(c.title, c.href, None, 0, None) for c in book.chapters]
    zf.writestr("META-INF/container.xml", _CONTAINER.format(opf=opf_name))
    zf.writestr(
        opf_name,
        upgrade_package(
            opf, new_items=new_items, overlays=media.overlays, document_properties={}, narrator=narrator, modified=stamp
        ),
    )
    zf.writestr("nav.xhtml", nav_document(toc, "nav.xhtml", book.metadata.title, book.metadata.language))
    for index, chapter in enumerate(book.chapters):
        zf.writestr(chapter.href, chapter_document(book, index))
    return media.write(zf, len(clips))


@dataclass(frozen=True, slots=True)
class _Media:
    """The audio and the overlays a book gains: manifest items, and the entries to write."""

    items: list[NewItem]
    overlays: dict[str, tuple[str, float]]  # content document -> (SMIL id, duration)
    smil_files: dict[str, tuple[str, bytes]]  # SMIL entry -> (id, bytes)
    tracks: dict[str, tuple[AudioTrack, str]]  # audio name -> (track, entry)

    def write(self, zf: zipfile.ZipFile, clips: int) -> tuple[int, int, float]:
        for href, (_, data) in self.smil_files.items():
            zf.writestr(href, data)
        for track, href in self.tracks.values():
            zf.write(track.path, href, compress_type=zipfile.ZIP_STORED)
        return len(self.smil_files), clips, round(sum(d for _, d in self.overlays.values()), 3)


def _media(
    by_doc: dict[str, list[Clip]], audio: Sequence[AudioTrack], base: str, taken: set[str], ids: set[str]
) -> _Media:
    items, tracks = _audio_items(audio, base, taken, ids)
    overlays, smil_files = _overlays(by_doc, tracks, base, taken, ids)
    items += [NewItem(smil_id, href, "application/smil+xml") for href, (smil_id, _) in smil_files.items()]
    return _Media(items, overlays, smil_files, tracks)


_CONTAINER = (
    '<?xml version="1.0" encoding="utf-8"?>\n<container version="1.0" '
    'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
    '<rootfile full-path="{opf}" media-type="application/oebps-package+xml"/></rootfiles></container>'
)


def _items(root: etree._Element) -> dict:
    from voicebatch.inputs.books.epub import OPF, Item

    return {
        e.get("id", ""): Item(e.get("id", ""), e.get("href", ""), e.get("media-type", ""), frozenset())
        for e in root.iter(f"{{{OPF}}}item")
    }


def _grouped(clips: Sequence[Clip]) -> dict[str, list[Clip]]:
    out: dict[str, list[Clip]] = {}
    for clip in clips:
        out.setdefault(clip.href, []).append(clip)
    return out


def _audio_items(
    audio: Sequence[AudioTrack], base: str, taken: set[str], ids: set[str]
) -> tuple[list[NewItem], dict[str, tuple[AudioTrack, str]]]:
    items, tracks = [], {}
    for number, track in enumerate(audio, start=1):
        suffix = Path(track.name).suffix.lower()
        if suffix not in AUDIO_TYPES:
            raise ValueError(f"{track.name}: not an EPUB 3 audio type (MP3 or AAC in MP4: .mp3, .m4a)")
        href = _free(posixpath.join(base, "audio", track.name), taken)
        tracks[track.name] = (track, href)
        items.append(NewItem(_free_id(f"vb-audio-{number}", ids), href, AUDIO_TYPES[suffix]))
    return items, tracks


def _overlays(
    by_doc: dict[str, list[Clip]], tracks: dict[str, tuple[AudioTrack, str]], base: str, taken: set[str], ids: set[str]
) -> tuple[dict[str, tuple[str, float]], dict[str, tuple[str, bytes]]]:
    """Per content document: (SMIL id, duration), and per SMIL href: (id, its bytes)."""
    from xml.sax.saxutils import quoteattr

    overlays, files = {}, {}
    for number, (doc, doc_clips) in enumerate(by_doc.items(), start=1):
        smil = _free(posixpath.join(base, "smil", posixpath.splitext(posixpath.basename(doc))[0] + ".smil"), taken)
        smil_id = _free_id(f"vb-smil-{number}", ids)
        pars, duration = [], 0.0
        for k, clip in enumerate(doc_clips):
            after = doc_clips[k + 1] if k + 1 < len(doc_clips) else None
            end = after.begin if after and after.audio == clip.audio and clip.end <= after.begin else clip.end
            duration += round(end, 3) - round(clip.begin, 3)
            text = quoteattr(f"{relative(smil, doc)}#{clip.sentence_id}")
            src = quoteattr(relative(smil, tracks[clip.audio][1]))
            pars.append(
                f'<par id="par{k + 1}"><text src={text}/>'
                f'<audio src={src} clipBegin="{clock(clip.begin)}" clipEnd="{clock(end)}"/></par>'
            )
        body = "\n".join(pars)
        first = quoteattr(f"{relative(smil, doc)}#{doc_clips[0].sentence_id}")
        data = (
            f'<?xml version="1.0" encoding="utf-8"?>\n<smil xmlns="{SMIL}" xmlns:epub="http://www.idpf.org/2007/ops" '
            f'version="3.0">\n<body>\n<seq id="seq1" epub:textref={first}>\n{body}\n'
            "</seq>\n</body>\n</smil>\n"
        ).encode()
        overlays[doc] = (smil_id, round(duration, 3))
        files[smil] = (smil_id, data)
    return overlays, files


def _check_ids(root: etree._Element, href: str, clips: list[Clip]) -> None:
    ids = {e.get("id") for e in root.iter() if isinstance(e.tag, str)}
    for clip in clips:
        if clip.sentence_id not in ids:
            raise ValueError(f"{href}: no element with the id the clip names (is the book the one that was read?)")


def _add_style(root: etree._Element) -> None:
    from lxml import etree

    head = next((e for e in root if local_name(e) == "head"), None)
    if head is not None:
        style = etree.SubElement(head, f"{{{XHTML}}}style")
        style.text = ACTIVE_STYLE


def _clean_epub2(root: etree._Element) -> None:
    """What XHTML 1.1 allows and EPUB 3's XHTML does not."""
    for element in list(root.iter(f"{{{XHTML}}}meta")):
        if element.get("http-equiv"):
            element.getparent().remove(element)
    for element in root.iter(f"{{{XHTML}}}a"):
        name = element.attrib.pop("name", None)
        if name and not element.get("id"):
            element.set("id", name)


def _copy(zf: zipfile.ZipFile, package: Package, name: str) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_STORED if name.lower().endswith(_STORED) else zipfile.ZIP_DEFLATED
    info.file_size = package.size(name)
    with package.open(name) as source, zf.open(info, "w", force_zip64=info.file_size > 1 << 31) as target:
        shutil.copyfileobj(source, target, 1 << 20)


def _free(name: str, taken: set[str]) -> str:
    stem, suffix = posixpath.splitext(name)
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{suffix}"
    taken.add(candidate)
    return candidate


def _free_id(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    taken.add(candidate)
    return candidate
