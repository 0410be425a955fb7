"""Books in: EPUB 3 (nav) and EPUB 2 (NCX) read into chapters in spine order, titles from the
table of contents, front matter left out, footnotes/images/tables skipped with a note, each
sentence tied to an element id of its XHTML; Markdown chapters; hostile zips refused with one
line that names the file and the entry and never what the entry holds."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from voicebatch.inputs.books import read_book
from voicebatch.inputs.books.archive import MAX_ENTRIES, BookError, open_package
from voicebatch.inputs.books.epub import read_entry, read_epub
from voicebatch.inputs.books.markdown import read_markdown
from voicebatch.inputs.books.records import book_from_dict
from voicebatch.inputs.books.xhtml import mark_sentences, parse_xhtml, serialize
from voicebatch.inputs.chunking import split_sentences

from book_helpers import AUTHOR, CHAPTER_SENTENCES, CHAPTER_TITLES, TITLE, build_epub, png

SECRET = "SECRET-CONTENT-7f3a"  # written into hostile entries: no error may repeat it


@pytest.fixture(params=["epub3", "epub2"])
def book_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return build_epub(tmp_path / f"{request.param}.epub", epub3=request.param == "epub3")


def _source_root(path: Path, href: str) -> etree._Element:
    with zipfile.ZipFile(path) as zf:
        return parse_xhtml(zf.read(href).decode())


def test_chapters_in_order_with_their_titles_and_sentences(book_path: Path) -> None:
    book = read_epub(book_path)
    assert book.format == book_path.stem
    assert [c.title for c in book.chapters] == list(CHAPTER_TITLES)
    assert [c.href for c in book.chapters] == ["OEBPS/ch1.xhtml", "OEBPS/ch2.xhtml", "OEBPS/ch3.xhtml"]
    for chapter, expected in zip(book.chapters, CHAPTER_SENTENCES, strict=True):
        assert tuple(s.text for s in chapter.sentences) == expected
        assert chapter.sentences[0].heading and not any(s.heading for s in chapter.sentences[1:])


def test_the_title_page_outside_the_toc_is_left_out_unless_asked_for(book_path: Path) -> None:
    assert read_epub(book_path).left_out == ("OEBPS/title.xhtml",)
    with_front = read_epub(book_path, include_untitled=True)
    assert with_front.chapters[0].href == "OEBPS/title.xhtml"
    assert with_front.chapters[0].title == TITLE  # its heading, as it has no entry in the table of contents
    assert [s.text for s in with_front.chapters[0].sentences] == [TITLE, f"By {AUTHOR}."]


def test_footnotes_images_and_tables_are_skipped_with_a_note_each(book_path: Path) -> None:
    book = read_epub(book_path)
    spoken = " ".join(c.text for c in book.chapters)
    assert "note that is never read" not in spoken and "one" not in spoken.split() and " 1 " not in f" {spoken} "
    notes = [n.split(": skipped ", 1)[1] for n in book.notes]
    assert sum("footnote mark" in n for n in notes) == 1
    assert sum(n.startswith("a footnote (") for n in notes) == 1
    assert sum(n.startswith("an image") for n in notes) == 1
    assert sum(n.startswith("a table") for n in notes) == 1
    assert all("line " in n for n in notes)  # each names where it was
    assert "OEBPS/ch3.xhtml: skipped a table (table at line 7)" in book.chapters[2].notes


def test_metadata_and_cover(book_path: Path) -> None:
    meta = read_epub(book_path).metadata
    assert (meta.title, meta.authors, meta.language) == (TITLE, (AUTHOR,), "en")  # the illustrator is no author
    assert meta.identifier.startswith("urn:uuid:8f1c1d9e")
    assert meta.cover is not None and meta.cover.media_type == "image/png"
    assert read_entry(book_path, meta.cover.href) == png(16, 24, (30, 60, 200))


def test_every_sentence_is_the_text_of_the_element_its_id_names(book_path: Path) -> None:
    """The marking the reader used, applied to the source again, puts each sentence in the
    element with its id: the read-along book points where the reader said."""
    book = read_epub(book_path)
    for chapter in book.chapters:
        root = _source_root(book_path, chapter.href)
        text_before = "".join(root.itertext())
        mark_sentences(root, chapter.href)
        assert "".join(root.itertext()) == text_before  # nothing added, nothing lost
        by_id = {e.get("id"): e for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
        for sentence in chapter.sentences:
            assert " ".join("".join(by_id[sentence.element_id].itertext()).split()) == sentence.text


def test_a_book_round_trips_through_json(book_path: Path) -> None:
    book = read_epub(book_path)
    assert book_from_dict(json.loads(json.dumps(book.to_dict()))) == book


# -- the marking, on markup it has never seen -----------------------------------------------------

WORDS = st.sampled_from(["alpha", "beta", "gamma", "Delta", "epsilon", "zeta"])
ENDS = st.sampled_from([".", "!", "?", ",", ""])


@st.composite
def inline_markup(draw: st.DrawFn, prefix: str) -> str:
    """A paragraph's content: words and sentence ends, some of them inside nested inline elements."""
    pieces = []
    for _ in range(draw(st.integers(1, 12))):
        text = " ".join(draw(st.lists(WORDS, min_size=1, max_size=4))) + draw(ENDS) + " "
        wrap = draw(st.sampled_from(["", "em", "strong", "a", "em-b", "img"]))
        if wrap == "em-b":
            text = f"<em>{text}<b>{draw(WORDS)}. </b></em>"
        elif wrap == "img":
            text += '<img src="x.png" alt=""/> '
        elif wrap:
            text = f'<{wrap} id="{prefix}{len(pieces)}">{text}</{wrap}>'
        pieces.append(text)
    return "".join(pieces)


