"""Takes placed on a timed script's timeline: trimmed to their onset, silence between, measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicebatch.inputs.scripts import chunk_script, load_script_file
from voicebatch.render.timed_render import assemble_timed, assemble_timed_to_file

from audio_helpers import srt
from timed_helpers import speech_regions

RATE = 24_000
REFERENCES = {"anna": ("Hello there, this is Anna.", 3.0)}


def take(lead: float, speech: float, trail: float, seed: int) -> np.ndarray:
    """A take as F5 may give it: silence, then steady noise, then silence."""
    noise = np.random.default_rng(seed).standard_normal(round(speech * RATE)).astype(np.float32) * 0.1
    return np.concatenate([np.zeros(round(lead * RATE), np.float32), noise, np.zeros(round(trail * RATE), np.float32)])


@pytest.fixture
def script(tmp_path: Path):
    cues = [(0.5, 2.0, "Hello there, my friend."), (3.0, 4.0, "How are you today then?"), (4.5, 6.0, "Goodbye.")]
    (tmp_path / "dub.srt").write_text(srt(cues), encoding="utf-8")
    (script,) = load_script_file(tmp_path / "dub.srt", {"anna"})
    return script


def test_each_onset_lands_on_its_cue_start_and_the_track_is_as_long_as_the_source(script) -> None:
    takes = [take(0.3, 1.2, 0.4, 1), take(0.25, 1.0, 0.2, 2), take(0.1, 0.8, 0.5, 3)]
    assembly, result = assemble_timed(takes, script, chunk_script(script, REFERENCES))
    regions = speech_regions(assembly.samples)
    # The leading silence of each take is gone: its speech starts on its cue's start (5 ms frames).
    assert [round(a, 3) for a, _ in regions] == [0.5, 3.0, 4.5]
    assert [round(b - a, 3) for a, b in regions] == [1.2, 1.0, 0.8]  # the speech itself, whole
    assert assembly.samples.shape[0] == 6 * RATE and result.flagged == ()
    # 50 ms of each take's trailing silence is kept (it counts towards its slot), no more.
    assert [round(c.end - c.start, 3) for c in assembly.sentences] == [1.25, 1.05, 0.85]


def test_a_take_too_long_for_its_slot_spills_and_never_overlaps_the_next(script) -> None:
    takes = [take(0.0, 3.0, 0.0, 1), take(0.0, 0.8, 0.0, 2), take(0.0, 0.5, 0.0, 3)]
    assembly, result = assemble_timed(takes, script, chunk_script(script, REFERENCES))
    regions = speech_regions(assembly.samples)
    # Cue 1 lasts to 3.5 s, past cue 2's start: cue 2 starts 50 ms after it, late; cue 3 is on time.
    assert [(round(a, 3), round(b, 3)) for a, b in regions] == [(0.5, 3.5), (3.55, 4.35), (4.5, 5.0)]
    assert result.flagged == (0, 1)
    cues = result.record["cues"]
    assert [c["fits"] for c in cues] == [False, False, True]
    assert cues[0]["overrun"] == pytest.approx(0.5) and cues[1]["late"] == pytest.approx(0.55)


def test_the_track_on_disk_is_the_track_in_memory(script, tmp_path: Path) -> None:
    takes = [take(0.3, 1.2, 0.4, 1), take(0.25, 1.0, 0.2, 2), take(0.1, 0.8, 0.5, 3)]
    chunks = chunk_script(script, REFERENCES)
    assembly, _ = assemble_timed(takes, script, chunks)
    joined, result = assemble_timed_to_file(iter(takes), script, chunks, tmp_path / "joined.f32")
    assert np.array_equal(np.fromfile(joined.path, dtype=np.float32), assembly.samples)
    assert joined.frames == assembly.samples.shape[0] and result.record["flagged"] == []
