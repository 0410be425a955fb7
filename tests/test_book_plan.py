"""Cutting a book's audio: chapters over ACX's length split at pauses between sentences, the
opening and closing credits, and the retail sample."""

from __future__ import annotations

import math
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from voicebatch.inputs.books.records import BookMetadata
from voicebatch.render.mastering.plan import credits, retail_sample, split_chapter


@st.composite
def sentence_times(draw: st.DrawFn) -> tuple[list[tuple[float, float]], float]:
    times, t = [], draw(st.floats(0, 2))
    for _ in range(draw(st.integers(1, 60))):
        length, pause = draw(st.floats(0.5, 40)), draw(st.floats(0.1, 3))
        times.append((t, t + length))
        t += length + pause
    return times, t


@given(sentence_times(), st.floats(20, 400))
def test_parts_cover_every_sentence_once_cut_in_pauses_and_fit(timed: tuple[list, float], limit: float) -> None:
    times, duration = timed
    parts = split_chapter(times, duration, limit)
    assert parts[0].first == 0 and parts[-1].last == len(times) and parts[0].start == 0 and parts[-1].end == duration
    for before, after in pairwise(parts):
        assert before.last == after.first and before.end == after.start
        assert times[before.last - 1][1] < before.end < times[after.first][0]  # in the pause, not in a sentence
    for part in parts:
        assert part.last > part.first
        assert part.end - part.start <= limit or part.last == part.first + 1  # one sentence too long stands alone
    # As few parts as the limit allows: no two neighbours would fit together.
    for before, after in pairwise(parts):
        assert after.end - before.start > limit


def test_a_chapter_under_the_limit_is_one_part() -> None:
    assert len(split_chapter([(0.3, 5.0), (5.5, 9.0)], 10.0, 7200)) == 1


@given(sentence_times())
def test_the_retail_sample_is_whole_sentences_of_one_to_five_minutes(timed: tuple[list, float]) -> None:
    times, _ = timed
    sample = retail_sample(times, skip=1)
    ends = [e for _, e in times[1:] if 60 <= e - times[min(1, len(times) - 1)][0] <= 300]
    if len(times) < 2 or not ends:
        assert sample is None
        return
    assert sample is not None
    start, end = sample
    assert start == times[1][0] and end in [e for _, e in times]
    assert 60 <= end - start <= 300
    best = min(ends, key=lambda e: abs(e - start - 180))
    assert math.isclose(abs(end - start - 180), abs(best - start - 180))


def test_credits_name_the_book_its_authors_and_narrator() -> None:
    made = credits(BookMetadata("The Little Test Book", ("Ada Example", "Bo Second")), "Nora Reader")
    assert made.opening == "The Little Test Book, written by Ada Example and Bo Second, narrated by Nora Reader."
    assert made.closing.startswith("This has been The Little Test Book") and made.closing.endswith("The end.")
    assert credits(BookMetadata("")).opening == "This audiobook."
