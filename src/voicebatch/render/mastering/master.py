"""A chapter's audio mastered to a profile, block by block, from file to file.

Chapter audio arrives as a raw float32 file written block by block (``longform``), and a
book must stay flat in memory, so mastering reads it twice in blocks and never holds it:

1. Measure (``measure_source``): RMS, integrated loudness and true peak (``loudness``), and
   where speech starts and ends (the first and last 10 ms window above each level of a 1 dB
   grid: a few hundred numbers, whatever the length).
2. Master (``master_file``): cut to the speech (when the profile adds room tone: the tone
   replaces whatever quiet the synthesis left at the ends), resample (soxr's streaming
   resampler: the same samples as one call), apply the gain that reaches the target, limit true
   peaks (``limiter``), lay the room-tone bed under everything with its head and tail
   (``roomtone``), and write a raw float32 file, measuring what is written.

For ``acx`` the gain aims the whole file's RMS (room tone included) at the target; a limiter
that had to work hard lowers the RMS, so a file that lands more than 0.75 dB off is mastered
once more with the gain corrected by what was measured. Times in the chapter map to times in
the file by ``MasterResult.file_time`` (the cut and the head move them).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from voicebatch.render.join_file import SYNC_BYTES, flushed
from voicebatch.render.loudness import BLOCK, SignalMeter
from voicebatch.render.mastering.limiter import TruePeakLimiter
from voicebatch.render.mastering.profiles import Profile
from voicebatch.render.mastering.roomtone import RoomTone

if TYPE_CHECKING:
    import numpy as np

WINDOW_SECONDS = 0.01
TRIM_LEVEL_DBFS = -55.0  # after gain: quieter at the ends is not speech (the room tone takes its place)
TRIM_MARGIN_SECONDS = 0.02
GRID = tuple(range(-120, 1))  # dBFS levels at which speech's first and last windows are kept
RETRY_DB = 0.75
SILENT_DB = -120.0


@dataclass(frozen=True, slots=True)
class SourceLevel:
    frames: int
    sample_rate: int
    sum_squares: float
    lufs: float | None
    true_peak_dbtp: float
    first_above: tuple[int, ...]  # for each level of GRID: first window above it (-1: none)
    last_above: tuple[int, ...]

    @property
    def rms_dbfs(self) -> float:
        return _db(self.sum_squares / self.frames) if self.frames else SILENT_DB

    def speech(self, gain_db: float) -> tuple[int, int] | None:
        """The frames [start, end) from the first to the last window louder than the trim level
        after ``gain_db`` (with a margin); None when nothing is."""
        level = max(GRID[0], min(GRID[-1], math.floor(TRIM_LEVEL_DBFS - gain_db)))
        first, last = int(self.first_above[level - GRID[0]]), int(self.last_above[level - GRID[0]])
        if first < 0:
            return None
        window = round(WINDOW_SECONDS * self.sample_rate)
        margin = round(TRIM_MARGIN_SECONDS * self.sample_rate)
        return max(0, first * window - margin), min(self.frames, (last + 1) * window + margin)


@dataclass(frozen=True, slots=True)
class MasterResult:
    path: str  # raw float32 mono at ``sample_rate``
    profile: str
    sample_rate: int
    frames: int
    gain_db: float
    source_start: float  # seconds in the source of the first sample kept
    head_seconds: float  # room tone before it
    rms_dbfs: float  # measured on what was written
    lufs: float | None
    true_peak_dbtp: float
    limited_db: float  # the limiter's deepest gain reduction (0: it never acted)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def file_time(self, source_seconds: float) -> float:
        """Where a moment of the source (seconds from its start) lands in the mastered file."""
        return round(source_seconds - self.source_start + self.head_seconds, 4)


def read_range(path: str | Path, start: int = 0, end: int | None = None, size: int = BLOCK) -> Iterator[np.ndarray]:
    """Float32 samples [start, end) of a raw file, ``size`` at a time."""
    import numpy as np

    with Path(path).open("rb") as f:
        f.seek(start * 4)
        left = None if end is None else end - start
        while left is None or left > 0:
            count = size if left is None else min(size, left)
            block = np.fromfile(f, dtype=np.float32, count=count)
            if not block.shape[0]:
                return
            if left is not None:
                left -= block.shape[0]
            yield block


def measure_source(path: str | Path, sample_rate: int, start: int = 0, end: int | None = None) -> SourceLevel:
    import numpy as np

    meter = SignalMeter(sample_rate)
    window = round(WINDOW_SECONDS * sample_rate)
    grid = np.array(GRID, dtype=np.float64)
    first = np.full(len(GRID), -1, dtype=np.int64)
    last = np.full(len(GRID), -1, dtype=np.int64)
    carry = np.zeros(0, dtype=np.float32)
    frames, squares, windows = 0, 0.0, 0
    for block in read_range(path, start, end):
        meter.add(block)
        frames += block.shape[0]
        squares += float(np.square(block, dtype=np.float64).sum())
        x = np.concatenate([carry, block])
        whole = x.shape[0] // window * window
        carry = x[whole:]
        if whole:
            levels = 10 * np.log10(np.square(x[:whole].reshape(-1, window), dtype=np.float64).mean(axis=1) + 1e-20)
            _mark(levels, grid, windows, first, last)
            windows += whole // window
    if carry.shape[0]:
        _mark(
            np.array([10 * np.log10(float(np.square(carry, dtype=np.float64).mean()) + 1e-20)]),
            grid,
            windows,
            first,
            last,
        )
    measured = meter.result()
    return SourceLevel(
        frames,
        sample_rate,
        squares,
        measured.lufs,
        measured.true_peak_dbtp,
        tuple(map(int, first)),
        tuple(map(int, last)),
    )


def _mark(levels: np.ndarray, grid: np.ndarray, offset: int, first: np.ndarray, last: np.ndarray) -> None:
    import numpy as np

    above = levels[None, :] > grid[:, None]  # (levels of the grid, windows)
    has = above.any(axis=1)
    starts = np.argmax(above, axis=1) + offset
    ends = above.shape[1] - 1 - np.argmax(above[:, ::-1], axis=1) + offset
    first[:] = np.where((first < 0) & has, starts, first)
    last[:] = np.where(has, ends, last)


def master_file(
    source: str | Path,
    source_rate: int,
    out: str | Path,
    profile: Profile,
    *,
    start: int = 0,
    end: int | None = None,
    seed: int = 0,
    gain_db: float | None = None,
) -> MasterResult:
    """Frames [start, end) of the raw file ``source`` mastered to ``profile`` into ``out``.

    ``gain_db`` overrides the profile's level (the parts of a chapter split in two share the
    whole chapter's gain)."""
    level = measure_source(source, source_rate, start, end)
    rate = profile.sample_rate or source_rate
    gain = _gain(profile, level, rate) if gain_db is None else gain_db
    result = _render(source, source_rate, out, profile, level, start, gain, seed)
    if gain_db is None and profile.level == "rms" and abs(result.rms_dbfs - profile.target) > RETRY_DB:
        result = _render(source, source_rate, out, profile, level, start, gain + profile.target - result.rms_dbfs, seed)
    return result


