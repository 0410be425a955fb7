"""Written text -> what F5-TTS speaks: the lexicon first (a user's respelling wins over the
rules), then the language's normalisation; markup never reaches either."""

from __future__ import annotations

from dataclasses import dataclass, field

from voicebatch.text.lexicon import Lexicon
from voicebatch.text.normalize import DEFAULT_LANGUAGE, normalize


@dataclass(frozen=True, slots=True)
class SpokenForm:
    """How a script's text becomes spoken text: its language and the lexicon in force."""

    lang: str = DEFAULT_LANGUAGE
    lexicon: Lexicon | None = field(default=None, compare=False)

    def __call__(self, text: str, voice: str | None = None, lang: str | None = None) -> str:
        return self.spoken(text, voice, lang)[0]

    def spoken(self, text: str, voice: str | None = None, lang: str | None = None) -> tuple[str, tuple[str, ...]]:
        """(spoken text, the lexicon words that applied)."""
        used: tuple[str, ...] = ()
        if self.lexicon is not None:
            text, entries = self.lexicon.apply(text, voice)
            used = tuple(e.word for e in entries)
        return normalize(text, lang or self.lang), used


DEFAULT_SPOKEN_FORM = SpokenForm()
