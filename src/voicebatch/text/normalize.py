"""Spoken form per language: the text F5-TTS is given, while subtitles keep the written text.

Built on num2words (cardinals, ordinals, years and decimals in ~50 languages, pure Python,
no model files). English has the full rule set (:mod:`voicebatch.text.english`); any other
language num2words knows gets numbers, decimals and percentages spelled with its decimal
mark; text in Chinese or Japanese script is left as written (F5-TTS speaks Chinese through
pinyin itself, and num2words has no Chinese). Adding a language means adding a function
to ``NORMALIZERS``.

Why not NeMo text processing: its English grammars cover more (and verbalise better in
odd cases), but it needs pynini (a 155 MB wheel of OpenFst), compiles its grammars for
minutes on first use, and drags in transformers, sacremoses and wget: too heavy for a
step that runs on every worker for every script. Measured here: /work/notes/10 and the
README's "Spoken form" section.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

Normalizer = Callable[[str], str]

DEFAULT_LANGUAGE = "en"
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
# The decimal mark of languages that write "3,5" for three and a half.
_DECIMAL_COMMA = frozenset(
    [
        "de",
        "fr",
        "es",
        "it",
        "pt",
        "pt_BR",
        "nl",
        "da",
        "no",
        "sv",
        "fi",
        "pl",
        "cs",
        "sk",
        "sl",
        "ru",
        "uk",
        "tr",
        "ro",
        "hu",
        "lt",
        "lv",
        "id",
    ]
)
_PERCENT = {
    "de": "Prozent",
    "fr": "pour cent",
    "es": "por ciento",
    "it": "per cento",
    "pt": "por cento",
    "nl": "procent",
}


def _english(text: str) -> str:
    from voicebatch.text.english import normalize_english

    return normalize_english(text)


NORMALIZERS: dict[str, Normalizer] = {"en": _english}


def supported_languages() -> list[str]:
    from num2words import CONVERTER_CLASSES

    return sorted(set(NORMALIZERS) | set(CONVERTER_CLASSES))


def language_problem(lang: str) -> str | None:
    """Why ``lang`` cannot be normalised, or None."""
    if lang in NORMALIZERS or lang in ("zh", "ja", "ko"):
        return None
    from num2words import CONVERTER_CLASSES

    if lang in CONVERTER_CLASSES:
        return None
    return f"language {lang!r} is not supported (use one of {', '.join(supported_languages())}, zh, ja, ko)"


def normalize(text: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The spoken form of ``text`` in ``lang`` (a num2words language code such as en, de, fr)."""
    if not text.strip():
        return ""
    if _CJK.search(text) or lang in ("zh", "ja", "ko"):
        return " ".join(text.split()) if not _CJK.search(text) else text.strip()
    return _normalizer(lang)(text)


@cache
def _normalizer(lang: str) -> Normalizer:
    if lang in NORMALIZERS:
        return NORMALIZERS[lang]
    if problem := language_problem(lang):
        raise ValueError(problem)
    return _numbers_only(lang)


def _numbers_only(lang: str) -> Normalizer:
    """Numbers, decimals and percentages for a language num2words knows."""
    from num2words import num2words

    mark = "," if lang.split("_")[0] in _DECIMAL_COMMA else "."
    group = "." if mark == "," else ","
    number = re.compile(
        rf"(?P<sign>(?<![\w{re.escape(mark)}])[-−])?(?<![\w])(?P<num>\d{{1,3}}(?:{re.escape(group)}\d{{3}})+"
        rf"(?:{re.escape(mark)}\d+)?|\d+(?:{re.escape(mark)}\d+)?)(?P<pct>\s?%)?(?![\w])"
    )
    percent = _PERCENT.get(lang.split("_")[0], "%")

    def spell(match: re.Match[str]) -> str:
        digits = match.group("num").replace(group, "").replace(mark, ".")
        value: float | int = float(digits) if "." in digits else int(digits)
        spoken = num2words(-value if match.group("sign") else value, lang=lang).replace(",", "")
        return spoken + (f" {percent}" if match.group("pct") else "")

    return lambda text: " ".join(number.sub(spell, text).split())
