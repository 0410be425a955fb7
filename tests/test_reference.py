"""Reference clip selection: whole segments, within bounds, text exactly theirs."""

from __future__ import annotations

import pytest

from voicebatch.inputs.reference import ClipRules, choose_reference_window
from voicebatch.inputs.transcripts import Segment


def segs(*items: tuple[float, float, str]) -> list[Segment]:
    return [Segment(a, b, t) for a, b, t in items]


def test_prefers_a_run_ending_on_sentence_punctuation_over_a_longer_one() -> None:
    segments = segs((0, 4, "One sentence here."), (4.2, 8, "And a clause,"), (8.2, 10.5, "that goes on"))
    window = choose_reference_window(segments, 12.0)
    assert (window.first, window.last) == (0, 0)
    assert window.text == "One sentence here."


def test_longest_run_within_the_limit_and_text_is_exactly_its_segments() -> None:
    segments = segs((0, 3, "A b c."), (3.1, 6, "D e f."), (6.1, 9, "G h i."), (9.1, 12, "J k l."))
    window = choose_reference_window(segments, 12.5)
    assert window.last - window.first == 2  # three segments (8.9 s); four would be 12 s
    assert window.text == " ".join(s.text for s in segments[window.first : window.last + 1])
    assert window.duration <= 11.0


def test_padding_never_reaches_into_a_neighbouring_segment() -> None:
    segments = segs((0, 2, "x."), (2.04, 6, "Keep this."), (6.06, 9.5, "And this."), (9.52, 15, "Too long to add."))
    window = choose_reference_window(segments, 15.0, ClipRules(max_seconds=8.0, padding=0.2))
    assert (window.first, window.last) == (1, 2)
    # Half the 40 ms and 20 ms gaps at most, although 200 ms of padding was asked for.
    assert (window.start, window.end) == (2.02, 9.51)


def test_gap_over_the_limit_splits_runs() -> None:
    segments = segs((0, 2, "Short."), (3.5, 5, "Also short."))
    with pytest.raises(ValueError, match="gap over 1 s"):
        choose_reference_window(segments, 6.0)


def test_segments_past_the_audio_end_are_not_used() -> None:
    segments = segs((0, 5, "Real speech."), (5.1, 9, "Beyond the end."))
    window = choose_reference_window(segments, 6.0)
    assert (window.first, window.last) == (0, 0)


@pytest.mark.parametrize(
    ("segments", "reason"),
    [
        (segs((0, 14, "One very long cue.")), "every segment is longer than 11 s"),
        (segs((0, 1, "Hi."), (1.1, 2, "Yo.")), "covers only 2.00 s"),
        (segs((20, 24, "Late.")), "every segment ends after the recording"),
    ],
)
def test_no_window_reasons(segments: list[Segment], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        choose_reference_window(segments, 15.0)


def test_quiet_window_loses_to_a_good_level_one() -> None:
    segments = segs((0, 4, "Quiet part."), (5.5, 9.5, "Loud part."))
    window = choose_reference_window(segments, 10.0, level=lambda a, b: (-50.0 if a < 5 else -20.0, 0.0))
    assert window.text == "Loud part." and window.level_ok
