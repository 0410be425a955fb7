"""Mastering profiles, block by block: the true-peak limiter, the room tone, the ACX level and
shape of a chapter, and the LUFS profiles, each measured here independently of the code under
test (numpy, scipy's resampler, pyloudnorm's own meter)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebatch.render.mastering.limiter import TruePeakLimiter, moving_average, window_min
from voicebatch.render.mastering.master import master_file, read_range
from voicebatch.render.mastering.profiles import PROFILES, profile
from voicebatch.render.mastering.roomtone import RoomTone

from acx_helpers import db
from book_helpers import spoken

RATE = 44_100


def _true_peak(samples: np.ndarray) -> float:
    return db(float(np.abs(scipy.signal.resample_poly(samples.astype(np.float64), 4, 1)).max()))


def _limited(limiter: TruePeakLimiter, x: np.ndarray, piece: int) -> np.ndarray:
    out = [limiter.process(x[i : i + piece]) for i in range(0, x.shape[0], piece)]
    return np.concatenate([*out, limiter.process(np.zeros(0, np.float32), last=True)])


# Full-band noise up to 16 kHz (what an MP3 keeps), speech's band, and a tone whose samples miss
# its peaks. (White noise up to 22 kHz is not: soxr's pass band, which the project's meter and
# the limiter share, ends near 20 kHz; synthesized speech has nothing above 12 kHz.)
@pytest.mark.parametrize("signal", ["noise to 16 kHz", "speech-band", "near-nyquist sine"])
def test_the_limiter_holds_true_peaks_under_the_ceiling(signal: str) -> None:
    rng = np.random.default_rng(3)
    t = np.arange(RATE * 4) / RATE
    x = {
        "noise to 16 kHz": scipy.signal.lfilter(
            *scipy.signal.butter(8, 16000 / (RATE / 2)), rng.standard_normal(t.shape[0])
        ),
        "speech-band": scipy.signal.lfilter(
            *scipy.signal.butter(6, 4000 / (RATE / 2)), rng.standard_normal(t.shape[0])
        ),
        # Its samples stay under the ceiling (-4.8 dBFS), its true peak does not (-2.5 dBTP): a
        # sample-peak limiter would let it through.
        "near-nyquist sine": 0.75 * np.sin(2 * np.pi * 11025 * t + 0.7),
    }[signal].astype(np.float32)
    assert _true_peak(x) > -3.0  # it needs limiting
    y = _limited(TruePeakLimiter(RATE, -3.5), x, 10_000)
    assert y.shape == x.shape
    assert _true_peak(y) <= -3.4  # scipy's resampler, not the limiter's own: 0.1 dB between two filters
    # Not a clipper: the gain is smooth, so the waveform keeps its shape where it is lowered.
    gain = y[np.abs(x) > 1e-3] / x[np.abs(x) > 1e-3]
    assert np.abs(np.diff(gain)).max() < 0.01


def test_the_limiter_leaves_quiet_audio_alone_and_is_aligned() -> None:
    x = (0.1 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
    limiter = TruePeakLimiter(RATE, -3.0)
    assert np.array_equal(_limited(limiter, x, 4096), x)
    assert limiter.reduction_db == 0.0


@settings(max_examples=20)
@given(st.integers(64, 9000), st.integers(0, 2**31 - 1))
def test_the_limiter_gives_the_same_samples_whatever_the_block_size(piece: int, seed: int) -> None:
    x = (np.random.default_rng(seed).standard_normal(12_000) * 0.5).astype(np.float32)
    whole = _limited(TruePeakLimiter(RATE, -6.0), x, x.shape[0])
    assert np.allclose(_limited(TruePeakLimiter(RATE, -6.0), x, piece), whole, atol=1e-6)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60), st.integers(0, 8), st.integers(0, 8), st.integers(1, 6))
def test_window_minimum_and_moving_average_against_their_definitions(
    values: list[float], behind: int, ahead: int, length: int
) -> None:
    v = np.array(values)
    padded = np.concatenate([np.ones(behind), v, np.ones(ahead)])
    assert np.allclose(window_min(v, behind, ahead), [padded[i : i + behind + ahead + 1].min() for i in range(len(v))])
    ones = np.concatenate([np.ones(length - 1), v])
    assert np.allclose(moving_average(v, length), [ones[i : i + length].mean() for i in range(len(v))])


def test_room_tone_is_quiet_noise_and_the_same_for_the_same_seed() -> None:
    tone = RoomTone(-66.0, seed=7)
    a = np.concatenate([tone.next(1000), tone.next(RATE * 2 - 1000)])
    b = RoomTone(-66.0, seed=7).next(RATE * 2)
    assert np.allclose(a, b)  # block sizes do not change it
    assert not np.allclose(a, RoomTone(-66.0, seed=8).next(RATE * 2))
    assert -67.0 <= db(float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))) <= -65.0
    assert np.count_nonzero(a == 0) < 5  # never digital silence


@pytest.fixture(scope="module")
def chapter(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    samples, times = spoken(
        ["The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background."]
    )
    path = tmp_path_factory.mktemp("master") / "chapter.f32"
    samples.astype(np.float32).tofile(path)
    return path, times


def test_acx_mastering_meets_every_level_rule(chapter: tuple[Path, list], tmp_path: Path) -> None:
    source, times = chapter
    result = master_file(source, 24_000, tmp_path / "acx.f32", PROFILES["acx"], seed=1)
    y = np.fromfile(result.path, dtype=np.float32).astype(np.float64)
    assert result.sample_rate == RATE and y.shape[0] == result.frames
    assert -21.0 <= db(float(np.sqrt(np.mean(y**2)))) <= -19.0  # aimed at -20 dBFS RMS
    assert _true_peak(y) <= -3.4
    assert result.limited_db < -1.0  # this material needs the limiter: without it the peak rule fails
    half = RATE // 2
    floor = db(float(np.sqrt(np.mean(y[: y.shape[0] // half * half].reshape(-1, half) ** 2, axis=1)).min()))
    assert -70.0 <= floor <= -62.0
    head, tail = y[: round(0.5 * RATE)], y[-round(1.0 * RATE) :]
    for tone in (head, tail):  # room tone: quiet noise, not silence
        assert -70.0 <= db(float(np.sqrt(np.mean(tone**2)))) <= -62.0
    # The first sentence starts where file_time says (the cut and the head moved it).
    loud = np.flatnonzero(np.abs(y) > 10 ** (-30 / 20))
    assert abs(loud[0] / RATE - result.file_time(times[0][0])) < 0.03
    assert 0.7 <= result.file_time(times[0][0]) <= 0.85
    assert abs((y.shape[0] / RATE - result.file_time(times[-1][1])) - PROFILES["acx"].tail_seconds) < 0.05


def test_acx_mastering_reads_in_blocks_and_masters_a_range(chapter: tuple[Path, list], tmp_path: Path) -> None:
    source, times = chapter
    start = round(times[1][0] * 24_000) - 2400  # the second sentence only
    result = master_file(source, 24_000, tmp_path / "part.f32", PROFILES["acx"], start=start, seed=1)
    assert abs(result.file_time(times[1][0]) - result.head_seconds) < 0.1
    blocks = list(read_range(result.path, 0, None, size=10_000))
    assert len(blocks) > 1 and sum(b.shape[0] for b in blocks) == result.frames


@pytest.mark.parametrize(("name", "lufs", "ceiling"), [("podcast", -16.0, -1.0), ("ebu-r128", -23.0, -1.0)])
def test_lufs_profiles_reach_their_target(
    chapter: tuple[Path, list], tmp_path: Path, name: str, lufs: float, ceiling: float
) -> None:
    source, _ = chapter
    result = master_file(source, 24_000, tmp_path / f"{name}.f32", profile(name))
    y = np.fromfile(result.path, dtype=np.float64 if False else np.float32).astype(np.float64)
    assert result.sample_rate == 24_000  # left at the synthesis rate
    measured = pyloudnorm.Meter(24_000).integrated_loudness(y)
    assert abs(measured - lufs) <= 1.0  # the limiter may take a little off the top
    assert _true_peak(y) <= ceiling + 0.1
    assert np.count_nonzero(y == 0) > 0.1 * 24_000  # no room tone in these profiles


def test_none_leaves_the_audio_as_it_was(chapter: tuple[Path, list], tmp_path: Path) -> None:
    source, _ = chapter
    result = master_file(source, 24_000, tmp_path / "none.f32", profile("none"))
    assert np.array_equal(np.fromfile(result.path, dtype=np.float32), np.fromfile(source, dtype=np.float32))


def test_an_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ValueError, match="acx, podcast, ebu-r128, none"):
        profile("loud")
