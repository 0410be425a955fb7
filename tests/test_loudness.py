"""Loudness normalisation to a target, with the true-peak ceiling."""

from __future__ import annotations

import numpy as np

from voicebatch.loudness import measure_lufs, normalize, true_peak_dbtp

RATE = 24_000


def noise(level: float, seconds: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    return (rng.standard_normal(round(seconds * RATE)) * level).astype(np.float32)


def test_quiet_signal_reaches_the_target_within_1_lu() -> None:
    quiet = noise(0.01)
    out, result = normalize(quiet, RATE, -16.0, -1.0)
    assert abs(measure_lufs(out, RATE) + 16.0) <= 1.0
    assert result.output_lufs is not None and abs(result.output_lufs + 16.0) <= 1.0
    assert true_peak_dbtp(out, RATE) <= -1.0 + 0.05


def test_loud_signal_is_turned_down_to_the_target() -> None:
    out, result = normalize(noise(0.3), RATE, -23.0, -1.0)
    assert abs(measure_lufs(out, RATE) + 23.0) <= 1.0 and result.gain_db < 0


def test_true_peak_ceiling_wins_over_the_target() -> None:
    spiky = noise(0.005)
    spiky[RATE] = 0.9  # one click: a high crest factor
    out, result = normalize(spiky, RATE, -10.0, -1.0)
    assert true_peak_dbtp(out, RATE) <= -1.0 + 0.05
    assert result.output_lufs < -10.0 - 1.0  # quieter than asked, never clipped


def test_too_short_or_silent_audio_is_left_alone() -> None:
    short = noise(0.1, 0.2)
    out, result = normalize(short, RATE)
    assert out is short and result.input_lufs is None and result.gain_db == 0.0
    assert result.true_peak_dbtp == round(true_peak_dbtp(short, RATE), 2) and result.true_peak_dbtp > -30.0
    assert true_peak_dbtp(np.zeros(0, np.float32), RATE) == true_peak_dbtp(np.zeros(RATE, np.float32), RATE) == -120.0
    assert true_peak_dbtp(np.full(1, 0.5, np.float32), RATE) >= 20 * np.log10(0.5) - 1e-6


def test_true_peak_is_never_below_the_sample_peak() -> None:
    click = np.zeros(RATE, dtype=np.float32)
    click[1000] = 0.5  # an isolated click: a steep oversampling filter alone reads it ~0.4 dB low
    assert true_peak_dbtp(click, RATE) >= 20 * np.log10(0.5) - 1e-6


def test_one_second_is_long_enough_to_normalise() -> None:
    out, result = normalize(noise(0.01, 1.0), RATE, -20.0, -1.0)
    assert result.input_lufs is not None and abs(measure_lufs(out, RATE) + 20.0) <= 0.1
