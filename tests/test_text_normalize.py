"""Spoken form: what F5-TTS is given, on a table of real cases; the written text
stays in the subtitles and the timing table."""

from __future__ import annotations

import subprocess
import sys

import pytest

from voicebatch.text.normalize import language_problem, normalize

# (written, spoken): expectations written by hand from how an English narrator reads them.
CASES = [
    # money
    ("It costs $3.50.", "It costs three dollars fifty."),
    ("Only $1 today.", "Only one dollar today."),
    ("A $0.99 app.", "A ninety-nine cents app."),
    ("It raised $2.5 million.", "It raised two point five million dollars."),
    ("Tickets are €20 or £9.99.", "Tickets are twenty euros or nine pounds ninety-nine."),
    ("I paid $12.05.", "I paid twelve dollars and five cents."),
    ("That is 100 USD.", "That is one hundred dollars."),
    # dates
    ("Due on March 5, 2024.", "Due on March fifth, twenty twenty-four."),
    ("Due 2024-03-05.", "Due March fifth, twenty twenty-four."),
    ("Born 12/25/1999.", "Born December twenty-fifth, nineteen ninety-nine."),
    ("On 5 May 2021 we met.", "On the fifth of May twenty twenty-one we met."),
    # times
    ("Meet at 3:30 pm.", "Meet at three thirty p m."),
    ("Leave at 9 a.m. Then rest.", "Leave at nine a m. Then rest."),
    ("The train is at 14:05.", "The train is at fourteen oh five."),
    ("Lunch at 12:00.", "Lunch at twelve o'clock."),
    # ordinals
    (
        "The 3rd time, the 21st century, the 100th day.",
        "The third time, the twenty-first century, the one hundredth day.",
    ),
    # years vs numbers
    ("In 1998, 1998 people came.", "In nineteen ninety-eight, one thousand nine hundred and ninety-eight people came."),
    ("Since 1066 and until 2005.", "Since ten sixty-six and until two thousand and five."),
    ("The 1990s and the '80s.", "The nineteen nineties and the eighties."),
    ("From 1990–1995.", "From nineteen ninety to nineteen ninety-five."),
    # decimals and numbers
    ("Pi is 3.14 and half is 0.5.", "Pi is three point one four and half is zero point five."),
    ("It had 1,234 votes.", "It had one thousand two hundred and thirty-four votes."),
    ("It was -5 today.", "It was minus five today."),
    ("Pages 5-10.", "Pages five to ten."),
    # percentages
    ("Up 45% or 3.5 %.", "Up forty-five percent or three point five percent."),
    # units
    ("Run 10 km, then 1 km.", "Run ten kilometres, then one kilometre."),
    ("It weighs 0.5 kg at -5 °C.", "It weighs zero point five kilograms at minus five degrees Celsius."),
    ("Record at 48 kHz, 60 mph.", "Record at forty-eight kilohertz, sixty miles per hour."),
    ("Add 1/2 cup and 3/4 cup.", "Add one half cup and three quarters cup."),
    # abbreviations
    ("Dr. Smith met Mr. and Mrs. Jones.", "Doctor Smith met Mister and Missus Jones."),
    ("St. Paul lives on Baker St. now.", "Saint Paul lives on Baker Street now."),
    (
        "Rock & roll, e.g. Elvis vs. the Beatles, etc.",
        "Rock and roll, for example Elvis versus the Beatles, et cetera.",
    ),
    ("Call No. 5.", "Call number five."),
    # mixed
    (
        "On Jan 3 at 7pm, Dr. Lee paid $45.20 for 2 kg (15%).",
        "On January third at seven p m, Doctor Lee paid forty-five dollars twenty for two kilograms (fifteen percent).",
    ),
    # left as written
    ("COVID-19 is not a range.", "COVID-nineteen is not a range."),
    ("No numbers here.", "No numbers here."),
]


@pytest.mark.parametrize(("written", "spoken"), CASES, ids=[c[0][:30] for c in CASES])
def test_english_spoken_form(written: str, spoken: str) -> None:
    assert normalize(written, "en") == spoken


def test_other_languages_spell_numbers_with_their_decimal_mark_and_cjk_is_left_to_f5() -> None:
    assert normalize("Es kostet 3,5 Euro und 20 %.", "de") == "Es kostet drei Komma fünf Euro und zwanzig Prozent."
    assert normalize("Il a 21 ans.", "fr") == "Il a vingt et un ans."
    assert normalize("对，这就是我，3个人。") == "对，这就是我，3个人。"
    assert language_problem("xx") is not None and language_problem("de") is None


def test_cli_text_normalize_prints_the_spoken_form() -> None:
    run = [sys.executable, "-m", "voicebatch.cli", "text", "normalize"]
    result = subprocess.run([*run, "Dr. Lee paid $3.50 in 1998."], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "Doctor Lee paid three dollars fifty in nineteen ninety-eight.\n"
    result = subprocess.run([*run, "3,5 %", "--lang", "de"], capture_output=True, text=True)
    assert result.stdout.strip() == "drei Komma fünf Prozent"
    result = subprocess.run([*run, "x", "--lang", "klingon"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.startswith("error: --lang: language 'klingon' is not supported")


def test_f5_speaks_the_spoken_form_while_subtitles_and_csv_keep_the_written_text() -> None:
    import numpy as np

    from voicebatch.inputs.scripts import Script, ScriptPart, chunk_script
    from voicebatch.render.join import assemble
    from voicebatch.render.outputs import OutputOptions, render_outputs

    written = "It costs $3.50 on March 5, 2024. Dr. Lee agreed at 3:30 pm."
    script = Script("price", "price.txt", (ScriptPart("anna", written),))
    chunks = chunk_script(script, {"anna": ("Hello, I am a test voice.", 4.0)})
    assert [c.text for c in chunks] == [
        "It costs three dollars fifty on March fifth, twenty twenty-four.",
        "Doctor Lee agreed at three thirty p m.",
    ]
    tone = (0.3 * np.sin(np.arange(48_000) / 10)).astype(np.float32)
    assembly = assemble([tone, tone], [c.sentences for c in chunks], pauses=[c.pause_after for c in chunks])
    files = render_outputs(assembly, "price", OutputOptions(loudness_lufs=None), chunks=chunks).files
    for name in ("price.srt", "price.vtt", "price.csv"):
        text = files[name].decode()
        assert "$3.50" in text and "March 5, 2024" in text and "Dr. Lee" in text, name
        assert "dollars" not in text and "Doctor" not in text, name


def test_abbreviations_do_not_end_sentences_but_their_sentence_ends_keep_the_period() -> None:
    from voicebatch.inputs.chunking import split_sentences

    text = "Call No. 5 now. He said No. Then Dr. Smith left, e.g. at 9 a.m. Fine. J. R. R. Tolkien wrote."
    assert split_sentences(text) == [
        "Call No. 5 now.",
        "He said No.",
        "Then Dr. Smith left, e.g. at 9 a.m.",
        "Fine.",
        "J. R. R. Tolkien wrote.",
    ]
    assert normalize("Then Dr. Smith left, e.g. at 9 a.m.") == "Then Doctor Smith left, for example at nine a m."
