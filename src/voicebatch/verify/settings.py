"""Verification settings (the DAG Params and ``voicebatch synth`` flags of the same names)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from voicebatch.settings import DEFAULTS

MODES = ("off", "signal", "asr")
DEFAULT_ASR_MODEL: str = DEFAULTS["asr_model"]
# Per-backend CER thresholds, calibrated on real clean speech so that a good take passes
# with margin (figures in the README's "Verified speech" section). ``max_cer`` overrides.
DEFAULT_MAX_CER = {"pocketsphinx": 0.10, "whisper": 0.15}


@dataclass(frozen=True, slots=True)
class VerifySettings:
    mode: str = DEFAULTS["verify"]  # off | signal | asr
    max_takes: int = DEFAULTS["max_takes"]  # takes per chunk, the first included
    max_cer: float | None = None  # None: the backend's calibrated threshold
    asr_model: str = DEFAULT_ASR_MODEL  # "pocketsphinx:en-us" | "whisper:<size or org/repo>"
    publish_unverified: bool = DEFAULTS[
        "publish_unverified"
    ]  # publish scripts with a chunk that never passed (marked needs_review)
    language: str = "en"  # the language of Latin-script text (other scripts are recognised by their letters)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"verify mode {self.mode!r}: use one of {', '.join(MODES)}")
        if not 1 <= self.max_takes <= 20:
            raise ValueError(f"max_takes {self.max_takes}: use 1-20")
        if self.max_cer is not None and not 0.0 <= self.max_cer <= 1.0:
            raise ValueError(f"max_cer {self.max_cer}: use 0-1")
        backend = self.asr_model.split(":", 1)[0]
        if backend not in DEFAULT_MAX_CER or ":" not in self.asr_model:
            raise ValueError(f"asr_model {self.asr_model!r}: use pocketsphinx:en-us or whisper:<size>")

    @property
    def backend(self) -> str:
        return self.asr_model.split(":", 1)[0]

    def threshold(self) -> float:
        return self.max_cer if self.max_cer is not None else DEFAULT_MAX_CER[self.backend]

    def hashed(self) -> dict:
        """What changes which take is kept (so the published bytes): part of the output hash."""
        if self.mode == "off":
            return {"mode": "off"}
        return {k: v for k, v in asdict(self).items() if k != "publish_unverified"}
