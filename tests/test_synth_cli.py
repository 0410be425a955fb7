"""`voicebatch synth` on a demo voice with the tiny model writes four files that parse back."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pysrt
import soundfile as sf
import webvtt

from conftest import tree_env

INCLUDE = Path(__file__).parent.parent / "include"


FAST = ("--nfe", "8", "--device", "cpu")


def synth(voice: Path, text: str, out: str, *options: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    """`voicebatch synth` as a user runs it, from this tree (``env`` replaces the environment)."""
    command = [sys.executable, "-m", "voicebatch.cli", "synth", "--voice", str(voice), "--text", text, *options]
    return subprocess.run([*command, "--out", out], capture_output=True, text=True, env=tree_env(env))


def test_synth_writes_wav_srt_vtt_csv(tiny_model_dir: Path, demo_voices: Path, tmp_path: Path) -> None:
    text = "Good morning. This is voicebatch speaking! The subtitles follow the sentences."
    result = synth(demo_voices / "nature", text, str(tmp_path / "out"), "--model", str(tiny_model_dir), *FAST)
    assert result.returncode == 0, result.stderr
    assert "random weights" in result.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["synth.csv", "synth.manifest.json", "synth.srt", "synth.vtt", "synth.wav"]
    # Random weights speak noise: the content check fails every chunk, and no re-take is tried.
    manifest = json.loads((tmp_path / "out" / "synth.manifest.json").read_text())
    assert manifest["qa"]["needs_review"] and manifest["qa"]["retakes"] == 0
    assert all(len(c["qa"]["takes"]) == 1 and c["qa"]["status"] == "quarantined" for c in manifest["chunks"])
    samples, rate = sf.read(tmp_path / "out" / "synth.wav")
    assert rate == 24_000 and samples.shape[0] > 0
    subs = pysrt.open(str(tmp_path / "out" / "synth.srt"))
    # "Good morning." is shorter than the 5/6 s minimum: the orphan rule joins it to the next cue.
    assert [s.text.replace("\n", " ") for s in subs] == [
        "Good morning. This is voicebatch speaking!",
        "The subtitles follow the sentences.",
    ]
    assert subs[-1].end.ordinal == round(samples.shape[0] / rate * 1000)
    captions = webvtt.read(str(tmp_path / "out" / "synth.vtt"))
    assert [c.text for c in captions] == [s.text for s in subs]
    rows = list(csv.DictReader((tmp_path / "out" / "synth.csv").open()))
    assert {r["level"] for r in rows} == {"sentence", "word"}
    assert [r["text"] for r in rows if r["level"] == "sentence"] == [
        "Good morning.",
        "This is voicebatch speaking!",
        "The subtitles follow the sentences.",
    ]


def test_synth_offline_without_a_model_is_one_clear_error(demo_voices: Path, tmp_path: Path) -> None:
    env = {"HF_HUB_OFFLINE": "1", "VOICEBATCH_MODEL_DIR": str(tmp_path / "empty"), "PATH": "/usr/bin:/bin"}
    result = synth(demo_voices / "nature", "Hello.", str(tmp_path / "out"), env=env)
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1].startswith("error: model 'F5TTS_v1_Base' not found; tried local cache")
    )


def test_synth_to_s3_publishes_through_the_protocol_once(
    tiny_model_dir: Path, demo_voices: Path, s3_bucket: str
) -> None:
    from voicebatch.locations.storage import open_storage

    out = f"s3://{s3_bucket}/published"
    options = ("--model", str(tiny_model_dir), *FAST)
    first = synth(demo_voices / "taiyi", "你好。Hello there.", out, *options)
    assert first.returncode == 0, first.stderr
    storage = open_storage(f"s3://{s3_bucket}/published")
    keys = storage.list("")
    assert any(k.startswith("voices/taiyi/") and k.endswith("voice.json") for k in keys)
    manifests = [k for k in keys if k.startswith("audio/synth/") and k.endswith("manifest.json")]
    assert len(manifests) == 1 and "audio/synth/latest.json" in keys
    assert first.stdout.strip().splitlines()[-1] == f"s3://{s3_bucket}/published/{manifests[0]}"
    again = synth(demo_voices / "taiyi", "你好。Hello there.", out, *options)
    assert again.returncode == 0 and "already published" in again.stderr
    assert storage.list("") == keys


def test_synth_with_a_bad_lexicon_is_one_clear_error(demo_voices: Path, tmp_path: Path) -> None:
    (tmp_path / "lexicon.csv").write_text("word,respelling\nSQL,\n")
    result = synth(demo_voices / "nature", "Hello.", str(tmp_path / "out"), "--lexicon", str(tmp_path / "lexicon.csv"))
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'lexicon.csv'}: row 2: empty word or respelling"
    )


# --- several scripts in one process, and what is already written is skipped -------------


def run_synth(argv: list[str], engine: object) -> tuple[int, list[dict]]:
    """`voicebatch synth ... --json` in this process, with ``engine`` in place of the F5 engine."""
    import contextlib
    import io
    from unittest import mock

    from voicebatch.cli import main as cli
    from voicebatch.cli import synth as oneoff

    real = oneoff.synthesize_scripts
    stdout = io.StringIO()
    with (
        mock.patch.object(
            oneoff, "synthesize_scripts", lambda request, **kw: real(request, **{**kw, "engine": engine})
        ),
        contextlib.redirect_stdout(stdout),
    ):
        code = cli.main(["synth", *argv, "--json"])
    return code, json.loads(stdout.getvalue())


class CountingEngine:
    """The run_helpers fake (a tone per chunk) that also counts the calls made to it."""

    def __init__(self) -> None:
        from run_helpers import FakeEngine

        self.fake = FakeEngine()
        self.calls = 0
        self.sizes: list[int] = []  # chunks per call
        self.device, self.files = "cpu", None

    def synthesize(self, references, chunks, params, **options):
        self.calls += 1
        self.sizes.append(len(chunks))
        return self.fake.synthesize(references, chunks, params, **options)


def test_a_folder_of_100_scripts_in_one_process_then_nothing_again(
    tiny_model_dir: Path, demo_voices: Path, tmp_path: Path
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for n in range(100):
        (scripts / f"line-{n:03d}.txt").write_text(f"This is line number {n + 1}.")
    out = tmp_path / "out"
    argv = ["--voice", str(demo_voices / "nature"), "--script", str(scripts), "--out", str(out)]
    argv += ["--model", str(tiny_model_dir), "--verify", "off", "--loudness", "off"]
    first_engine = CountingEngine()
    code, rows = run_synth(argv, first_engine)
    assert code == 0 and len(rows) == 100 and {r["status"] for r in rows} == {"written"}
    # Every script's chunks go to the engine together, packed by the frame budget as the synthesize
    # stage packs them: each call holds the chunks of many scripts.
    assert first_engine.calls < 20 and min(first_engine.sizes[:-1], default=100) > 5, first_engine.sizes
    assert len(first_engine.fake.spoken) == 100
    assert sorted(p.name for p in out.glob("*.wav")) == [f"line-{n:03d}.wav" for n in range(100)]
    sidecars = {p.name: json.loads(p.read_text()) for p in out.glob("*.manifest.json")}
    assert len(sidecars) == 100 and all(s["output_hash"] for s in sidecars.values())
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    again = CountingEngine()
    code, rows = run_synth(argv, again)
    assert code == 0 and {r["status"] for r in rows} == {"skipped"} and len(rows) == 100
    assert again.calls == 0 and again.fake.spoken == [], "nothing synthesized"
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before, "nothing rewritten"

    # One changed script, one damaged output: exactly those two are spoken again.
    (scripts / "line-007.txt").write_text("This line was rewritten.")
    (out / "line-042.wav").write_bytes(b"half a file")
    third = CountingEngine()
    code, rows = run_synth(argv, third)
    redone = sorted(r["script"] for r in rows if r["status"] == "written")
    assert redone == ["line-007", "line-042"] and third.calls == 1 and len(third.fake.spoken) == 2


def test_synth_over_a_folder_with_the_tiny_model_and_again(
    tiny_model_dir: Path, demo_voices: Path, tmp_path: Path
) -> None:
    """The CLI as a user runs it: three scripts, one process; the second run loads no model."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name, text in (("one", "First line."), ("two", "Second line."), ("three", "Third line.")):
        (scripts / f"{name}.txt").write_text(text)
    options = ("--model", str(tiny_model_dir), "--nfe", "4", "--device", "cpu", "--verify", "off")
    command = [sys.executable, "-m", "voicebatch.cli", "synth", "--voice", str(demo_voices / "nature")]
    command += ["--script", str(scripts), "--out", str(tmp_path / "out"), *options]
    first = subprocess.run(command, capture_output=True, text=True, env=tree_env())
    assert first.returncode == 0, first.stderr[-3000:]
    assert "synthesizing 3 chunk(s) of 3 script(s)" in first.stderr and "engine: " in first.stderr
    written = first.stdout.split()
    assert all(Path(p).is_file() for p in written) and len(written) == 3 * 5  # wav srt vtt csv + manifest each
    assert "Load vocos" not in first.stdout + first.stderr, "F5's own prints stay out"
    second = subprocess.run(command, capture_output=True, text=True, env=tree_env())
    assert second.returncode == 0 and "nothing to synthesize: 3 script(s) already there" in second.stderr
    assert "engine: " not in second.stderr, "no model loaded"
    assert sorted(second.stdout.split()) == sorted(written)


