"""The `voicebatch` command as users run it (a subprocess, real exit codes and streams)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from audio_helpers import speech_like, srt, write_audio

QUIRKS = Path(__file__).parent / "fixtures" / "transcripts" / "quirks"
BROKEN = Path(__file__).parent / "fixtures" / "transcripts" / "broken"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voicebatch.cli", *map(str, args)], capture_output=True, text=True)


def test_convert_to_json_lists_seconds_and_text() -> None:
    result = run("transcripts", "convert", QUIRKS / "whisper.tsv", "--to", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == [
        {"start": 0.0, "end": 1.52, "text": "Hello there."},
        {"start": 1.52, "end": 4.0, "text": "General Kenobi."},
    ]


def test_convert_youtube_vtt_to_srt() -> None:
    result = run("transcripts", "convert", QUIRKS / "youtube_auto_captions.vtt", "--to", "srt")
    assert result.returncode == 0
    assert result.stdout.startswith("1\n00:00:00,000 --> 00:00:02,350\nso today we are talking\n")


def test_convert_bad_input_exits_2_with_one_line_on_stderr() -> None:
    result = run("transcripts", "convert", BROKEN / "garbled_timestamp.srt")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "garbled_timestamp.srt: line 6: garbled timestamp" in result.stderr


def test_voices_check_json_and_exit_code(tmp_path: Path) -> None:
    write_audio(tmp_path / "good" / "a.wav", speech_like(6.0, [(0.5, 5.5)]))
    (tmp_path / "good" / "a.srt").write_text(srt([(0.5, 5.5, "Hello there.")]))
    write_audio(tmp_path / "long.wav", speech_like(20.0, [(0.5, 19.5)]))
    (tmp_path / "long.txt").write_text("No timings for twenty seconds.")
    result = run("voices", "check", tmp_path, "--json")
    assert result.returncode == 1
    rows = {r["voice"]: r for r in json.loads(result.stdout)}
    assert rows["good"]["status"] == "ok" and rows["good"]["text"] == "Hello there."
    assert rows["good"]["start"] == 0.4 and rows["good"]["end"] == 5.6
    assert rows["long"]["status"] == "error" and "timed transcript" in rows["long"]["reason"]
    table = run("voices", "check", tmp_path)
    assert table.returncode == 1 and "good" in table.stdout and "error" in table.stdout


def test_scripts_check(tmp_path: Path) -> None:
    write_audio(tmp_path / "voices" / "anna" / "a.wav", speech_like(6.0, [(0.5, 5.5)]))
    (tmp_path / "voices" / "anna" / "a.srt").write_text(srt([(0.5, 5.5, "Hello there, how are you.")]))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "ok.txt").write_text("Hello. " * 40)
    (tmp_path / "scripts" / "bad.txt").write_text("[zed] Who?")
    result = run("scripts", "check", tmp_path / "scripts", "--voices", tmp_path / "voices", "--json")
    assert result.returncode == 1
    rows = {r["script"]: r for r in json.loads(result.stdout)}
    assert rows["ok"]["status"] == "ok" and rows["ok"]["chunks"] >= 2
    assert "unknown voice 'zed'" in rows["bad.txt"]["reason"]


def test_scripts_check_lists_every_bad_item_of_a_multi_script_file(tmp_path: Path) -> None:
    write_audio(tmp_path / "voices" / "anna" / "a.wav", speech_like(6.0, [(0.5, 5.5)]))
    (tmp_path / "voices" / "anna" / "a.srt").write_text(srt([(0.5, 5.5, "Hello there, how are you.")]))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "lines.jsonl").write_text(
        '{"id": "one", "text": "Fine."}\n{"id": "two", "text": \n{"id": "three"}\n{"id": "four", "text": "Fine too."}\n'
    )
    (tmp_path / "scripts" / "rows.csv").write_text("id,voice,text\nr1,anna,Row one.\nr2,anna,\n")
    result = run("scripts", "check", tmp_path / "scripts", "--voices", tmp_path / "voices", "--json")
    assert result.returncode == 1
    rows = {r["script"]: r for r in json.loads(result.stdout)}
    assert {k for k, r in rows.items() if r["status"] == "ok"} == {"one", "four", "r1"}
    assert {k for k, r in rows.items() if r["status"] == "error"} == {
        "lines.jsonl item 2",
        "lines.jsonl item 3",
        "rows.csv row 3",
    }
    assert rows["lines.jsonl item 3"]["reason"].endswith("lines.jsonl: item 3: missing 'text'")


def test_scripts_check_json_shows_each_chunks_spoken_text_and_pause(tmp_path: Path) -> None:
    write_audio(tmp_path / "voices" / "anna" / "a.wav", speech_like(6.0, [(0.5, 5.5)]))
    (tmp_path / "voices" / "anna" / "a.srt").write_text(srt([(0.5, 5.5, "Hello there, how are you.")]))
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "price.txt").write_text("Nguyen paid $3.50. [pause 1.5s] In 1998.\n\nDr. Lee left.")
    (tmp_path / "lexicon.csv").write_text("word,respelling\nNguyen,win\n")
    result = run(
        "scripts",
        "check",
        tmp_path / "scripts",
        "--voices",
        tmp_path / "voices",
        "--json",
        "--lexicon",
        tmp_path / "lexicon.csv",
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    chunks = [(c["text"], c["spoken"], c["pause_after"]) for c in row["chunk_list"]]
    assert chunks == [
        ("Nguyen paid $3.50.", "win paid three dollars fifty.", 1.5),
        ("In 1998.", "In nineteen ninety-eight.", 0.8),
        ("Dr. Lee left.", "Doctor Lee left.", 0.0),
    ]
