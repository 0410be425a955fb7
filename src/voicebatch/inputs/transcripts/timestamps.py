"""Timestamps as found in subtitle files and spreadsheets, to and from seconds."""

from __future__ import annotations

import re

# HH:MM:SS[.,]fff, MM:SS[.,]fff (WebVTT allows no hours), each part of any digit count the
# real files use; the fraction separator may be '.' or ',' (SRT exported by tools that
# write '.', spreadsheets with decimal commas).
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,9}))?$")
_SECONDS = re.compile(r"^(\d+)(?:[.,](\d{1,9}))?$")


def parse_timestamp(value: str) -> float:
    """Seconds (rounded to the millisecond) from a clock time or plain seconds.

    Raises ``ValueError`` with a short reason when ``value`` is not a timestamp.
    """
    s = value.strip()
    m = _CLOCK.match(s)
    if m:
        hours, minutes, seconds, fraction = m.groups()
        if int(minutes) >= 60 or int(seconds) >= 60:
            raise ValueError(f"minutes and seconds must be below 60 in {value!r}")
        total = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
        return round(total + _fraction(fraction), 3)
    m = _SECONDS.match(s)
    if m:
        whole, fraction = m.groups()
        return round(int(whole) + _fraction(fraction), 3)
    raise ValueError(f"not a timestamp: {value!r}")


def parse_milliseconds(value: str) -> float:
    s = value.strip()
    if not s.isdigit():
        raise ValueError(f"not a whole number of milliseconds: {value!r}")
    return round(int(s) / 1000.0, 3)


def _fraction(digits: str | None) -> float:
    return int(digits) / 10 ** len(digits) if digits else 0.0


def _split_ms(seconds: float) -> tuple[int, int, int, int]:
    total_ms = round(seconds * 1000)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return hours, minutes, secs, ms


def format_vtt_timestamp(seconds: float) -> str:
    h, m, s, ms = _split_ms(seconds)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def format_srt_timestamp(seconds: float) -> str:
    return format_vtt_timestamp(seconds).replace(".", ",")
