"""SRT and WebVTT readers.

Own readers rather than pysrt / webvtt-py parsing: users need one error line with the
line number (neither library reports it), and the real files these readers take
(legacy encodings, '.' before milliseconds, YouTube rolling captions) need repairs the
libraries do not make. Writing, and the tests that parse our output back, use the
libraries (see ``writers``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from voicebatch.errors import TranscriptError
from voicebatch.inputs.transcripts.markup import clean_cue_line
from voicebatch.inputs.transcripts.segment import Segment
from voicebatch.inputs.transcripts.timestamps import parse_timestamp

_ARROW = re.compile(r"^\s*(\S+)\s*-->\s*(\S+)(?:\s+.*)?$")
_VTT_SKIPPED_BLOCKS = ("NOTE", "STYLE", "REGION")


@dataclass(frozen=True, slots=True)
class _Block:
    first_line: int  # 1-based line number of the block's first line
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Cue:
    start: float
    end: float
    lines: tuple[str, ...]  # cleaned text, one entry per non-empty line
    speaker: str | None


def parse_srt(text: str, path: str) -> list[Segment]:
    blocks = list(_blocks(text.split("\n"), first_line=1))
    cues: list[_Cue] = []
    for block in blocks:
        timing_at = _timing_index(block)
        if timing_at is None:
            if cues and not _is_number_only(block):
                # A blank line inside a cue's text: editors write these; keep the text.
                last = cues.pop()
                extra = _clean_lines(block.lines)
                cues.append(_Cue(last.start, last.end, last.lines + extra[0], last.speaker or extra[1]))
                continue
            raise TranscriptError(
                path,
                "expected a cue timing 'HH:MM:SS,mmm --> HH:MM:SS,mmm' (a cue number may come first)",
                where=f"line {block.first_line}",
            )
        cues.append(_read_cue(block, timing_at, path))
    return _to_segments(cues, path)


def parse_vtt(text: str, path: str) -> list[Segment]:
    lines = text.split("\n")
    if not lines[0].lstrip("\ufeff").startswith("WEBVTT"):
        raise TranscriptError(path, "a WebVTT file starts with 'WEBVTT'; this one does not", where="line 1")
    blocks = list(_blocks(lines, first_line=1))
    cues: list[_Cue] = []
    for block in blocks[1:]:  # the first block is the WEBVTT header (and its metadata)
        if block.lines[0].split(" ", 1)[0].split("\t", 1)[0] in _VTT_SKIPPED_BLOCKS:
            continue
        timing_at = _timing_index(block)
        if timing_at is None:
            raise TranscriptError(
                path,
                "expected a cue timing 'HH:MM:SS.mmm --> HH:MM:SS.mmm' (a cue number may come first)",
                where=f"line {block.first_line}",
            )
        cues.append(_read_cue(block, timing_at, path))
    return _to_segments(_merge_rolling(cues), path)


def _blocks(lines: list[str], first_line: int) -> Iterator[_Block]:
    current: list[str] = []
    start = first_line
    for number, line in enumerate(lines, start=first_line):
        # A space-only line right after a timing line is payload (YouTube writes one), not
        # the blank line that ends a cue.
        if line.strip() or (line and current and "-->" in current[-1]):
            if not current:
                start = number
            current.append(line)
        elif current:
            yield _Block(start, tuple(current))
            current = []
    if current:
        yield _Block(start, tuple(current))


def _timing_index(block: _Block) -> int | None:
    # The timing line is first, or second after a cue number / identifier.
    for i, line in enumerate(block.lines[:2]):
        if "-->" in line:
            return i
    return None


def _is_number_only(block: _Block) -> bool:
    return len(block.lines) == 1 and block.lines[0].strip().isdigit()


def _read_cue(block: _Block, timing_at: int, path: str) -> _Cue:
    line_no = block.first_line + timing_at
    where = f"line {line_no}"
    timing = block.lines[timing_at]
    m = _ARROW.match(timing)
    if not m:
        raise TranscriptError(path, "garbled cue timing (expected 'start --> end')", where=where)
    times = []
    for side, raw in zip(("start", "end"), m.groups(), strict=True):
        try:
            times.append(parse_timestamp(raw))
        except ValueError:  # the timestamp is not quoted: a message never carries a file's content
            raise TranscriptError(path, f"garbled {side} timestamp (expected HH:MM:SS,mmm)", where=where) from None
    start, end = times
    if end < start:
        raise TranscriptError(path, f"cue ends ({m.group(2)}) before it starts ({m.group(1)})", where=where)
    text_lines, speaker = _clean_lines(block.lines[timing_at + 1 :])
    return _Cue(start, end, text_lines, speaker)


def _clean_lines(lines: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    cleaned: list[str] = []
    speaker = None
    for line in lines:
        text, line_speaker = clean_cue_line(line)
        speaker = speaker or line_speaker
        if text:
            cleaned.append(text)
    return tuple(cleaned), speaker


def _merge_rolling(cues: list[_Cue]) -> list[_Cue]:
    """Undo roll-up captions (YouTube auto-captions).

    Each YouTube cue repeats the line the previous cue introduced above its own new line,
    and a 10 ms cue between them repeats the line alone. Keep each line once: in a
    multi-line cue or a flash cue (< 50 ms; YouTube's last 10 ms) drop a leading line equal to the last line
    already kept; a cue left with nothing new is a repeat and is dropped. A single-line
    cue of normal length that says the same as the one before ("Yes." "Yes.") is kept.
    """
    merged: list[_Cue] = []
    last_line: str | None = None
    for cue in cues:
        lines = list(cue.lines)
        rolling = len(lines) > 1 or cue.end - cue.start < 0.05
        while rolling and lines and lines[0] == last_line:
            lines.pop(0)
        if not lines:
            continue
        merged.append(_Cue(cue.start, cue.end, tuple(lines), cue.speaker))
        last_line = lines[-1]
    return merged


def _to_segments(cues: list[_Cue], path: str) -> list[Segment]:
    segments = [Segment(c.start, c.end, " ".join(c.lines), c.speaker) for c in cues if c.lines]
    if not segments:
        raise TranscriptError(path, "no cue with text")
    return segments
