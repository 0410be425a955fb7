"""The demo inputs in include/: every voice usable, every clip exact and within the limit."""

from __future__ import annotations

from pathlib import Path

from voicebatch.inputs.scripts import chunk_script, load_scripts
from voicebatch.inputs.transcripts import read_transcript
from voicebatch.inputs.vocab import load_vocabulary
from voicebatch.inputs.voices import discover_voices, prepare_voices

INCLUDE = Path(__file__).parent.parent / "include"


def test_every_demo_voice_clip_is_whole_segments_with_their_exact_text(demo_voices: Path) -> None:
    prepared, reports = prepare_voices(demo_voices, vocab=load_vocabulary())
    assert [r.status for r in reports] == ["ok"] * 3 and set(prepared) == {"narrator", "nature", "taiyi"}
    sources = {s.name: s for s in discover_voices(demo_voices)}
    for name, voice in prepared.items():
        window = voice.metadata["window"]
        segments = read_transcript(sources[name].transcript).segments
        inside = [s for s in segments if window["start"] <= s.start and s.end <= window["end"]]
        assert voice.text == " ".join(s.text for s in inside), name
        assert voice.duration <= 11.0, name
        assert voice.warnings == (), name


def test_the_long_demo_voice_exceeds_f5s_limit_and_gets_a_window(demo_voices: Path) -> None:
    prepared, _ = prepare_voices(demo_voices)
    source = prepared["narrator"].metadata["sources"]["audio"]
    assert source["duration"] > 12.0 and source["format"] == "FLAC"
    assert (
        prepared["narrator"].metadata["window"]["last_segment"]
        - prepared["narrator"].metadata["window"]["first_segment"]
        >= 1
    )


def test_demo_scripts_are_valid_and_one_is_multi_voice(demo_voices: Path) -> None:
    prepared, _ = prepare_voices(demo_voices)
    scripts, problems = load_scripts(INCLUDE / "scripts", set(prepared), load_vocabulary())
    assert problems == []
    assert any(len(s.voices) > 1 for s in scripts)
    references = {n: (v.text, v.duration) for n, v in prepared.items()}
    assert sum(len(chunk_script(s, references)) for s in scripts) >= 32  # enough for the synthesis benchmark
