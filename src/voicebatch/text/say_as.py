"""SSML ``<say-as>``: the words for a number, date, time, phone number or spelled-out word.

The spoken-form rules (``english``) guess from context: "1998" after "in" is a year, a
count elsewhere. ``<say-as>`` says what it is, so its content is spelled here explicitly,
with the same num2words spelling and English conventions as ``english`` (dates "March fifth,
twenty twenty-four", times "two thirty p m", digits one by one for phone numbers). Cardinal
and ordinal numbers are spelled in any language num2words knows; dates and times in English
only. ``None`` means "cannot say it this way": the caller speaks the text as written and warns.
"""

from __future__ import annotations

import re

from voicebatch.text.english import MONTHS

INTERPRETATIONS = ("cardinal", "number", "ordinal", "characters", "spell-out", "digits", "telephone", "date", "time")
_NUMBER = re.compile(r"^[-−]?\d+(?:[,\u00a0 ]\d{3})*(?:\.\d+)?$")
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th|\.|º|ª|er|e|te|ten)?$", re.IGNORECASE)
_TIME = re.compile(r"^(\d{1,2})(?::|h|\.)(\d{2})(?::(\d{2}))?\s*([ap]\.?m\.?)?$", re.IGNORECASE)
_HOUR = re.compile(r"^(\d{1,2})\s*([ap]\.?m\.?)$", re.IGNORECASE)
_DATE_FORMATS = ("mdy", "dmy", "ymd", "ydm", "md", "dm", "ym", "my", "y", "m", "d")


def say_as(text: str, interpret_as: str, fmt: str | None = None, lang: str = "en") -> str | None:
    """The words for ``text`` read as ``interpret_as`` (an SSML value); None when unsupported."""
    kind = interpret_as.strip().lower()
    text = " ".join(text.split())
    english = lang.lower().split("-")[0] == "en"
    if kind in ("cardinal", "number"):
        return _cardinal(text, lang)
    if kind == "ordinal":
        found = _ORDINAL.match(text)
        return _spell(int(found.group(1)), lang, "ordinal") if found else None
    if kind in ("characters", "spell-out"):
        return _characters(text, lang)
    if kind == "digits":
        return _digits(text, lang)
    if kind == "telephone":
        return _telephone(text, lang)
    if kind == "date" and english:
        return _date(text, (fmt or "").strip().lower())
    if kind == "time" and english:
        return _time(text)
    return None


def _spell(value: float | int, lang: str, to: str = "cardinal") -> str | None:
    from num2words import num2words

    try:
        return num2words(value, lang=lang.replace("-", "_"), to=to).replace(",", "")
    except (NotImplementedError, OverflowError):
        try:  # "de-AT" -> "de"
            return num2words(value, lang=lang.split("-")[0], to=to).replace(",", "")
        except (NotImplementedError, OverflowError):
            return None


def _cardinal(text: str, lang: str) -> str | None:
    if not _NUMBER.match(text):
        return None
    number = re.sub(r"[,\u00a0 ]", "", text).replace("−", "-")
    if "." not in number:
        return _spell(int(number), lang)
    whole, fraction = number.split(".", 1)
    if lang.lower().split("-")[0] != "en":
        return _spell(float(number), lang)
    # "three point one four", digit by digit after the point, as ``english`` says decimals.
    spoken = _spell(int(whole), lang) or whole
    return f"{spoken} point {' '.join(_spell(int(d), lang) or d for d in fraction)}"


def _characters(text: str, lang: str) -> str | None:
    letters = [c for c in text if c.isalnum()]
    if not letters:
        return None
    return " ".join((_spell(int(c), lang) or c) if c.isdigit() else c.upper() for c in letters)


def _digits(text: str, lang: str) -> str | None:
    digits = [c for c in text if c.isdigit()]
    if not digits or any(c.isalpha() for c in text):
        return None
    return " ".join(_spell(int(d), lang) or d for d in digits)


def _telephone(text: str, lang: str) -> str | None:
    groups = re.findall(r"\d+", text)
    if not groups or any(c.isalpha() for c in text):
        return None
    plus = "plus " if text.lstrip().startswith("+") and lang.startswith("en") else ""
    return plus + ", ".join(" ".join(_spell(int(d), lang) or d for d in group) for group in groups)


def _date(text: str, fmt: str) -> str | None:
    from voicebatch.text.english import words

    parts = [p for p in re.split(r"[-/.\s]+", text) if p]
    order = fmt if fmt in _DATE_FORMATS else ("ymd" if parts and len(parts[0]) == 4 else "mdy")
    if len(parts) != len(order) or not all(p.isdigit() for p in parts):
        return None
    values = dict(zip(order, (int(p) for p in parts), strict=True))
    month, day, year = values.get("m"), values.get("d"), values.get("y")
    if (month is not None and not 1 <= month <= 12) or (day is not None and not 1 <= day <= 31):
        return None
    spoken_year = None if year is None else _year(year)
    if month is None:
        return " ".join(x for x in (words(day, to="ordinal") if day else None, spoken_year) if x) or None
    name = MONTHS[month - 1]
    if day is None:
        return f"{name} {spoken_year}" if spoken_year else name
    spoken = f"{name} {words(day, to='ordinal')}"
    return f"{spoken}, {spoken_year}" if spoken_year else spoken


def _year(value: int) -> str:
    from voicebatch.text.english import words

    if 2000 <= value <= 2009 or value < 1000:
        return words(value)  # "two thousand and five", not "twenty oh-five"
    return words(value, to="year")


def _time(text: str) -> str | None:
    from voicebatch.text.english import words

    found = _TIME.match(text)
    if found:
        hour, minute, second, meridiem = found.groups()
    else:
        found = _HOUR.match(text)
        if not found:
            return None
        hour, minute, second, meridiem = found.group(1), "00", None, found.group(2)
    h, m = int(hour), int(minute)
    if h > 24 or m > 59 or (second is not None and int(second) > 59):
        return None
    suffix = "" if not meridiem else (" a m" if meridiem.lower().startswith("a") else " p m")
    if m == 0:
        spoken = f"{words(h)}{suffix}" if suffix else f"{words(h)} o'clock"
    else:
        spoken = f"{words(h)} {'oh ' if m < 10 else ''}{words(m)}{suffix}"
    if second is not None and int(second):
        spoken += f" and {words(int(second))} second{'s' if int(second) != 1 else ''}"
    return spoken
