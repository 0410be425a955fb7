"""Transcripts in: SRT, WebVTT, CSV/TSV, TTML/DFXP, ASS/SSA, SBV, Whisper JSON, Audacity labels,
plain text. Out: SRT, WebVTT, CSV, JSON, text.

``read_transcript(path)`` picks the reader from the file extension (and, for ``.txt``, from
the content: ``detect``) and returns a ``Transcript``; every broken file raises
``TranscriptError`` whose message is one line naming the file, the line, row, element or
segment, and what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from voicebatch.errors import TranscriptError
from voicebatch.inputs.transcripts.segment import Segment, Transcript, Word

__all__ = [
    "TRANSCRIPT_SUFFIXES",
    "Segment",
    "Transcript",
    "TranscriptError",
    "Word",
    "parse_transcript_text",
    "read_transcript",
]

TRANSCRIPT_SUFFIXES = (
    ".srt",
    ".vtt",
    ".csv",
    ".tsv",
    ".txt",
    ".ttml",
    ".dfxp",
    ".xml",
    ".ass",
    ".ssa",
    ".sbv",
    ".json",
)


def read_transcript(path: str | Path) -> Transcript:
    from voicebatch.inputs.transcripts.textio import read_transcript_text

    suffix = Path(path).suffix.lower()
    if suffix not in TRANSCRIPT_SUFFIXES:
        raise TranscriptError(
            path, f"unknown transcript type {suffix or '(none)'!r}; use {', '.join(TRANSCRIPT_SUFFIXES)}"
        )
    text, encoding = read_transcript_text(path)
    return parse_transcript_text(text, str(path), suffix=suffix, encoding=encoding)


def parse_transcript_text(text: str, path: str, *, suffix: str, encoding: str = "utf-8") -> Transcript:
    """Parse already-decoded text (``\\n`` line ends) of the given file type (a suffix, or a
    reader's name such as ``.labels``)."""
    from voicebatch.inputs.transcripts.detect import detect_text_format, reader_for

    text = text.lstrip("\ufeff")
    fmt = reader_for(suffix)
    if fmt is None:
        raise TranscriptError(path, f"unknown transcript type {suffix!r}")
    if fmt == "txt":
        fmt = detect_text_format(text, path)
    if fmt == "txt":
        spoken = " ".join(text.split())
        if not spoken:
            raise TranscriptError(path, "the file is empty")
        return Transcript(path, fmt, encoding, (), timed=False, untimed_text=spoken)
    return Transcript(path, fmt, encoding, tuple(_readers()[fmt](text, path)))


def _readers() -> dict[str, Callable[[str, str], list[Segment]]]:
    from functools import partial

    from voicebatch.inputs.transcripts.ass import parse_ass
    from voicebatch.inputs.transcripts.cues import parse_srt, parse_vtt
    from voicebatch.inputs.transcripts.labels import parse_labels
    from voicebatch.inputs.transcripts.sbv import parse_sbv
    from voicebatch.inputs.transcripts.tables import parse_table
    from voicebatch.inputs.transcripts.ttml import parse_ttml
    from voicebatch.inputs.transcripts.whisper import parse_whisper_json

    return {
        "srt": parse_srt,
        "vtt": parse_vtt,
        "csv": partial(parse_table, tsv=False),
        "tsv": partial(parse_table, tsv=True),
        "ttml": parse_ttml,
        "ass": parse_ass,
        "ssa": partial(parse_ass, flavour="ssa"),
        "sbv": parse_sbv,
        "json": parse_whisper_json,
        "labels": parse_labels,
    }
