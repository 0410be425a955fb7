"""The ACX checker and the MP3 encoder: an ACX-mastered chapter passes every rule, measured here
independently (acx_helpers) and by ``voicebatch check acx``; breaking the limiter, the room tone
or the constant bit rate makes both fail, and the checker names the rule."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from voicebatch.render.mastering import master as master_module
from voicebatch.render.mastering.acx import _mp3_bit_rate, check_acx
from voicebatch.render.mastering.encode import encode_mp3, encode_mp3_file
from voicebatch.render.mastering.master import master_file
from voicebatch.render.mastering.profiles import PROFILES

from acx_helpers import assert_acx, decode
from book_helpers import spoken
from conftest import tree_env

SENTENCES = [
    "It is easy to tell the depth of a well.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    samples, _ = spoken(SENTENCES)
    path = tmp_path_factory.mktemp("acx") / "chapter.f32"
    samples.astype(np.float32).tofile(path)
    return path


def _mp3(source: Path, out: Path, profile: str = "acx") -> Path:
    mastered = master_file(source, 24_000, out.with_suffix(".f32"), PROFILES[profile], seed=3)
    encoded = encode_mp3_file(mastered.path, mastered.sample_rate, out, tags={"title": "Chapter Two"})
    assert abs(encoded.duration - mastered.duration) < 1e-9
    return out


@pytest.fixture(scope="module")
def chapter_mp3(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _mp3(source, tmp_path_factory.mktemp("acx") / "chapter-002.mp3")


def test_an_acx_mastered_chapter_passes_every_rule_measured_independently(chapter_mp3: Path) -> None:
    measured = assert_acx(chapter_mp3)
    report = check_acx(chapter_mp3)
    assert report.passed, report.line()
    # The checker's figures agree with the independent ones.
    assert abs(report.rms_dbfs - measured.rms_dbfs) < 0.05
    assert abs(report.noise_floor_dbfs - measured.noise_floor_dbfs) < 1.5  # 10 ms steps against fixed windows
    assert abs(report.head_seconds - measured.head_seconds) < 0.1
    assert abs(report.tail_seconds - measured.tail_seconds) < 0.1
    assert abs(report.duration - measured.duration) < 0.01
    assert (report.format, report.bit_rate, report.cbr, report.sample_rate, report.channels) == (
        "mp3",
        192_000,
        True,
        44_100,
        1,
    )


def test_the_mp3_is_tagged_and_decodes_to_what_was_encoded(chapter_mp3: Path) -> None:
    with av.open(str(chapter_mp3)) as container:
        assert container.metadata.get("title") == "Chapter Two"
    samples, _, _ = decode(chapter_mp3)
    mastered = np.fromfile(chapter_mp3.with_suffix(".f32"), dtype=np.float32)
    assert abs(samples.shape[0] - mastered.shape[0]) <= 1152  # gapless: LAME's delay and padding removed
    n = min(samples.shape[0], mastered.shape[0])
    assert np.corrcoef(samples[:n], mastered[:n])[0, 1] > 0.98


def test_breaking_the_limiter_fails_the_peak_rule(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoLimiter:
        reduction_db = 0.0

        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def process(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
            return block

    monkeypatch.setattr(master_module, "TruePeakLimiter", NoLimiter)
    path = _mp3(source, tmp_path / "unlimited.mp3")
    with pytest.raises(AssertionError, match="true_peak"):
        assert_acx(path)
    assert [r.rule for r in check_acx(path).failures] == ["peak"]


def test_breaking_the_room_tone_fails(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(PROFILES, "silent", dataclasses.replace(PROFILES["acx"], name="silent", room_tone_dbfs=None))
    path = _mp3(source, tmp_path / "dead-air.mp3", "silent")
    with pytest.raises(AssertionError, match="noise_floor"):
        assert_acx(path)
    assert "room_tone" in [r.rule for r in check_acx(path).failures]
    # Without the head and tail, the file starts and ends as synthesis left it.
    monkeypatch.setitem(
        PROFILES, "bare", dataclasses.replace(PROFILES["acx"], name="bare", head_seconds=0, tail_seconds=0)
    )
    failures = [r.rule for r in check_acx(_mp3(source, tmp_path / "no-tone.mp3", "bare")).failures]
    assert "head" in failures and "tail" in failures


def test_breaking_the_constant_bit_rate_fails(chapter_mp3: Path, tmp_path: Path) -> None:
    samples = np.fromfile(chapter_mp3.with_suffix(".f32"), dtype=np.float32)
    path = tmp_path / "vbr.mp3"
    container = av.open(str(path), "w", format="mp3")
    stream = container.add_stream("libmp3lame", rate=44_100, layout="mono")
    stream.codec_context.qscale = True  # LAME's VBR mode: what encode_mp3 must never set
    stream.codec_context.global_quality = 2 * 118
    frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
    frame.sample_rate = 44_100
    container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    container.close()
    with pytest.raises(AssertionError, match="not CBR"):
        assert_acx(path)
    assert "bit_rate" in [r.rule for r in check_acx(path).failures]


def test_a_low_bit_rate_or_another_rate_fails(tmp_path: Path) -> None:
    tone = (0.05 * np.sin(2 * np.pi * 200 * np.arange(48_000 * 3) / 48_000)).astype(np.float32)
    low = encode_mp3([tone], 48_000, tmp_path / "low.mp3", bit_rate=128_000)
    failures = {r.rule: r for r in check_acx(low.path).failures}
    assert {"bit_rate", "sample_rate"} <= set(failures)
    assert failures["bit_rate"].measured == "128 kbps CBR" and failures["sample_rate"].measured == "48000 Hz"


def test_every_mp3_frame_header_is_read() -> None:
    assert _mp3_bit_rate(bytes([0xFF, 0xFB, 0xB0, 0x44])) == 192_000  # MPEG-1 Layer III, index 11
    assert _mp3_bit_rate(bytes([0xFF, 0xFB, 0x90, 0x44])) == 128_000
    assert _mp3_bit_rate(bytes([0xFF, 0xF3, 0x90, 0x44])) == 80_000  # MPEG-2: its own table
    assert _mp3_bit_rate(b"ID3\x04") == 0


def test_an_unreadable_file_is_a_failed_report_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_text("not audio")
    report = check_acx(bad)
    assert not report.passed and report.error and "cannot decode" in report.error
    assert "No such file" in (check_acx(tmp_path / "missing.mp3").error or "")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voicebatch.cli", "check", "acx", *args],
        capture_output=True,
        text=True,
        env=tree_env(),
        check=False,
        timeout=120,
    )


def test_the_command_prints_a_line_per_file_and_fails_when_one_fails(chapter_mp3: Path, tmp_path: Path) -> None:
    good = _cli(str(chapter_mp3))
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith(f"{chapter_mp3}: pass") and good.stdout.count("\n") == 1
    bad = tmp_path / "bad.mp3"
    bad.write_text("x")
    both = _cli(str(chapter_mp3), str(bad))
    assert both.returncode == 1 and both.stdout.count("\n") == 2 and f"{bad}: FAIL" in both.stdout
    rows = json.loads(_cli(str(chapter_mp3), str(bad), "--json").stdout)
    assert [r["passed"] for r in rows] == [True, False]
    rules = {"format", "bit_rate", "sample_rate", "channels", "rms", "peak", "noise_floor", "room_tone", "head", "tail"}
    assert {r["rule"] for r in rows[0]["rules"]} == {*rules, "duration"}
