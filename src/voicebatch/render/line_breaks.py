"""Where a subtitle's lines break: after clause ends, never after an article or between a
preposition and its object, lines of at most 42 display columns (CJK counts double), per
Netflix's English timed-text style guide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_CLAUSE_END = re.compile(r"[,;:.!?…)\]\"'»”’—–、，。！？；：」』）]\s*$")


CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uff00-\uffef]")


# English function words: never end a line on an article or possessive (it belongs to its
# noun); avoid ending one on a preposition, auxiliary or subject pronoun; a conjunction
# or preposition is a good word to start a line with.
NEVER_LAST = frozenset(["a", "an", "the", "my", "your", "his", "her", "its", "our", "their", "this", "these", "those"])


PREPOSITIONS = frozenset(
    [
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "into",
        "onto",
        "over",
        "under",
        "after",
        "before",
        "between",
        "through",
        "during",
        "without",
    ]
)


AVOID_LAST = PREPOSITIONS | frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "am",
        "will",
        "would",
        "can",
        "could",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "it",
        "not",
        "very",
    ]
)


GOOD_FIRST = PREPOSITIONS | frozenset(
    [
        "and",
        "but",
        "or",
        "nor",
        "so",
        "yet",
        "because",
        "although",
        "though",
        "while",
        "when",
        "whereas",
        "if",
        "unless",
        "that",
        "which",
        "who",
        "whom",
        "whose",
        "where",
    ]
)


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # with its trailing space, as UAX #14 gives it
    start: float
    end: float


def display_width(text: str) -> int:
    from wcwidth import wcswidth

    width = wcswidth(text)
    return width if width >= 0 else len(text)


def cut_wide(unit: str, width: int) -> list[str]:
    """A unit wider than a line (a long URL, a run of ideographs without break points), cut."""
    if display_width(unit.rstrip()) <= width:
        return [unit]
    from uniseg.graphemecluster import grapheme_clusters

    pieces, current = [], ""
    for cluster in grapheme_clusters(unit):
        if current and display_width((current + cluster).rstrip()) > width:
            pieces.append(current)
            current = ""
        current += cluster
    return [*pieces, current] if current else pieces


def _word(token: Token) -> str:
    return token.text.strip().strip("\"'“”‘’()[]").lower()


def word_count(tokens: Sequence[Token]) -> int:
    """Words on screen; each Chinese or Japanese character counts as one."""
    text = "".join(t.text for t in tokens)
    ideographs = len(CJK.findall(text))
    return ideographs if ideographs else len(text.split())


def break_cost(before: Token, after: Token) -> float:
    """How bad a line or cue break between two tokens is (0: after punctuation)."""
    if _CLAUSE_END.search(before.text):
        return 0.0
    if CJK.search(before.text[-1:] or "") or CJK.search(after.text[:1]):
        return 2.0
    last, first = _word(before), _word(after)
    if last in NEVER_LAST:
        return 1000.0
    if last in AVOID_LAST:
        return 8.0
    if first in GOOD_FIRST:
        return 1.0
    return 3.0


def layout(tokens: Sequence[Token], max_width: int, max_lines: int) -> tuple[float, list[str]]:
    """(cost, lines) of the best layout in lines of at most ``max_width`` display columns, or
    (inf, []) when it does not fit ``max_lines``."""
    text = "".join(t.text for t in tokens).strip()
    if display_width(text) <= max_width:
        return 0.0, [text]
    if max_lines < 2:
        return float("inf"), []
    best: tuple[float, list[str]] = (float("inf"), [])
    for k in range(1, len(tokens)):
        first = "".join(t.text for t in tokens[:k]).strip()
        if display_width(first) > max_width:
            break
        cost, rest = layout(tokens[k:], max_width, max_lines - 1)
        if not rest:
            continue
        widths = [display_width(first), *(display_width(r) for r in rest)]
        # Balanced lines; a slightly longer bottom line is the convention (a "pyramid").
        imbalance = abs(widths[0] - widths[1]) / max_width * 10 + (2 if widths[0] > widths[1] else 0)
        total = cost + break_cost(tokens[k - 1], tokens[k]) + imbalance
        if total < best[0]:
            best = (total, [first, *rest])
    return best
