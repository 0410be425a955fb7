"""YouTube SBV transcripts (YouTube Studio's "download captions" as .sbv).

    0:00:00.599,0:00:04.160
    >> ALICE: Hi, my name is Alice Miller
    and this is John Brown

A cue is a timing line (start and end, ``H:MM:SS.mmm``, comma between) and its text lines up
to a blank line. YouTube marks a change of speaker with ``>>``, often followed by the
speaker's name in capitals and a colon: the marker is dropped and the name becomes the
speaker. No library reads SBV (pysubs2 and pysrt do not), so this is a reader of our own.
"""

from __future__ import annotations

import re

from voicebatch.errors import TranscriptError
from voicebatch.inputs.transcripts.markup import clean_cue_line
from voicebatch.inputs.transcripts.segment import Segment
from voicebatch.inputs.transcripts.timestamps import parse_timestamp

TIMING = re.compile(r"^\s*(\d+:\d{1,2}:\d{1,2}(?:[.,]\d+)?)\s*,\s*(\d+:\d{1,2}:\d{1,2}(?:[.,]\d+)?)\s*$")
_SPEAKER = re.compile(r"^>>\s*(?:([A-Z][A-Z0-9 .'’-]{0,40}?)\s*:\s+)?")


def parse_sbv(text: str, path: str) -> list[Segment]:
    segments: list[Segment] = []
    cue: tuple[float, float] | None = None
    lines: list[str] = []
    speaker: str | None = None

    def close() -> None:
        if cue is not None and lines:
            segments.append(Segment(cue[0], cue[1], " ".join(lines), speaker))

    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            close()
            cue, lines, speaker = None, [], None
            continue
        if cue is None:
            cue = _timing(line, path, number)
            continue
        spoken, marked = _speaker(line)
        speaker = speaker or marked
        cleaned, _ = clean_cue_line(spoken)
        if cleaned:
            lines.append(cleaned)
    close()
    if not segments:
        raise TranscriptError(path, "no cue with text")
    return segments


def _timing(line: str, path: str, number: int) -> tuple[float, float]:
    where = f"line {number}"
    found = TIMING.match(line)
    if not found:
        raise TranscriptError(path, "expected a cue timing 'H:MM:SS.mmm,H:MM:SS.mmm'", where=where)
    try:
        start, end = (parse_timestamp(t) for t in found.groups())
    except ValueError:
        raise TranscriptError(path, "garbled timestamp (minutes and seconds must be below 60)", where=where) from None
    if end < start:
        raise TranscriptError(path, "cue ends before it starts", where=where)
    return start, end


def _speaker(line: str) -> tuple[str, str | None]:
    found = _SPEAKER.match(line.strip())
    if not found:
        return line, None
    name = found.group(1)
    return line.strip()[found.end() :], (name.strip() if name else None)
