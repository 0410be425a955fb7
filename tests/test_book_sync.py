"""Sentence times of a book from the pieces joining placed (mastering.sync), and a book's text
made speakable (books.narration): checked against times worked out by hand."""

from __future__ import annotations

import pytest

from voicebatch.render.mastering.narration import speakable
from voicebatch.render.mastering.sync import SyncError, sentence_times


def test_the_same_sentences_take_their_pieces_times() -> None:
    pieces = [("One.", 0.0, 1.0), ("Two here.", 1.5, 3.0)]
    assert sentence_times(["One.", "Two here."], pieces) == [(0.0, 1.0), (1.5, 3.0)]


def test_a_sentence_spoken_in_two_pieces_runs_from_the_first_to_the_last() -> None:
    # "A long one, with a clause." split at the comma by the chunker.
    pieces = [("Hi.", 0.0, 0.5), ("A long one,", 1.0, 2.0), ("with a clause.", 2.0, 3.5)]
    assert sentence_times(["Hi.", "A long one, with a clause."], pieces) == [(0.0, 0.5), (1.0, 3.5)]


def test_two_sentences_in_one_piece_share_it_by_characters() -> None:
    # "Part I. The Start" is one heading for the book and two sentences for the splitter, and
    # the other way round: 10 characters without spaces over 2 seconds, 5 and 5.
    pieces = [("Abcd. Efgh.", 0.0, 2.0)]
    assert sentence_times(["Abcd.", "Efgh."], pieces) == [(0.0, 1.0), (1.0, 2.0)]


def test_text_that_differs_is_an_error_naming_where() -> None:
    with pytest.raises(SyncError, match="character 3"):
        sentence_times(["Abcd."], [("Abxd.", 0.0, 1.0)])


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Wait [pause 2s] here.", "Wait (pause 2s) here."),
        ("Fast [speed 2] now.", "Fast (speed 2) now."),
        ("A <break/> b.", "A (break/> b."),
        ("“Quoted” and  spaced.", '"Quoted" and spaced.'),
    ],
)
def test_a_books_words_are_never_markup(written: str, spoken: str) -> None:
    assert speakable(written) == spoken
