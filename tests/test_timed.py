"""Timed scripts: rates that fit each cue into its slot, and takes placed on the cue timeline."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from voicebatch.inputs.timed import lay_out, plan_cue_speeds
from voicebatch.inputs.transcripts import Segment
from voicebatch.settings import Limit


def cue(start: float, end: float) -> Segment:
    return Segment(start, end, "text")


def test_a_cue_that_fits_keeps_the_rate_and_a_tight_one_is_sped_up_just_enough() -> None:
    cues = [cue(0.0, 2.0), cue(2.5, 4.0), cue(4.0, 6.0), cue(8.0, 9.0)]
    plan = plan_cue_speeds(cues, [2.0, 2.2, 3.0, 0.5], track_end=10.0)
    # Slots: [0, 2.5), [2.5, 4), [4, 8), [8, 10). Cue 1 needs 2.2 s in 1.5 s: 2.2 / 1.5 =
    # 1.46667, rounded up to 1.4667; the others fit at 1.0.
    assert [f.speed for f in plan] == [1.0, 1.4667, 1.0, 1.0]
    assert [f.planned_start for f in plan] == [0.0, 2.5, 4.0, 8.0]
    assert [f.slot_end for f in plan] == [2.5, 4.0, 8.0, 10.0]
    assert all(f.fits for f in plan)
    assert plan[1].end == pytest.approx(2.5 + 2.2 / 1.4667)
    assert plan[1].end < 4.0


def test_a_cue_that_cannot_fit_spills_over_and_the_next_starts_after_it() -> None:
    cues = [cue(0.0, 1.0), cue(1.0, 2.0), cue(5.0, 6.0)]
    plan = plan_cue_speeds(cues, [3.0, 1.0, 1.0])
    # Cue 0: 3 s in 1 s needs 3×, capped at 2× -> 1.5 s, 0.5 s past its slot. Cue 1 starts at
    # 1.5 (0.5 s late) at 1×. Cue 2 fills its slot exactly at 1× (the track ends at its end).
    assert [(f.speed, f.planned_start, f.end) for f in plan] == [(2.0, 0.0, 1.5), (1.0, 1.5, 2.5), (1.0, 5.0, 6.0)]
    assert [f.overrun for f in plan] == [0.5, 0.0, 0.0]
    assert [f.late for f in plan] == [0.0, 0.5, 0.0]
    assert [f.fits for f in plan] == [False, False, True]


def test_a_late_cue_is_sped_up_to_win_the_time_back() -> None:
    cues = [cue(0.0, 1.0), cue(1.0, 2.0), cue(2.4, 3.0)]
    plan = plan_cue_speeds(cues, [2.4, 1.0, 0.5])
    # Cue 0 ends at 1.2 (2× cap). Cue 1 has 2.4 - 1.2 = 1.2 s: 1 s fits at 1×. Cue 2 on time.
    assert [(f.speed, round(f.planned_start, 6)) for f in plan] == [(2.0, 0.0), (1.0, 1.2), (1.0, 2.4)]
    plan = plan_cue_speeds(cues, [2.4, 1.8, 0.5])
    # Now cue 1 needs 1.8 s in 1.2 s: 1.5×, and ends at 2.4, just before cue 2.
    assert plan[1].speed == 1.5
    assert plan[1].end == pytest.approx(2.4)
    assert plan[2].fits


def test_the_requested_rate_and_the_range_bound_the_choice() -> None:
    cues = [cue(0.0, 1.0), cue(3.0, 4.0)]
    plan = plan_cue_speeds(cues, [1.2, 0.5], base_speed=0.8, speed_range=Limit(0.5, 1.5))
    # At 0.8 cue 0 takes 1.5 s in its 3 s slot: kept. Cue 1 (0.625 s) also fits.
    assert [f.speed for f in plan] == [0.8, 0.8]
    plan = plan_cue_speeds(cues, [6.0, 0.5], base_speed=0.8, speed_range=Limit(0.5, 1.5))
    assert plan[0].speed == 1.5  # 6 s in 3 s would need 2×: the range stops it at 1.5×
    assert plan[0].overrun == pytest.approx(1.0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="in order"):
        plan_cue_speeds([cue(2.0, 3.0), cue(1.0, 2.0)], [1.0, 1.0])
    with pytest.raises(ValueError, match="2 natural durations for 1 cues"):
        plan_cue_speeds([cue(0.0, 1.0)], [1.0, 1.0])
    with pytest.raises(ValueError, match="before its last cue starts"):
        plan_cue_speeds([cue(5.0, 6.0)], [1.0], track_end=4.0)


def test_layout_places_takes_on_the_timeline_with_silence_between() -> None:
    cues = [cue(0.0, 1.0), cue(1.0, 2.0), cue(5.0, 6.0)]
    layout = lay_out(cues, [1500, 1000, 900], sample_rate=1000, track_end=7.0)
    rows = [(p.start, p.length, p.silence_before, p.late, p.overrun) for p in layout.placements]
    assert rows == [(0, 1500, 0, 0, 500), (1500, 1000, 0, 500, 0), (5000, 900, 2500, 0, 0)]
    assert layout.total == 7000  # the track's length
    assert layout.trailing_silence == 7000 - 5900
    assert layout.flagged == (0, 1)


def test_layout_grows_past_the_track_only_when_the_last_take_spills() -> None:
    layout = lay_out([cue(0.0, 1.0)], [1500], sample_rate=1000, track_end=1.2)
    assert layout.total == 1500
    assert layout.flagged == (0,)


# --- properties -----------------------------------------------------------------------------


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[Segment], list[float], float]:
    count = draw(st.integers(1, 12))
    starts = sorted(draw(st.lists(st.floats(0, 120, allow_nan=False), min_size=count, max_size=count)))
    cues = [Segment(s, s + draw(st.floats(0.1, 6)), "x") for s in starts]
    natural = draw(st.lists(st.floats(0, 10, allow_nan=False), min_size=count, max_size=count))
    track_end = max(c.end for c in cues) + draw(st.floats(0, 5))
    return cues, natural, track_end


SPEEDS = Limit(0.5, 2.0)


@settings(max_examples=300, deadline=None)
@given(timelines(), st.floats(0.5, 2.0), st.sampled_from([0.0, 0.05]))
def test_plan_properties(timeline: tuple[list[Segment], list[float], float], base: float, gap: float) -> None:
    cues, natural, track_end = timeline
    plan = plan_cue_speeds(cues, natural, base_speed=base, speed_range=SPEEDS, track_end=track_end, gap=gap)
    for i, fit in enumerate(plan):
        assert SPEEDS.low <= fit.speed <= SPEEDS.high
        assert fit.speed >= base - 1e-12  # never slower than asked
        assert fit.planned_start >= fit.cue_start
        if i:
            assert fit.planned_start >= plan[i - 1].end + gap - 1e-9  # never on top of the take before
            if fit.late > 1e-9:  # late only because the take before (and the gap) reached past it
                assert plan[i - 1].end + gap > fit.cue_start
        if fit.speed < SPEEDS.high and fit.planned_start <= fit.slot_end:
            assert fit.end <= fit.slot_end + 1e-9  # an overrun only at the fastest rate allowed
        room = fit.slot_end - fit.planned_start - (gap if i < len(plan) - 1 else 0.0)
        if natural[i] / base <= room:
            assert fit.speed == base  # no needless speed-up
        if fit.speed < SPEEDS.high and room > 0:
            assert fit.end <= fit.slot_end - (gap if i < len(plan) - 1 else 0.0) + 1e-9  # the gap kept


@settings(max_examples=300, deadline=None)
@given(timelines(), st.integers(8000, 48000), st.sampled_from([0.0, 0.02]))
def test_layout_properties(timeline: tuple[list[Segment], list[float], float], rate: int, gap: float) -> None:
    cues, natural, track_end = timeline
    plan = plan_cue_speeds(cues, natural, track_end=track_end, gap=gap)
    lengths = [round(f.duration * rate) for f in plan]
    layout = lay_out(cues, lengths, sample_rate=rate, track_end=track_end, gap=gap)
    placements = layout.placements
    assume(all(math.isfinite(f.duration) for f in plan))
    ends = [*[round(c.start * rate) for c in cues[1:]], round(track_end * rate)]
    for i, p in enumerate(placements):
        cue_start = round(cues[i].start * rate)
        assert p.start >= cue_start
        if i:
            assert p.start >= placements[i - 1].end + round(gap * rate)  # no overlap
            if placements[i - 1].end + round(gap * rate) <= cue_start:
                assert p.start == cue_start  # on time whenever the take before allows
        assert p.overrun == max(0, p.end - ends[i])
        # The acceptance's rule: on time (within 50 ms) and over before the next cue, or flagged.
        on_time = p.start - cue_start <= 0.05 * rate and p.end <= ends[i]
        assert on_time or i in layout.flagged
    assert layout.total == max(round(track_end * rate), placements[-1].end)
    assert sum(p.silence_before + p.length for p in placements) + layout.trailing_silence == layout.total


def test_a_sped_up_take_ends_the_gap_before_the_next_cue() -> None:
    cues = [cue(0.0, 1.0), cue(2.0, 3.0)]
    # 2 s of speech in a 2 s slot: at 1.0 it would touch the next cue; with a 0.1 s gap it must
    # end by 1.9 s: 2 / 1.9 = 1.052632, rounded up to 1.0527. The last cue needs no gap after it.
    plan = plan_cue_speeds(cues, [2.0, 1.0], gap=0.1)
    assert [f.speed for f in plan] == [1.0527, 1.0]
    assert plan[0].end <= 1.9
    assert plan_cue_speeds(cues, [2.0, 1.0])[0].speed == 1.0  # no gap asked: it may touch
