"""The records of ``voicebatch synth``: a voice to prepare, the whole request, and a result row."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.render.join import CROSS_FADE_SECONDS
from voicebatch.render.outputs import OutputOptions
from voicebatch.settings import DEFAULTS
from voicebatch.synthesis.engine import SynthesisParams
from voicebatch.verify.settings import VerifySettings

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VoiceInput:
    """A voice to prepare: a voice folder (``path``), or F5-style a recording and its text."""

    name: str
    path: Path | None = None  # voice folder, prepared voice, recording beside its transcript, flat stem
    ref_audio: Path | None = None
    ref_text: str | None = None  # with ref_audio; "" = transcribe it (an ASR backend that can)
    speed: float | None = None  # this voice's own speed (F5's [voices.NAME] speed)
    where: str = "--voice"  # where it was given, for error messages


@dataclass(frozen=True, slots=True)
class SynthRequest:
    voices: tuple[VoiceInput, ...]
    out: str
    text: str | None = None
    text_source: str = "--text"
    text_name: str = "synth"  # the output name of --text / gen_text
    scripts: tuple[Path, ...] = ()
    model: str = DEFAULTS["model"]
    params: SynthesisParams = field(default_factory=SynthesisParams)
    options: OutputOptions = field(default_factory=OutputOptions)
    speed: float | None = None  # replaces every script's own speed
    seed: int = DEFAULTS["seed"]
    cross_fade: float = CROSS_FADE_SECONDS
    batch_frames: int = DEFAULTS["batch_frames"]
    device: str | None = None
    verify: VerifySettings = field(default_factory=VerifySettings)
    force: bool = False
    lexicon: str | None = None  # a pronunciation lexicon's location (file, folder or s3://)


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """What happened to one script; ``as_json`` is the one shape of a synth row."""

    script: str
    status: str  # written | published | skipped (already there) | held (never passed verification) | failed
    source: str | None = None
    files: tuple[str, ...] = ()
    output_hash: str | None = None
    duration: float | None = None
    needs_review: bool = False
    reason: str | None = None

    def as_json(self) -> dict:
        return {
            "script": self.script,
            "status": self.status,
            "source": self.source,
            "files": list(self.files),
            "output_hash": self.output_hash,
            "duration": self.duration,
            "needs_review": self.needs_review,
            "reason": self.reason,
        }
