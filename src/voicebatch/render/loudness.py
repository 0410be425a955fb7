"""Loudness normalisation: integrated loudness to a target, true peak under a ceiling.

Integrated loudness per ITU-R BS.1770, as pyloudnorm measures it (its K-weighting filters,
400 ms gating blocks every 100 ms, absolute and relative gates). The true peak is the peak
of a 4x oversampled copy (soxr), the method BS.1770 describes; when the gain that reaches
the target would push the true peak over the ceiling, the ceiling wins and the output is
quieter than the target (reported, never clipped).

Both are measured block by block with running state: the filters carry their
state from one block to the next, only the energy of each 100 ms step is kept (80 KB an
hour), and soxr's streaming resampler oversamples each block as it comes (the same samples
as one call over the whole signal). A book is measured as it is written, in memory that
does not grow with its length; pyloudnorm itself would hold a float64 copy of the whole
signal, and a one-call resampler a 4x copy. The signal is measured in fixed blocks whatever
pieces it arrives in, so the same samples always give the same figures.
"""

from __future__ import annotations

import array
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from voicebatch.settings import DEFAULTS

if TYPE_CHECKING:
    import numpy as np

DEFAULT_TARGET_LUFS: float = DEFAULTS["loudness_lufs"]
DEFAULT_TRUE_PEAK_DBTP = -1.0
BLOCK = 1 << 19  # samples measured at a time (22 s at 24 kHz): a few MB of working memory
GATE_SECONDS, STEPS_PER_GATE = 0.4, 4  # BS.1770: 400 ms blocks, 75 % overlap (a step of 100 ms)
ABSOLUTE_GATE_LUFS, RELATIVE_GATE_LU = -70.0, -10.0
OVERSAMPLING = 4
SILENT_DBTP = -120.0


@dataclass(frozen=True, slots=True)
class LoudnessResult:
    input_lufs: float | None  # None: too short (< 0.4 s) or silent to measure
    output_lufs: float | None
    true_peak_dbtp: float
    gain_db: float


@dataclass(frozen=True, slots=True)
class BlockEnergies:
    """The K-weighted mean square of every 400 ms gating block: all that integrated loudness
    needs, at any gain (the filters are linear: a gain of g dB scales every energy by
    10^(g/10), and the gates are applied again), so the output's loudness needs no second pass."""

    z: np.ndarray

    def lufs(self, gain_db: float = 0.0) -> float | None:
        """Integrated loudness after ``gain_db``; None when every block is below the gates."""
        import numpy as np

        z = self.z * 10 ** (gain_db / 10)
        with np.errstate(divide="ignore", invalid="ignore"):
            level = -0.691 + 10.0 * np.log10(z)
            above = level >= ABSOLUTE_GATE_LUFS
            relative = -0.691 + 10.0 * np.log10(z[above].mean()) + RELATIVE_GATE_LU if above.any() else math.nan
            gated = (level > relative) & (level > ABSOLUTE_GATE_LUFS)
            value = -0.691 + 10.0 * np.log10(z[gated].mean() if gated.any() else 0.0)
        return float(value) if np.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class Measured:
    lufs: float | None  # None: too short (< 0.4 s) or silent
    true_peak_dbtp: float
    energies: BlockEnergies | None = field(default=None, repr=False, compare=False)

    def lufs_after(self, gain_db: float) -> float | None:
        return self.energies.lufs(gain_db) if self.energies is not None else None


