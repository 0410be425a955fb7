"""Choosing a voice's reference clip from its transcript's own timings.

F5-TTS clips reference audio to about 12 s but keeps the whole reference text, so a long
reference makes text and audio disagree (tensor size errors, rushed or garbled speech).
We never let that happen: the clip is a run of consecutive whole transcript segments that
fits the bounds, the audio is cut at those segments' boundaries, and the reference text is
exactly those segments' text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voicebatch.inputs.transcripts import Segment

SENTENCE_END = tuple(".!?…。！？")
_CLOSERS = "\"')]»”’"


@dataclass(frozen=True, slots=True)
class ClipRules:
    """Bounds of a reference clip (seconds). Configurable per run."""

    min_seconds: float = 3.0
    max_seconds: float = 11.0
    max_gap: float = 1.0  # longest silence allowed between two segments of the clip
    padding: float = 0.1  # audio kept around the outer segment boundaries
    min_rms_dbfs: float = -35.0  # quieter windows are a poor reference
    max_clipped_fraction: float = 0.001


@dataclass(frozen=True, slots=True)
class ClipWindow:
    first: int  # index of the first segment in the clip
    last: int  # index of the last segment (inclusive)
    start: float  # cut points in the recording, padding included
    end: float
    text: str  # exactly the text of segments first..last
    ends_sentence: bool
    level_ok: bool

    @property
    def duration(self) -> float:
        return self.end - self.start


DEFAULT_RULES = ClipRules()

# A level probe: (start, end) in seconds -> (rms dBFS, clipped fraction).
LevelProbe = Callable[[float, float], tuple[float, float]]


def ends_sentence(text: str) -> bool:
    return text.rstrip().rstrip(_CLOSERS).endswith(SENTENCE_END)


def choose_reference_window(
    segments: Sequence[Segment],
    audio_seconds: float,
    rules: ClipRules = DEFAULT_RULES,
    level: LevelProbe | None = None,
) -> ClipWindow:
    """The best run of whole segments; ``ValueError`` (a short reason) when none fits.

    Preference, in order: the run ends on sentence punctuation, its level is good (loud
    enough, not clipped), it starts at a sentence start, it is longer (more of the voice).
    Ties go to the earliest run.
    """
    best: tuple[tuple[bool, bool, bool, float], ClipWindow] | None = None
    for first in range(len(segments)):
        for last in range(first, len(segments)):
            if last > first and not _joinable(segments[last - 1], segments[last], rules):
                break
            if segments[last].end > audio_seconds + 0.05:
                break
            span = segments[last].end - segments[first].start
            if span > rules.max_seconds:
                break
            if span < rules.min_seconds:
                continue
            window = _window(segments, first, last, audio_seconds, rules, level)
            starts = first == 0 or ends_sentence(segments[first - 1].text)
            score = (window.ends_sentence, window.level_ok, starts, round(span, 3))
            if best is None or score > best[0]:
                best = (score, window)
    if best is None:
        raise ValueError(_why_no_window(segments, audio_seconds, rules))
    return best[1]


def _joinable(previous: Segment, following: Segment, rules: ClipRules) -> bool:
    gap = following.start - previous.end
    return -0.01 <= gap <= rules.max_gap


def _window(
    segments: Sequence[Segment],
    first: int,
    last: int,
    audio_seconds: float,
    rules: ClipRules,
    level: LevelProbe | None,
) -> ClipWindow:
    start, end = segments[first].start, segments[last].end
    # Pad into silence only: never past half the gap to a neighbouring segment (that
    # would put its speech, which the text does not mention, into the clip), never past
    # the recording, and never past the clip's length bound.
    room_before = start - (segments[first - 1].end if first > 0 else 0.0)
    room_after = (segments[last + 1].start if last + 1 < len(segments) else audio_seconds) - end
    budget = max(0.0, (rules.max_seconds - (end - start)) / 2)
    pad_before = max(0.0, min(rules.padding, room_before / 2 if first > 0 else room_before, budget))
    pad_after = max(0.0, min(rules.padding, room_after / 2 if last + 1 < len(segments) else room_after, budget))
    cut_start, cut_end = round(start - pad_before, 3), round(end + pad_after, 3)
    text = " ".join(s.text for s in segments[first : last + 1])
    level_ok = True
    if level is not None:
        rms, clipped = level(cut_start, cut_end)
        level_ok = rms >= rules.min_rms_dbfs and clipped <= rules.max_clipped_fraction
    return ClipWindow(first, last, cut_start, cut_end, text, ends_sentence(text), level_ok)


def _why_no_window(segments: Sequence[Segment], audio_seconds: float, rules: ClipRules) -> str:
    bounds = f"{rules.min_seconds:g}–{rules.max_seconds:g} s"
    inside = [s for s in segments if s.end <= audio_seconds + 0.05]
    if not inside:
        return f"every segment ends after the recording ({audio_seconds:.2f} s): wrong transcript or timings?"
    if min(s.duration for s in inside) > rules.max_seconds:
        return f"every segment is longer than {rules.max_seconds:g} s: split the transcript into shorter cues"
    covered = inside[-1].end - inside[0].start
    if covered < rules.min_seconds:
        return f"the transcript covers only {covered:.2f} s of speech; a reference needs {bounds}"
    return f"no run of consecutive segments without a gap over {rules.max_gap:g} s spans {bounds}"
