"""Part of the audiobook path end to end, without synthesis: the test book (EPUB 3 and EPUB 2)
read into chapters, each chapter's sentences spoken by espeak-ng, mastered to ACX and encoded:
chapter MP3s that pass an independent ACX measurement, an M4B whose chapter marks carry the
three titles in order with the book's tags and cover, and a read-along EPUB 3 that EPUBCheck
passes with no errors and whose SMIL syncs every sentence of the three chapters to audio
inside the book, at the times the sentences are spoken."""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av
import numpy as np
import pytest
from lxml import etree
from mutagen.mp4 import MP4

from voicebatch.inputs.books.epub import read_entry, read_epub
from voicebatch.inputs.books.markdown import read_markdown
from voicebatch.inputs.books.records import Book
from voicebatch.render.mastering.acx import check_acx
from voicebatch.render.mastering.encode import BookTags, Cover, M4bChapter, encode_m4b, encode_mp3_file
from voicebatch.render.mastering.master import MasterResult, master_file
from voicebatch.render.mastering.profiles import PROFILES
from voicebatch.render.mastering.readalong import AudioTrack, Clip, write_read_along

from acx_helpers import assert_acx, decode
from book_helpers import AUTHOR, CHAPTER_SENTENCES, CHAPTER_TITLES, TITLE, build_epub, epubcheck, png, spoken

NARRATOR = "Nora Reader"
SMIL = "{http://www.w3.org/ns/SMIL}"
OPF = "{http://www.idpf.org/2007/opf}"


@dataclass
class Made:
    book: Book
    mastered: list[MasterResult]
    mp3s: list[Path]
    clips: list[Clip]
    m4b: Path
    readalong: Path


def _make(book: Book, directory: Path) -> Made:
    mastered, mp3s, clips, tracks = [], [], [], []
    for chapter in book.chapters:
        samples, times = spoken([s.text for s in chapter.sentences])
        raw = directory / f"chapter-{chapter.index + 1:03d}.f32"
        samples.astype(np.float32).tofile(raw)
        result = master_file(raw, 24_000, raw.with_suffix(".acx.f32"), PROFILES["acx"], seed=chapter.index)
        mp3 = encode_mp3_file(result.path, result.sample_rate, raw.with_suffix(".mp3"), tags={"title": chapter.title})
        mastered.append(result)
        mp3s.append(Path(mp3.path))
        tracks.append(AudioTrack(Path(mp3.path).name, Path(mp3.path)))
        clips += [
            Clip(s.href, s.element_id, Path(mp3.path).name, result.file_time(a), result.file_time(b))
            for s, (a, b) in zip(chapter.sentences, times, strict=True)
        ]
    cover = book.metadata.cover
    m4b = encode_m4b(
        [M4bChapter(c.title, Path(r.path)) for c, r in zip(book.chapters, mastered, strict=True)],
        44_100,
        directory / "book.m4b",
        tags=BookTags(book.metadata.title, book.metadata.authors, NARRATOR),
        cover=Cover(read_entry(book.source, cover.href), cover.media_type) if cover else None,
    )
    readalong = write_read_along(
        book, directory / "readalong.epub", clips, tracks, narrator=NARRATOR, modified=datetime(2026, 1, 2, tzinfo=UTC)
    )
    return Made(book, mastered, mp3s, clips, Path(m4b.path), Path(readalong.path))