@given(inline_markup("a"), inline_markup("b"))
def test_marking_keeps_the_text_and_gives_each_sentence_one_element(first: str, second: str) -> None:
    source = (
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head>'
        f"<body><p>{first}</p><div><p>{second}</p></div></body></html>"
    )
    root = parse_xhtml(source)
    text_before = "".join(root.itertext())
    marked = mark_sentences(root, "x.xhtml")
    again = parse_xhtml(serialize(root).decode())  # still well-formed XHTML
    assert "".join(again.itertext()) == text_before
    ids = [e.get("id") for e in again.iter() if isinstance(e.tag, str) and e.get("id")]
    assert len(ids) == len(set(ids))  # a split element keeps its id on one part only
    by_id = {e.get("id"): e for e in again.iter() if isinstance(e.tag, str) and e.get("id")}
    expected = [
        " ".join(s.split())
        for p in again.iter("{http://www.w3.org/1999/xhtml}p")
        for s in split_sentences("".join(p.itertext()))
    ]
    sentences = marked.parts[0]
    assert [s.text for s in sentences] == expected
    for sentence in sentences:
        assert " ".join("".join(by_id[sentence.element_id].itertext()).split()) == sentence.text


# -- Markdown --------------------------------------------------------------------------------------


def test_markdown_headings_are_chapters_and_front_matter_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "story.md"
    path.write_text(
        "---\ntitle: A Story\n---\nFor my cat.\n\n# The Start\n\nIt was *late*. See [the map](map.png).\n\n"
        "## A scene\n\nRain fell.\n\n```\ncode is not read.\n```\n\n# The End\n\nAll done!\n"
    )
    book = read_book(path)
    assert book.metadata.title == "A Story" and book.format == "markdown"
    assert [c.title for c in book.chapters] == ["The Start", "The End"]
    assert [s.text for s in book.chapters[0].sentences] == [
        "The Start",
        "It was late.",
        "See the map.",
        "A scene",
        "Rain fell.",
    ]
    assert [s.heading for s in book.chapters[0].sentences] == [True, False, False, True, False]
    assert book.left_out == ("front matter",)
    assert read_markdown(path, include_untitled=True).chapters[0].sentences[0].text == "For my cat."
    ids = [s.element_id for c in book.chapters for s in c.sentences]
    assert len(ids) == len(set(ids))


