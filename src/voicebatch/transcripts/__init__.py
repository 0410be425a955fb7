"""Transcripts: SRT, WebVTT, CSV/TSV and plain text in; SRT, WebVTT, CSV, JSON, text out.

``read_transcript(path)`` picks the reader from the file extension and returns a
``Transcript``; every broken file raises ``TranscriptError`` whose message is one line
naming the file, the line or row, and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

from voicebatch.errors import TranscriptError
from voicebatch.transcripts.segment import Segment, Transcript

__all__ = [
    "TRANSCRIPT_SUFFIXES",
    "Segment",
    "Transcript",
    "TranscriptError",
    "parse_transcript_text",
    "read_transcript",
]

TRANSCRIPT_SUFFIXES = (".srt", ".vtt", ".csv", ".tsv", ".txt")


def read_transcript(path: str | Path) -> Transcript:
    from voicebatch.transcripts.textio import read_transcript_text

    suffix = Path(path).suffix.lower()
    if suffix not in TRANSCRIPT_SUFFIXES:
        raise TranscriptError(
            path, f"unknown transcript type {suffix or '(none)'!r}; use {', '.join(TRANSCRIPT_SUFFIXES)}"
        )
    text, encoding = read_transcript_text(path)
    return parse_transcript_text(text, str(path), suffix=suffix, encoding=encoding)


def parse_transcript_text(text: str, path: str, *, suffix: str, encoding: str = "utf-8") -> Transcript:
    """Parse already-decoded text (``\\n`` line ends) of the given file type."""
    from voicebatch.transcripts.cues import parse_srt, parse_vtt
    from voicebatch.transcripts.tables import parse_table

    fmt = suffix.lstrip(".").lower()
    text = text.lstrip("\ufeff")
    if fmt == "txt":
        spoken = " ".join(text.split())
        if not spoken:
            raise TranscriptError(path, "the file is empty")
        return Transcript(path, fmt, encoding, (), timed=False, untimed_text=spoken)
    if fmt == "srt":
        segments = parse_srt(text, path)
    elif fmt == "vtt":
        segments = parse_vtt(text, path)
    elif fmt in ("csv", "tsv"):
        segments = parse_table(text, path, tsv=fmt == "tsv")
    else:
        raise TranscriptError(path, f"unknown transcript type {suffix!r}")
    return Transcript(path, fmt, encoding, tuple(segments))
