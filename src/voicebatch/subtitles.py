"""Subtitle cues from sentence timings: at most 42 characters a line and 2 lines a cue.

A sentence that does not fit one cue is split at word boundaries into several cues; the
times of the splits inside the sentence are estimated in proportion to UTF-8 bytes (the
rule the timings use) and marked estimated in the timing table, not here.
"""

from __future__ import annotations

from collections.abc import Sequence

from voicebatch.timings import Cue
from voicebatch.transcripts import Segment

MAX_LINE_CHARS = 42
MAX_LINES = 2


def wrap_words(words: Sequence[str], max_chars: int = MAX_LINE_CHARS) -> list[str]:
    """Greedy lines of whole words; a single word longer than a line gets a line of its own."""
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def subtitle_segments(
    sentences: Sequence[Cue], max_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES
) -> list[Segment]:
    segments: list[Segment] = []
    for cue in sentences:
        lines = wrap_words(cue.text.split(), max_chars)
        groups = [lines[i : i + max_lines] for i in range(0, len(lines), max_lines)]
        weights = [len(" ".join(g).encode("utf-8")) for g in groups]
        total = sum(weights) or 1
        start, acc = cue.start_sample, 0
        for group, weight in zip(groups, weights, strict=True):
            acc += weight
            end = (
                cue.end_sample
                if acc == total
                else cue.start_sample + round((cue.end_sample - cue.start_sample) * acc / total)
            )
            segments.append(
                Segment(round(start / cue.sample_rate, 3), round(end / cue.sample_rate, 3), "\n".join(group))
            )
            start = end
    return segments
