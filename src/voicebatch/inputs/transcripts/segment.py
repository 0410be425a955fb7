"""The transcript record shared by every format."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a segment as a speech recogniser timed it (Whisper's ``words``); a word
    the aligner could not place (WhisperX leaves numbers untimed) has no times."""

    start: float | None
    end: float | None
    text: str


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of speech: seconds from the start of the recording, and its text.

    ``words`` holds the segment's word times when the file has them (Whisper's JSON); every
    other format leaves it empty."""

    start: float
    end: float
    text: str
    speaker: str | None = None
    words: tuple[Word, ...] = ()

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
