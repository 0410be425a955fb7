"""Room tone: a quiet, steady noise bed, never digital silence (ACX rejects files with dead air).

Gaussian noise through a gentle one-pole low-pass (a room's hiss has less top end than white
noise), scaled to ``level_dbfs`` RMS; the same seed gives the same samples whatever block sizes
ask for them (numpy's generator draws sample by sample; the filter carries its state).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

POLE = 0.6


class RoomTone:
    def __init__(self, level_dbfs: float, seed: int = 0) -> None:
        import numpy as np

        self._rng = np.random.default_rng(seed)
        # The filter's output RMS for unit-variance input is sqrt((1 - a) / (1 + a)) * ... with
        # gain (1 - a): variance (1 - a)^2 / (1 - a^2).
        self._scale = 10 ** (level_dbfs / 20) / math.sqrt((1 - POLE) ** 2 / (1 - POLE**2))
        self._state = np.zeros(1)

    def next(self, count: int) -> np.ndarray:
        import numpy as np
        import scipy.signal

        white = self._rng.standard_normal(count)
        out, self._state = scipy.signal.lfilter([1 - POLE], [1, -POLE], white, zi=self._state)
        return (out * self._scale).astype(np.float32)
