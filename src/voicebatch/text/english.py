"""English spoken form: what F5-TTS should say for money, dates, times, numbers, units and
abbreviations ("$3.50" -> "three dollars fifty").

A composed list of rewrites (jiwer's shape), each a regular expression and a function
that spells its match with num2words; the order matters (currency before decimals, dates
before ranges, years before plain numbers). Written text is never changed: the caller
keeps it for subtitles and the timing table.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Rewrite = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_ABBR = {m[:3].lower(): m for m in MONTHS} | {"sept": "September"}
_MONTH = r"(?P<month>" + "|".join([*MONTHS, *(m[:3] for m in MONTHS), "Sept"]) + r")\.?"

# Abbreviations that never end a sentence (a title before a name, "e.g." before an example);
# the sentence splitter uses the same list.
TITLES = {
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Ms.": "Miz",
    "Dr.": "Doctor",
    "Prof.": "Professor",
    "Mt.": "Mount",
    "Gen.": "General",
    "Capt.": "Captain",
    "Rev.": "Reverend",
    "Sgt.": "Sergeant",
    "Lt.": "Lieutenant",
    "Col.": "Colonel",
    "Gov.": "Governor",
    "Sen.": "Senator",
    "Rep.": "Representative",
    "Fig.": "Figure",
    "Vol.": "Volume",
}
PHRASES = {
    "e.g.": "for example",
    "i.e.": "that is",
    "vs.": "versus",
    "etc.": "et cetera",
    "approx.": "approximately",
    "Jr.": "Junior",
    "Sr.": "Senior",
    "Inc.": "Incorporated",
    "Ltd.": "Limited",
    "Co.": "Company",
    "Ave.": "Avenue",
    "Blvd.": "Boulevard",
}
NON_FINAL_ABBREVIATIONS = frozenset([*TITLES, "St.", "No.", "e.g.", "i.e.", "vs.", "approx."])

_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "US$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_CODES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
_MAGNITUDES = {"k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion", "t": "trillion"}

# unit symbol -> (singular, plural); only symbols that are unambiguous after a number.
UNITS = {
    "km": ("kilometre", "kilometres"),
    "cm": ("centimetre", "centimetres"),
    "mm": ("millimetre", "millimetres"),
    "m": ("metre", "metres"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "l": ("litre", "litres"),
    "ml": ("millilitre", "millilitres"),
    "km/h": ("kilometre per hour", "kilometres per hour"),
    "kph": ("kilometre per hour", "kilometres per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "h": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "s": ("second", "seconds"),
    "sec": ("second", "seconds"),
    "ms": ("millisecond", "milliseconds"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "dB": ("decibel", "decibels"),
    "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "kW": ("kilowatt", "kilowatts"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
_FRACTIONS = {2: ("half", "halves"), 4: ("quarter", "quarters")}
# A four-digit number after one of these words is a year ("in 1998"), else a count ("1998 people").
_YEAR_CUES = frozenset(
    [
        "in",
        "since",
        "by",
        "from",
        "until",
        "till",
        "to",
        "of",
        "year",
        "years",
        "circa",
        "during",
        "before",
        "after",
        "around",
        "early",
        "late",
        "mid",
        "the",
        "and",
        "or",
        "through",
        "born",
    ]
)

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"


def words(value: float | int | str, to: str = "cardinal") -> str:
    """num2words in English, without the commas it puts between groups (F5 would pause there)."""
    from num2words import num2words

    return num2words(value, lang="en", to=to).replace(",", "")


def _decimal(text: str) -> str:
    text = text.replace(",", "")
    if "." not in text:
        return words(int(text))
    whole, frac = text.split(".", 1)
    return f"{words(int(whole or 0))} point {' '.join(words(int(d)) for d in frac)}"


def _year(value: int) -> str:
    if 2000 <= value <= 2009:
        return words(value)  # "two thousand and five", not "twenty oh-five"
    return words(value, to="year")


def _money(match: re.Match[str]) -> str:
    symbol = match.group("sym") or _CODES[match.group("code")]
    one, many, sub_one, sub_many = _CURRENCIES[symbol]
    amount = match.group("num").replace(",", "")
    magnitude = (match.group("mag") or "").lower()
    magnitude = _MAGNITUDES.get(magnitude, magnitude)
    if magnitude:  # "$2.5 million": two point five million dollars
        return f"{_decimal(amount)} {magnitude} {many}"
    whole, _, cents = amount.partition(".")
    units = int(whole or 0)
    sub = int((cents + "00")[:2]) if cents and sub_one else 0
    if cents and not sub_one:
        return f"{_decimal(amount)} {many}"
    spoken = f"{words(units)} {one if units == 1 else many}"
    if sub >= 10 and units:
        return f"{spoken} {words(sub)}"  # "three dollars fifty", as people say it
    if sub and units:
        return f"{spoken} and {words(sub)} {sub_one if sub == 1 else sub_many}"
    if sub:
        return f"{words(sub)} {sub_one if sub == 1 else sub_many}"
    return spoken


def _percent(match: re.Match[str]) -> str:
    return f"{_decimal(match.group(1))} percent"


def _meridiem(match: re.Match[str]) -> str:
    text = match.group("ampm")
    if not text:
        return ""
    spoken = " a m" if text.lower().startswith("a") else " p m"
    # "at 9 a.m. Then ..." or "at 9 a.m." at the end: the period also ends the sentence.
    rest = match.string[match.end() :].lstrip()
    return spoken + ("." if text.endswith(".") and (not rest or rest[0].isupper()) else "")


def _clock(match: re.Match[str]) -> str:
    hour, minute = int(match.group("h")), int(match.group("min"))
    if hour > 24 or minute > 59:
        return match.group()
    suffix = _meridiem(match)
    if minute == 0:
        return f"{words(hour)}{suffix}" if suffix else f"{words(hour)} o'clock"
    spoken_minute = f"oh {words(minute)}" if minute < 10 else words(minute)
    return f"{words(hour)} {spoken_minute}{suffix}"


def _hour(match: re.Match[str]) -> str:
    return f"{words(int(match.group('h')))}{_meridiem(match)}"


def _month_name(text: str) -> str:
    return _MONTH_ABBR.get(text.rstrip(".").lower()[:4] if text.lower().startswith("sept") else text[:3].lower(), text)


def _month_day(match: re.Match[str]) -> str:
    day = words(int(match.group("day")), to="ordinal")
    year = f", {_year(int(match.group('year')))}" if match.group("year") else ""
    return f"{_month_name(match.group('month'))} {day}{year}"


def _day_month(match: re.Match[str]) -> str:
    day = words(int(match.group("day")), to="ordinal")
    year = f" {_year(int(match.group('year')))}" if match.group("year") else ""
    article = "" if match.string[: match.start()].rstrip().lower().endswith("the") else "the "
    return f"{article}{day} of {_month_name(match.group('month'))}{year}"


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = (int(match.group(k)) for k in ("year", "month", "day"))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group()
    return f"{MONTHS[month - 1]} {words(day, to='ordinal')}, {_year(year)}"


def _us_date(match: re.Match[str]) -> str:
    month, day, year = (int(match.group(k)) for k in ("month", "day", "year"))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group()
    return f"{MONTHS[month - 1]} {words(day, to='ordinal')}, {_year(year)}"


def _decade(match: re.Match[str]) -> str:
    century, decade = match.group("century"), int(match.group("decade")) * 10
    if decade == 0:
        if century is None:
            return "hundreds"
        return "two thousands" if century == "20" else f"{words(int(century))} hundreds"  # the 1900s
    tens = words(decade)[:-1] + "ies"  # ninety -> nineties
    return f"{words(int(century))} {tens}" if century else tens


def _ordinal(match: re.Match[str]) -> str:
    return words(int(match.group(1).replace(",", "")), to="ordinal")


def _unit(match: re.Match[str]) -> str:
    number, symbol = match.group("num"), match.group("unit")
    one, many = UNITS[symbol]
    value = float(number.replace(",", ""))
    sign = "minus " if match.group("sign") else ""
    return f"{sign}{_decimal(number)} {one if value == 1 and not sign else many}"


def _fraction(match: re.Match[str]) -> str:
    top, bottom = int(match.group(1)), int(match.group(2))
    if bottom in _FRACTIONS:
        name = _FRACTIONS[bottom][0 if top == 1 else 1]
    else:
        ordinal = words(bottom, to="ordinal")
        name = ordinal if top == 1 else ordinal + "s"
    return f"{words(top)} {name}"


def _range(match: re.Match[str]) -> str:
    first, second = match.group(1), match.group(2)
    if len(first) == 4 and len(second) == 4 and "," not in first + second:
        return f"{_year(int(first))} to {_year(int(second))}"
    return f"{_decimal(first)} to {_decimal(second)}"


def _number(match: re.Match[str]) -> str:
    text = match.group("num")
    sign = "minus " if match.group("sign") else ""
    if re.fullmatch(r"\d{4}", text) and 1000 <= int(text) <= 2099 and _year_context(match):
        return sign + _year(int(text))
    return sign + _decimal(text)


def _year_context(match: re.Match[str]) -> bool:
    before = match.string[: match.start()].split()
    previous = before[-1].lower().strip("(\"'") if before else ""
    return previous in _YEAR_CUES or previous.rstrip(".,") in {m.lower() for m in MONTHS}


def _abbreviation(table: dict[str, str]) -> Rewrite:
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)) + r")")

    def spell(match: re.Match[str]) -> str:
        # The abbreviation's period also ends the sentence when nothing follows it.
        final = not match.string[match.end() :].strip(" \"')]")
        return table[match.group(1)] + ("." if final else "")

    return pattern, spell


def _saint_or_street(match: re.Match[str]) -> str:
    # "St. Paul" is a saint; "Baker St." is a street.
    after = match.string[match.end() :].lstrip()
    return "Saint" if after[:1].isupper() else "Street"


def _number_sign(match: re.Match[str]) -> str:
    return "number "


UNIT_PATTERN = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))

REWRITES: list[Rewrite] = [
    (re.compile(r"[\u00a0\u2009\u202f]"), lambda m: " "),
    _abbreviation(TITLES),
    _abbreviation(PHRASES),
    (re.compile(r"(?<![\w.])St\.(?=\s|$)"), _saint_or_street),
    (re.compile(r"(?<![\w.])(?:No|no)\.\s?(?=\d)|#(?=\d)"), _number_sign),
    (
        re.compile(
            r"(?:(?P<sym>US\$|[$€£¥₹])\s?(?P<num>"
            + _NUMBER
            + r")|(?P<num2>"
            + _NUMBER
            + r")\s?(?P<code>USD|EUR|GBP|JPY|INR))"
            r"(?:\s?(?P<mag>thousand|million|billion|trillion|bn|mn|[kKmMbBtT])\b)?"
        ),
        lambda m: _money(_MoneyMatch(m)),
    ),
    (re.compile(r"(" + _NUMBER + r")\s?%"), _percent),
    (re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})\b"), _iso_date),
    (re.compile(r"\b(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})\b"), _us_date),
    (re.compile(_MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{4})\b)?"), _month_day),
    (
        re.compile(r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r"(?:,?\s+(?P<year>\d{4})\b)?"),
        _day_month,
    ),
    (
        re.compile(r"\b(?P<h>\d{1,2}):(?P<min>\d{2})(?::\d{2})?(?:\s?(?P<ampm>[aApP]\.[mM]\.|[aApP][mM]\b))?"),
        _clock,
    ),
    (re.compile(r"\b(?P<h>\d{1,2})\s?(?P<ampm>[aApP]\.[mM]\.|[aApP][mM]\b)"), _hour),
    (re.compile(r"(?:\b(?P<century>1[0-9]|20)|')(?P<decade>\d)0s\b"), _decade),
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th)\b"), _ordinal),
    (
        re.compile(
            r"(?P<sign>(?<![\w.])[-−])?(?<![\w.])(?P<num>" + _NUMBER + r")\s?(?P<unit>" + UNIT_PATTERN + r")(?![\w/])"
        ),
        _unit,
    ),
    (re.compile(r"(?<![\w/.])(\d{1,2})/(\d{1,2})(?![\w/])"), _fraction),
    (re.compile(r"(?<![\w.])(" + _NUMBER + r")\s?[–—-]\s?(" + _NUMBER + r")(?!\w|\.\d)"), _range),
    (re.compile(r"(?P<sign>(?<![\w.])[-−])?(?<![\w.])(?P<num>" + _NUMBER + r")(?![\w])"), _number),
    (re.compile(r"\s*&\s*"), lambda m: " and "),
    (re.compile(r"(?<=\s)\+(?=\s)"), lambda m: "plus"),
    (re.compile(r"(?<=\s)=(?=\s)"), lambda m: "equals"),
    (re.compile(r"(?<=\w)@(?=\w)"), lambda m: " at "),
]


class _MoneyMatch:
    """A currency match with the number under one name whichever side the symbol stood."""

    def __init__(self, match: re.Match[str]) -> None:
        self._match = match

    def group(self, name: str) -> str | None:
        if name == "num":
            return self._match.group("num") or self._match.group("num2")
        return self._match.group(name)


def normalize_english(text: str) -> str:
    for pattern, spell in REWRITES:
        text = pattern.sub(spell, text)  # type: ignore[arg-type]
    return " ".join(text.split())
