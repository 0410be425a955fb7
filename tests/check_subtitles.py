"""Check published subtitles against the broadcast rules, from the files alone.

    python tests/check_subtitles.py output/demo            # every .srt (and its .vtt) under it

Rules (Netflix's English timed-text style guide, the numbers voicebatch uses): at most 42
columns a line (a Chinese or Japanese character is two) and 2 lines a cue; a cue lasts at
least 5/6 s unless the next cue follows at the minimum gap (the speech leaves no room),
and at most 7 s unless it is one word; at least 2 frames at 24 fps (83 ms) between cues;
at most 20 characters a second unless the cue already runs into the next one's gap or
the 7 s limit; no single-word cue that its neighbour (same voice) could have taken; the
VTT numbers its cues as the SRT does and carries the same text. Exit status 1 when
anything breaks a rule. Written independently of voicebatch.render.subtitles (pysrt, webvtt-py,
wcwidth), so it checks the behaviour, not the code's own arithmetic.
"""

from __future__ import annotations

import argparse
import html
import io
import itertools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MAX_WIDTH, MAX_LINES = 42, 2
MIN_DURATION, MAX_DURATION = 5 / 6, 7.0
MAX_CPS = 20.0
MIN_GAP = 2 / 24
EPS = 0.0015  # SRT and VTT keep milliseconds


@dataclass(frozen=True)
class Cue:
    number: int
    start: float
    end: float
    lines: tuple[str, ...]
    voice: str | None = None

    @property
    def text(self) -> str:
        return " ".join(self.lines)

    @property
    def characters(self) -> int:
        """Characters on screen; line breaks not counted."""
        return sum(len(line) for line in self.lines)

    @property
    def duration(self) -> float:
        return self.end - self.start


def width(text: str) -> int:
    from wcwidth import wcswidth

    return max(wcswidth(text), len(text) if wcswidth(text) < 0 else 0)


def read_srt(data: str) -> list[Cue]:
    import pysrt

    items = pysrt.from_string(data, error_handling=pysrt.ERROR_RAISE)
    return [Cue(i.index, i.start.ordinal / 1000, i.end.ordinal / 1000, tuple(i.text.split("\n"))) for i in items]


def read_vtt(data: str) -> list[Cue]:
    import webvtt

    cues = []
    for caption in webvtt.from_buffer(io.StringIO(data)).captions:
        voices = set(re.findall(r"<v ([^>]+)>", caption.raw_text))
        lines = tuple(html.unescape(re.sub(r"</?v[^>]*>", "", line)) for line in caption.raw_text.split("\n"))
        cues.append(
            Cue(
                int(caption.identifier or 0),
                seconds(caption.start),
                seconds(caption.end),
                lines,
                next(iter(voices), None),
            )
        )
    return cues


_IDEOGRAPHS = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def fits_two_lines(text: str) -> bool:
    """Whether ``text`` can be shown in two lines at Unicode line break opportunities (UAX #14)."""
    from uniseg.linebreak import line_break_units

    units = list(line_break_units(text))
    if width(text) <= MAX_WIDTH:
        return True
    return any(
        width("".join(units[:k]).strip()) <= MAX_WIDTH and width("".join(units[k:]).strip()) <= MAX_WIDTH
        for k in range(1, len(units))
    )


def words(cue: Cue) -> int:
    """Words on screen; text in Chinese or Japanese script (no spaces) counts as many."""
    if _IDEOGRAPHS.search(cue.text):
        return len(_IDEOGRAPHS.findall(cue.text))
    return len(cue.text.split())


