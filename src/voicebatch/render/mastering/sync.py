"""Where each sentence of a book is heard in its section's joined audio.

Joining (``timings``) gives a cue per written piece of every chunk: a sentence, or a piece of
one too long to speak at once, with times from the forced alignment where verification
aligned the chunk (else the chunk's boundaries, else an estimate). The book's sentences and
the chunker's pieces come from the same splitter over the same text, so they are the same
sentences in nearly every case; where they are not (a heading the splitter cuts in two, a
sentence split at clauses), both are laid on one stream of the text's non-space characters:
a sentence starts where the piece holding its first character is at that character, and
ends likewise, times within a piece shared out by characters.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence


class SyncError(ValueError):
    """The pieces spoken are not the sentences given (the text changed between plan and publish)."""


def _stream(texts: Sequence[str]) -> tuple[str, list[int]]:
    """The texts without spaces, one after another, and where each starts (plus the end)."""
    starts, parts, position = [], [], 0
    for text in texts:
        compact = "".join(text.split())
        starts.append(position)
        parts.append(compact)
        position += len(compact)
    starts.append(position)
    return "".join(parts), starts


def sentence_times(sentences: Sequence[str], pieces: Sequence[tuple[str, float, float]]) -> list[tuple[float, float]]:
    """(start, end) seconds of each sentence, from the pieces' (text, start, end) in order."""
    wanted, bounds = _stream(sentences)
    spoken, piece_bounds = _stream([text for text, _, _ in pieces])
    if wanted != spoken:
        at = next(
            (i for i, (a, b) in enumerate(zip(wanted, spoken, strict=False)) if a != b), min(len(wanted), len(spoken))
        )
        raise SyncError(f"the spoken pieces differ from the sentences at character {at + 1}: {wanted[at : at + 30]!r}")

    def at(position: int, *, end: bool) -> float:
        # The piece holding this character: for an end, the one whose last character it follows.
        k = bisect.bisect_left(piece_bounds, position) - 1 if end else bisect.bisect_right(piece_bounds, position) - 1
        k = max(0, min(k, len(pieces) - 1))
        _, start, stop = pieces[k]
        a, b = piece_bounds[k], piece_bounds[k + 1]
        share = (position - a) / (b - a) if b > a else 0.0
        return round(start + (stop - start) * share, 4)

    times = []
    for i in range(len(sentences)):
        start, stop = at(bounds[i], end=False), at(bounds[i + 1], end=True)
        times.append((start, max(start, stop)))
    return times
