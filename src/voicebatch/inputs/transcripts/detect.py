"""Which reader a transcript needs: by suffix, and by content where the suffix says little.

A ``.txt`` is the usual name for plain text, but also for what other tools export: Audacity's
label track, an SRT or SBV saved under the wrong name, a spreadsheet export. Its first lines
decide; a ``.txt`` whose lines start with times in a layout no reader knows is refused (its
times would otherwise be read as words). ``.json`` is always a recogniser's JSON and ``.xml``
always TTML: their readers check the shape and say what is wrong.
"""

from __future__ import annotations

import json
import re

from voicebatch.errors import TranscriptError
from voicebatch.inputs.transcripts.labels import LABEL_LINE
from voicebatch.inputs.transcripts.sbv import TIMING as SBV_TIMING

# suffix -> reader
SUFFIX_FORMATS = {
    ".srt": "srt",
    ".vtt": "vtt",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "txt",
    ".ttml": "ttml",
    ".dfxp": "ttml",
    ".xml": "ttml",
    ".ass": "ass",
    ".ssa": "ssa",
    ".sbv": "sbv",
    ".json": "json",
}
# what ``--from`` accepts (a reader's name, or a suffix that names one)
TRANSCRIPT_TYPES = ("srt", "vtt", "csv", "tsv", "txt", "ttml", "dfxp", "ass", "ssa", "sbv", "json", "labels")

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?"
_TABLE_ROW = re.compile(rf"^\s*(?:{_TIME}|\d+(?:[.,]\d+)?)\s*([\t,;])\s*(?:{_TIME}|\d+(?:[.,]\d+)?)\s*[\t,;]")
_TABLE_HEADER = re.compile(r"^\s*\"?(?:start|begin)[^\t,;]*\"?\s*([\t,;])\s*\"?(?:end|stop)", re.IGNORECASE)
_TIMED_LINE = re.compile(rf"^\s*[\[(]?\s*(?:{_TIME}|\d+\.\d+\s+\d+\.\d+\s)")
_HEAD_LINES = 5


def reader_for(suffix: str) -> str | None:
    """The reader of a file suffix or a ``--from`` type (``.dfxp`` -> ``ttml``); None if unknown."""
    kind = suffix.lower() if suffix.startswith(".") else f".{suffix.lower()}"
    if kind == ".labels":
        return "labels"
    return SUFFIX_FORMATS.get(kind)


def detect_text_format(text: str, path: str) -> str:
    """The reader for a file whose name does not tell (a .txt, standard input): ``txt`` when it
    is plain text. Raises ``TranscriptError`` for timed lines in a layout no reader knows."""
    lines = [(n, line) for n, line in enumerate(text.lstrip("\ufeff").split("\n"), start=1) if line.strip()]
    if not lines:
        return "txt"
    head = [line for _, line in lines[:_HEAD_LINES]]
    first = head[0].strip()
    if first.startswith("WEBVTT"):
        return "vtt"
    if first.lower() in ("[script info]", "[events]", "[v4+ styles]", "[v4 styles]"):
        return "ssa" if re.search(r"^\s*\[V4 Styles\]", text, re.IGNORECASE | re.MULTILINE) else "ass"
    if any("-->" in line for line in head[:3]):
        return "srt"
    if SBV_TIMING.match(first):
        return "sbv"
    if LABEL_LINE.match(head[0]):
        return "labels"
    if first.startswith("<") and re.search(r"<(?:\w+:)?tt[\s>]", text[:4000]):
        return "ttml"
    if first[:1] in "{[" and _is_json(text):
        return "json"
    table = _TABLE_ROW.match(head[0]) or _TABLE_HEADER.match(head[0])
    if table:
        return "tsv" if table.group(1) == "\t" else "csv"
    timed = [number for number, line in lines[:_HEAD_LINES] if _TIMED_LINE.match(line)]
    if len(timed) >= min(2, len(lines)):  # two lines starting with a time are a layout, one among prose is not
        raise TranscriptError(
            path,
            "lines start with times, but in no layout voicebatch reads (SRT, WebVTT, SBV, ASS, TTML, "
            "Audacity labels, CSV/TSV, Whisper JSON): save it in one of these, or remove the times",
            where=f"line {timed[0]}",
        )
    return "txt"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