def seconds(timestamp: str) -> float:
    """WebVTT ``[HH:]MM:SS.mmm`` -> seconds (webvtt-py's own ``*_in_seconds`` drop the milliseconds)."""
    parts = [float(p) for p in timestamp.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def problems(cues: list[Cue]) -> list[str]:
    """Every rule a cue breaks where the file shows the speech would have allowed it."""
    found = []
    for k, cue in enumerate(cues):
        name = f"cue {cue.number} ({cue.start:.3f}-{cue.end:.3f} s, {cue.text[:40]!r})"
        following = cues[k + 1] if k + 1 < len(cues) else None
        no_room = following is not None and following.start - cue.end <= MIN_GAP + EPS
        if len(cue.lines) > MAX_LINES:
            found.append(f"{name}: {len(cue.lines)} lines")
        for line in cue.lines:
            if width(line) > MAX_WIDTH:
                found.append(f"{name}: a line {width(line)} columns wide")
        if cue.duration < MIN_DURATION - EPS and not no_room:
            found.append(f"{name}: {cue.duration:.3f} s, under 5/6 s with room to grow")
        if cue.duration > MAX_DURATION + EPS and words(cue) > 1:
            found.append(f"{name}: {cue.duration:.3f} s, over 7 s")
        at_limit = no_room or cue.duration >= MAX_DURATION - EPS
        if cue.characters / max(cue.duration, 1e-6) > MAX_CPS + 0.05 and not at_limit:
            found.append(f"{name}: {cue.characters / cue.duration:.1f} characters a second with room to grow")
        if following is not None and following.start - cue.end < MIN_GAP - EPS:
            found.append(f"{name}: {following.start - cue.end:.3f} s gap before the next cue, under 2 frames")
        if words(cue) == 1 and len(cues) > 1:
            for other in (cues[k - 1] if k > 0 else None, following):
                if other is None or other.voice != cue.voice:
                    continue
                first, second = (other, cue) if other.start < cue.start else (cue, other)
                joined = f"{first.text} {second.text}"
                if fits_two_lines(joined) and second.end - first.start <= MAX_DURATION - EPS:
                    found.append(f"{name}: a single word its neighbour cue {other.number} could take")
    return found


def with_voices(cues: list[Cue], captions: list[Cue]) -> list[Cue]:
    """The SRT's cues with the voices the VTT names (an SRT has no voices)."""
    if len(cues) != len(captions):
        return cues
    return [Cue(c.number, c.start, c.end, c.lines, v.voice) for c, v in zip(cues, captions, strict=True)]


def check_pair(srt: Path) -> list[str]:
    cues = read_srt(srt.read_text(encoding="utf-8"))
    vtt = srt.with_suffix(".vtt")
    captions = read_vtt(vtt.read_text(encoding="utf-8")) if vtt.exists() else []
    found = [f"{srt}: {p}" for p in problems(with_voices(cues, captions) if captions else cues)]
    if vtt.exists():
        if [c.number for c in captions] != [c.number for c in cues]:
            found.append(f"{vtt}: cue ids are not the SRT's numbers")
        if [c.lines for c in captions] != [c.lines for c in cues]:
            found.append(f"{vtt}: text differs from the SRT")
        found += [f"{vtt}: {p}" for p in problems(captions)]
    return found


def statistics(srt: Path) -> dict:
    cues = read_srt(srt.read_text(encoding="utf-8"))
    gaps = [b.start - a.end for a, b in itertools.pairwise(cues)]
    return {
        "cues": len(cues),
        "under_1s": sum(c.duration < 1 for c in cues),
        "over_7s": sum(c.duration > 7 for c in cues),
        "zero_gaps": sum(g <= 0 for g in gaps),
        "single_word": sum(words(c) == 1 for c in cues),
        "widest_line": max((width(line) for c in cues for line in c.lines), default=0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    files = sorted(args.directory.rglob("*.srt"))
    if not files:
        print(f"{args.directory}: no .srt files", file=sys.stderr)
        return 2
    found = []
    for srt in files:
        print(f"{srt}: {statistics(srt)}")
        found += check_pair(srt)
    for line in found:
        print(line)
    print(f"{len(files)} subtitle file(s), {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
