"""ACX's rules measured here, independently of the checker under test: container fields as
ffprobe shows them (through PyAV's container), every MP3 frame header walked in the file's own
bytes, and the levels computed with numpy (true peak by scipy's polyphase 4x resampler, not the
project's soxr meter) on the decoded samples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import scipy.signal

MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
MPEG1_RATES = (44100, 48000, 32000)


def decode(path: Path) -> tuple[np.ndarray, int, dict]:
    """Mono float64 samples, the rate, and ffprobe-like fields of the first audio stream."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        fields = {
            "format_name": container.format.name,
            "codec_name": stream.codec_context.name,
            "sample_rate": stream.codec_context.sample_rate,
            "channels": stream.codec_context.layout.nb_channels,
            "bit_rate": stream.bit_rate,
        }
        blocks = [f.to_ndarray().reshape(fields["channels"], -1).mean(axis=0) for f in container.decode(stream)]
    return np.concatenate(blocks).astype(np.float64), fields["sample_rate"], fields


def mp3_frames(path: Path) -> list[tuple[int, int]]:
    """(bit rate in kbps, sample rate) of every MPEG-1 Layer III frame, walking the file's bytes."""
    data = path.read_bytes()
    position = 0
    if data[:3] == b"ID3":  # ID3v2: a 10-byte header and a syncsafe size
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        position = 10 + size
    frames = []
    while position + 4 <= len(data):
        b1, b2 = data[position + 1], data[position + 2]
        if data[position] != 0xFF or b1 & 0xFE != 0xFA:  # MPEG-1 Layer III sync
            if data[position : position + 3] == b"TAG":  # an ID3v1 tag at the end
                break
            raise AssertionError(f"no MP3 frame header at byte {position}")
        kbps, rate, padding = MPEG1_L3_KBPS[b2 >> 4], MPEG1_RATES[(b2 >> 2) & 3], (b2 >> 1) & 1
        frames.append((kbps, rate))
        position += 144 * kbps * 1000 // rate + padding
    return frames


@dataclass(frozen=True)
class Measured:
    rms_dbfs: float
    true_peak_dbfs: float
    noise_floor_dbfs: float  # the quietest non-overlapping 500 ms
    head_seconds: float  # to the first 50 ms louder than -45 dBFS
    tail_seconds: float
    duration: float


def db(value: float) -> float:
    return 20 * np.log10(max(value, 1e-9))


def measure(samples: np.ndarray, rate: int) -> Measured:
    up = scipy.signal.resample_poly(samples, 4, 1)
    half = rate // 2
    windows = samples[: samples.shape[0] // half * half].reshape(-1, half)
    step = rate // 20
    loud = np.flatnonzero(
        np.sqrt(np.mean(samples[: samples.shape[0] // step * step].reshape(-1, step) ** 2, axis=1)) > 10 ** (-45 / 20)
    )
    return Measured(
        rms_dbfs=db(float(np.sqrt(np.mean(samples**2)))),
        true_peak_dbfs=db(float(max(np.abs(up).max(), np.abs(samples).max()))),
        noise_floor_dbfs=db(float(np.sqrt(np.mean(windows**2, axis=1)).min())),
        head_seconds=float(loud[0] * step / rate),
        tail_seconds=float(samples.shape[0] / rate - (loud[-1] + 1) * step / rate),
        duration=samples.shape[0] / rate,
    )


def assert_acx(path: Path) -> Measured:
    """Every ACX rule on ``path``, measured here; returns the figures."""
    samples, rate, fields = decode(path)
    assert fields["format_name"] == "mp3" and fields["codec_name"].startswith("mp3"), fields
    assert (fields["sample_rate"], fields["channels"]) == (44100, 1), fields
    frames = mp3_frames(path)
    assert {r for _, r in frames} == {44100}
    rates = {k for k, _ in frames}
    assert len(rates) == 1 and rates.pop() >= 192, f"not CBR >= 192 kbps: {sorted(set(k for k, _ in frames))}"
    m = measure(samples, rate)
    assert -23 <= m.rms_dbfs <= -18, m
    assert m.true_peak_dbfs <= -3.0, m
    assert -70 <= m.noise_floor_dbfs <= -60, m  # room tone: under ACX's ceiling, and not digital silence
    assert 0.5 <= m.head_seconds <= 1.0, m
    assert 1.0 <= m.tail_seconds <= 5.0, m
    assert m.duration <= 120 * 60
    return m
