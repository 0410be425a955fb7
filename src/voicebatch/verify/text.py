"""Text as the checks see it: one normalisation for both sides, words, and the language.

Scoring compares the chunk's text with what the recogniser heard. Both go through the
same composed list of jiwer transformations (the jiwer way, not regexes scattered over
modules): numbers spelled out in the chunk's language (num2words), case folded, dashes
and slashes made spaces, punctuation removed, spaces collapsed. Word times come from
aligning the normalised tokens; ``word_tokens`` remembers which tokens each written
word became, so a written word ("1990,") gets the time of its spoken tokens.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

import jiwer

_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)(st|nd|rd|th|er|e|ème)?(?!\w)")
_DASHES = {r"[-‐‑‒–—―/]": " "}
# Scripts that name their language without doubt; Latin text takes the configured language.
_SCRIPT_LANGUAGES = (
    ("HIRAGANA", "ja"),
    ("KATAKANA", "ja"),
    ("HANGUL", "ko"),
    ("CJK", "zh"),
    ("GREEK", "el"),
    ("HEBREW", "he"),
    ("THAI", "th"),
    ("DEVANAGARI", "hi"),
    ("GEORGIAN", "ka"),
    ("ARMENIAN", "hy"),
)
UNDETERMINED = "und"  # a script shared by many languages (Cyrillic, Arabic, ...): not guessed


class ExpandNumbers(jiwer.AbstractTransform):
    """Digits become words in ``language`` (num2words): "21st" -> "twenty-first"."""

    def __init__(self, language: str) -> None:
        self.language = language

    def process_string(self, s: str) -> str:
        return _NUMBER.sub(self._spell, s)

    def _spell(self, match: re.Match) -> str:
        from num2words import num2words

        number, suffix = match.group(1), match.group(2)
        value: float | int = (
            float(number.replace(",", ".")) if re.search(r"[.,]\d{1,2}$", number) else int(re.sub(r"[.,]", "", number))
        )
        try:
            if suffix and isinstance(value, int):
                return " " + num2words(value, lang=self.language, to="ordinal") + " "
            return " " + num2words(value, lang=self.language) + " "
        except (NotImplementedError, OverflowError, KeyError):
            return match.group(0)  # a language num2words does not know: both sides keep the digits


@lru_cache(maxsize=32)
def normaliser(language: str = "en") -> jiwer.Compose:
    """The transformations applied to the text and to the transcript before scoring."""
    return jiwer.Compose(
        [
            ExpandNumbers(_base_language(language)),
            jiwer.ToLowerCase(),
            jiwer.SubstituteRegexes(_DASHES),
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
        ]
    )


def normalise(text: str, language: str = "en") -> str:
    return normaliser(language)(unicodedata.normalize("NFC", text))


def word_tokens(words: Sequence[str], language: str = "en") -> list[list[str]]:
    """The normalised tokens each written word becomes ("1990," -> four tokens, "—" -> none)."""
    return [normalise(w, language).split() for w in words]


def written_words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def guess_language(text: str, default: str = "en") -> str:
    """The chunk's language: from its script where that is unambiguous, else ``default``
    for Latin-script text, else ``und`` (undetermined)."""
    counts: dict[str, int] = {}
    latin = other = 0
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        if name.startswith("LATIN"):
            latin += 1
            continue
        other += 1
        for prefix, language in _SCRIPT_LANGUAGES:
            if name.startswith(prefix):
                counts[language] = counts.get(language, 0) + 1
                break
    if latin >= other:
        return default
    if counts:
        # Japanese mixes kanji (CJK) and kana: any kana makes it Japanese.
        if counts.get("ja"):
            return "ja"
        return max(counts, key=counts.__getitem__)
    return UNDETERMINED


def _base_language(language: str) -> str:
    return language.split("-")[0].split("_")[0].lower() or "en"
