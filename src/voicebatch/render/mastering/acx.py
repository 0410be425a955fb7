"""ACX's rules measured on the encoded file, as ACX's own checks see it.

Everything is read from the file itself, decoded with PyAV (FFmpeg): the container and codec,
the sample rate and channels the stream declares, the bit rate of every MP3 frame (each
frame's 4-byte header, read from the demuxed packets: all equal means CBR) and the decoded
samples, measured block by block (memory flat in the length): the RMS of the whole file, the
true peak (4x oversampled, ``loudness.TruePeakMeter``: stricter than ACX's sample peak, which
is reported too), the noise floor (the quietest 500 ms, RMS, stepped every 10 ms), the room
tone at the head and tail (from either end to the first 10 ms louder than ``SPEECH_DBFS``) and
the duration. ``check_acx`` never raises for a bad file: an unreadable one is a failed report
naming what is wrong.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.render.mastering.profiles import ACX, AcxRules

if TYPE_CHECKING:
    import numpy as np

WINDOW_SECONDS = 0.01
FLOOR_WINDOWS = 50  # 500 ms of 10 ms windows
SPEECH_DBFS = -50.0  # a 10 ms window louder than this is no longer room tone
SILENT_DB = -120.0
# MPEG audio Layer III bit rates (kbps) by the header's index: MPEG-1, then MPEG-2 and 2.5.
_LAYER3_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, None),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, None),
}


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: str  # format, bit_rate, sample_rate, channels, rms, peak, noise_floor, room_tone, head, tail, duration
    passed: bool
    measured: str  # the figure as read, with its unit
    required: str


@dataclass(frozen=True, slots=True)
class AcxReport:
    path: str
    rules: tuple[RuleResult, ...]
    format: str = ""
    codec: str = ""
    sample_rate: int = 0
    channels: int = 0
    bit_rate: int = 0  # bits per second (the frames' rate when constant, else the stream's average)
    cbr: bool = False
    duration: float = 0.0
    rms_dbfs: float = SILENT_DB
    peak_dbfs: float = SILENT_DB  # sample peak
    true_peak_dbtp: float = SILENT_DB
    noise_floor_dbfs: float = SILENT_DB
    head_seconds: float = 0.0
    tail_seconds: float = 0.0
    error: str | None = None  # the file could not be read (then every figure is unknown)

    @property
    def passed(self) -> bool:
        return self.error is None and all(r.passed for r in self.rules)

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.rules if not r.passed)

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}

    def line(self) -> str:
        """One line for a terminal or a log."""
        if self.error:
            return f"{self.path}: FAIL: {self.error}"
        verdict = (
            "pass"
            if self.passed
            else "FAIL " + "; ".join(f"{r.rule} {r.measured} (needs {r.required})" for r in self.failures)
        )
        return (
            f"{self.path}: {verdict} | rms {self.rms_dbfs:.1f} dBFS, peak {self.true_peak_dbtp:.1f} dBTP, "
            f"floor {self.noise_floor_dbfs:.1f} dBFS, head {self.head_seconds:.2f} s, tail {self.tail_seconds:.2f} s, "
            f"{self.format} {self.bit_rate // 1000} kbps {'CBR' if self.cbr else 'VBR'} {self.sample_rate} Hz "
            f"{self.channels} ch, {_clock(self.duration)}"
        )


def check_acx(path: str | Path, rules: AcxRules = ACX) -> AcxReport:
    try:
        figures = _measure(Path(path))
    except Exception as e:  # PyAV's errors and a missing file alike: the report says what
        return AcxReport(str(path), (), error=_reason(e))
    return AcxReport(str(path), _judge(figures, rules), **figures)


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read the file: {error.strerror}"
    return f"cannot decode the file ({type(error).__name__})"


def _measure(path: Path) -> dict:
    import av
    import numpy as np

    from voicebatch.render.loudness import TruePeakMeter

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        channels = stream.codec_context.layout.nb_channels
        fmt, codec = container.format.name, stream.codec_context.name
        windows = _Windows(rate)
        peak = TruePeakMeter(rate)
        frame_rates: set[int] = set()
        sample_peak, squares, frames = 0.0, 0.0, 0
        for packet in container.demux(stream):
            if packet.size and codec.startswith("mp3"):
                frame_rates.add(_mp3_bit_rate(bytes(packet)[:4]))
            for frame in packet.decode():
                samples = frame.to_ndarray().astype(np.float32)
                mono = samples.reshape(channels, -1).mean(axis=0) if samples.ndim == 2 else samples
                peak.add(mono)
                windows.add(mono)
                squares += float(np.square(mono, dtype=np.float64).sum())
                sample_peak = max(sample_peak, float(np.abs(mono).max(initial=0.0)))
                frames += mono.shape[0]
        average = int(stream.bit_rate or container.bit_rate or 0)
    if frames == 0:
        raise ValueError("no audio samples")
    cbr = len(frame_rates) == 1 and 0 not in frame_rates
    head, tail, floor = windows.result(frames)
    return {
        "format": "mp3" if fmt == "mp3" and codec.startswith("mp3") else f"{fmt}/{codec}",
        "codec": codec,
        "sample_rate": rate,
        "channels": channels,
        "bit_rate": next(iter(frame_rates)) if cbr else average,
        "cbr": cbr,
        "duration": round(frames / rate, 3),
        "rms_dbfs": round(_db(squares / frames), 2),
        "peak_dbfs": round(20 * math.log10(sample_peak), 2) if sample_peak > 1e-6 else SILENT_DB,
        "true_peak_dbtp": round(peak.dbtp(), 2),
        "noise_floor_dbfs": round(floor, 2),
        "head_seconds": round(head, 3),
        "tail_seconds": round(tail, 3),
    }


def _mp3_bit_rate(header: bytes) -> int:
    """Bits per second from an MPEG audio Layer III frame header; 0 when it is not one."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return 0
    version = (header[1] >> 3) & 0b11  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    layer = (header[1] >> 1) & 0b11  # 1: Layer III
    if layer != 1 or version == 1:
        return 0
    kbps = _LAYER3_KBPS[1 if version == 3 else 2][header[2] >> 4]
    return (kbps or 0) * 1000


