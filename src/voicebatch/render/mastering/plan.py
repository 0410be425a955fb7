"""What a book's audio is cut into: chapter parts under ACX's length limit, the opening and
closing credits, and the retail sample. Pure functions over sentence times (seconds in the
chapter's audio), so the pipeline can plan before it masters and a test can check the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voicebatch.inputs.books.records import BookMetadata

SAMPLE_MIN_SECONDS, SAMPLE_TARGET_SECONDS, SAMPLE_MAX_SECONDS = 60.0, 180.0, 300.0


@dataclass(frozen=True, slots=True)
class Part:
    """Sentences [first, last) of a chapter, and the stretch of its audio they take."""

    first: int
    last: int
    start: float  # seconds in the chapter's audio (mid-pause before its first sentence, or 0)
    end: float  # mid-pause after its last sentence, or the end


def split_chapter(times: Sequence[tuple[float, float]], duration: float, max_seconds: float) -> list[Part]:
    """The chapter cut at pauses between sentences into parts of at most ``max_seconds``, as few
    as fit (each as long as it can be). A single sentence longer than the limit is a part of its
    own (nothing shorter can be cut from it)."""
    if not times:
        return [Part(0, 0, 0.0, duration)]
    cuts = [(times[i - 1][1] + times[i][0]) / 2 for i in range(1, len(times))]  # cut i: before sentence i
    parts: list[Part] = []
    first, start = 0, 0.0
    while first < len(times):
        last = first + 1  # at least one sentence, however long
        while last < len(times) and _end(cuts, last + 1, duration) - start <= max_seconds:
            last += 1
        end = _end(cuts, last, duration)
        parts.append(Part(first, last, start, end))
        first, start = last, end
    return parts


def _end(cuts: list[float], last: int, duration: float) -> float:
    return cuts[last - 1] if last - 1 < len(cuts) else duration


@dataclass(frozen=True, slots=True)
class Credits:
    opening: str
    closing: str


def credits(metadata: BookMetadata, narrator: str | None = None) -> Credits:
    """ACX's opening and closing credits, from the book's metadata (and the narrator's name)."""
    title = metadata.title or "This audiobook"
    by = f", written by {_names(metadata.authors)}" if metadata.authors else ""
    read = f", narrated by {narrator}" if narrator else ""
    opening = f"{title}{by}{read}."
    closing = f"This has been {title}{by}{read}. The end."
    return Credits(opening, closing)


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def retail_sample(
    times: Sequence[tuple[float, float]],
    *,
    skip: int = 0,
    target: float = SAMPLE_TARGET_SECONDS,
    shortest: float = SAMPLE_MIN_SECONDS,
    longest: float = SAMPLE_MAX_SECONDS,
) -> tuple[float, float] | None:
    """ACX's retail sample: whole sentences from sentence ``skip`` on (past a chapter's title),
    about ``target`` seconds and within [shortest, longest]; None when the chapter is too short."""
    if skip >= len(times):
        return None
    start = times[skip][0]
    best = None
    for _, end in times[skip:]:
        length = end - start
        if length > longest:
            break
        if length >= shortest and (best is None or abs(length - target) < abs(best - start - target)):
            best = end
    return (start, best) if best is not None else None