# --- F5-TTS's infer-cli TOML, several voices ---------------------------------------------------------


def f5_examples() -> Path:
    from importlib.resources import files

    return Path(str(files("f5_tts").joinpath("infer/examples")))


def test_f5s_own_basic_toml_runs_as_it_is(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copy(f5_examples() / "basic" / "basic.toml", tmp_path / "basic.toml")
    command = [
        sys.executable,
        "-m",
        "voicebatch.cli",
        "synth",
        "--config",
        "basic.toml",
        "--model",
        str(tiny_model_dir),
    ]
    result = subprocess.run(
        [*command, "--nfe", "4", "--device", "cpu", "--verify", "off"],
        capture_output=True,
        text=True,
        env=tree_env(),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "tests"  # output_dir = "tests", output_file = "infer_cli_basic.wav", relative to where F5 runs
    assert sorted(p.name for p in out.iterdir()) == [
        "infer_cli_basic.csv",
        "infer_cli_basic.manifest.json",
        "infer_cli_basic.srt",
        "infer_cli_basic.vtt",
        "infer_cli_basic.wav",
    ]
    spoken = " ".join(" ".join(c.text for c in webvtt.read(str(out / "infer_cli_basic.vtt"))).split())
    assert spoken.startswith("I don't really care what you call me.") and spoken.endswith("I am mighty and enduring.")
    assert (
        "voice main: clip 0.00–" in result.stderr
        and "Some call me nature, others call me mother nature." in result.stderr
    )


STORY = """# Written like F5-TTS's infer/examples/multi/story.toml: a main voice, two named voices, tags.
model = "F5TTS_v1_Base"
ref_audio = "infer/examples/basic/basic_ref_en.wav"
ref_text = "Some call me nature, others call me mother nature."
gen_text = ""
gen_file = "infer/examples/multi/story.txt"
remove_silence = true
output_dir = "out"
output_file = "story.flac"

[voices.town]
ref_audio = "infer/examples/basic/basic_ref_zh.wav"
ref_text = "对，这就是我，万人敬仰的太乙真人。"
speed = 0.8  # will ignore global speed

[voices.country]
ref_audio = "infer/examples/basic/basic_ref_en.wav"
ref_text = "Some call me nature, others call me mother nature."
"""


def test_a_multi_voice_toml_like_f5s_story(tiny_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "story.toml").write_text(STORY)
    command = [sys.executable, "-m", "voicebatch.cli", "synth", "--config", str(tmp_path / "story.toml")]
    command += ["--model", str(tiny_model_dir), "--nfe", "4", "--device", "cpu", "--verify", "off", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, env=tree_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(result.stdout)
    assert row["status"] == "written" and row["script"] == "story"
    out = tmp_path / "out"
    assert sf.info(str(out / "story.flac")).format == "FLAC", "output_file's suffix chooses the format"
    manifest = json.loads((out / "story.manifest.json").read_text())
    assert manifest["parameters"]["audio_format"] == "flac"
    # Every voice speaks its part: the chunks follow the story's tags, town at its own speed.
    text = (f5_examples() / "multi" / "story.txt").read_text()
    cues = " ".join(c.text for c in webvtt.read(str(out / "story.vtt")))
    assert cues.split()[:6] == text.split()[:6] and "Goodbye," in cues


def test_toml_speeds_are_per_voice_and_in_the_output_hash(demo_voices: Path, tiny_model_dir: Path) -> None:
    from voicebatch.cli.synth_inputs import plan_with_voice_speeds
    from voicebatch.inputs.scripts import Script, ScriptPart
    from voicebatch.inputs.voices import prepare_voice, voice_source
    from voicebatch.run.pipeline import RunSettings

    voices = {n: prepare_voice(voice_source(demo_voices / n)) for n in ("nature", "narrator")}
    script = Script("s", "s.txt", (ScriptPart("nature", "One sentence here."), ScriptPart("narrator", "And another.")))
    plain = plan_with_voice_speeds([script], voices, {}, "c" * 64, RunSettings())[0]
    slow = plan_with_voice_speeds([script], voices, {"narrator": 0.8}, "c" * 64, RunSettings())[0]
    assert [c.speed for c in plain.chunks] == [1.0, 1.0] and [c.speed for c in slow.chunks] == [1.0, 0.8]
    assert [r.speed for r in slow.requests] == [1.0, 0.8] and [c.index for c in slow.chunks] == [0, 1]
    assert plain.requests[0].key == slow.requests[0].key and plain.requests[1].key != slow.requests[1].key
    assert plain.output_hash != slow.output_hash


def test_toml_keys_without_an_equivalent_are_refused_by_name(tmp_path: Path) -> None:
    for text, says in (
        ('ckpt_file = "x.pt"\n', "key 'ckpt_file' has no voicebatch equivalent: give the model folder with --model"),
        ("nfe_stepz = 8\n", "unknown key(s) 'nfe_stepz'; known: "),
        ("nfe_step = 100\n", "nfe_step: 100 is outside 4–64"),
        ('[voices.x]\nref_audio = "a.wav"\npitch = 2\n', "[voices.x]: unknown key(s) 'pitch'"),
    ):
        (tmp_path / "c.toml").write_text(text)
        result = subprocess.run(
            [sys.executable, "-m", "voicebatch.cli", "synth", "--config", str(tmp_path / "c.toml"), "--text", "Hi."],
            capture_output=True,
            text=True,
            env=tree_env(),
        )
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.strip() == f"error: {tmp_path / 'c.toml'}: {says}" or says in result.stderr, result.stderr


def test_an_empty_ref_text_needs_an_asr_backend_that_transcribes(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('ref_audio = "infer/examples/basic/basic_ref_en.wav"\nref_text = ""\n')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "voicebatch.cli",
            "synth",
            "--config",
            str(tmp_path / "c.toml"),
            "--text",
            "Hi.",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=tree_env(),
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: c.toml: ref_audio: ref_text is empty and no ASR backend that can transcribe is configured "
        "(pocketsphinx needs the text): write ref_text, or use --asr-model whisper:<size> with its weights in the "
        "model store"
    )


def test_an_empty_ref_text_is_transcribed_into_timed_segments(tmp_path: Path) -> None:
    """The configured recogniser's words become a timed transcript, so the clip is cut at segment
    boundaries and its text is what was heard (a stand-in recogniser: whisper weights are not here)."""
    from voicebatch.cli.synth_inputs import prepare_inputs
    from voicebatch.cli.synth_records import VoiceInput
    from voicebatch.inputs.vocab import load_vocabulary
    from voicebatch.verify.records import Transcript
    from voicebatch.verify.settings import VerifySettings

    class Heard:
        def transcribe(self, audio16k, *, text: str, language: str) -> Transcript:
            assert text == "" and audio16k.shape[0] > 16_000 * 4
            words = [
                ("Some", 0.3, 0.6),
                ("call", 0.6, 0.9),
                ("me", 0.9, 1.0),
                ("nature,", 1.0, 1.6),
                ("others", 2.0, 2.4),
                ("call", 2.4, 2.7),
                ("me", 2.7, 2.8),
                ("mother", 2.8, 3.3),
                ("nature.", 3.3, 4.0),
            ]
            return Transcript(" ".join(w for w, *_ in words), "en", "whisper:test", tuple((*w, 0.9) for w in words))

    given = VoiceInput("main", ref_audio=f5_examples() / "basic" / "basic_ref_en.wav", ref_text="", where="c.toml")
    voices, _ = prepare_inputs(
        [given], load_vocabulary(), VerifySettings(asr_model="whisper:small"), recognizer=Heard()
    )
    voice = voices["main"]
    assert voice.text == "Some call me nature, others call me mother nature."
    assert voice.metadata["window"]["start"] <= 0.3 and 4.0 <= voice.metadata["window"]["end"] <= 4.2
    assert voice.metadata["sources"]["transcript"]["format"] == "srt"


def test_several_voices_by_name_speak_their_tags(tiny_model_dir: Path, demo_voices: Path, tmp_path: Path) -> None:
    code, rows = run_synth(
        [
            "--voice",
            f"anna={demo_voices / 'nature'}",
            "--voice",
            f"ben={demo_voices / 'narrator'}",
            "--text",
            "Hello there. [ben] I am Ben. [anna] And I am Anna.",
            "--out",
            str(tmp_path / "out"),
            "--model",
            str(tiny_model_dir),
            "--verify",
            "off",
            "--format",
            "mp3",
            "--loudness",
            "-20",
        ],
        CountingEngine(),
    )
    assert code == 0 and rows[0]["status"] == "written"
    manifest = json.loads((tmp_path / "out" / "synth.manifest.json").read_text())
    assert manifest["parameters"]["audio_format"] == "mp3" and manifest["parameters"]["loudness_lufs"] == -20.0
    assert sf.info(str(tmp_path / "out" / "synth.mp3")).format == "MP3"
    rows_csv = list(csv.DictReader((tmp_path / "out" / "synth.csv").open()))
    assert [r["text"] for r in rows_csv if r["level"] == "sentence"] == ["Hello there.", "I am Ben.", "And I am Anna."]
    unknown = subprocess.run(
        [
            sys.executable,
            "-m",
            "voicebatch.cli",
            "synth",
            "--voice",
            f"anna={demo_voices / 'nature'}",
            "--text",
            "Hi. [zed] Who?",
            "--out",
            str(tmp_path / "o2"),
        ],
        capture_output=True,
        text=True,
        env=tree_env(),
    )
    assert unknown.returncode == 2 and "unknown voice 'zed' in tag [zed]" in unknown.stderr
    assert unknown.stderr.strip().splitlines()[-1].startswith("error: --text: line 1: ")


def test_a_progress_bar_on_a_terminal_and_log_lines_elsewhere(
    tiny_model_dir: Path, demo_voices: Path, tmp_path: Path
) -> None:
    import os
    import select

    command = [sys.executable, "-m", "voicebatch.cli", "synth", "--voice", str(demo_voices / "nature")]
    command += ["--text", "One sentence. [nature] And another one.", "--model", str(tiny_model_dir)]
    command += ["--nfe", "4", "--device", "cpu", "--verify", "off"]
    master, slave = os.openpty()
    process = subprocess.Popen(
        [*command, "--out", str(tmp_path / "tty")], stdout=subprocess.PIPE, stderr=slave, env=tree_env()
    )
    os.close(slave)
    seen = b""
    while True:  # the terminal's side: read what the command draws until it closes
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            seen += data
        elif process.poll() is not None:
            break
    stdout = process.communicate()[0].decode()
    os.close(master)
    assert process.returncode == 0, seen.decode(errors="replace")[-3000:]
    drawn = seen.decode(errors="replace")
    assert "synthesizing: 100%" in drawn and "chunk" in drawn, drawn[-2000:]
    assert ", ETA " not in drawn, "a bar, not log lines, on a terminal"
    assert stdout.split() == [str(tmp_path / "tty" / f"synth.{e}") for e in ("wav", "srt", "vtt", "csv")] + [
        str(tmp_path / "tty" / "synth.manifest.json")
    ]
    piped = synth(
        demo_voices / "nature",
        "One sentence.",
        str(tmp_path / "piped"),
        "--model",
        str(tiny_model_dir),
        "--nfe",
        "4",
        "--device",
        "cpu",
        "--verify",
        "off",
    )
    assert piped.returncode == 0 and "chunks 1/1," in piped.stderr and ", ETA done" in piped.stderr
    assert "%|" not in piped.stderr
