"""Verified speech: check every chunk against its text, re-take the failures,
and time every word by forced alignment.

    signal.py    signal checks (silero-vad for speech / non-speech)
    text.py      the normalisation both sides go through (jiwer), words, language
    score.py     CER / WER and the diff (jiwer); word times from a transcript
    sphinx.py    pocketsphinx: offline English recogniser and forced aligner
    whisper.py   faster-whisper recogniser (weights from the model store)
    mms.py       torchaudio MMS_FA forced aligner (weights from the model store)
    store.py     speech models in the model store (cache, S3 prefix, public source)
    check.py     one take -> its check; Verifier
    takes.py     the re-take loop and the kept take

May import ``voicebatch.locations``, ``voicebatch.text``, ``voicebatch.inputs`` and
``voicebatch.synthesis`` (the engine a re-take calls).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from voicebatch.verify.settings import DEFAULT_MAX_CER, MODES, VerifySettings

if TYPE_CHECKING:
    from voicebatch.verify.check import Verifier
    from voicebatch.verify.store import SpeechModelStore

__all__ = ["DEFAULT_MAX_CER", "MODES", "VerifySettings", "build_verifier"]

log = logging.getLogger(__name__)


def build_verifier(
    settings: VerifySettings, *, models: SpeechModelStore | None = None, device: str | None = None
) -> Verifier:
    """The verifier the settings ask for, with what this machine has. ``asr`` without a
    usable backend becomes ``signal``, announced in the log and recorded in its notes."""
    from voicebatch.synthesis.models import ModelError
    from voicebatch.verify.check import Verifier
    from voicebatch.verify.store import MMS_FA_NAME, SpeechModelStore, whisper_store_name

    notes: list[str] = []
    if settings.mode == "off":
        log.info("verify: off (no checks, no re-takes; word times estimated)")
        return Verifier(settings)
    sphinx = None
    try:
        from voicebatch.verify.sphinx import SphinxBackend

        sphinx = SphinxBackend()
        sphinx.lexicon()
    except ImportError as e:
        notes.append(f"pocketsphinx unavailable ({e})")
        sphinx = None
    models = models or SpeechModelStore()
    recognizer = None
    if settings.mode == "asr":
        if settings.backend == "pocketsphinx":
            recognizer = sphinx
        else:
            from voicebatch.verify.whisper import WhisperBackend

            size = settings.asr_model.split(":", 1)[1]
            try:
                recognizer = WhisperBackend(models.resolve(whisper_store_name(size)), device=device or "auto").load()
            except (ModelError, ImportError, ValueError) as e:
                notes.append(f"{settings.asr_model}: {e}")
        if recognizer is None:
            notes.append(f"verify: asr requested but {settings.asr_model} is not available: signal checks only")
            log.warning("%s", notes[-1])
            settings = replace(settings, mode="signal")
    aligners: list = [sphinx] if sphinx is not None else []
    mms = models.available(MMS_FA_NAME)
    if mms is not None:
        from voicebatch.verify.mms import MmsAligner

        aligners.append(MmsAligner(mms, device=device if device and device.startswith("cuda") else "cpu"))
    log.info(
        "verify: %s%s; aligners: %s; CER threshold %g",
        settings.mode,
        f" with {recognizer.name}" if recognizer is not None and settings.mode == "asr" else "",
        ", ".join(a.name for a in aligners) or "none (word times estimated)",
        settings.threshold(),
    )
    return Verifier(settings, recognizer, aligners, notes=notes)
