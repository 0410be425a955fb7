"""Spoken form: per-language normalisation, the pronunciation lexicon and the
pause/speed markup. The written text stays for subtitles and the timing table; only what
F5-TTS speaks (and the chunk cache keys) use the spoken form.

May import only ``voicebatch.errors`` and ``voicebatch.settings``."""

from __future__ import annotations

from voicebatch.text.lexicon import EMPTY_LEXICON, Lexicon, LexiconEntry, LexiconError, load_lexicon
from voicebatch.text.markup import DEFAULT_PAUSES, MarkupError, Pause, PauseRules, Speed, parse_markup, strip_markup
from voicebatch.text.normalize import DEFAULT_LANGUAGE, normalize
from voicebatch.text.spoken import DEFAULT_SPOKEN_FORM, SpokenForm

__all__ = [
    "DEFAULT_LANGUAGE",
    "DEFAULT_PAUSES",
    "DEFAULT_SPOKEN_FORM",
    "EMPTY_LEXICON",
    "Lexicon",
    "LexiconEntry",
    "LexiconError",
    "MarkupError",
    "Pause",
    "PauseRules",
    "Speed",
    "SpokenForm",
    "load_lexicon",
    "normalize",
    "parse_markup",
    "strip_markup",
]
