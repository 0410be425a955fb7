"""faster-whisper: the multilingual backend (the production choice), weights from the store.

Greedy decoding at temperature 0 with no fallback: a check must be deterministic and is
not the place to coax a transcript out of a bad take. Word timestamps come with the
transcript, so the fallback aligner (``transcript_alignment``) costs nothing more.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from voicebatch.verify.records import Transcript

if TYPE_CHECKING:
    import numpy as np

    from voicebatch.verify.store import SpeechModel

log = logging.getLogger(__name__)


class WhisperBackend:
    def __init__(self, model: SpeechModel, *, device: str = "auto", compute_type: str = "default") -> None:
        self.model = model
        self.name = "whisper:" + model.name.removeprefix("whisper-").replace("--", "/")
        self.device = device
        self.compute_type = compute_type
        self._whisper = None
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