@pytest.fixture(scope="module", params=["epub3", "epub2"])
def made(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Made:
    directory = tmp_path_factory.mktemp(request.param)
    book = read_epub(build_epub(directory / f"{request.param}.epub", epub3=request.param == "epub3"))
    return _make(book, directory)


def test_each_chapter_mp3_passes_acx_measured_independently(made: Made) -> None:
    assert len(made.mp3s) == 3
    for mp3 in made.mp3s:
        assert_acx(mp3)
        assert check_acx(mp3).passed, check_acx(mp3).line()


def test_the_m4b_has_the_three_chapters_in_order_with_tags_and_cover(made: Made) -> None:
    with av.open(str(made.m4b)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.codec_context.sample_rate == 44_100
        chapters = container.chapters()
    assert [c["metadata"]["title"] for c in chapters] == list(CHAPTER_TITLES)
    starts = [float(c["start"] * c["time_base"]) for c in chapters]
    expected = np.cumsum([0.0] + [r.duration for r in made.mastered[:-1]])
    assert np.allclose(starts, expected, atol=0.01)
    tags = MP4(str(made.m4b)).tags
    assert tags is not None
    assert (tags["\xa9nam"], tags["\xa9ART"], tags["\xa9wrt"], tags["stik"]) == ([TITLE], [AUTHOR], [NARRATOR], [2])
    assert bytes(tags["covr"][0]) == png(16, 24, (30, 60, 200))  # the EPUB's cover
    samples, rate, _ = decode(made.m4b)
    assert abs(samples.shape[0] / rate - sum(r.duration for r in made.mastered)) < 0.1


def test_the_read_along_book_passes_epubcheck(made: Made) -> None:
    code, report = epubcheck(made.readalong)
    errors = [line for line in report.splitlines() if line.startswith(("ERROR", "FATAL"))]
    assert code == 0 and not errors, "\n".join(errors) or report


def _book(path: Path) -> tuple[zipfile.ZipFile, str, etree._Element]:
    zf = zipfile.ZipFile(path)
    container = etree.fromstring(zf.read("META-INF/container.xml"))
    opf = next(container.iter("{*}rootfile")).get("full-path")
    return zf, opf, etree.fromstring(zf.read(opf))


def _seconds(value: str) -> float:
    h, m, s = value.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_every_sentence_is_synced_to_audio_inside_the_book(made: Made) -> None:
    zf, opf, package = _book(made.readalong)
    base = posixpath.dirname(opf)
    manifest = {posixpath.normpath(posixpath.join(base, i.get("href"))): i for i in package.iter(f"{OPF}item")}
    pars = []
    for item in package.iter(f"{OPF}item"):
        if item.get("media-type") == "application/smil+xml":
            smil = posixpath.join(base, item.get("href"))
            for par in etree.fromstring(zf.read(smil)).iter(f"{SMIL}par"):
                text, audio = par.find(f"{SMIL}text"), par.find(f"{SMIL}audio")
                doc, fragment = text.get("src").split("#")
                pars.append(
                    (
                        posixpath.normpath(posixpath.join(posixpath.dirname(smil), doc)),
                        fragment,
                        posixpath.normpath(posixpath.join(posixpath.dirname(smil), audio.get("src"))),
                        _seconds(audio.get("clipBegin")),
                        _seconds(audio.get("clipEnd")),
                    )
                )
    sentences = [s for c in made.book.chapters for s in c.sentences]
    assert [(d, f) for d, f, *_ in pars] == [(s.href, s.element_id) for s in sentences]  # all, once, in order
    assert [" ".join(s.text for s in c.sentences) for c in made.book.chapters] == [
        " ".join(c) for c in CHAPTER_SENTENCES
    ]
    documents = {}
    for (doc, fragment, audio, begin, end), sentence, clip in zip(pars, sentences, made.clips, strict=True):
        assert manifest[audio].get("media-type") == "audio/mpeg"  # inside the book, in its manifest
        assert manifest[doc].get("media-overlay")  # the document names its overlay
        assert abs(begin - clip.begin) < 0.001 and end > begin
        root = documents.setdefault(doc, etree.fromstring(zf.read(doc)))
        element = next(e for e in root.iter() if e.get("id") == fragment)
        assert " ".join("".join(element.itertext()).split()) == sentence.text
    # The audio in the book is the chapter MP3, byte for byte.
    audio_entries = sorted({a for _, _, a, _, _ in pars})
    assert [zf.read(a) for a in audio_entries] == [p.read_bytes() for p in made.mp3s]
    durations = {
        m.get("refines"): _seconds(m.text) for m in package.iter(f"{OPF}meta") if m.get("property") == "media:duration"
    }
    assert abs(durations.pop(None) - sum(durations.values())) < 0.002
    assert len(durations) == 3
    active = [m.text for m in package.iter(f"{OPF}meta") if m.get("property") == "media:active-class"]
    assert active == ["-epub-media-overlay-active"]


def test_each_clip_starts_where_its_sentence_is_heard(made: Made) -> None:
    """The times map through the mastering (cut, head of room tone) to the encoded audio."""
    by_file = {}
    for clip in made.clips:
        if clip.audio not in by_file:
            samples, rate, _ = decode(next(p for p in made.mp3s if p.name == clip.audio))
            step = rate // 100
            level = 20 * np.log10(
                np.sqrt(np.mean(samples[: samples.shape[0] // step * step].reshape(-1, step) ** 2, axis=1)) + 1e-9
            )
            by_file[clip.audio] = level
        level = by_file[clip.audio]
        window = int((clip.begin - 0.2) * 100)
        onset = (window + int(np.argmax(level[window:] > -35))) / 100
        assert abs(onset - clip.begin) < 0.05, (clip, onset)


def test_a_markdown_book_becomes_a_valid_read_along_epub(tmp_path: Path) -> None:
    path = tmp_path / "story.md"
    path.write_text("# The Start\n\nIt was late. Rain fell.\n\n# The End\n\nAll done!\n")
    made = _make(read_markdown(path, title="A Story"), tmp_path)
    code, report = epubcheck(made.readalong)
    assert code == 0, report
    zf, _, package = _book(made.readalong)
    assert re.search(rb'id="c1-s2">It was late\.</span>', zf.read("text/chapter-001.xhtml"))
    assert len([i for i in package.iter(f"{OPF}item") if i.get("media-overlay")]) == 2
