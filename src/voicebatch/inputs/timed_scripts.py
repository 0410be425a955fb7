"""Timed scripts: a subtitle track (SRT, WebVTT, TTML, ASS/SSA, SBV) given as a script.

Each cue is spoken on its own, at its cue's start, fast enough to be over before the next
cue starts (``voicebatch.inputs.timed_plan`` chooses the rates, ``voicebatch.render.timed_render`` places
the takes). Here the file becomes a ``Script`` whose parts are its cues, one part a cue, in
order, and whose ``cues`` keep the source times and text (the published subtitles).

A cue's voice: a ``[voice]`` tag at the start of its text (``[voice speed=0.9 lang=de]``
as in any script), else its speaker (a WebVTT ``<v Name>`` span, an ASS ``Name`` field, an
SBV ``>> NAME:``) when that names a known voice, else the voice of the cue before, else the
only voice there is. Errors name the cue (``cue 3``: its position in the file, from 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import ScriptError, TranscriptError

if TYPE_CHECKING:
    from voicebatch.inputs.scripts import ScriptPart
    from voicebatch.inputs.transcripts import Segment

# Subtitle formats only: .txt, .csv and .json mean other things in a scripts folder.
TIMED_SUFFIXES = (".srt", ".vtt", ".ttml", ".dfxp", ".ass", ".ssa", ".sbv")

_Fail = Callable[..., ScriptError]


def read_cues(path: Path) -> tuple[Segment, ...]:
    """The cues of a subtitle file, checked to be usable as a timed script. Raises ``ScriptError``."""
    from voicebatch.inputs.transcripts import read_transcript

    try:
        transcript = read_transcript(path)
    except TranscriptError as e:
        raise ScriptError(e.path, e.message, where=e.where) from None
    cues = transcript.segments
    if not cues:
        raise ScriptError(path, "no cues: a timed script needs at least one cue with text")
    for number, (before, cue) in enumerate(pairwise(cues), start=2):
        if cue.start < before.start:
            # A cue before the previous one: which slot it owns is ambiguous; the file says so.
            raise ScriptError(
                path,
                f"starts at {cue.start:.3f} s, before cue {number - 1} ({before.start:.3f} s): "
                "cues must be in order of their start times",
                where=f"cue {number}",
            )
    return cues


def cue_lines(cues: Sequence[Segment]) -> str:
    """The script's text: one line a cue (so that a line number is a cue number)."""
    return "\n".join(" ".join(c.text.split()) for c in cues)


def timed_parts(
    text: str,
    cues: Sequence[Segment],
    known: set[str] | None,
    fail: _Fail,
    tag: re.Pattern[str],
    attributes: Callable[[re.Match[str], _Fail, int], tuple[float, str | None]],
    only_voice: Callable[[set[str] | None, _Fail], str],
) -> list[ScriptPart]:
    """One part a cue (``text`` as ``cue_lines`` wrote it); ``fail(message, line)`` names the cue."""
    from voicebatch.inputs.scripts import ScriptPart, normalise_text
    from voicebatch.text.markup import strip_markup

    parts: list[ScriptPart] = []
    voice: str | None = None
    for number, (line, cue) in enumerate(zip(text.split("\n"), cues, strict=True), start=1):
        speed, lang = 1.0, None
        found = tag.match(line)
        if found:
            voice = found.group(1)
            if known is not None and voice not in known:
                raise fail(f"unknown voice {voice!r} in tag [{voice}] (known: {', '.join(sorted(known))})", number)
            speed, lang = attributes(found, fail, number)
            line = line[found.end() :]
        elif cue.speaker and known is not None and cue.speaker in known:
            voice = cue.speaker
        if tag.search(line):
            raise fail("a voice tag belongs at the start of a cue: one cue, one voice", number)
        spoken = normalise_text(line)
        if not strip_markup(spoken).strip():
            raise fail("no text to speak in this cue", number)
        if voice is None:
            voice = only_voice(known, lambda message, line=number: fail(message, line))
        parts.append(ScriptPart(voice, spoken, speed, lang))
    return parts


def timed_text(parts: Sequence[ScriptPart], cues: Sequence[Segment], attributes: Callable) -> str:
    """What the output hash covers for a timed script: every cue's times with its part, so a
    retimed cue (and so its rate) is a new output."""
    return " ".join(
        f"{c.start:.3f}-{c.end:.3f} [{p.voice}{attributes(p)}] {p.text}" for p, c in zip(parts, cues, strict=True)
    )
