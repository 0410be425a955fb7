"""SSML <say-as>: the words each interpretation gives (worked out by hand)."""

from __future__ import annotations

import pytest

from voicebatch.text.say_as import say_as


@pytest.mark.parametrize(
    ("text", "kind", "fmt", "lang", "words"),
    [
        # A cardinal is a count even where the context would make it a year ("in 1998").
        ("1998", "cardinal", None, "en", "one thousand nine hundred and ninety-eight"),
        ("-1,234.56", "cardinal", None, "en", "minus one thousand two hundred and thirty-four point five six"),
        ("21st", "ordinal", None, "en", "twenty-first"),
        ("3", "ordinal", None, "en", "third"),
        ("NASA", "characters", None, "en", "N A S A"),
        ("r2d2", "spell-out", None, "en", "R two D two"),
        ("2024", "digits", None, "en", "two zero two four"),
        ("+1 (555) 010-0199", "telephone", None, "en", "plus one, five five five, zero one zero, zero one nine nine"),
        ("2024-03-05", "date", None, "en", "March fifth, twenty twenty-four"),  # four digits first: ymd
        ("03/05/2024", "date", "mdy", "en", "March fifth, twenty twenty-four"),
        ("05.03.2024", "date", "dmy", "en", "March fifth, twenty twenty-four"),
        ("2005", "date", "y", "en", "two thousand and five"),
        ("12/2024", "date", "my", "en", "December twenty twenty-four"),
        ("14:30", "time", None, "en", "fourteen thirty"),
        ("2:05pm", "time", None, "en", "two oh five p m"),
        ("9 a.m.", "time", None, "en", "nine a m"),
        ("7:00", "time", "hms24", "en", "seven o'clock"),
        ("7", "cardinal", None, "de", "sieben"),
        ("7", "ordinal", None, "fr", "septième"),
    ],
)
def test_say_as_spells_what_it_is_told(text: str, kind: str, fmt: str | None, lang: str, words: str) -> None:
    assert say_as(text, kind, fmt, lang) == words


@pytest.mark.parametrize(
    ("text", "kind", "fmt", "lang"),
    [
        ("twelve", "cardinal", None, "en"),  # not a number
        ("13/45/2024", "date", "mdy", "en"),  # no 13th month
        ("2024-03-05", "date", None, "de"),  # dates only in English
        ("25:00", "time", None, "en"),
        ("5 kg", "unit", None, "en"),  # an interpretation we do not spell
    ],
)
def test_say_as_declines_what_it_cannot_say(text: str, kind: str, fmt: str | None, lang: str) -> None:
    assert say_as(text, kind, fmt, lang) is None
