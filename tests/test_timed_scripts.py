"""Subtitle files as timed scripts: read cue by cue, errors naming the cue, rates planned to fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voicebatch.errors import ScriptError
from voicebatch.inputs.scripts import chunk_script, load_script_file, load_scripts
from voicebatch.inputs.timed_plan import plan_timed
from voicebatch.inputs.transcripts import read_transcript

from audio_helpers import srt
from conftest import tree_env
from timed_helpers import PUSHED, TOO_LONG, make_timed_voice, seconds_a_byte, write_timed_script

# A reference of 3 s for "Hello there, this is Anna." (26 bytes, F5 adds a trailing space: 27):
# F5 speaks 3 / 27 s a byte at rate 1.0.
REFERENCES = {"anna": ("Hello there, this is Anna.", 3.0), "ben": ("Hello there, this is Ben!", 3.0)}
SECONDS_A_BYTE = 3.0 / 27


def spoken(text: str, voice: str, lang: str | None) -> str:
    return text


def test_a_subtitle_file_is_a_timed_script_one_part_a_cue(tmp_path: Path) -> None:
    cues = [(1.0, 2.5, "[anna] Hello there, friend."), (3.0, 4.0, "[ben] Who are you, then?"), (5.0, 6.5, "Nobody.")]
    (tmp_path / "dub.srt").write_text(srt(cues), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("---\nvoice: anna\n---\nAn ordinary script.", encoding="utf-8")
    scripts, problems = load_scripts(tmp_path, {"anna", "ben"})
    assert problems == []
    timed = {s.id: s for s in scripts}["dub"]
    assert [(c.start, c.end) for c in timed.cues] == [(1.0, 2.5), (3.0, 4.0), (5.0, 6.5)]
    # The cue's tag names its voice; a cue without one keeps the voice of the cue before.
    assert [(p.voice, p.text) for p in timed.parts] == [
        ("anna", "Hello there, friend."),
        ("ben", "Who are you, then?"),
        ("ben", "Nobody."),
    ]
    assert not {s.id: s for s in scripts}["notes"].cues


def test_a_webvtt_speaker_that_names_a_voice_is_its_voice(tmp_path: Path) -> None:
    vtt = (
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v ben>Hi there, Anna.\n\n"
        "00:00:03.000 --> 00:00:04.000\n<v anna>Hello, Ben.\n"
    )
    (tmp_path / "talk.vtt").write_text(vtt, encoding="utf-8")
    (script,) = load_script_file(tmp_path / "talk.vtt", {"anna", "ben"})
    assert [p.voice for p in script.parts] == ["ben", "anna"]


def test_cue_times_are_in_the_script_text_so_a_retimed_cue_is_a_new_output(tmp_path: Path) -> None:
    (tmp_path / "a.srt").write_text(srt([(1.0, 2.0, "Hello there, friend.")]), encoding="utf-8")
    (tmp_path / "b.srt").write_text(srt([(1.5, 2.0, "Hello there, friend.")]), encoding="utf-8")
    (a,) = load_script_file(tmp_path / "a.srt", {"anna"})
    (b,) = load_script_file(tmp_path / "b.srt", {"anna"})
    assert a.text != b.text


@pytest.mark.parametrize(
    ("cues", "message"),
    [
        ([(1.0, 2.0, "[anna] Hello there."), (3.0, 4.0, "[carl] Who is Carl?")], "cue 2: unknown voice 'carl'"),
        ([(1.0, 2.0, "[anna] Hello there."), (3.0, 4.0, "Go [ben] on.")], "cue 2: a voice tag belongs at the start"),
        ([(3.0, 4.0, "Later line."), (1.0, 2.0, "Earlier line.")], "cue 2: starts at 1.000 s, before cue 1"),
        ([(1.0, 2.0, "[anna] Hello there."), (3.0, 4.0, "[pause 1s]")], "cue 2: no text to speak in this cue"),
        ([(1.0, 2.0, "[anna] Hello."), (3.0, 4.0, "Price ¤5.")], "cue 2: characters the model cannot speak: ¤"),
        ([(1.0, 2.0, "Hello."), (3.0, 4.0, "[anna] Hello.")], "cue 1: no voice"),
    ],
)
def test_a_bad_cue_is_one_line_naming_the_file_and_the_cue(
    tmp_path: Path, cues: list[tuple[float, float, str]], message: str
) -> None:
    from voicebatch.inputs.vocab import load_vocabulary

    path = tmp_path / "dub.srt"
    path.write_text(srt(cues), encoding="utf-8")
    with pytest.raises(ScriptError) as error:
        load_script_file(path, {"anna", "ben"}, load_vocabulary())
    assert str(error.value).startswith(f"{path}: {message}")
    assert "\n" not in str(error.value)


def test_a_broken_subtitle_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dub.srt"
    path.write_text("1\n00:00:01,000 --> 00:00:02,000\nHello.\n\n2\n00:00:03,000 --> soon\nText.\n", encoding="utf-8")
    scripts, problems = load_scripts(tmp_path, {"anna"})
    assert scripts == [] and len(problems) == 1
    assert str(problems[0]).startswith(f"{path}: line 6: ")


def test_rates_fit_each_cue_into_its_slot_within_the_speed_range(tmp_path: Path) -> None:
    # Cue texts of known length; their natural seconds by F5's rule, computed here.
    texts = [
        "This one has plenty of room.",  # 28 bytes: 3.11 s in a 6 s slot: rate 1.0
        "This one must hurry along a bit.",  # 32 bytes: 3.56 s in 2.5 s (less the 50 ms gap)
        "This line is far too long for the tiny slot it has been given here.",  # 67 bytes: 7.44 s in 1 s
        "And the last one ends the track.",  # after the spill: late
    ]
    starts = [0.0, 6.0, 8.5, 9.5]
    cues = [(s, s + 0.5, t) for s, t in zip(starts, texts, strict=True)]
    cues[-1] = (9.5, 14.0, texts[-1])
    (tmp_path / "dub.srt").write_text(srt(cues), encoding="utf-8")
    (script,) = load_script_file(tmp_path / "dub.srt", {"anna"})
    plan = plan_timed(script, REFERENCES, spoken)
    natural = [len(t.encode()) * SECONDS_A_BYTE for t in texts]
    assert [f.natural for f in plan.fits] == pytest.approx(natural, abs=256 / 24_000)
    speeds = [c.speed for c in plan.chunks]
    assert speeds[0] == 1.0
    assert speeds[1] == pytest.approx(natural[1] / (2.5 - 0.05), abs=2e-3)  # just enough to end 50 ms early
    assert speeds[2] == 2.0  # the top of the range, and still too long
    assert plan.flagged == (2, 3)  # the long one, and the one it pushed late
    assert [c.text for c in plan.chunks] == texts
    assert chunk_script(script, REFERENCES) == list(plan.chunks)  # what the runs synthesize
    # The script's own speed is where rates start: never slower than asked.
    from dataclasses import replace

    faster = plan_timed(replace(script, speed=1.2), REFERENCES, spoken)
    assert faster.chunks[0].speed == 1.2


def test_the_source_cues_are_what_the_file_says(tmp_path: Path) -> None:
    ass = (
        "[Script Info]\nScriptType: v4.00+\n\n[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
        "Dialogue: 0,0:00:01.00,0:00:02.50,Default,anna,0,0,0,,Hello there, friend.\n"
        "Dialogue: 0,0:00:03.00,0:00:04.00,Default,anna,0,0,0,,Goodbye now.\n"
    )
    (tmp_path / "dub.ass").write_text(ass, encoding="utf-8")
    (script,) = load_script_file(tmp_path / "dub.ass", {"anna", "ben"})
    assert script.cues == read_transcript(tmp_path / "dub.ass").segments
    assert [p.voice for p in script.parts] == ["anna", "anna"]


def test_scripts_check_shows_a_timed_script_with_its_rates_and_flagged_cues(tmp_path: Path) -> None:
    voice = make_timed_voice(tmp_path / "voices")
    write_timed_script(tmp_path / "scripts", seconds_a_byte(voice))
    command = [sys.executable, "-m", "voicebatch.cli", "scripts", "check", str(tmp_path / "scripts")]
    command += ["--voices", str(tmp_path / "voices")]
    result = subprocess.run([*command, "--json"], capture_output=True, text=True, env=tree_env())
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    timed = row["timed"]
    assert row["chunks"] == timed["cues"] == 10
    assert timed["flagged"] == [TOO_LONG + 1, PUSHED + 1]
    speeds = {c["cue"]: c["speed"] for c in timed["cue_list"]}
    assert speeds[1] == 1.0 and 1.3 < speeds[2] < 1.5 and 1.7 < speeds[4] < 1.9 and speeds[TOO_LONG + 1] == 2.0
    assert [c["speed"] for c in row["chunk_list"]] == list(speeds.values())
    table = subprocess.run(command, capture_output=True, text=True, env=tree_env())
    assert table.returncode == 0, table.stderr
    assert f"(timed: 10 cues, not fitting: {TOO_LONG + 1}, {PUSHED + 1})" in table.stdout
    assert "dub: timed script, track" in table.stdout and table.stdout.count("NO: flagged") == 2
