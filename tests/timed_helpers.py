"""A 10-cue dubbing track for a voice of known pace, and its speech found again in the audio.

The cues are laid out from F5-TTS's duration rule computed here (the reference's seconds per
UTF-8 byte): most fit at rate 1.0, two need speeding up, one is far too long for its slot even
at twice the speed (it spills, and pushes the next cue late). Speech is found in the written
audio by its energy alone: the tiny model's noise is steady, the silence between takes zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np

from audio_helpers import speech_like, srt, write_audio

REFERENCE_TEXT = "This is a fairly long reference sentence, spoken rather quickly by the voice."
RATE = 24_000
ONSET_TOLERANCE = 0.05  # seconds: the acceptance's bound on a cue's speech onset


@dataclass(frozen=True)
class Line:
    text: str
    room: float  # the cue's slot as a multiple of its natural length at rate 1.0 (< 1: sped up)


LINES = [
    Line("Good morning to all of you.", 1.6),
    Line("We have a great deal to cover today.", 0.75),  # needs about 1.4x
    Line("First, the weather report.", 1.5),
    Line("Then the markets, which moved a lot.", 0.6),  # needs about 1.8x
    Line("And the sport results.", 1.5),
    Line("This line is much too long to be spoken inside the tiny slot that it has been given here.", 0.25),
    Line("Back to the studio now.", 1.5),  # starts late: the line before spills into its slot
    Line("Thank you for listening.", 1.4),
    Line("See you again tomorrow.", 1.4),
    Line("Goodbye from all of us here.", 2.0),  # the last: the track runs on past its speech
]
TOO_LONG, PUSHED = 5, 6


def make_timed_voice(root: Path) -> Path:
    """A voice whose clip is the whole recording: 5 s of speech-like noise and its text."""
    folder = root / "pace"
    write_audio(folder / "take.wav", speech_like(5.4, [(0.2, 5.2)]))
    (folder / "take.srt").write_text(srt([(0.2, 5.2, REFERENCE_TEXT)]), encoding="utf-8")
    return folder


def seconds_a_byte(voice: Path) -> float:
    """F5's pace for the prepared clip: its seconds over its text's bytes (plus the space F5 adds)."""
    from voicebatch.inputs.voices import prepare_voice, voice_source

    prepared = prepare_voice(voice_source(voice))
    return prepared.duration / (len(prepared.text.encode("utf-8")) + 1)


def timed_cues(pace: float) -> list[tuple[float, float, str]]:
    """(start, end, text) of each cue: each slot ``room`` times its line's natural length."""
    cues, start = [], 0.4
    for n, line in enumerate(LINES):
        natural = len(line.text.encode("utf-8")) * pace
        slot = natural * line.room
        if n == PUSHED:  # room enough to start late and still end before the next cue
            slot += natural * 2
        slot = round(slot, 3)
        cues.append((round(start, 3), round(start + slot * 0.9, 3), line.text))
        start += slot
    return cues


def write_timed_script(folder: Path, pace: float, name: str = "dub") -> tuple[Path, list[tuple[float, float, str]]]:
    cues = timed_cues(pace)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.srt"
    path.write_text(srt(cues), encoding="utf-8")
    return path, cues


def speech_regions(samples: np.ndarray, rate: int = RATE, frame: float = 0.005) -> list[tuple[float, float]]:
    """(start, end) seconds of every stretch of 5 ms frames louder than 1% of the loudest."""
    size = round(frame * rate)
    count = samples.shape[0] // size
    rms = np.sqrt(np.mean(np.square(samples[: count * size].reshape(count, size), dtype=np.float64), axis=1))
    loud = np.r_[0, (rms > 0.01 * rms.max()).astype(np.int8), 0]
    edges = np.flatnonzero(np.diff(loud))
    return [(a * size / rate, b * size / rate) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def check_track(samples: np.ndarray, cues: list[tuple[float, float, str]], flagged: set[int]) -> None:
    """The acceptance, measured on the audio: one stretch of speech a cue, in order and never
    overlapping; each starts within 50 ms of its cue's start and ends before the next cue's
    start, unless the cue is flagged."""
    regions = speech_regions(samples)
    assert len(regions) == len(cues), f"{len(regions)} stretches of speech for {len(cues)} cues: {regions}"
    ends = [c[0] for c in cues[1:]] + [cues[-1][1]]
    for n, ((start, end), cue, slot_end) in enumerate(zip(regions, cues, ends, strict=True)):
        on_time = abs(start - cue[0]) <= ONSET_TOLERANCE and end <= slot_end + 1e-9
        # Flagged exactly when it does not fit: an on-time cue is never flagged, nor a late one missed.
        assert on_time == (n not in flagged), f"cue {n + 1}: speech {start:.3f}-{end:.3f}, slot {cue[0]}-{slot_end}"
    for (_, end), (start, _) in pairwise(regions):
        assert end < start  # silence between every two takes: none overlaps the next


def expected_flags(pace: float) -> set[int]:
    """The cue too long even at 2x (checked here from F5's rule), and the one it pushes late."""
    cues = timed_cues(pace)
    natural = len(LINES[TOO_LONG].text.encode("utf-8")) * pace
    assert natural / 2.0 > cues[TOO_LONG + 1][0] - cues[TOO_LONG][0]  # the design: it cannot fit
    return {TOO_LONG, PUSHED}
