"""faster-whisper: the multilingual backend (the production choice), weights from the store.

Greedy decoding at temperature 0 with no fallback: a check must be deterministic and is
not the place to coax a transcript out of a bad take. Word timestamps come with the
transcript, so the fallback aligner (``transcript_alignment``) costs nothing more.

``transcribe_many`` decodes the takes of a synthesis batch together: faster-whisper's
batched pipeline over the takes laid end to end, each take its own window (``clip_timestamps``),
so a GPU decodes ``batch_size`` windows at once instead of one.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from voicebatch.verify.records import Transcript

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.verify.store import SpeechModel

log = logging.getLogger(__name__)


class WhisperBackend:
    def __init__(
        self, model: SpeechModel, *, device: str = "auto", compute_type: str = "default", batch_size: int = 16
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.name = "whisper:" + model.name.removeprefix("whisper-").replace("--", "/")
        self.device = device
        self.compute_type = compute_type
        self._whisper = None
        self._batched = None
        self._lock = threading.Lock()

    def load(self) -> WhisperBackend:
        if self._whisper is None:
            from faster_whisper import WhisperModel

            device = self.device
            if device == "auto":
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            self._whisper = WhisperModel(str(self.model.directory), device=device, compute_type=self.compute_type)
            log.info("ASR: %s on %s (%s)", self.name, device, "multilingual" if self.multilingual else "English")
        return self

    @property
    def multilingual(self) -> bool:
        return bool(self.load()._whisper.model.is_multilingual)

    def supports(self, language: str) -> bool:
        if language == "und":
            return self.multilingual  # Whisper detects the language itself
        if not self.multilingual:
            return language.split("-")[0] == "en"
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        return language.split("-")[0] in _LANGUAGE_CODES

    def lineage(self) -> dict:
        return {**self.model.lineage(), "name": self.name}

    def transcribe(self, audio16k: np.ndarray, *, text: str, language: str) -> Transcript:
        self.load()
        code = None if language == "und" else language.split("-")[0]
        with self._lock:
            segments, info = self._whisper.transcribe(
                audio16k,
                language=code if self.multilingual else None,
                beam_size=1,
                temperature=0.0,
                condition_on_previous_text=False,
                word_timestamps=True,
                vad_filter=False,
            )
            segments = list(segments)  # the generator decodes as it is read: inside the lock
        words = tuple(
            (w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for s in segments
            for w in s.words or ()
        )
        transcript = "".join(s.text for s in segments).strip()
        return Transcript(transcript, info.language or code, self.name, words)

    def transcribe_many(self, clips: Sequence[np.ndarray], *, language: str) -> list[Transcript]:
        """Transcripts of several 16 kHz takes of one language (not ``und``), decoded in batches."""
        import numpy as np
        from faster_whisper import BatchedInferencePipeline

        self.load()
        code = language.split("-")[0] if self.multilingual else None
        starts = np.cumsum([0] + [len(c) for c in clips])
        windows = [{"start": float(a) / 16_000, "end": float(b) / 16_000} for a, b in itertools.pairwise(starts)]
        with self._lock:
            if self._batched is None:
                self._batched = BatchedInferencePipeline(self._whisper)
            segments, info = self._batched.transcribe(
                np.concatenate(clips).astype(np.float32),
                language=code,
                clip_timestamps=windows,
                batch_size=self.batch_size,
                beam_size=1,
                temperature=0.0,
                condition_on_previous_text=False,
                word_timestamps=True,
                vad_filter=False,
            )
            segments = list(segments)
        texts: list[list[str]] = [[] for _ in clips]
        words: list[list[tuple]] = [[] for _ in clips]
        offsets = [w["start"] for w in windows]
        # A segment's ``seek`` is its window's start in frames: which take it belongs to (its
        # times come from word timestamps, which random or confused models place anywhere).
        window = {int(o * self._whisper.frames_per_second): i for i, o in enumerate(offsets)}
        for segment in segments:
            i = window[segment.seek]
            texts[i].append(segment.text)
            for w in segment.words or ():
                start, end = float(w.start) - offsets[i], float(w.end) - offsets[i]
                words[i].append((w.word.strip(), start, end, float(w.probability)))
        return [
            Transcript("".join(t).strip(), info.language or code, self.name, tuple(w))
            for t, w in zip(texts, words, strict=True)
        ]
