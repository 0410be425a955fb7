"""ASS and SSA transcripts (SubStation Alpha: Aegisub, fansubs, anime and karaoke tracks).

Only ``Dialogue:`` events of the ``[Events]`` section are speech; ``Comment:`` events (notes
and disabled lines in Aegisub), styles, fonts and pictures are skipped. Fields are read in the
order the section's ``Format:`` line names (SSA's ``Marked`` and ASS's ``Layer`` both work);
the text field is the last and may hold commas. In the text, override blocks ``{...}`` (``\\i1``,
``\\pos``, karaoke ``\\k``; Aegisub also keeps comments in braces) are removed, and so are the
drawing commands between ``{\\p1}`` and ``{\\p0}``; ``\\N`` and ``\\n`` (line breaks) and ``\\h``
(a hard space) become spaces. The ``Name`` (actor) field is the speaker. Events are sorted by
start time: editors keep them in any order.

Written here rather than with pysubs2 (checked): pysubs2 reads the fields in a fixed order
whatever the ``Format:`` line says, keeps drawing commands in its plain text, silently accepts a
Dialogue line cut short, and reports a bad time without the line it stands on (and with the
line's content, which errors here never repeat). pysubs2 writes the files of the round-trip
tests instead.
"""

from __future__ import annotations

import re

from voicebatch.errors import TranscriptError
from voicebatch.inputs.transcripts.segment import Segment

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_TIME = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2})(?:[.:](\d+))?$")
_OVERRIDE = re.compile(r"\{[^{}]*\}")
_DRAWING = re.compile(r"\\p(\d+)")
_DEFAULT_FORMAT = {
    "ass": ("layer", "start", "end", "style", "name", "marginl", "marginr", "marginv", "effect", "text"),
    "ssa": ("marked", "start", "end", "style", "name", "marginl", "marginr", "marginv", "effect", "text"),
}


def parse_ass(text: str, path: str, *, flavour: str = "ass") -> list[Segment]:
    section = None
    fields: tuple[str, ...] | None = None
    events_seen = False
    segments: list[Segment] = []
    for number, line in enumerate(text.split("\n"), start=1):
        heading = _SECTION.match(line)
        if heading:
            section = heading.group(1).strip().lower()
            events_seen = events_seen or section == "events"
            continue
        if section != "events" or not line.strip() or line.lstrip().startswith(";"):
            continue
        kind, colon, rest = line.partition(":")
        kind = kind.strip().lower()
        where = f"line {number}"
        if not colon:
            raise TranscriptError(path, "expected 'Format:', 'Dialogue:' or 'Comment:' in [Events]", where=where)
        if kind == "format":
            fields = _format(rest, path, where)
        elif kind == "dialogue":
            segment = _dialogue(rest, fields or _DEFAULT_FORMAT[_flavour(flavour)], path, where)
            if segment is not None:
                segments.append(segment)
        # Comment:, Picture:, Sound:, Movie:, Command: events are not speech.
    if not events_seen:
        raise TranscriptError(path, "no [Events] section: not an ASS/SSA file")
    if not segments:
        raise TranscriptError(path, "no Dialogue event with text")
    return sorted(segments, key=lambda s: s.start)


def _flavour(flavour: str) -> str:
    return "ssa" if flavour == "ssa" else "ass"


def _format(rest: str, path: str, where: str) -> tuple[str, ...]:
    fields = tuple(f.strip().lower() for f in rest.split(","))
    missing = [name for name in ("start", "end", "text") if name not in fields]
    if missing:
        raise TranscriptError(path, f"the events Format line names no {', '.join(missing)} field", where=where)
    if fields[-1] != "text":
        raise TranscriptError(path, "the events Format line must end with Text", where=where)
    return fields


def _dialogue(rest: str, fields: tuple[str, ...], path: str, where: str) -> Segment | None:
    values = rest.lstrip().split(",", len(fields) - 1)
    if len(values) < len(fields):
        raise TranscriptError(
            path, f"Dialogue has {len(values)} fields, the Format line names {len(fields)}", where=where
        )
    event = dict(zip(fields, values, strict=True))
    start = _time(event["start"], "Start", path, where)
    end = _time(event["end"], "End", path, where)
    if end < start:
        raise TranscriptError(path, "Dialogue ends before it starts", where=where)
    spoken = clean_ass_text(event["text"])
    if not spoken:
        return None
    speaker = " ".join(event.get("name", "").split()) or None
    return Segment(start, end, spoken, speaker)


def _time(value: str, name: str, path: str, where: str) -> float:
    found = _TIME.match(value.strip())
    if not found or int(found.group(2)) >= 60 or int(found.group(3)) >= 60:
        raise TranscriptError(path, f"Dialogue {name} is not a time (H:MM:SS.cc)", where=where)
    hours, minutes, seconds, fraction = found.groups()
    total = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return round(total + (int(fraction) / 10 ** len(fraction) if fraction else 0.0), 3)


def clean_ass_text(text: str) -> str:
    """The spoken words of an event's text: no override blocks, no drawings, breaks as spaces."""
    out: list[str] = []
    drawing = False
    position = 0
    for block in _OVERRIDE.finditer(text):
        if not drawing:
            out.append(text[position : block.start()])
        for scale in _DRAWING.findall(block.group()):
            drawing = int(scale) > 0
        position = block.end()
    if not drawing:
        out.append(text[position:])
    plain = "".join(out).replace("\\N", " ").replace("\\n", " ").replace("\\h", " ")
    return " ".join(plain.split())
