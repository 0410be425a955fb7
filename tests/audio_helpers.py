"""Synthetic recordings for voice tests: noise bursts where the transcript says speech is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def speech_like(
    duration: float, spans: list[tuple[float, float]], rate: int = 16_000, level: float = 0.3
) -> np.ndarray:
    rng = np.random.default_rng(7)
    samples = np.zeros(round(duration * rate), dtype=np.float32)
    for start, end in spans:
        a, b = round(start * rate), round(end * rate)
        envelope = np.sin(np.linspace(0, np.pi, b - a)) ** 0.3
        samples[a:b] = (rng.standard_normal(b - a) * level / 3 * envelope).astype(np.float32)
    return samples


def write_audio(path: Path, samples: np.ndarray, rate: int = 16_000, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, **kwargs)
    return path


def srt(segments: list[tuple[float, float, str]]) -> str:
    from voicebatch.inputs.transcripts import Segment
    from voicebatch.inputs.transcripts.writers import to_srt

    return to_srt([Segment(a, b, t) for a, b, t in segments])
