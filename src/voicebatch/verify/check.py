"""One take of one chunk -> its check: signal, content (ASR + jiwer), alignment.

A take's status is ``passed``, ``failed`` or ``not_checked`` (content could not be
checked: verification is off, the mode is ``signal``, or no configured backend handles
the chunk's language; never reported as passed). The alignment of the take's text gives
the measured word times that the timings use.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voicebatch.verify.records import Aligner, Alignment, Recognizer, Transcript
from voicebatch.verify.score import TextScore, score_text, transcript_alignment
from voicebatch.verify.settings import VerifySettings
from voicebatch.verify.signal import DEFAULT_LIMITS, SignalLimits, SignalReport, check_signal, to_16k
from voicebatch.verify.text import guess_language, normalise, word_tokens, written_words

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TakeCheck:
    status: str  # "passed" | "failed" | "not_checked"
    reasons: tuple[str, ...]
    language: str
    signal: SignalReport | None = None
    score: TextScore | None = None
    transcript: Transcript | None = None
    alignment: Alignment | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def rank(self) -> tuple:
        """Sort key for choosing among failed takes: fewer signal problems, then lower CER."""
        problems = len(self.signal.problems) if self.signal else 0
        cer = self.score.cer if self.score else 1.0
        return (self.status != "passed", problems, cer)

    def as_json(self) -> dict:
        return {
            "status": self.status,
            "reasons": list(self.reasons),
            "language": self.language,
            "cer": None if self.score is None else round(self.score.cer, 4),
            "wer": None if self.score is None else round(self.score.wer, 4),
            "transcript": None if self.transcript is None else self.transcript.text,
            "diff": [] if self.score is None else [list(d) for d in self.score.diff if d[0] != "equal"],
            "signal": None if self.signal is None else self.signal.as_json(),
        }


class Verifier:
    """Checks takes with one recogniser and the aligners that cover each language."""

    def __init__(
        self,
        settings: VerifySettings,
        recognizer: Recognizer | None = None,
        aligners: Sequence[Aligner] = (),
        *,
        notes: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.recognizer = recognizer
        self.aligners = tuple(aligners)
        self.notes = tuple(notes)  # what was decided when building it (mode downgraded, aligner missing)

    @property
    def mode(self) -> str:
        return self.settings.mode

    def language(self, text: str) -> str:
        return guess_language(text, self.settings.language)

    def lineage(self) -> dict:
        return {
            "recognizer": self.recognizer.lineage() if self.recognizer and self.mode == "asr" else None,
            "aligners": [a.lineage() for a in self.aligners],
        }

    def check(
        self,
        samples: np.ndarray,
        rate: int,
        text: str,
        *,
        bytes_per_second: float | None = None,
        speed: float = 1.0,
        limits: SignalLimits = DEFAULT_LIMITS,
        align: bool = True,
        transcript: Transcript | None = None,  # already decoded with its batch (transcribe_many)
    ) -> TakeCheck:
        from voicebatch.verify.signal import expected_seconds

        language = self.language(text)
        if self.mode == "off":
            return TakeCheck("not_checked", ("verification is off",), language)
        audio16k = to_16k(samples, rate)
        expected = expected_seconds(text, bytes_per_second, speed)
        signal = check_signal(samples, rate, expected=expected, limits=limits, audio16k=audio16k)
        reasons = list(signal.problems)
        given, transcript, score = transcript, None, None
        content_checked = False
        if self.mode == "asr" and self.recognizer is not None and self.recognizer.supports(language):
            content_checked = True
            transcript = given or self.recognizer.transcribe(audio16k, text=text, language=language)
            known = getattr(self.recognizer, "known", None)
            only = None
            if known is not None:  # words outside the backend's dictionary cannot be heard: not scored
                tokens = normalise(text, language).split()
                only = {t for t, k in zip(tokens, known(tokens), strict=True) if k}
            score = score_text(text, transcript.text, language, only=only)
            if score.cer > self.settings.threshold():
                reasons.append(f"CER {score.cer:.3f} is above {self.settings.threshold():g} ({self.recognizer.name})")
        elif self.mode == "asr":
            backend = self.recognizer.name if self.recognizer else "no ASR backend"
            reasons.append(f"content not checked: {backend} does not handle language {language!r}")
        alignment = None
        if align and (not reasons or not content_checked):
            alignment = self.align(audio16k, text, language, transcript)
            lost = alignment is not None and alignment.words and alignment.unplaced == len(alignment.words)
            if content_checked and lost:
                reasons.append(f"the aligner ({alignment.aligner}) could not follow the text through the audio")
        if not signal.passed or (content_checked and reasons):
            status = "failed"
        elif content_checked:
            status = "passed"
        else:
            status = "not_checked"
        return TakeCheck(status, tuple(reasons), language, signal, score, transcript, alignment)

    def align(
        self, audio16k: np.ndarray, text: str, language: str, transcript: Transcript | None = None
    ) -> Alignment | None:
        """The first aligner covering the language that places any word; else the
        recogniser's own word times; None when nothing covers the language."""
        tokens = normalise(text, language).split()
        if not tokens:
            return None
        for aligner in self.aligners:
            if aligner.supports(language):
                alignment = aligner.align(audio16k, tokens, language=language)
                if alignment.unplaced < len(tokens):
                    return alignment
                fallback = alignment
                break
        else:
            fallback = None
        if transcript is not None and transcript.words:
            from_words = transcript_alignment(transcript, tokens, language)
            if from_words.unplaced < len(tokens) or fallback is None:
                return from_words
        return fallback


def written_word_times(text_sentences: Sequence[str], alignment: Alignment | None, language: str) -> list | None:
    """Per written word of the chunk's sentences (``str.split`` words, in order): its
    (start, end) from the alignment's tokens, or None where no token of it was placed."""
    if alignment is None:
        return None
    words = [w for sentence in text_sentences for w in written_words(sentence)]
    pieces = word_tokens(words, language)
    if sum(len(p) for p in pieces) != len(alignment.words):
        log.warning("alignment has %d tokens for %d expected: ignored", len(alignment.words), sum(map(len, pieces)))
        return None
    out: list[tuple[float, float] | None] = []
    position = 0
    for piece in pieces:
        own = [w for w in alignment.words[position : position + len(piece)] if w.placed]
        position += len(piece)
        out.append((own[0].start, own[-1].end) if own and len(own) == len(piece) else None)
    return out


def batch_transcripts(verifier: Verifier, takes: Sequence[tuple[str, np.ndarray, int, str]]) -> dict[str, Transcript]:
    """Transcripts of several takes ``(key, samples, rate, text)`` decoded together, by language,
    when the recogniser decodes in batches (faster-whisper); empty otherwise (each take is then
    transcribed as it is checked)."""
    many = getattr(verifier.recognizer, "transcribe_many", None)
    if verifier.mode != "asr" or many is None or len(takes) < 2:
        return {}
    by_language: dict[str, list[tuple[str, np.ndarray]]] = {}
    for key, samples, rate, text in takes:
        language = verifier.language(text)
        if language != "und" and verifier.recognizer.supports(language):
            by_language.setdefault(language, []).append((key, to_16k(samples, rate)))
    out = {}
    for language, clips in by_language.items():
        transcripts = many([c for _, c in clips], language=language)
        out.update({key: t for (key, _), t in zip(clips, transcripts, strict=True)})
    return out
