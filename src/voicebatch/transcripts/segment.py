"""The transcript record shared by every format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of speech: seconds from the start of the recording, and its text."""

    start: float
    end: float
    text: str
    speaker: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Transcript:
    """A parsed transcript file.

    ``timed`` is False for plain text (TXT): then ``segments`` is empty and ``text`` holds
    the whole transcript.
    """

    path: str
    format: str
    encoding: str
    segments: tuple[Segment, ...]
    timed: bool = True
    untimed_text: str = ""

    @property
    def text(self) -> str:
        if not self.timed:
            return self.untimed_text
        return " ".join(s.text for s in self.segments)
