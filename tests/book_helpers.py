"""Test books built here: an EPUB 3 (nav) and an EPUB 2 (NCX) of the same little book, with a
title page outside the table of contents, three short chapters, a footnote, an image, a table
and a cover; EPUBCheck (Debian's package) to judge what the project writes; and finished books
read back from the files alone: an M4B's chapter marks as PyAV reads them, a read-along EPUB's
overlays walked in its own XML (which sentence of which document each clip plays, from which
audio entry, at which times)."""

from __future__ import annotations

import os
import posixpath
import shutil
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

EPUBCHECK = Path("/usr/share/java/epubcheck.jar")
TITLE = "The Little Test Book"
AUTHOR = "Ada Example"
CHAPTER_TITLES = ("Chapter One: The Canoe", "Chapter Two: The Well", "Chapter Three: The Dish")
# What each chapter says, sentence by sentence (the heading first), as the reader must find it.
CHAPTER_SENTENCES = (
    ("Chapter One", "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background."),
    ("Chapter Two", "It is easy to tell the depth of a well.", "Rice is often served in round bowls."),
    ("Chapter Three", "These days a chicken leg is a rare dish.", "The juice of lemons makes fine punch."),
)
XHTML_11 = '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">'


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A valid PNG of one colour (zlib and struct: no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _page(title: str, body: str, *, epub3: bool) -> str:
    doctype = "<!DOCTYPE html>" if epub3 else XHTML_11
    ops = ' xmlns:epub="http://www.idpf.org/2007/ops"' if epub3 else ""
    meta = "" if epub3 else '<meta http-equiv="Content-Type" content="application/xhtml+xml; charset=utf-8"/>'
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{doctype}\n<html xmlns="http://www.w3.org/1999/xhtml"{ops} '
        f'xml:lang="en"><head>{meta}<title>{title}</title><link rel="stylesheet" type="text/css" href="style.css"/>'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _chapters(epub3: bool) -> list[str]:
    note_ref = '<a epub:type="noteref" href="#n1">1</a>' if epub3 else '<sup><a href="#n1" id="r1">1</a></sup>'
    note = (
        '<aside epub:type="footnote" id="n1"><p>A note that is never read aloud.</p></aside>'
        if epub3
        else '<div class="note" id="n1"><p><a href="#r1">1</a> A note that is never read aloud.</p></div>'
    )
    section = "section" if epub3 else "div"
    return [
        # A footnote mark inside a sentence, and the note itself at the end.
        f'<{section} id="c1"><h1 id="h1">Chapter One</h1>\n<p>The birch canoe slid on the smooth planks.{note_ref} '
        f"Glue the sheet to the <em>dark blue</em> background.</p>\n{note}</{section}>",
        # An image between paragraphs; emphasis across a sentence boundary.
        "<h1>Chapter Two</h1>\n<p>It is easy to tell the <em>depth of a well. Rice</em> is often served in round "
        'bowls.</p>\n<div><img src="images/figure.png" alt="A well"/></div>',
        # A table, never spoken.
        "<h1>Chapter Three</h1>\n<p>These days a chicken leg is a rare dish.</p>\n"
        "<table><tr><td>one</td><td>two</td></tr></table>\n<p>The juice of lemons makes fine punch.</p>",
    ]


def build_epub(path: Path, *, epub3: bool) -> Path:
    """The test book as EPUB 3 (nav) or EPUB 2 (NCX, XHTML 1.1)."""
    files: dict[str, str | bytes] = {
        "META-INF/container.xml": '<?xml version="1.0"?>\n<container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
        'media-type="application/oebps-package+xml"/></rootfiles></container>',
        "OEBPS/style.css": "body { font-family: serif; }\n",
        "OEBPS/images/cover.png": png(16, 24, (30, 60, 200)),
        "OEBPS/images/figure.png": png(),
        "OEBPS/title.xhtml": _page("Title", f"<h1>{TITLE}</h1><p>By {AUTHOR}.</p>", epub3=epub3),
    }
    for n, body in enumerate(_chapters(epub3), start=1):
        files[f"OEBPS/ch{n}.xhtml"] = _page(CHAPTER_TITLES[n - 1], body, epub3=epub3)
    items = [
        '<item id="css" href="style.css" media-type="text/css"/>',
        '<item id="cover" href="images/cover.png" media-type="image/png"'
        + (' properties="cover-image"/>' if epub3 else "/>"),
        '<item id="figure" href="images/figure.png" media-type="image/png"/>',
        '<item id="title" href="title.xhtml" media-type="application/xhtml+xml"/>',
        *(f'<item id="ch{n}" href="ch{n}.xhtml" media-type="application/xhtml+xml"/>' for n in (1, 2, 3)),
    ]
    spine = '<itemref idref="title"/>' + "".join(f'<itemref idref="ch{n}"/>' for n in (1, 2, 3))
    if epub3:
        links = "".join(f'<li><a href="ch{n}.xhtml">{t}</a></li>' for n, t in enumerate(CHAPTER_TITLES, start=1))
        files["OEBPS/nav.xhtml"] = _page(
            "Contents", f'<nav epub:type="toc"><h1>Contents</h1><ol>{links}</ol></nav>', epub3=True
        )
        items.append('<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>')
        metadata = (
            f'<dc:identifier id="uid">urn:uuid:8f1c1d9e-0000-4000-8000-000000000003</dc:identifier>'
            f"<dc:title>{TITLE}</dc:title><dc:creator id='a1'>{AUTHOR}</dc:creator>"
            '<meta refines="#a1" property="role" scheme="marc:relators">aut</meta>'
            '<dc:language>en</dc:language><meta property="dcterms:modified">2026-01-01T00:00:00Z</meta>'
        )
        opf = (
            f'<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid">'
            f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">{metadata}</metadata>'
            f"<manifest>{''.join(items)}</manifest><spine>{spine}</spine></package>"
        )
    else:
        points = "".join(
            f'<navPoint id="p{n}" playOrder="{n}"><navLabel><text>{t}</text></navLabel><content src="ch{n}.xhtml"/>'
            "</navPoint>"
            for n, t in enumerate(CHAPTER_TITLES, start=1)
        )
        files["OEBPS/toc.ncx"] = (
            '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE ncx PUBLIC "-//NISO//DTD ncx 2005-1//EN" '
            '"http://www.daisy.org/z3986/2005/ncx-2005-1.dtd">\n<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" '
            'version="2005-1"><head><meta name="dtb:uid" content="urn:uuid:8f1c1d9e-0000-4000-8000-000000000002"/>'
            f"</head><docTitle><text>{TITLE}</text></docTitle><navMap>{points}</navMap></ncx>"
        )
        items.append('<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
        metadata = (
            '<dc:identifier id="uid" opf:scheme="UUID">urn:uuid:8f1c1d9e-0000-4000-8000-000000000002</dc:identifier>'
            f'<dc:title>{TITLE}</dc:title><dc:creator opf:role="aut" opf:file-as="Example, Ada">{AUTHOR}</dc:creator>'
            '<dc:creator opf:role="ill">Ivy Illustrator</dc:creator>'
            '<dc:language>en</dc:language><dc:date opf:event="publication">2020-01-01</dc:date>'
            '<meta name="cover" content="cover"/>'
        )
        opf = (
            f'<package xmlns="http://www.idpf.org/2007/opf" version="2.0" unique-identifier="uid">'
            f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">'
            f'{metadata}</metadata><manifest>{"".join(items)}</manifest><spine toc="ncx">{spine}</spine>'
            '<guide><reference type="cover" title="Title" href="title.xhtml"/></guide></package>'
        )
    files["OEBPS/content.opf"] = '<?xml version="1.0" encoding="utf-8"?>\n' + opf
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def require_epubcheck() -> None:
    if not EPUBCHECK.exists() or shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("epubcheck is missing: `make system-deps` installs it")
        pytest.skip("epubcheck is not installed (make system-deps installs it)")


def epubcheck(path: Path) -> tuple[int, str]:
    """(exit code, its report) from EPUBCheck on ``path``."""
    require_epubcheck()
    done = subprocess.run(
        ["java", "-jar", str(EPUBCHECK), str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    return done.returncode, done.stdout + done.stderr


def spoken(sentences: tuple[str, ...] | list[str], rate: int = 24_000, pause: float = 0.45) -> tuple[object, list]:
    """The sentences spoken by espeak-ng one after another at ``rate`` with ``pause`` seconds
    between them, 0.3 s of silence at either end (as synthesis leaves it), and each sentence's
    (start, end) in seconds, measured on the samples."""
    import numpy as np

    from speech_helpers import speak

    out = [np.zeros(round(0.3 * rate), dtype=np.float32)]
    times = []
    position = out[0].shape[0]
    for n, sentence in enumerate(sentences):
        samples = speak(sentence, rate)
        loud = np.flatnonzero(np.abs(samples) > 0.01)
        samples = samples[loud[0] : loud[-1] + 1] * np.float32(0.5)
        times.append((position / rate, (position + samples.shape[0]) / rate))
        gap = np.zeros(round((pause if n + 1 < len(sentences) else 0.3) * rate), dtype=np.float32)
        out += [samples, gap]
        position += samples.shape[0] + gap.shape[0]
    return np.concatenate(out), times


SMIL = "{http://www.w3.org/ns/SMIL}"
OPF = "{http://www.idpf.org/2007/opf}"


def m4b_chapters(path: Path) -> list[tuple[str, float, float]]:
    """(title, start, end) seconds of each chapter mark."""
    import av

    with av.open(str(path)) as container:
        return [
            (c["metadata"]["title"], float(c["start"] * c["time_base"]), float(c["end"] * c["time_base"]))
            for c in container.chapters()
        ]


@dataclass(frozen=True)
class Par:
    document: str  # the content document's entry
    fragment: str  # the element id the clip highlights
    text: str  # that element's text, whitespace collapsed
    audio: str  # the audio entry
    audio_type: str  # its media type in the package
    begin: float
    end: float


def _seconds(value: str) -> float:
    h, m, s = value.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def overlays(path: Path) -> tuple[list[Par], zipfile.ZipFile]:
    """Every <par> of every SMIL the package lists, in spine-document order, resolved."""
    from lxml import etree

    zf = zipfile.ZipFile(path)
    container = etree.fromstring(zf.read("META-INF/container.xml"))
    opf = next(container.iter("{*}rootfile")).get("full-path")
    package = etree.fromstring(zf.read(opf))
    base = posixpath.dirname(opf)
    items = {i.get("id"): i for i in package.iter(f"{OPF}item")}
    by_href = {posixpath.normpath(posixpath.join(base, i.get("href"))): i for i in items.values()}
    pars, documents = [], {}
    for ref in package.iter(f"{OPF}itemref"):
        item = items[ref.get("idref")]
        if not item.get("media-overlay"):
            continue
        smil = posixpath.normpath(posixpath.join(base, items[item.get("media-overlay")].get("href")))
        for par in etree.fromstring(zf.read(smil)).iter(f"{SMIL}par"):
            text, audio = par.find(f"{SMIL}text"), par.find(f"{SMIL}audio")
            doc, fragment = text.get("src").split("#")
            doc = posixpath.normpath(posixpath.join(posixpath.dirname(smil), doc))
            src = posixpath.normpath(posixpath.join(posixpath.dirname(smil), audio.get("src")))
            root = documents.setdefault(doc, etree.fromstring(zf.read(doc)))
            element = next(e for e in root.iter() if e.get("id") == fragment)
            pars.append(
                Par(
                    doc,
                    fragment,
                    " ".join("".join(element.itertext()).split()),
                    src,
                    by_href[src].get("media-type") if src in by_href else "",
                    _seconds(audio.get("clipBegin")),
                    _seconds(audio.get("clipEnd")),
                )
            )
    return pars, zf


# --- a book made by `voicebatch book` with the tiny model, and its read-along checked ---

NARRATOR = "Nora Reader"
FAST = ("--nfe", "4", "--device", "cpu", "--seed", "3")
SECTIONS = ["opening-credits", "chapter-001", "chapter-002", "chapter-003", "closing-credits"]


def make_book(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, demo_voices: Path) -> dict:
    """The test book (EPUB 3) narrated by the demo voice ``nature`` with the tiny model into a
    local folder: its paths, the command's exit code and JSON row, and the command line."""
    root = tmp_path_factory.mktemp("book")
    epub = build_epub(root / "little-book.epub", epub3=True)
    out = root / "out"
    argv = ["book", str(epub), "--voice", str(demo_voices / "nature"), "--out", str(out), "--model"]
    argv += [str(tiny_model_dir), *FAST, "--narrator", NARRATOR, "--max-takes", "1", "--json"]
    code, row = run_cli(argv)
    return {"epub": epub, "out": out, "code": code, "row": row, "argv": argv}


def run_cli(argv: list[str]) -> tuple[int, dict]:
    """`voicebatch book ... --json` in this process: (exit code, the JSON row)."""
    import contextlib
    import io
    import json

    from voicebatch.cli import main as cli

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli.main(argv)
    return code, json.loads(buffer.getvalue())


def check_synced(book: Path, mp3s: Path | None, source: Path) -> None:
    """Every sentence of the three chapters, once, in reading order, played from audio inside
    the book (``mp3s``: the folder holding the chapter MP3s it must be, byte for byte), within
    that audio's length and on its sound, not on the room tone between sentences."""
    import tempfile

    import numpy as np

    from voicebatch.inputs.books.epub import read_epub

    from acx_helpers import decode

    pars, zf = overlays(book)
    expected = [s for chapter in CHAPTER_SENTENCES for s in chapter]
    assert [p.text for p in pars] == expected  # every sentence, once, in reading order
    original = read_epub(source)
    assert [(p.document.rsplit("/", 1)[-1]) for p in pars] == [
        s.href.rsplit("/", 1)[-1] for c in original.chapters for s in c.sentences
    ]
    audio = {}
    scratch = Path(tempfile.mkdtemp(prefix="book-audio-"))
    for n, par in enumerate(pars):
        assert par.audio_type == "audio/mpeg"  # in the package's manifest: inside the book
        if par.audio not in audio:
            data = zf.read(par.audio)
            if mp3s is not None:  # the chapter's MP3, byte for byte
                assert data == (mp3s / par.audio.rsplit("/", 1)[-1]).read_bytes()
            path = scratch / par.audio.replace("/", "_")
            path.write_bytes(data)
            audio[par.audio] = decode(path)[:2]
        samples, rate = audio[par.audio]
        assert 0 <= par.begin < par.end <= samples.shape[0] / rate + 0.05, par
        if n + 1 < len(pars) and pars[n + 1].audio == par.audio:
            assert pars[n + 1].begin >= par.begin
        clip = samples[int(par.begin * rate) : int(par.end * rate)]
        # On the sentence's sound: far above the room tone (near -66 dBFS) that fills the pauses.
        assert 20 * np.log10(np.sqrt(np.mean(clip**2)) + 1e-12) > -40, par