class LoudnessMeter:
    """BS.1770 integrated loudness of a mono signal fed block by block."""

    def __init__(self, sample_rate: int) -> None:
        import numpy as np
        import pyloudnorm

        self.rate = sample_rate
        # pyloudnorm's own K-weighting stages (high shelf, then high pass) as second-order
        # sections: one C call a block, the filters' state carried from block to block.
        stages = pyloudnorm.Meter(sample_rate, filter_class="K-weighting")._filters.values()
        self._sos = np.array([np.concatenate([f.passband_gain * f.b, f.a]) for f in stages])
        self._state = np.zeros((self._sos.shape[0], 2))
        self._steps = array.array("d")  # energy of each completed 100 ms step (8 bytes each)
        self._step = 0.0  # energy of the step under way
        self.count = 0  # samples seen

    def _edge(self, k: int) -> int:
        """First sample of step k."""
        return k * self.rate // 10

    def add(self, block: np.ndarray) -> None:
        import numpy as np
        import scipy.signal

        if block.shape[0] == 0:
            return
        x, self._state = scipy.signal.sosfilt(self._sos, np.asarray(block, dtype=np.float64), zi=self._state)
        start, end = self.count, self.count + x.shape[0]
        k = len(self._steps)  # the step under way starts at _edge(k)
        edges = [self._edge(j) - start for j in range(k + 1, (10 * (end + 1) - 1) // self.rate + 1)]
        inside = [e for e in edges if e < x.shape[0]]
        sums = np.add.reduceat(np.square(x), [0, *inside])
        if not edges:
            self._step += float(sums[0])
        else:
            self._steps.append(self._step + float(sums[0]))
            self._steps.extend(float(v) for v in sums[1 : len(edges)])
            self._step = float(sums[len(edges)]) if len(inside) == len(edges) else 0.0
        self.count = end

    def energies(self) -> BlockEnergies | None:
        """The gating blocks' energies; None under 0.4 s (too short to measure)."""
        import numpy as np

        if self.count < int(GATE_SECONDS * self.rate):
            return None
        # pyloudnorm's count of gating blocks; a block past the end holds what there is.
        blocks = round((self.count / self.rate - GATE_SECONDS) / (GATE_SECONDS / STEPS_PER_GATE)) + 1
        steps = np.zeros(blocks + STEPS_PER_GATE)
        done = np.frombuffer(self._steps, dtype=np.float64)[: steps.shape[0]]
        steps[: done.shape[0]] = done
        if done.shape[0] < steps.shape[0]:
            steps[done.shape[0]] = self._step  # the step under way
        # Summed in place, in the same order as sum(): a 10-hour book's 360,000 blocks are one
        # array more, not four (memory flat in the length).
        z = steps[:blocks].copy()
        for j in range(1, STEPS_PER_GATE):
            z += steps[j : j + blocks]
        z /= GATE_SECONDS * self.rate
        return BlockEnergies(z)

    def lufs(self) -> float | None:
        """Integrated loudness; None under 0.4 s or when every block is below the gates."""
        energies = self.energies()
        return energies.lufs() if energies is not None else None


class TruePeakMeter:
    """The peak of the 4x oversampled signal, fed block by block; never below the sample peak
    (soxr's steep low-pass reads an isolated click up to 0.4 dB low)."""

    def __init__(self, sample_rate: int) -> None:
        import soxr

        self._stream = soxr.ResampleStream(sample_rate, sample_rate * OVERSAMPLING, 1, dtype="float32", quality="HQ")
        self._peak = 0.0
        self._flushed = False
        self.count = 0

    def add(self, block: np.ndarray, *, last: bool = False) -> None:
        import numpy as np

        x = np.ascontiguousarray(block, dtype=np.float32)
        up = self._stream.resample_chunk(x, last=last)
        for samples in (x, up):
            if samples.size:
                self._peak = max(self._peak, float(samples.max()), -float(samples.min()))
        self.count += x.shape[0]

    def dbtp(self) -> float:
        import numpy as np

        if self.count and not self._flushed:
            self.add(np.zeros(0, dtype=np.float32), last=True)  # the resampler's tail
            self._flushed = True
        return 20 * math.log10(self._peak) if self._peak > 1e-9 else SILENT_DBTP


class SignalMeter:
    """Loudness and true peak of a signal fed in pieces of any size, measured in fixed blocks
    of ``BLOCK`` samples (so how the signal was cut never changes a figure)."""

    def __init__(self, sample_rate: int) -> None:
        import numpy as np

        self.loudness = LoudnessMeter(sample_rate)
        self.peak = TruePeakMeter(sample_rate)
        self._buffer = np.empty(BLOCK, dtype=np.float32)
        self._fill = 0

    def add(self, samples: np.ndarray) -> None:
        while samples.shape[0]:
            n = min(BLOCK - self._fill, samples.shape[0])
            self._buffer[self._fill : self._fill + n] = samples[:n]
            self._fill += n
            samples = samples[n:]
            if self._fill == BLOCK:
                self._measure()

    def _measure(self) -> None:
        block = self._buffer[: self._fill]
        self.loudness.add(block)
        self.peak.add(block)
        self._fill = 0

    def result(self) -> Measured:
        if self._fill:
            self._measure()
        energies = self.loudness.energies()
        return Measured(energies.lufs() if energies is not None else None, self.peak.dbtp(), energies)


def blocks_of(samples: np.ndarray, size: int = BLOCK) -> list[np.ndarray]:
    """``samples`` in consecutive views of ``size`` samples (the last one shorter)."""
    return [samples[i : i + size] for i in range(0, samples.shape[0], size)]


def measure(samples: np.ndarray, sample_rate: int) -> Measured:
    meter = SignalMeter(sample_rate)
    meter.add(samples)
    return meter.result()


def measure_lufs(samples: np.ndarray, sample_rate: int) -> float | None:
    meter = LoudnessMeter(sample_rate)
    for block in blocks_of(samples):
        meter.add(block)
    return meter.lufs()


def true_peak_dbtp(samples: np.ndarray, sample_rate: int) -> float:
    meter = TruePeakMeter(sample_rate)
    for block in blocks_of(samples):
        meter.add(block)
    return meter.dbtp()


def gain_db(measured: Measured, target_lufs: float, ceiling_dbtp: float) -> float | None:
    """The gain that reaches the target unless the true peak would pass the ceiling (then the
    ceiling wins); None when there is nothing to measure (too short or silent: left alone)."""
    if measured.lufs is None:
        return None
    return min(target_lufs - measured.lufs, ceiling_dbtp - measured.true_peak_dbtp)


def apply_gain(samples: np.ndarray, gain: float) -> np.ndarray:
    import numpy as np

    return (samples * 10 ** (gain / 20)).astype(np.float32)


def loudness_result(measured: Measured, gain: float | None, output_lufs: float | None) -> LoudnessResult:
    if gain is None:
        return LoudnessResult(None, None, round(measured.true_peak_dbtp, 2), 0.0)
    assert measured.lufs is not None
    return LoudnessResult(
        round(measured.lufs, 2), _rounded(output_lufs), round(measured.true_peak_dbtp + gain, 2), round(gain, 2)
    )


def normalize(
    samples: np.ndarray,
    sample_rate: int,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    ceiling_dbtp: float = DEFAULT_TRUE_PEAK_DBTP,
) -> tuple[np.ndarray, LoudnessResult]:
    measured = measure(samples, sample_rate)
    gain = gain_db(measured, target_lufs, ceiling_dbtp)
    if gain is None:
        return samples, loudness_result(measured, None, None)
    return apply_gain(samples, gain), loudness_result(measured, gain, measured.lufs_after(gain))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
