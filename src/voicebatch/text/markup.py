"""Inline markup in script text: pauses, speed changes and paragraph breaks.

    [pause 1.5s]   [pause 800ms]   [pause 2]   [pause]        silence of that length
    <break time="1.5s"/>   <break time="800ms"/>   <break strength="strong"/>   <break/>
    [speed 0.9]                                              speaking rate from here on
    a blank line                                             a paragraph break

The SSML subset is the one Polly and Azure accept for ``<break>``; a strength maps to a
length through :class:`PauseRules` (``medium`` is the sentence pause, ``strong`` the
paragraph pause). Markup is never spoken and never shown in subtitles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicebatch.settings import DEFAULTS, MAX_PAUSE_SECONDS

MIN_SPEED, MAX_SPEED = 0.5, 2.0
STRENGTHS = ("none", "x-weak", "weak", "medium", "strong", "x-strong")

_MARKUP = re.compile(
    r"\[(?P<kind>pause|speed)(?:\s+(?P<arg>[^\]]*?))?\s*\]"
    r"|<break\b(?P<attrs>[^<>]*?)/?>",
    re.IGNORECASE,
)
_ATTRIBUTE = re.compile(r"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'/>]+))""")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$", re.IGNORECASE)
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")


class MarkupError(ValueError):
    """Bad markup; ``offset`` is the character position in the text where it starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class PauseRules:
    """Silence inserted when assembling (seconds). A sentence pause above 0 also makes
    every sentence a chunk of its own, so each sentence boundary gets exactly that length
    of silence; 0 packs sentences into chunks as F5-TTS does (its own prosody only)."""

    sentence: float = DEFAULTS["sentence_pause"]
    paragraph: float = DEFAULTS["paragraph_pause"]
    speaker: float = DEFAULTS["speaker_pause"]  # where the voice changes

    def __post_init__(self) -> None:
        for name in ("sentence", "paragraph", "speaker"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_PAUSE_SECONDS:
                raise ValueError(f"{name} pause {value} s is outside 0-{MAX_PAUSE_SECONDS:g} s")

    def strength(self, strength: str) -> float:
        """SSML break strength -> seconds (Polly's ladder: medium ~ sentence, strong ~ paragraph)."""
        return {
            "none": 0.0,
            "x-weak": 0.1,
            "weak": 0.2,
            "medium": self.sentence,
            "strong": self.paragraph,
            "x-strong": round(1.5 * self.paragraph, 3),
        }[strength]


DEFAULT_PAUSES = PauseRules()


@dataclass(frozen=True, slots=True)
class Pause:
    """An explicit pause: ``seconds``, or an SSML ``strength`` resolved by :class:`PauseRules`."""

    seconds: float | None = None
    strength: str | None = None

    def resolve(self, rules: PauseRules) -> float:
        return self.seconds if self.seconds is not None else rules.strength(self.strength or "medium")


@dataclass(frozen=True, slots=True)
class Speed:
    factor: float


@dataclass(frozen=True, slots=True)
class ParagraphBreak:
    pass


Token = str | Pause | Speed | ParagraphBreak


def parse_markup(text: str) -> list[Token]:
    """Text runs and markup, in order; raises :class:`MarkupError` on bad markup."""
    tokens: list[Token] = []
    position = 0
    for match in _MARKUP.finditer(text):
        _runs(text[position : match.start()], tokens)
        tokens.append(_marker(match))
        position = match.end()
    _runs(text[position:], tokens)
    return tokens


def strip_markup(text: str) -> str:
    """The text without markup, paragraph breaks kept (what subtitles and the CSV show)."""
    return _MARKUP.sub(" ", text)


def find_markup_problem(text: str) -> MarkupError | None:
    try:
        parse_markup(text)
    except MarkupError as e:
        return e
    return None


def _runs(chunk: str, tokens: list[Token]) -> None:
    position = 0
    for match in _PARAGRAPH.finditer(chunk):
        if chunk[position : match.start()]:
            tokens.append(chunk[position : match.start()])
        tokens.append(ParagraphBreak())
        position = match.end()
    if chunk[position:]:
        tokens.append(chunk[position:])


def _marker(match: re.Match[str]) -> Pause | Speed:
    where = match.start()
    if match.group("kind"):
        kind, arg = match.group("kind").lower(), (match.group("arg") or "").strip()
        if kind == "speed":
            return Speed(_speed(arg, match.group(), where))
        if not arg:
            return Pause(strength="medium")
        if arg.lower() in STRENGTHS:
            return Pause(strength=arg.lower())
        return Pause(seconds=_duration(arg, match.group(), where))
    attributes = {
        m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None)
        for m in _ATTRIBUTE.finditer(match.group("attrs"))
    }
    unknown = sorted(set(attributes) - {"time", "strength"})
    if unknown:
        raise MarkupError(f"{match.group()}: unknown attribute {', '.join(unknown)} (use time or strength)", where)
    if "time" in attributes:
        return Pause(seconds=_duration(attributes["time"], match.group(), where, ssml=True))
    strength = attributes.get("strength", "medium").lower()
    if strength not in STRENGTHS:
        raise MarkupError(f"{match.group()}: strength must be one of {', '.join(STRENGTHS)}", where)
    return Pause(strength=strength)


def _duration(value: str, markup: str, where: int, *, ssml: bool = False) -> float:
    found = _DURATION.match(value)
    if not found or (ssml and not found.group(2)):
        raise MarkupError(
            f"{markup}: pause length {value!r} must be seconds or milliseconds, such as 1.5s or 800ms", where
        )
    seconds = float(found.group(1)) / (1000 if (found.group(2) or "s").lower() == "ms" else 1)
    if seconds > MAX_PAUSE_SECONDS:
        raise MarkupError(f"{markup}: a pause of {seconds:g} s is longer than {MAX_PAUSE_SECONDS:g} s", where)
    return round(seconds, 3)


def _speed(value: str, markup: str, where: int) -> float:
    try:
        factor = float(value)
    except ValueError:
        factor = -1.0
    if not MIN_SPEED <= factor <= MAX_SPEED:
        raise MarkupError(f"{markup}: speed must be a number from {MIN_SPEED} to {MAX_SPEED}", where)
    return factor
