"""Audio at the edges: decode recordings, resample, measure level and loudness, write WAV.

Recordings are read with soundfile (libsndfile 1.2: WAV, FLAC, OGG, MP3), never with
torchaudio.load, which since torchaudio 2.9 needs FFmpeg's libraries through torchcodec.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.errors import AudioError

if TYPE_CHECKING:
    import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
MODEL_SAMPLE_RATE = 24_000  # F5-TTS and its Vocos vocoder work at 24 kHz
FULL_SCALE = 0.999  # a sample at or above this magnitude counts as clipped


@dataclass(frozen=True, slots=True)
class Recording:
    path: str
    samples: np.ndarray  # float32, shape (frames, channels)
    sample_rate: int
    format: str

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return self.samples.shape[0] / self.sample_rate


@dataclass(frozen=True, slots=True)
class Level:
    peak_dbfs: float
    rms_dbfs: float
    clipped_fraction: float


def read_recording(path: str | Path) -> Recording:
    import soundfile as sf

    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
        fmt = sf.info(str(path)).format
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(path, f"cannot decode the recording: {_short(e)}") from e
    if samples.shape[0] == 0:
        raise AudioError(path, "the recording holds no samples")
    return Recording(str(path), samples, int(rate), fmt)


def to_model_audio(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 at 24 kHz (soxr, high quality)."""
    import numpy as np
    import soxr

    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sample_rate == MODEL_SAMPLE_RATE:
        return mono
    return soxr.resample(mono, sample_rate, MODEL_SAMPLE_RATE, quality="HQ").astype(np.float32)


def measure_level(samples: np.ndarray) -> Level:
    import numpy as np

    if samples.size == 0:
        return Level(-120.0, -120.0, 0.0)
    magnitude = np.abs(samples)
    peak = float(magnitude.max())
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    clipped = float(np.mean(magnitude >= FULL_SCALE))
    return Level(_db(peak), _db(rms), clipped)


def integrated_loudness(mono: np.ndarray, sample_rate: int) -> float | None:
    """ITU-R BS.1770 integrated loudness (pyloudnorm); None for clips under 0.4 s or silence."""
    import numpy as np
    import pyloudnorm

    if mono.shape[0] < int(0.4 * sample_rate):
        return None
    value = pyloudnorm.Meter(sample_rate).integrated_loudness(mono.astype(np.float64))
    return None if not np.isfinite(value) else round(float(value), 2)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples as int16, scaled by 32768: the inverse of how soundfile reads PCM16.

    libsndfile writes floats scaled by 32767 but reads PCM16 divided by 32768, so a clip
    written, read and written again would drift by one step; converting ourselves makes
    write -> read -> write exact, and a re-read reference keeps its clip hash.
    """
    import numpy as np

    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype("<i2")


def as_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples rounded to what a PCM16 file holds, as soundfile reads them back: a voice's
    reference is these samples wherever it is spoken from (the registry keeps it as PCM16), so
    the same clip hash always means the same audio."""
    return to_pcm16(samples).astype("float32") / 32768.0


def wav_bytes(mono: np.ndarray, sample_rate: int) -> bytes:
    """PCM16 WAV bytes: deterministic for the same samples."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16(mono), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def pcm16_sha256(mono: np.ndarray, *extra: bytes) -> str:
    """Hash of the samples as PCM16 (what a WAV file stores) plus any extra fields."""
    digest = hashlib.sha256(to_pcm16(mono).tobytes())
    for field in extra:
        digest.update(b"\0" + field)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _db(value: float) -> float:
    import math

    return round(20 * math.log10(value), 2) if value > 1e-6 else -120.0


def _short(error: Exception) -> str:
    return str(error).strip().split("\n")[0][:200]