class _Windows:
    """10 ms window levels as they come: where speech first and last rises above
    ``SPEECH_DBFS`` and the quietest 500 ms."""

    def __init__(self, rate: int) -> None:
        import numpy as np

        self.size = max(1, round(WINDOW_SECONDS * rate))
        self.rate = rate
        self._carry = np.zeros(0, dtype=np.float32)
        self._recent = np.zeros(0)  # the last FLOOR_WINDOWS - 1 windows' mean squares
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None
        self.floor = math.inf

    def add(self, samples: np.ndarray) -> None:
        import numpy as np

        x = np.concatenate([self._carry, samples])
        whole = x.shape[0] // self.size * self.size
        self._carry = x[whole:]
        if not whole:
            return
        power = np.square(x[:whole].reshape(-1, self.size), dtype=np.float64).mean(axis=1)
        loud = np.flatnonzero(power > 10 ** (SPEECH_DBFS / 10))
        if loud.size:
            self.first = self.count + int(loud[0]) if self.first is None else self.first
            self.last = self.count + int(loud[-1])
        joined = np.concatenate([self._recent, power])
        if joined.shape[0] >= FLOOR_WINDOWS:
            sums = np.convolve(joined, np.ones(FLOOR_WINDOWS), mode="valid") / FLOOR_WINDOWS
            self.floor = min(self.floor, float(sums.min()))
        self._recent = joined[-(FLOOR_WINDOWS - 1) :]
        self.count += power.shape[0]

    def result(self, frames: int) -> tuple[float, float, float]:
        """(head seconds, tail seconds, noise floor dBFS)."""
        duration = frames / self.rate
        floor = self.floor if math.isfinite(self.floor) else float(self._recent.mean()) if self._recent.size else 0.0
        if self.first is None or self.last is None:
            return duration, duration, _db(floor)
        head = self.first * self.size / self.rate
        tail = max(0.0, duration - (self.last + 1) * self.size / self.rate)
        return head, tail, _db(floor)


def _judge(f: dict, r: AcxRules) -> tuple[RuleResult, ...]:
    kbps = f"{f['bit_rate'] // 1000} kbps {'CBR' if f['cbr'] else 'not constant'}"
    return (
        RuleResult("format", f["format"] == "mp3", f["format"], "mp3"),
        RuleResult(
            "bit_rate", f["cbr"] and f["bit_rate"] >= r.min_bit_rate, kbps, f">= {r.min_bit_rate // 1000} kbps CBR"
        ),
        RuleResult("sample_rate", f["sample_rate"] == r.sample_rate, f"{f['sample_rate']} Hz", f"{r.sample_rate} Hz"),
        RuleResult("channels", f["channels"] == r.channels, str(f["channels"]), "1 (mono)"),
        RuleResult(
            "rms",
            r.rms_min_dbfs <= f["rms_dbfs"] <= r.rms_max_dbfs,
            f"{f['rms_dbfs']:.1f} dBFS",
            f"{r.rms_min_dbfs:g} to {r.rms_max_dbfs:g} dBFS",
        ),
        RuleResult(
            "peak",
            f["true_peak_dbtp"] <= r.peak_max_dbfs,
            f"{f['true_peak_dbtp']:.1f} dBTP",
            f"<= {r.peak_max_dbfs:g} dBFS",
        ),
        RuleResult(
            "noise_floor",
            f["noise_floor_dbfs"] <= r.noise_floor_max_dbfs,
            f"{f['noise_floor_dbfs']:.1f} dBFS",
            f"<= {r.noise_floor_max_dbfs:g} dBFS",
        ),
        RuleResult(
            "room_tone",
            f["noise_floor_dbfs"] > r.digital_silence_dbfs,
            f"{f['noise_floor_dbfs']:.1f} dBFS",
            f"> {r.digital_silence_dbfs:g} dBFS (room tone, not digital silence)",
        ),
        RuleResult(
            "head",
            r.head_min_seconds <= f["head_seconds"] <= r.head_max_seconds,
            f"{f['head_seconds']:.2f} s",
            f"{r.head_min_seconds:g} to {r.head_max_seconds:g} s of room tone",
        ),
        RuleResult(
            "tail",
            r.tail_min_seconds <= f["tail_seconds"] <= r.tail_max_seconds,
            f"{f['tail_seconds']:.2f} s",
            f"{r.tail_min_seconds:g} to {r.tail_max_seconds:g} s of room tone",
        ),
        RuleResult("duration", f["duration"] <= r.max_seconds, _clock(f["duration"]), f"<= {_clock(r.max_seconds)}"),
    )


def _db(mean_square: float) -> float:
    return max(SILENT_DB, 10 * math.log10(mean_square)) if mean_square > 0 else SILENT_DB


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
