"""Synthetic voices, scripts and chunk audio for publishing tests (no model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voicebatch.inputs.scripts import Script, ScriptPart
from voicebatch.inputs.voices import PreparedVoice
from voicebatch.run.pipeline import RunSettings, plan_scripts
from voicebatch.synthesis.models import ModelFiles

RATE = 24_000
LONG = (
    "This sentence is deliberately long so that the subtitle writer has to split it across more than one cue, "
    "because no cue may hold more than two lines of forty-two characters."
)


def voice(name: str = "anna") -> PreparedVoice:
    t = np.arange(RATE * 4) / RATE
    samples = (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    meta = {"voice": name, "window": {"start": 0.0, "end": 4.0}, "sources": {"audio": {"sha256": "0" * 64}}}
    return PreparedVoice(name, samples, "Hello, I am a test voice.", f"{name}-clip-hash", meta)


def model() -> ModelFiles:
    files = {"model.safetensors": {"sha256": "a" * 64, "size": 1}}
    return ModelFiles("fake-model", Path("/nonexistent"), {"random_weights": True}, "c" * 64, files)


def scripts() -> list[Script]:
    return [
        Script("intro", "intro.txt", (ScriptPart("anna", "Welcome to the course. Let us begin."),)),
        Script("long-one", "long.txt", (ScriptPart("anna", "Short first. " + LONG),)),
    ]


def chunk_audio(n: int, seconds: float = 1.5) -> list[np.ndarray]:
    t = np.arange(round(seconds * RATE)) / RATE
    return [(0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t)).astype(np.float32) for i in range(n)]


def plans(storage=None, settings: RunSettings | None = None):
    return plan_scripts(scripts(), {"anna": voice()}, model().checksum, settings or RunSettings(), storage)