def test_plain_text_without_headings_is_one_chapter(tmp_path: Path) -> None:
    path = tmp_path / "short_story.txt"
    path.write_text("One sentence. Two sentences.\n\nA new paragraph.\n")
    book = read_book(path)
    assert [c.title for c in book.chapters] == ["short story"]
    assert [s.paragraph for s in book.chapters[0].sentences] == [0, 0, 1]


# -- hostile packages --------------------------------------------------------------------------


def _zip(path: Path, entries: dict[str, bytes], *, level: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", level) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _one_line_naming(error: BookError, path: Path, entry: str | None) -> str:
    message = str(error)
    assert "\n" not in message and message.startswith(str(path)) and SECRET not in message
    if entry:
        assert entry in message
    return message


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    path = _zip(tmp_path / "bomb.epub", {"OEBPS/ch1.xhtml": b"\0" * 50_000_000})
    with pytest.raises(BookError) as caught:
        read_epub(path)
    assert "zip bomb" in _one_line_naming(caught.value, path, "OEBPS/ch1.xhtml")


def test_too_many_entries_are_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "many.epub", {f"x/{i}": b"" for i in range(MAX_ENTRIES + 1)}, level=zipfile.ZIP_STORED)
    with pytest.raises(BookError, match="entries in the zip, over the limit"):
        read_epub(path)


@pytest.mark.parametrize("name", ["../evil.xhtml", "/etc/passwd", "OEBPS\\..\\x", "C:/x.xhtml", "a/../../b"])
def test_an_entry_that_would_land_outside_the_package_is_refused(tmp_path: Path, name: str) -> None:
    path = _zip(tmp_path / "traversal.epub", {name: SECRET.encode()})
    with pytest.raises(BookError) as caught, open_package(path):
        pass
    _one_line_naming(caught.value, path, None)


def test_an_entity_declaration_is_refused_and_names_the_entry(tmp_path: Path, book_path: Path) -> None:
    path = tmp_path / "entities.epub"
    with zipfile.ZipFile(book_path) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "OEBPS/ch2.xhtml":
                data = (
                    b'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY s "'
                    + SECRET.encode()
                    + b'">]>'
                    + data.split(b"?>", 1)[1]
                )
            target.writestr(info, data)
    with pytest.raises(BookError) as caught:
        read_epub(path)
    message = _one_line_naming(caught.value, path, "OEBPS/ch2.xhtml")
    assert "document type declaration" in message and "line 1" in message


def test_a_broken_chapter_names_its_entry_and_line_without_its_text(tmp_path: Path, book_path: Path) -> None:
    path = tmp_path / "broken.epub"
    with zipfile.ZipFile(book_path) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "OEBPS/ch3.xhtml":
                data = data.replace(b"</table>", f"<p>{SECRET}</tr></table>".encode())
            target.writestr(info, data)
    with pytest.raises(BookError) as caught:
        read_epub(path)
    assert "OEBPS/ch3.xhtml, line" in _one_line_naming(caught.value, path, "OEBPS/ch3.xhtml")


def test_drm_is_refused(tmp_path: Path, book_path: Path) -> None:
    path = tmp_path / "drm.epub"
    encryption = (
        b'<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        b'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:CipherData>'
        b'<enc:CipherReference URI="OEBPS/ch1.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>'
    )
    with zipfile.ZipFile(book_path) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("META-INF/encryption.xml", encryption)
    with pytest.raises(BookError, match="DRM"):
        read_epub(path)


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ({}, "META-INF/container.xml: missing"),
        ({"META-INF/container.xml": b"<container/>"}, "names no package document"),
        ({"META-INF/container.xml": b"not xml"}, "not well-formed XML"),
    ],
)
def test_a_package_without_its_parts_says_which(tmp_path: Path, entries: dict[str, bytes], problem: str) -> None:
    path = _zip(tmp_path / "parts.epub", entries)
    with pytest.raises(BookError, match=problem):
        read_epub(path)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "text.epub"
    path.write_text(SECRET)
    with pytest.raises(BookError) as caught:
        read_epub(path)
    assert "not a zip package" in _one_line_naming(caught.value, path, None)
