"""What the checks return: small immutable records, JSON-ready."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str  # what the recogniser heard, as it wrote it
    language: str | None
    backend: str  # e.g. "pocketsphinx:en-us", "whisper:large-v3-turbo"
    words: tuple[tuple[str, float, float, float], ...] = ()  # (word, start, end, score) where the backend times them


@dataclass(frozen=True, slots=True)
class WordTime:
    word: str  # a normalised token of the known text
    start: float | None  # seconds from the start of the audio; None: the aligner could not place it
    end: float | None
    score: float | None = None  # the backend's per-word score (higher is better; scale is the backend's)

    @property
    def placed(self) -> bool:
        return self.start is not None and self.end is not None


@dataclass(frozen=True, slots=True)
class Alignment:
    aligner: str  # e.g. "pocketsphinx:en-us", "mms_fa", "whisper-words:large-v3-turbo"
    words: tuple[WordTime, ...]  # one per normalised token of the text, in order

    @property
    def unplaced(self) -> int:
        return sum(not w.placed for w in self.words)

    @property
    def complete(self) -> bool:
        return bool(self.words) and self.unplaced == 0


@runtime_checkable
class Recognizer(Protocol):
    """Speech to text. ``text`` is the expected text: a backend may use it to focus its
    search (pocketsphinx does), never to fill in what it did not hear."""

    name: str

    def supports(self, language: str) -> bool: ...

    def transcribe(self, audio16k: np.ndarray, *, text: str, language: str) -> Transcript: ...

    def lineage(self) -> dict: ...


@runtime_checkable
class Aligner(Protocol):
    """Known text + audio -> a time per token; says which tokens it could not place."""

    name: str

    def supports(self, language: str) -> bool: ...

    def align(self, audio16k: np.ndarray, tokens: list[str], *, language: str) -> Alignment: ...

    def lineage(self) -> dict: ...