def _gain(profile: Profile, level: SourceLevel, rate: int) -> float:
    if profile.level == "none" or not level.frames:
        return 0.0
    if profile.level == "lufs":
        return profile.target - level.lufs if level.lufs is not None else 0.0
    # RMS of the whole file: speech at gain g plus the room tone under all of it.
    span = level.speech(profile.target - level.rms_dbfs) if profile.head_seconds or profile.tail_seconds else None
    kept = (span[1] - span[0]) if span else level.frames
    total = kept * rate / level.sample_rate + (profile.head_seconds + profile.tail_seconds) * rate
    tone = 10 ** ((profile.room_tone_dbfs or SILENT_DB) / 10)
    speech_energy = level.sum_squares * rate / level.sample_rate
    wanted = (10 ** (profile.target / 10) - tone) * total
    if speech_energy <= 0 or wanted <= 0:
        return 0.0
    return 10 * math.log10(wanted / speech_energy)


def _render(
    source: str | Path,
    source_rate: int,
    out: str | Path,
    profile: Profile,
    level: SourceLevel,
    start: int,
    gain: float,
    seed: int,
) -> MasterResult:
    import numpy as np
    import soxr

    rate = profile.sample_rate or source_rate
    trims = bool(profile.head_seconds or profile.tail_seconds)
    span = (level.speech(gain) if trims else None) or (0, level.frames)
    resampler = (
        soxr.ResampleStream(source_rate, rate, 1, dtype="float32", quality="HQ") if rate != source_rate else None
    )
    limiter = TruePeakLimiter(rate, profile.ceiling_dbtp) if profile.ceiling_dbtp is not None else None
    tone = RoomTone(profile.room_tone_dbfs, seed) if profile.room_tone_dbfs is not None else None
    meter = SignalMeter(rate)
    scale = 10 ** (gain / 20)
    state = {"frames": 0, "squares": 0.0, "unsynced": 0}

    with Path(out).open("wb") as f:

        def write(block: np.ndarray) -> None:
            if tone is not None:
                block = block + tone.next(block.shape[0])
            block = np.ascontiguousarray(block, dtype=np.float32)
            f.write(block.data)
            meter.add(block)
            state["frames"] += block.shape[0]
            state["squares"] += float(np.square(block, dtype=np.float64).sum())
            state["unsynced"] += block.nbytes
            if state["unsynced"] >= SYNC_BYTES:
                flushed(f)
                state["unsynced"] = 0

        def stage(block: np.ndarray, last: bool) -> None:
            if resampler is not None:
                block = resampler.resample_chunk(block, last=last)
            block = block * np.float32(scale)
            if limiter is not None:
                block = limiter.process(block, last=last)
            if block.shape[0]:
                write(block)

        write(np.zeros(round(profile.head_seconds * rate), dtype=np.float32))
        for block in read_range(source, start + span[0], start + span[1]):
            stage(block, last=False)
        stage(np.zeros(0, dtype=np.float32), last=True)
        write(np.zeros(round(profile.tail_seconds * rate), dtype=np.float32))
    measured = meter.result()
    frames = state["frames"]
    return MasterResult(
        path=str(out),
        profile=profile.name,
        sample_rate=rate,
        frames=frames,
        gain_db=round(gain, 2),
        source_start=float(start + span[0]) / source_rate,
        head_seconds=profile.head_seconds,
        rms_dbfs=round(_db(state["squares"] / frames), 2) if frames else SILENT_DB,
        lufs=None if measured.lufs is None else round(measured.lufs, 2),
        true_peak_dbtp=round(measured.true_peak_dbtp, 2),
        limited_db=round(limiter.reduction_db, 2) if limiter is not None else 0.0,
    )


def _db(mean_square: float) -> float:
    """A mean square as dBFS (10·log10), floored at -120."""
    return max(SILENT_DB, 10 * math.log10(mean_square)) if mean_square > 0 else SILENT_DB
