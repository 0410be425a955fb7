"""A timed script's chunks: one a cue, each at the rate that fits it into its slot.

A cue's natural duration (seconds of speech at rate 1.0) is what F5-TTS will generate for
its text with the cue's voice (``synthesis.batching.estimate_frames``: the reference's
frames per byte times the cue's bytes); ``timed.plan_cue_speeds`` then chooses each rate
within the speed Param's range (``limits.LIMITS["speed"]``), starting from the script's own
speed (times a ``[voice speed=...]`` tag's). F5 gives text under 10 bytes a fixed length
whatever the speed (its own rule): such a cue is planned at that length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from voicebatch.inputs.chunking import Chunk, f5_reference_text
from voicebatch.inputs.scripts import Script
from voicebatch.inputs.timed import CueFit, plan_cue_speeds
from voicebatch.settings import LIMITS
from voicebatch.text.markup import strip_markup

SAMPLE_RATE, HOP_LENGTH = 24_000, 256
SHORT_TEXT_BYTES = 10  # F5's rule (synthesis.batching.estimate_frames)
# The least silence between two lines (seconds): a take is sped up to end this long before
# the next cue's start, and a take after a spill starts this long after it.
TIMED_GAP = 0.05


@dataclass(frozen=True, slots=True)
class TimedPlan:
    chunks: tuple[Chunk, ...]
    fits: tuple[CueFit, ...]  # the planned rate and fit of each cue (estimated lengths)
    track_end: float  # seconds: the output's length, unless the last take spills

    @property
    def flagged(self) -> tuple[int, ...]:
        """Cues expected not to fit (late, or past their slot) even at the fastest rate."""
        return tuple(f.index for f in self.fits if not f.fits)


def track_end(script: Script) -> float:
    """The end of a timed script's track: its last cue's end (the latest end of any cue)."""
    return max(max(c.end, c.start) for c in script.cues)


def natural_seconds(ref_text: str, ref_seconds: float, text: str) -> float:
    """Seconds of speech F5 generates for ``text`` at rate 1.0 with this reference: its rule
    (``synthesis.batching.estimate_frames``) before it rounds down to whole frames, so that a
    take at rate s lasts at most ``natural / s`` (rounding first would make it a frame longer)."""
    ref_frames = round(ref_seconds * SAMPLE_RATE) // HOP_LENGTH
    gen_bytes = len(text.encode("utf-8"))
    frames = ref_frames / len(f5_reference_text(ref_text).encode("utf-8")) * gen_bytes
    if gen_bytes < SHORT_TEXT_BYTES:  # F5 speaks short text at 0.3 whatever the rate asked
        frames /= 0.3
    return frames * HOP_LENGTH / SAMPLE_RATE


def plan_timed(
    script: Script,
    references: Mapping[str, tuple[str, float]],
    spoken: Callable[[str, str, str | None], str],
) -> TimedPlan:
    """The chunks of a timed script; ``references`` maps voice -> (reference text, seconds),
    ``spoken(text, voice, lang)`` gives what F5 is to say."""
    written = [" ".join(strip_markup(p.text).split()) for p in script.parts]
    said = [spoken(w, p.voice, p.lang) for w, p in zip(written, script.parts, strict=True)]
    # A tag's speed= scales its cue's base rate: planned as a cue that long at the script's rate.
    natural = [
        natural_seconds(*references[p.voice], text) / p.speed for p, text in zip(script.parts, said, strict=True)
    ]
    end = track_end(script)
    fits = plan_cue_speeds(
        script.cues, natural, base_speed=script.speed, speed_range=LIMITS["speed"], track_end=end, gap=TIMED_GAP
    )
    low, high = LIMITS["speed"].low or 0.0, LIMITS["speed"].high or 2.0
    chunks = tuple(
        Chunk(
            script.id,
            n,
            part.voice,
            text,
            min(high, max(low, round(fit.speed * part.speed, 4))),
            (words,),
            (text,),
            (n,),
            0.0,
        )
        for n, (part, words, text, fit) in enumerate(zip(script.parts, written, said, fits, strict=True))
    )
    return TimedPlan(chunks, tuple(fits), end)


def timed_check(plan: TimedPlan) -> dict:
    """What ``voicebatch scripts check`` shows of a timed script: each cue's slot, its natural
    length and planned rate, and the cues expected not to fit (numbered from 1, as in errors)."""
    return {
        "cues": len(plan.fits),
        "track_end": round(plan.track_end, 3),
        "cue_list": [
            {
                "cue": f.index + 1,
                "start": round(f.cue_start, 3),
                "slot_end": round(f.slot_end, 3),
                "natural": round(f.natural, 3),
                "speed": chunk.speed,
                "planned_start": round(f.planned_start, 3),
                "planned_end": round(f.end, 3),
                "fits": f.fits,
            }
            for f, chunk in zip(plan.fits, plan.chunks, strict=True)
        ],
        "flagged": [i + 1 for i in plan.flagged],
    }


TIMED_COLUMNS = ("cue", "start", "slot end", "natural", "rate", "planned end", "fits")


def timed_table_row(cue: dict) -> tuple[str, ...]:
    """One cue of ``timed_check`` as a row of the ``scripts check`` table."""
    return (
        str(cue["cue"]),
        f"{cue['start']:.3f}",
        f"{cue['slot_end']:.3f}",
        f"{cue['natural']:.3f}",
        f"{cue['speed']:g}",
        f"{cue['planned_end']:.3f}",
        "yes" if cue["fits"] else "NO: flagged",
    )
