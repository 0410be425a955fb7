"""TTML time expressions (TTML1 §10.3.1, TTML2 §10.3.1) to seconds.

    clock time    HH:MM:SS   HH:MM:SS.fff   HH:MM:SS:FF   HH:MM:SS:FF.ss
    offset time   12.5s   1.5m   2h   800ms   300f   90090000t

Frames count at the document's effective frame rate (``ttp:frameRate`` ×
``ttp:frameRateMultiplier``), sub-frames at ``ttp:subFrameRate``, ticks at ``ttp:tickRate``
(defaulting, as the specification says, to frames × sub-frames when a frame rate is given,
else 1). With ``ttp:timeBase="smpte"`` and a drop mode, an SMPTE time code drops frame numbers
as NTSC (two a minute except every tenth) or M-PAL (four every even minute except every
twentieth) drop-frame code does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

_CLOCK = re.compile(r"^(\d+):(\d{2}):(\d{2})(?:(\.\d+)|:(\d+)(?:\.(\d+))?)?$")
_OFFSET = re.compile(r"^(\d+(?:\.\d+)?)(h|ms|m|s|f|t)$")


@dataclass(frozen=True, slots=True)
class TimeBase:
    """The document's timing parameters (the ``ttp:`` attributes of ``<tt>``)."""

    frame_rate: Fraction = Fraction(30)  # effective: frameRate × frameRateMultiplier
    sub_frame_rate: int = 1
    tick_rate: Fraction = Fraction(1)
    drop_mode: str | None = None  # "dropNTSC" / "dropPAL" (SMPTE time base only)


def time_base(
    frame_rate: str | None,
    multiplier: str | None,
    sub_frame_rate: str | None,
    tick_rate: str | None,
    smpte: bool = False,
    drop_mode: str | None = None,
) -> TimeBase:
    """The parameters from their attribute values; raises ``ValueError`` naming the attribute."""
    frames = _positive_int(frame_rate, "ttp:frameRate") if frame_rate is not None else 30
    if multiplier is not None:
        parts = multiplier.split()
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError("ttp:frameRateMultiplier must be two whole numbers, such as '1000 1001'")
        effective = Fraction(frames) * Fraction(int(parts[0]), int(parts[1]))
    else:
        effective = Fraction(frames)
    sub = _positive_int(sub_frame_rate, "ttp:subFrameRate") if sub_frame_rate is not None else 1
    if tick_rate is not None:
        ticks = Fraction(_positive_int(tick_rate, "ttp:tickRate"))
    elif frame_rate is not None:
        ticks = effective * sub
    else:
        ticks = Fraction(1)
    drop = drop_mode if smpte and drop_mode in ("dropNTSC", "dropPAL") else None
    return TimeBase(effective, sub, ticks, drop)


def parse_ttml_time(value: str, base: TimeBase) -> float:
    """Seconds (to the microsecond) from a time expression; ``ValueError`` when it is none."""
    text = value.strip()
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds, fraction, frames, sub_frames = clock.groups()
        if int(minutes) >= 60 or int(seconds) >= 61:  # 60 allowed: a leap second
            raise ValueError("minutes or seconds out of range")
        whole = int(hours) * 3600 + int(minutes) * 60 + int(seconds)
        if frames is None:
            return round(whole + (float(fraction) if fraction else 0.0), 6)
        frame_count = Fraction(int(frames)) + Fraction(int(sub_frames or 0), base.sub_frame_rate)
        if frame_count >= _nominal(base.frame_rate):
            raise ValueError("frame number at or above the frame rate")
        if base.drop_mode:
            return round(float(_drop_frame_seconds(int(hours), int(minutes), int(seconds), frame_count, base)), 6)
        return round(float(whole + frame_count / base.frame_rate), 6)
    offset = _OFFSET.match(text)
    if offset:
        count, metric = Fraction(offset.group(1)), offset.group(2)
        seconds = {
            "h": lambda: count * 3600,
            "m": lambda: count * 60,
            "s": lambda: count,
            "ms": lambda: count / 1000,
            "f": lambda: count / base.frame_rate,
            "t": lambda: count / base.tick_rate,
        }[metric]()
        return round(float(seconds), 6)
    raise ValueError("not a time expression")


def _nominal(frame_rate: Fraction) -> int:
    """Frames numbered per second in a time code: 30 for 29.97, 25 for 25."""
    return max(1, round(frame_rate))


def _drop_frame_seconds(hours: int, minutes: int, seconds: int, frames: Fraction, base: TimeBase) -> Fraction:
    nominal = _nominal(base.frame_rate)
    total_minutes = hours * 60 + minutes
    if base.drop_mode == "dropNTSC":  # frames 0-1 dropped each minute except minutes 0, 10, 20, ...
        dropped = 2 * (total_minutes - total_minutes // 10)
    else:  # dropPAL: frames 0-3 dropped each even minute except minutes 0, 20, 40, ...
        dropped = 4 * (total_minutes // 2 - total_minutes // 20)
    count = (hours * 3600 + minutes * 60 + seconds) * nominal + frames - dropped
    return count / base.frame_rate


def _positive_int(value: str, name: str) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{name} must be a whole number above 0")
    return int(text)
