"""Encoded files: chapter MP3s and the book's M4B, streamed block by block.

PyAV (FFmpeg's libraries, shipped in its wheels) encodes and muxes, the way its encode
examples do: open the container once, add the stream, feed frames as the blocks come (PyAV
re-frames them to the codec's frame size), flush, close. MP3 is libmp3lame at a constant bit
rate (a bit rate set and no quality scale is LAME's CBR mode; FFmpeg's muxer writes the Info
header CBR files carry), with ID3v2 tags from FFmpeg's muxer. The M4B is AAC (FFmpeg's own
encoder) in FFmpeg's ``ipod`` muxer, with chapter marks set on the container (``set_chapters``:
FFmpeg writes a QuickTime chapter track and Nero ``chpl``, which Apple Books, VLC and
audiobook players read). Its tags and cover are written afterwards with mutagen, which knows
the iTunes atoms audiobook players read (``stik`` = Audiobook, ``covr``, ``©nam``/``©ART``/
``©wrt``/``©alb``) and rewrites the chunk offsets when the header grows; FFmpeg's muxer would
need a second, video, stream to carry the cover.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.render.join_file import read_blocks

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

MP3_BIT_RATE = 192_000
AAC_BIT_RATE = 64_000  # mono speech; what the big audiobook stores sell


@dataclass(frozen=True, slots=True)
class EncodedFile:
    path: str
    format: str  # "mp3" or "m4b"
    sample_rate: int
    bit_rate: int
    frames: int  # samples encoded (per channel)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True, slots=True)
class BookTags:
    title: str
    authors: tuple[str, ...] = ()
    narrator: str = ""
    language: str = ""
    year: str = ""

    def ffmpeg(self) -> dict[str, str]:
        """Tags as FFmpeg's muxers name them (the MP3 muxer writes them as ID3v2 frames)."""
        tags = {"album": self.title, "artist": ", ".join(self.authors), "genre": "Audiobook"}
        if self.narrator:
            tags["composer"] = self.narrator  # players show the narrator as the composer
        if self.language:
            tags["language"] = self.language
        if self.year:
            tags["date"] = self.year
        return {k: v for k, v in tags.items() if v}


@dataclass(frozen=True, slots=True)
class M4bChapter:
    title: str
    source: Path  # raw float32 mono samples (``master.master_file``'s output)


@dataclass(frozen=True, slots=True)
class Cover:
    data: bytes
    media_type: str  # image/jpeg or image/png


class _AudioWriter:
    """One audio stream in one container, fed float32 mono blocks."""

    def __init__(self, path: Path, fmt: str, codec: str, sample_rate: int, bit_rate: int, tags: Mapping[str, str]):
        import av

        self.container = av.open(str(path), "w", format=fmt)
        for key, value in tags.items():
            self.container.metadata[key] = value
        self.stream = self.container.add_stream(codec, rate=sample_rate, layout="mono")
        self.stream.bit_rate = bit_rate
        self.rate = sample_rate
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        import av
        import numpy as np

        if block.shape[0] == 0:
            return
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(block, dtype=np.float32)[None, :], format="flt", layout="mono"
        )
        frame.sample_rate = self.rate
        frame.pts = self.frames
        frame.time_base = Fraction(1, self.rate)
        self.container.mux(self.stream.encode(frame))
        self.frames += block.shape[0]

    def finish(self) -> None:
        self.container.mux(self.stream.encode(None))

    def close(self) -> None:
        self.container.close()


def encode_mp3(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    out: str | Path,
    *,
    bit_rate: int = MP3_BIT_RATE,
    tags: Mapping[str, str] | None = None,
) -> EncodedFile:
    """Mono float32 ``blocks`` as a CBR MP3 at ``out``."""
    writer = _AudioWriter(Path(out), "mp3", "libmp3lame", sample_rate, bit_rate, tags or {})
    try:
        for block in blocks:
            writer.write(block)
        writer.finish()
    finally:
        writer.close()
    return EncodedFile(str(out), "mp3", sample_rate, bit_rate, writer.frames)


def encode_mp3_file(source: str | Path, sample_rate: int, out: str | Path, **options: object) -> EncodedFile:
    """A raw float32 file (``master_file``'s output) as an MP3, read block by block."""
    return encode_mp3(read_blocks(source), sample_rate, out, **options)  # type: ignore[arg-type]


def encode_m4b(
    chapters: Sequence[M4bChapter],
    sample_rate: int,
    out: str | Path,
    *,
    tags: BookTags,
    cover: Cover | None = None,
    bit_rate: int = AAC_BIT_RATE,
) -> EncodedFile:
    """The chapters' raw files one after the other as AAC in an M4B, a chapter mark at each."""
    out = Path(out)
    writer = _AudioWriter(out, "ipod", "aac", sample_rate, bit_rate, {})
    marks = []
    try:
        for number, chapter in enumerate(chapters):
            start = writer.frames
            for block in read_blocks(chapter.source):
                writer.write(block)
            marks.append(
                {
                    "id": number + 1,
                    "start": start,
                    "end": writer.frames,
                    "time_base": Fraction(1, sample_rate),
                    "metadata": {"title": chapter.title},
                }
            )
        writer.finish()
        writer.container.set_chapters(marks)
    finally:
        writer.close()
    tag_m4b(out, tags, cover)
    return EncodedFile(str(out), "m4b", sample_rate, bit_rate, writer.frames)


def tag_m4b(path: Path, tags: BookTags, cover: Cover | None) -> None:
    from mutagen.mp4 import MP4, MP4Cover

    audio = MP4(str(path))
    if audio.tags is None:
        audio.add_tags()
    assert audio.tags is not None
    audio.tags["\xa9nam"] = [tags.title]
    audio.tags["\xa9alb"] = [tags.title]
    if tags.authors:
        audio.tags["\xa9ART"] = [", ".join(tags.authors)]
        audio.tags["aART"] = [", ".join(tags.authors)]
    if tags.narrator:
        audio.tags["\xa9wrt"] = [tags.narrator]
        audio.tags["desc"] = [f"Narrated by {tags.narrator}"]
    if tags.year:
        audio.tags["\xa9day"] = [tags.year]
    audio.tags["\xa9gen"] = ["Audiobook"]
    audio.tags["stik"] = [2]  # iTunes media kind: Audiobook
    if cover is not None and cover.media_type not in ("image/jpeg", "image/png"):
        log.warning("%s: the cover is %s; an M4B carries JPEG or PNG only: left out", path, cover.media_type)
    elif cover is not None:
        kind = MP4Cover.FORMAT_PNG if cover.media_type == "image/png" else MP4Cover.FORMAT_JPEG
        audio.tags["covr"] = [MP4Cover(cover.data, imageformat=kind)]
    audio.save()
