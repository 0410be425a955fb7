"""Timed scripts (dubbing, voice-over): each cue of a subtitle track spoken inside its slot.

A cue's slot runs from its start to the next cue's start (the last cue's, to the end of the
track): speech starts at the cue's start and must be over before the next cue's speech begins.
Two pure steps, with no audio and no model:

1. ``plan_cue_speeds``: from each cue's natural duration (seconds of speech at rate 1.0), the
   rate to speak it at. A cue that fits at the requested rate keeps it (never slowed down to
   fill its slot: the rest is silence); one that does not is sped up just enough to end
   ``gap`` before the next cue's start, up to the top of the speed Param's range
   (``limits.LIMITS["speed"]``). A cue that still does not fit
   spills over: the next cue then starts late (never on top of it) and is itself sped up to
   win the time back where its range allows. Cues that start late or end past their slot are
   flagged.
2. ``lay_out``: the synthesized takes (their real lengths in samples) placed on the original
   timeline: each starts at its cue's start or, after a spill, right after the take before
   (plus ``gap``); the gaps are silence; the track is as long as the source track (longer
   only when the last cue spills past its end).

Speech length is taken to scale as 1 / rate, as F5-TTS sizes its output (frames = reference
frames per byte × bytes / speed); ``synthesis.batching.estimate_frames`` gives the natural
duration of a chunk before it is synthesized.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from voicebatch.settings import LIMITS, Limit

_EPSILON = 1e-9  # seconds: float noise, not lateness


class Timed(Protocol):
    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


@dataclass(frozen=True, slots=True)
class CueFit:
    """How one cue is to be spoken: where, how fast, and whether it fits its slot."""

    index: int
    cue_start: float  # seconds: where the cue says its speech starts
    planned_start: float  # where it can start: the cue's start, or later after a spill
    slot_end: float  # where it must be over: the next cue's start (the track's end for the last)
    natural: float  # seconds of speech at rate 1.0
    speed: float  # the rate chosen (F5's speed factor)

    @property
    def duration(self) -> float:
        return self.natural / self.speed

    @property
    def end(self) -> float:
        return self.planned_start + self.duration

    @property
    def late(self) -> float:
        """Seconds after its cue's start that the speech begins (0 when on time)."""
        return max(0.0, self.planned_start - self.cue_start)

    @property
    def overrun(self) -> float:
        """Seconds past its slot's end that the speech lasts (0 when it fits)."""
        return max(0.0, self.end - self.slot_end)

    @property
    def fits(self) -> bool:
        return self.late <= _EPSILON and self.overrun <= _EPSILON


def slot_ends(cues: Sequence[Timed], track_end: float | None = None) -> list[float]:
    """Each cue's slot end: the next cue's start; for the last, the track's end (default: the
    last cue's end). Raises ``ValueError`` for cues out of order or a track that ends too soon."""
    starts = [c.start for c in cues]
    if any(b < a for a, b in pairwise(starts)):
        raise ValueError("cues must be in order of their start times")
    if not cues:
        return []
    end = max(cues[-1].end, cues[-1].start) if track_end is None else track_end
    if end < cues[-1].start:
        raise ValueError(f"the track ends ({end:.3f} s) before its last cue starts ({cues[-1].start:.3f} s)")
    return [*starts[1:], end]


def plan_cue_speeds(
    cues: Sequence[Timed],
    natural: Sequence[float],
    *,
    base_speed: float = 1.0,
    speed_range: Limit = LIMITS["speed"],
    track_end: float | None = None,
    gap: float = 0.0,
) -> list[CueFit]:
    """The rate of each cue (see the module's docstring); ``natural[i]`` is cue i's speech in
    seconds at rate 1.0, ``gap`` the least silence kept between two takes: a take is sped up to
    end ``gap`` before the next cue's start where it can, and starts ``gap`` after a take that
    spilled into its slot. A take ending inside that gap is not late: it is not flagged."""
    if len(natural) != len(cues):
        raise ValueError(f"{len(natural)} natural durations for {len(cues)} cues")
    if any(n < 0 or not math.isfinite(n) for n in natural):
        raise ValueError("natural durations must be finite and not negative")
    low, high = speed_range.low or 0.0, speed_range.high or math.inf
    base = min(high, max(low, base_speed))
    fits: list[CueFit] = []
    previous_end = -math.inf
    last = len(cues) - 1
    for index, (cue, slot_end, seconds) in enumerate(zip(cues, slot_ends(cues, track_end), natural, strict=True)):
        start = max(cue.start, previous_end + gap)
        room = slot_end - start - (gap if index < last else 0.0)  # the last take ends the track: no gap after it
        needed = seconds / room if room > 0 else (0.0 if seconds == 0 else math.inf)
        speed = base if needed <= base else high if needed >= high else min(high, _round_up(needed))
        fit = CueFit(index, cue.start, start, slot_end, seconds, speed)
        fits.append(fit)
        previous_end = fit.end
    return fits


def _round_up(speed: float) -> float:
    # Rates travel rounded to 4 decimals (chunks' speed): round up, so the rounding never makes
    # a cue that fits overrun by a hair.
    return math.ceil(speed * 10_000 - 1e-6) / 10_000


@dataclass(frozen=True, slots=True)
class Placement:
    """One take on the output timeline, in samples."""

    index: int
    start: int  # first sample of the take
    length: int  # samples of the take
    silence_before: int  # silence between the previous take (or the track's start) and this one
    late: int  # samples after its cue's start that it begins (0 when on time)
    overrun: int  # samples past the next cue's start (the track's end for the last) that it lasts

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def fits(self) -> bool:
        return self.late == 0 and self.overrun == 0


@dataclass(frozen=True, slots=True)
class TimedLayout:
    placements: tuple[Placement, ...]
    total: int  # samples in the output: the track's length, more only when the last take spills
    sample_rate: int

    @property
    def trailing_silence(self) -> int:
        return self.total - (self.placements[-1].end if self.placements else 0)

    @property
    def flagged(self) -> tuple[int, ...]:
        """The cues that start late or end past their slot."""
        return tuple(p.index for p in self.placements if not p.fits)


def lay_out(
    cues: Sequence[Timed],
    lengths: Sequence[int],
    *,
    sample_rate: int,
    track_end: float | None = None,
    gap: float = 0.0,
) -> TimedLayout:
    """Place takes of ``lengths[i]`` samples on the cues' timeline (see the module's docstring)."""
    if len(lengths) != len(cues):
        raise ValueError(f"{len(lengths)} takes for {len(cues)} cues")
    if any(n < 0 for n in lengths):
        raise ValueError("take lengths must not be negative")
    ends = slot_ends(cues, track_end)
    gap_samples = round(gap * sample_rate)
    placements: list[Placement] = []
    previous_end: int | None = None
    for index, (cue, slot_end, length) in enumerate(zip(cues, ends, lengths, strict=True)):
        cue_start = round(cue.start * sample_rate)
        start = cue_start if previous_end is None else max(cue_start, previous_end + gap_samples)
        limit = round(slot_end * sample_rate)
        placements.append(
            Placement(
                index,
                start,
                length,
                start - (previous_end or 0),
                start - cue_start,
                max(0, start + length - limit),
            )
        )
        previous_end = start + length
    track = round(ends[-1] * sample_rate) if ends else 0
    return TimedLayout(tuple(placements), max(track, previous_end or 0), sample_rate)
