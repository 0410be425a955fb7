"""Audacity label tracks (File > Export > Labels...: a .txt of tab-separated lines).

    1.250000\t3.900000\tThe quick brown fox
    \\\t0.000000\t0.000000

Each line is a label: start and end in seconds, then its text. A region label (end after
start) is a segment. A point label (start = end) marks an instant, not a stretch of speech, so
the file is refused there with that reason rather than read with zero-length segments. A line
starting with a backslash carries the label above's frequency range (spectral selection) and is
skipped; a region label without text is skipped. Times use '.' (Audacity writes it in every
locale); a ',' is accepted for files edited in a European spreadsheet. The format is three
tab-separated columns, so this small reader is our own.
"""

from __future__ import annotations

import re

from voicebatch.errors import TranscriptError
from voicebatch.inputs.transcripts.segment import Segment

LABEL_LINE = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\t(\d+(?:[.,]\d+)?)(?:\t(.*))?$")
SPECTRAL_LINE = re.compile(r"^\\\t")


def parse_labels(text: str, path: str) -> list[Segment]:
    segments = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or SPECTRAL_LINE.match(line):
            continue
        where = f"line {number}"
        found = LABEL_LINE.match(line)
        if not found:
            raise TranscriptError(path, "expected an Audacity label: start<TAB>end<TAB>text (seconds)", where=where)
        start, end = (float(t.replace(",", ".")) for t in found.group(1, 2))
        if end < start:
            raise TranscriptError(path, "label ends before it starts", where=where)
        if end == start:
            raise TranscriptError(
                path,
                "a point label (start = end) marks an instant, not speech: use region labels that span each phrase",
                where=where,
            )
        spoken = " ".join((found.group(3) or "").split())
        if spoken:
            segments.append(Segment(round(start, 3), round(end, 3), spoken))
    if not segments:
        raise TranscriptError(path, "no region label with text")
    return segments
