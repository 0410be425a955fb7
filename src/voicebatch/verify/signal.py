"""Signal checks on one take: no model of speech content needed.

Non-finite samples, clipping, a level floor, the duration against what its text needs,
and silences (leading, trailing, inside) longer than a bound. Speech and non-speech come
from silero-vad (its package ships the weights), not from an energy threshold of ours:
F5 fails by producing noise, hum or breath, which an energy gate calls speech.
"""

from __future__ import annotations

import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

VAD_RATE = 16_000
_VAD_LOCK = threading.Lock()
_VAD_MODEL: list = []  # loaded once per process, on first use (a 2 MB TorchScript model)


@dataclass(frozen=True, slots=True)
class SignalLimits:
    max_clipped_fraction: float = 0.001  # samples at or above 0.999 full scale
    min_speech_dbfs: float = -40.0  # RMS over the speech the VAD found
    min_duration_ratio: float = 0.5  # speech seconds / expected seconds
    max_duration_ratio: float = 1.8
    max_edge_silence: float = 1.0  # seconds before the first and after the last speech
    max_internal_silence: float = 1.5  # seconds of any pause between speech
    vad_threshold: float = 0.5


DEFAULT_LIMITS = SignalLimits()
# Without the voice's own speaking rate (``voicebatch verify`` on any recording), the
# expected duration is a guess from a typical rate, so the bounds are wider.
UNKNOWN_RATE_LIMITS = SignalLimits(min_duration_ratio=0.35, max_duration_ratio=2.8)
TYPICAL_BYTES_PER_SECOND = 14.0  # read English: measured 13.7 on harvard72, 14.6 on espeak-ng at 160 wpm


@dataclass(frozen=True, slots=True)
class SignalReport:
    passed: bool
    problems: tuple[str, ...]
    duration: float  # seconds
    speech: tuple[tuple[float, float], ...] = field(repr=False)  # (start, end) seconds, from the VAD
    speech_seconds: float
    expected_seconds: float | None
    speech_dbfs: float | None
    clipped_fraction: float
    longest_pause: float
    leading_silence: float
    trailing_silence: float

    def as_json(self) -> dict:
        return {
            "passed": self.passed,
            "problems": list(self.problems),
            "duration": round(self.duration, 3),
            "speech_seconds": round(self.speech_seconds, 3),
            "expected_seconds": None if self.expected_seconds is None else round(self.expected_seconds, 3),
            "speech_dbfs": None if self.speech_dbfs is None else round(self.speech_dbfs, 1),
            "clipped_fraction": round(self.clipped_fraction, 5),
            "longest_pause": round(self.longest_pause, 3),
            "leading_silence": round(self.leading_silence, 3),
            "trailing_silence": round(self.trailing_silence, 3),
        }


def to_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    import numpy as np
    import soxr

    mono = samples if samples.ndim == 1 else samples.mean(axis=1)
    mono = np.nan_to_num(mono.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return mono if rate == VAD_RATE else soxr.resample(mono, rate, VAD_RATE).astype(np.float32)


def vad_model() -> object:
    with _VAD_LOCK:
        if not _VAD_MODEL:
            from silero_vad import load_silero_vad

            _VAD_MODEL.append(load_silero_vad())
        return _VAD_MODEL[0]


def speech_spans(audio16k: np.ndarray, threshold: float = 0.5) -> list[tuple[float, float]]:
    """(start, end) seconds of speech according to silero-vad."""
    import torch
    from silero_vad import get_speech_timestamps

    model = vad_model()
    with _VAD_LOCK:  # the TorchScript model keeps state between calls: one caller at a time
        stamps = get_speech_timestamps(
            torch.from_numpy(audio16k),
            model,
            threshold=threshold,
            sampling_rate=VAD_RATE,
            min_speech_duration_ms=100,
            min_silence_duration_ms=150,
            speech_pad_ms=30,
        )
        model.reset_states()
    return [(s["start"] / VAD_RATE, s["end"] / VAD_RATE) for s in stamps]


def expected_seconds(text: str, bytes_per_second: float | None, speed: float = 1.0) -> float:
    """How long ``text`` takes at the voice's rate (F5's own rule: UTF-8 bytes over the
    reference's bytes per second), or at a typical reading rate when the rate is unknown."""
    rate = bytes_per_second or TYPICAL_BYTES_PER_SECOND
    return len(text.encode("utf-8")) / rate / speed


def check_signal(
    samples: np.ndarray,
    rate: int,
    *,
    expected: float | None,
    limits: SignalLimits = DEFAULT_LIMITS,
    audio16k: np.ndarray | None = None,
) -> SignalReport:
    import numpy as np

    problems: list[str] = []
    duration = samples.shape[0] / rate
    finite = np.isfinite(samples)
    if not finite.all():
        problems.append(f"{int((~finite).sum())} non-finite samples")
    clean = np.where(finite, samples, 0.0)
    clipped = float(np.mean(np.abs(clean) >= 0.999)) if clean.size else 0.0
    if clipped > limits.max_clipped_fraction:
        problems.append(f"clipping: {clipped:.2%} of samples at full scale")
    audio16k = to_16k(clean, rate) if audio16k is None else audio16k
    spans = speech_spans(audio16k, limits.vad_threshold) if duration > 0 else []
    speech_seconds = sum(b - a for a, b in spans)
    level = None
    if spans:
        pieces = [audio16k[round(a * VAD_RATE) : round(b * VAD_RATE)] for a, b in spans]
        energy = float(np.mean(np.square(np.concatenate(pieces), dtype=np.float64)))
        level = float(10 * np.log10(energy)) if energy > 0 else -200.0
        if level < limits.min_speech_dbfs:
            problems.append(f"speech level {level:.1f} dBFS is below {limits.min_speech_dbfs:g} dBFS")
    else:
        problems.append("no speech found (silero-vad)")
    leading = spans[0][0] if spans else duration
    trailing = duration - spans[-1][1] if spans else duration
    pauses = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
    longest = max(pauses, default=0.0)
    if spans:
        if leading > limits.max_edge_silence:
            problems.append(f"{leading:.2f} s of silence before the speech (limit {limits.max_edge_silence:g} s)")
        if trailing > limits.max_edge_silence:
            problems.append(f"{trailing:.2f} s of silence after the speech (limit {limits.max_edge_silence:g} s)")
        if longest > limits.max_internal_silence:
            problems.append(f"a {longest:.2f} s pause inside the speech (limit {limits.max_internal_silence:g} s)")
    if expected and spans:
        ratio = speech_seconds / expected
        if not limits.min_duration_ratio <= ratio <= limits.max_duration_ratio:
            problems.append(
                f"{speech_seconds:.2f} s of speech for a text that needs about {expected:.2f} s "
                f"(ratio {ratio:.2f}, bounds {limits.min_duration_ratio:g}-{limits.max_duration_ratio:g})"
            )
    return SignalReport(
        passed=not problems,
        problems=tuple(problems),
        duration=duration,
        speech=tuple(spans),
        speech_seconds=speech_seconds,
        expected_seconds=expected,
        speech_dbfs=level,
        clipped_fraction=clipped,
        longest_pause=longest,
        leading_silence=leading,
        trailing_silence=trailing,
    )
