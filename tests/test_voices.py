"""Voices: discovery in both layouts, recording checks, reference clips, voice.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicebatch.errors import InputError
from voicebatch.inputs.voices import discover_voices, prepare_voice, prepare_voices, write_prepared_voice

from audio_helpers import speech_like, srt, write_audio

CUES = [(0.5, 3.0, "The first sentence."), (3.3, 6.5, "The second one, longer."), (6.8, 12.4, "A third sentence.")]


def make_voice(root: Path, name: str, *, flat: bool = False, suffix: str = ".wav", rate: int = 16_000) -> Path:
    samples = speech_like(13.0, [(a, b) for a, b, _ in CUES], rate=rate)
    folder = root if flat else root / name
    write_audio(folder / f"{name if flat else 'take1'}{suffix}", samples, rate)
    (folder / f"{name}.srt").write_text(srt(CUES), encoding="utf-8")
    return folder


def test_both_layouts_are_discovered(tmp_path: Path) -> None:
    make_voice(tmp_path, "folder_voice")
    make_voice(tmp_path, "flat_voice", flat=True)
    sources = discover_voices(tmp_path)
    assert [(s.name, s.problem) for s in sources] == [("flat_voice", None), ("folder_voice", None)]


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3"])
def test_every_audio_format_gives_a_clip_of_whole_segments(tmp_path: Path, suffix: str) -> None:
    make_voice(tmp_path, "v", suffix=suffix)
    voice = prepare_voice(discover_voices(tmp_path)[0])
    # Both two-cue runs end a sentence; the longer one (3.3-12.4 s) wins.
    assert voice.text == "The second one, longer. A third sentence."
    assert 9.1 <= voice.duration <= 11.0
    assert voice.metadata["sample_rate"] == 24_000 and voice.samples.dtype == np.float32


def test_prepared_voice_files_and_provenance(tmp_path: Path) -> None:
    make_voice(tmp_path / "in", "anna")
    voice = prepare_voice(discover_voices(tmp_path / "in")[0])
    out = write_prepared_voice(voice, tmp_path / "out")
    meta = json.loads((out / "voice.json").read_text())
    assert (out / "reference.txt").read_text().strip() == voice.text == meta["reference_text"]
    samples, rate = sf.read(out / "reference.wav")
    assert rate == 24_000 and samples.ndim == 1
    assert abs(len(samples) / rate - meta["duration"]) < 0.001
    assert meta["clip_hash"] == voice.clip_hash and len(voice.clip_hash) == 64
    assert len(meta["sources"]["audio"]["sha256"]) == 64 and meta["sources"]["transcript"]["format"] == "srt"
    assert meta["window"]["first_segment"] == 1 and meta["window"]["last_segment"] == 2
    assert meta["loudness_lufs"] is not None


def test_a_prepared_voice_folder_is_reused_with_the_same_clip_hash(tmp_path: Path) -> None:
    make_voice(tmp_path / "in", "anna")
    voice = prepare_voice(discover_voices(tmp_path / "in")[0])
    write_prepared_voice(voice, tmp_path / "prepared" / "anna")
    again = prepare_voice(discover_voices(tmp_path / "prepared")[0])
    assert again.clip_hash == voice.clip_hash and again.text == voice.text


def test_one_bad_voice_never_stops_the_others(tmp_path: Path) -> None:
    make_voice(tmp_path, "good")
    write_audio(tmp_path / "silent" / "a.wav", np.zeros(16_000 * 5, dtype=np.float32))
    (tmp_path / "silent" / "a.srt").write_text(srt([(0, 4, "Nothing.")]))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.wav").write_bytes(b"RIFF not really a wave file")
    (tmp_path / "broken" / "a.srt").write_text(srt([(0, 4, "Nothing.")]))
    prepared, reports = prepare_voices(tmp_path)
    assert set(prepared) == {"good"}
    status = {r.name: (r.status, r.reason) for r in reports}
    assert status["good"][0] == "ok"
    assert "silent" in status["silent"][1] and "cannot decode" in status["broken"][1]
    assert all("\n" not in (r.reason or "") for r in reports)


@pytest.mark.parametrize(
    ("layout", "says"),
    [
        ({"v/a.wav": "audio", "v/b.wav": "audio", "v/a.srt": "srt"}, "2 recordings (a.wav, b.wav); keep one"),
        ({"v/a.wav": "audio"}, "no transcript"),
        ({"v.wav": "audio"}, "v.wav: no transcript beside it"),
        ({"v.srt": "srt"}, "transcript without a recording"),
        ({"v.wav": "audio", "v.srt": "srt", "v.vtt": "srt"}, "several transcripts"),
    ],
)
def test_discovery_problems_are_reported_per_voice(tmp_path: Path, layout: dict[str, str], says: str) -> None:
    for name, kind in layout.items():
        path = tmp_path / name
        if kind == "audio":
            write_audio(path, speech_like(5.0, [(0.5, 4.5)]))
        else:
            path.write_text(srt([(0.5, 4.5, "Hello.")]))
    _, reports = prepare_voices(tmp_path)
    assert reports[0].status == "error" and says in reports[0].reason


def test_txt_transcript_only_for_short_recordings(tmp_path: Path) -> None:
    write_audio(tmp_path / "short" / "a.wav", speech_like(6.0, [(0.3, 5.7)]))
    (tmp_path / "short" / "a.txt").write_text("A short reference.\n")
    write_audio(tmp_path / "long" / "a.wav", speech_like(20.0, [(0.3, 19.7)]))
    (tmp_path / "long" / "a.txt").write_text("A long one.\n")
    prepared, reports = prepare_voices(tmp_path)
    assert prepared["short"].text == "A short reference." and abs(prepared["short"].duration - 6.0) < 0.01
    (long_report,) = [r for r in reports if r.name == "long"]
    assert "no timings" in long_report.reason and "provide a timed transcript" in long_report.reason


def test_warnings_low_rate_clipping_late_and_overlapping_segments(tmp_path: Path) -> None:
    samples = speech_like(9.0, [(0.2, 4.0), (4.2, 8.8)], rate=8_000, level=3.0).clip(-1, 1)
    write_audio(tmp_path / "v" / "a.wav", samples, 8_000)
    cues = [(0.2, 4.0, "One."), (3.5, 8.8, "Two overlaps."), (9.5, 12.0, "Past the end.")]
    (tmp_path / "v" / "a.srt").write_text(srt(cues))
    voice = prepare_voice(discover_voices(tmp_path)[0])
    joined = " | ".join(voice.warnings)
    assert "8000 Hz" in joined and "clipped" in joined
    assert "end after the recording" in joined and "overlap" in joined


def test_out_of_vocabulary_reference_text_is_reported(tmp_path: Path) -> None:
    from voicebatch.inputs.vocab import Vocabulary

    write_audio(tmp_path / "v" / "a.wav", speech_like(5.0, [(0.2, 4.8)]))
    (tmp_path / "v" / "a.srt").write_text(srt([(0.2, 4.8, "Hello ☃ snow.")]))
    vocab = Vocabulary("test", frozenset("Helo snw."))
    voice = prepare_voice(discover_voices(tmp_path)[0], vocab=vocab)
    assert any("cannot speak: ☃" in w for w in voice.warnings)


@pytest.mark.parametrize(
    ("samples", "rate", "says"),
    [
        (np.zeros(100, dtype=np.float32), 16_000, "at least 1 s"),
        (speech_like(5.0, [(0, 5)], rate=4_000), 4_000, "below 8000 Hz"),
    ],
)
def test_unusable_recordings(tmp_path: Path, samples: np.ndarray, rate: int, says: str) -> None:
    write_audio(tmp_path / "v" / "a.wav", samples, rate)
    (tmp_path / "v" / "a.srt").write_text(srt([(0, 0.005, "x.")]))
    with pytest.raises(InputError, match=says):
        prepare_voice(discover_voices(tmp_path)[0])


def test_unsafe_voice_name_is_rejected(tmp_path: Path) -> None:
    make_voice(tmp_path, "bad name")
    with pytest.raises(InputError, match="voice name 'bad name'"):
        prepare_voice(discover_voices(tmp_path)[0])


def test_one_voice_by_path_in_every_layout(tmp_path: Path) -> None:
    from voicebatch.inputs.voices import voice_source

    make_voice(tmp_path, "folder_voice")
    make_voice(tmp_path, "flat_voice", flat=True)
    assert voice_source(tmp_path / "folder_voice").name == "folder_voice"
    assert voice_source(tmp_path / "flat_voice.wav").transcript == tmp_path / "flat_voice.srt"
    assert voice_source(tmp_path / "flat_voice").audio == tmp_path / "flat_voice.wav"
    with pytest.raises(InputError, match="no voice folder"):
        voice_source(tmp_path / "nobody")
