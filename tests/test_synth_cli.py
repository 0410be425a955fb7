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
    assert names == ["synth.csv", "synth.qa.json", "synth.srt", "synth.vtt", "synth.wav"]
    # Random weights speak noise: the content check fails every chunk, and no re-take is tried.
    qa = json.loads((tmp_path / "out" / "synth.qa.json").read_text())
    assert qa["qa"]["needs_review"] and qa["qa"]["retakes"] == 0
    assert all(len(c["takes"]) == 1 and c["status"] == "quarantined" for c in qa["chunks"])
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
    from voicebatch.storage import open_storage

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
