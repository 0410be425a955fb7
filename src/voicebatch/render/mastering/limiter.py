"""A look-ahead true-peak limiter that works block by block.

Peaks are found as BS.1770 finds true peaks: on a 4x oversampled copy of the signal, with the
resampler ``loudness.TruePeakMeter`` uses (soxr, high quality), so what the limiter holds under
the ceiling is what the meter measures, inter-sample peaks included. (soxr's pass band ends near
20 kHz at 44.1 kHz: both read content above it low, and synthesized speech has none above 12 kHz.)
The gain it needs at each sample (``ceiling / peak``, at most 1) is spread by a sliding minimum over a window reaching
``attack + corner`` ahead and ``hold`` behind, then smoothed by two moving averages (``attack``
and ``corner`` long). Each average only ever mixes gains from windows that contain the sample,
so the smoothed gain never exceeds what the sample needs: peaks stay under the ceiling with no
clipping and no overshoot, and the gain glides down over ``attack`` before a peak and back
up over the same time after ``hold``. Every step is vectorised (scipy's O(n) minimum filter,
cumulative sums), so a ten-hour book is limited in minutes with a few blocks of memory.
The output lags nothing: samples come out aligned with the samples that went in, later by the
look-ahead (``flush`` with ``last=True`` at the end).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

OVERSAMPLING = 4
CONTEXT = 512  # input samples of context each side for the interpolation filter (soxr HQ's spans far less)


class TruePeakLimiter:
    def __init__(
        self,
        sample_rate: int,
        ceiling_dbtp: float,
        *,
        attack: float = 0.02,
        corner: float = 0.002,
        hold: float = 0.03,
    ) -> None:
        import numpy as np

        self.ceiling = 10 ** (ceiling_dbtp / 20)
        self.rate = sample_rate
        self.attack = max(1, round(attack * sample_rate))
        self.corner = max(1, round(corner * sample_rate))
        self.hold = max(0, round(hold * sample_rate))
        self.ahead = self.attack + self.corner - 1  # samples the minimum looks ahead
        self.behind = self.attack + self.corner + self.hold + CONTEXT + 2  # history kept
        self._x = np.zeros(0, dtype=np.float32)
        self._base = 0  # absolute index of _x[0]
        self._out = 0  # absolute index of the next sample out
        self.reduced = 0  # samples whose gain was lowered
        self.min_gain = 1.0

    def process(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
        """Limited samples: as many as can be decided (all of them when ``last``)."""
        import numpy as np

        x = np.concatenate([self._x, np.asarray(block, dtype=np.float32)])
        received = self._base + x.shape[0]
        end = received if last else received - (self.ahead + CONTEXT + 2)
        if end <= self._out:
            self._x = x
            return np.zeros(0, dtype=np.float32)
        lo = max(self._base, self._out - self.behind)
        hi = min(received, end + self.ahead + CONTEXT + 2)
        segment = x[lo - self._base : hi - self._base]
        gain = self._gain(segment)[self._out - lo : end - lo]
        out = (segment[self._out - lo : end - lo] * gain).astype(np.float32)
        lowered = gain < 1.0
        self.reduced += int(lowered.sum())
        if lowered.any():
            self.min_gain = min(self.min_gain, float(gain.min()))
        self._out = end
        keep = max(self._base, end - self.behind)
        self._x = x[keep - self._base :]
        self._base = keep
        return out

    def _gain(self, segment: np.ndarray) -> np.ndarray:
        import numpy as np
        import soxr

        up = np.abs(soxr.resample(segment, self.rate, self.rate * OVERSAMPLING, quality="HQ"))
        between = up[: segment.shape[0] * OVERSAMPLING].reshape(-1, OVERSAMPLING).max(axis=1)  # [n, n+1)
        peak = np.maximum(np.abs(segment), between)
        peak[1:] = np.maximum(peak[1:], between[:-1])  # (n-1, n+1): the gain of both neighbours counts
        needed = np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-12))
        # The averages reach back attack + corner - 2 samples: before the segment the held gain
        # is still the minimum of what lies ahead (a peak at the very start is ramped into too).
        lead = self.attack + self.corner - 2
        held = window_min(np.concatenate([np.ones(lead), needed]), self.hold, self.ahead)
        return moving_average(moving_average(held, self.attack), self.corner)[lead:]

    @property
    def reduction_db(self) -> float:
        """The deepest gain reduction so far (0 when it never acted)."""
        return 20 * math.log10(self.min_gain) if self.min_gain < 1.0 else 0.0


def window_min(values: np.ndarray, behind: int, ahead: int) -> np.ndarray:
    """``out[i] = min(values[i - behind : i + ahead + 1])``, 1 outside the signal."""
    import numpy as np
    from scipy.ndimage import minimum_filter1d

    padded = np.concatenate([np.ones(behind), values, np.ones(ahead)])
    size = behind + ahead + 1
    # minimum_filter1d centres its window; origin shifts it so out[j] covers padded[j - size + 1 .. j].
    filtered = minimum_filter1d(padded, size=size, mode="constant", cval=1.0, origin=(size - 1) // 2)
    return filtered[size - 1 :][: values.shape[0]] if size > 1 else values.copy()


def moving_average(values: np.ndarray, length: int) -> np.ndarray:
    """``out[i] = mean(values[i - length + 1 : i + 1])``, 1 before the signal (the caller pads
    with what it knows to be there)."""
    import numpy as np

    if length <= 1:
        return values
    sums = np.cumsum(np.concatenate([np.ones(length - 1), values]))
    sums[length:] -= sums[:-length].copy()
    return sums[length - 1 :] / length
