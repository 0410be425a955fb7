"""The `voicebatch` command as users run it (a subprocess, real exit codes and streams)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert "garbled_timestamp.srt: line 6: garbled end timestamp" in result.stderr


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


# --- conventions ----------------------------------------------------------------------


def test_version_help_and_bare_command() -> None:
    from voicebatch import __version__

    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith(f"voicebatch {__version__} (f5-tts ")
    bare = run()
    assert bare.returncode == 2 and bare.stdout == "" and bare.stderr.startswith("usage: voicebatch")
    assert "commands:" in bare.stderr and "examples:" in bare.stderr
    group = run("voices")
    assert group.returncode == 2 and group.stdout == "" and "check" in group.stderr
    asked = run("--help")
    assert asked.returncode == 0 and asked.stdout.startswith("usage: voicebatch") and asked.stderr == ""


@pytest.mark.parametrize(
    "command",
    [
        ("transcripts", "convert"),
        ("voices", "check"),
        ("scripts", "check"),
        ("text", "normalize"),
        ("model", "tiny"),
        ("model", "resolve"),
        ("synth",),
        ("verify",),
        ("report", "share"),
    ],
)
def test_every_command_documents_its_options_with_defaults_and_examples(command: tuple[str, ...]) -> None:
    import re

    page = run(*command, "--help")
    assert page.returncode == 0
    assert "examples:\n  voicebatch " + " ".join(command) in page.stdout
    options = page.stdout.split("options:")[1].split("examples:")[0]
    # Every option has a help text (a line of text after it, not just its name).
    entries = re.findall(r"^  (-[^\n]*)\n?((?:\s{10,}[^\n]+\n)*)", options, flags=re.M)
    assert entries
    for head, more in entries:
        assert re.search(r"\s{2,}\S", head.strip()) or more.strip(), f"no help for {head!r}"


def test_ranges_are_the_dag_params_and_checked_before_any_work(tmp_path: Path) -> None:
    from voicebatch.settings import LIMITS

    for flag, value, name in (
        ("--nfe", "100", "nfe_steps"),
        ("--speed", "9", "speed"),
        ("--cfg", "7", "cfg_strength"),
        ("--batch-frames", "10", "batch_frames"),
        ("--max-takes", "0", "max_takes"),
    ):
        result = run("synth", "--voice", tmp_path, "--text", "Hi.", "--out", tmp_path / "o", flag, value)
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.strip().endswith(f"argument {flag}: {value} is outside {LIMITS[name].span()}"), (
            result.stderr
        )
    swapped = run("voices", "check", tmp_path, "--min-seconds", "12", "--max-seconds", "3")
    assert swapped.returncode == 2
    assert swapped.stderr.strip() == "error: --min-seconds: 12 s must be below --max-seconds (3 s)"
    assert not (tmp_path / "o").exists()


def test_transcripts_convert_reads_standard_input() -> None:
    data = (QUIRKS / "whisper.tsv").read_bytes()
    from_file = run("transcripts", "convert", QUIRKS / "whisper.tsv", "--to", "srt")
    piped = subprocess.run(
        [sys.executable, "-m", "voicebatch.cli", "transcripts", "convert", "-", "--to", "srt"],
        input=data,
        capture_output=True,
    )
    assert piped.returncode == 0 and piped.stdout.decode() == from_file.stdout
    vtt = subprocess.run(
        [sys.executable, "-m", "voicebatch.cli", "transcripts", "convert", "-", "--from", "vtt"],
        input=b"WEBVTT\n\n00:01.000 --> 00:02.500\nHi there.\n",
        capture_output=True,
    )
    assert json.loads(vtt.stdout) == [{"start": 1.0, "end": 2.5, "text": "Hi there."}]


def test_errors_name_the_file_once_and_escape_control_characters(tmp_path: Path) -> None:
    from voicebatch.cli.output import printable

    assert printable("a.csv: a.csv: row 3: missing 'text'") == "a.csv: row 3: missing 'text'"
    assert printable("take\x1b[31m.srt: line 2:\tbad") == "take\\x1b[31m.srt: line 2: bad"
    bad = tmp_path / "evil\x1b[2J.srt"
    bad.write_text("1\n00:00:0O,000 --> 00:00:01,000\nHi\n")
    result = run("transcripts", "convert", bad)
    assert result.returncode == 2 and "\x1b" not in result.stderr and "evil\\x1b[2J.srt" in result.stderr
    assert result.stderr.count(bad.name.replace("\x1b", "\\x1b")) == 1


def test_verbose_and_quiet_anywhere_and_stdout_only_results(tmp_path: Path) -> None:
    write_audio(tmp_path / "voices" / "anna" / "a.wav", speech_like(6.0, [(0.5, 5.5)]))
    (tmp_path / "voices" / "anna" / "a.srt").write_text(srt([(0.5, 5.5, "Hello there.")]))
    before = run("-v", "voices", "check", tmp_path / "voices", "--json")
    after = run("voices", "check", tmp_path / "voices", "--json", "-v")
    assert before.returncode == after.returncode == 0
    assert json.loads(before.stdout) == json.loads(after.stdout), "stdout holds the results only"
    assert "voice anna: clip" in after.stderr and after.stderr == before.stderr, "-v works before and after"
    plain = run("voices", "check", tmp_path / "voices", "--json")
    assert plain.stderr == "" and json.loads(plain.stdout) == json.loads(before.stdout)
    quiet = run("voices", "check", tmp_path / "voices", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "" and "anna" in quiet.stdout


JSON_ROWS = {
    "voice": {"voice", "status", "start", "end", "text", "reason", "warnings"},
    "script": {"script", "status", "source", "voices", "chunks", "characters", "chunk_list", "reason", "timed"},
    "model": {"name", "directory", "checksum", "random_weights", "fetched"},
    "synth": {"script", "status", "source", "files", "output_hash", "duration", "needs_review", "reason"},
}


def test_json_on_every_command_one_shape_per_row_kind(tmp_path: Path, tiny_model_dir: Path) -> None:
    """Every command that produces results prints JSON with --json, on stdout alone; every row of
    a kind has the same keys, whatever its status."""
    from voicebatch.locations.storage import open_storage
    from voicebatch.publish.report import ScriptOutcome, VoiceOutcome, build_report, publish_report
    from voicebatch.run.pipeline import RunSettings, publish_script_outputs

    from publish_helpers import chunk_audio, model, plans, voice

    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    write_audio(voices / "anna" / "a.wav", speech_like(6.0, [(0.5, 5.5)]))
    (voices / "anna" / "a.srt").write_text(srt([(0.5, 5.5, "Hello there, how are you.")]))
    write_audio(voices / "mute" / "a.wav", speech_like(6.0, []))
    (voices / "mute" / "a.srt").write_text(srt([(0.5, 5.5, "Nothing.")]))
    scripts.mkdir()
    (scripts / "ok.txt").write_text("---\nvoice: anna\n---\nHello.")
    (scripts / "rows.csv").write_text("id,voice,text\nr1,anna,Row one.\nr2,anna,\n")

    def json_of(*args: str | Path, code: int = 0) -> object:
        result = run(*args, "--json")
        assert result.returncode == code, result.stderr[-2000:]
        return json.loads(result.stdout)

    rows = json_of("voices", "check", voices, code=1)
    assert {r["status"] for r in rows} == {"ok", "error"} and all(set(r) == JSON_ROWS["voice"] for r in rows)
    rows = json_of("scripts", "check", scripts, "--voices", voices, code=1)
    assert {r["status"] for r in rows} == {"ok", "error"} and all(set(r) == JSON_ROWS["script"] for r in rows)
    assert {r["source"].split(" row ")[0] for r in rows} == {str(scripts / "ok.txt"), str(scripts / "rows.csv")}
    assert set(json_of("model", "tiny", tmp_path / "tiny")) == JSON_ROWS["model"]
    resolved = json_of("model", "resolve", tiny_model_dir)
    assert set(resolved) == JSON_ROWS["model"] and resolved["random_weights"] is True
    assert json_of("transcripts", "convert", QUIRKS / "whisper.tsv")[0]["text"] == "Hello there."
    spoken = json_of("text", "normalize", "Dr. Lee paid $3.50.")
    assert spoken == {
        "text": "Dr. Lee paid $3.50.",
        "spoken": "Doctor Lee paid three dollars fifty.",
        "lang": "en",
        "voice": None,
    }
    checked = json_of("verify", voices / "anna" / "a.wav", "--text", "Hello there, how are you.", code=1)
    assert {"passed", "cer", "words", "sentences", "checks"} <= set(checked)
    synth = json_of(
        "synth",
        "--voice",
        voices / "anna",
        "--script",
        scripts,
        "--out",
        tmp_path / "out",
        "--model",
        tiny_model_dir,
        "--nfe",
        "4",
        "--device",
        "cpu",
        "--verify",
        "off",
        code=1,
    )
    assert {r["status"] for r in synth} == {"written", "failed"} and all(set(r) == JSON_ROWS["synth"] for r in synth)
    storage = open_storage(str(tmp_path / "report"))
    (plan, _) = plans(storage)
    published = publish_script_outputs(
        storage, plan, chunk_audio(len(plan.requests)), {"anna": voice()}, model().lineage(), RunSettings()
    )
    report, page = build_report(
        storage,
        dag_id="voice_batch",
        run_id="r1",
        model={"name": "m"},
        scripts=[ScriptOutcome("intro", "published", plan.output_hash, published.manifest_key)],
        voices=[VoiceOutcome("anna", "ok")],
    )
    publish_report(storage, report, page)
    shared = json_of("report", "share", tmp_path / "report", "--run-id", "r1", "--expires", "3600")
    assert set(shared) == {"run_id", "url", "expires_seconds"}
    assert (tmp_path / "report" / "runs" / "voice_batch" / "r1" / "report.shared.html").is_file()
