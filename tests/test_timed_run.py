"""A subtitle track spoken as a timed script with the tiny random model, through `voicebatch synth`
and through the run's stages: each cue's speech measured in the written audio, not taken from
the code's own placement."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

from voicebatch.inputs.transcripts import read_transcript

from conftest import tree_env
from timed_helpers import (
    LINES,
    PUSHED,
    TOO_LONG,
    check_track,
    expected_flags,
    make_timed_voice,
    seconds_a_byte,
    speech_regions,
    write_timed_script,
)


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    folder = make_timed_voice(tmp_path_factory.mktemp("timed-voice"))
    return folder, seconds_a_byte(folder)


def source_cues(path: Path) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.text) for s in read_transcript(path).segments]


def check_outputs(audio: Path, srt: Path, vtt: Path, script: Path, cues: list, timed: dict, pace: float) -> None:
    samples, rate = sf.read(audio, dtype="float32")
    assert rate == 24_000
    flagged = expected_flags(pace)
    assert set(timed["flagged"]) == flagged
    check_track(samples, cues, flagged)
    # The last cue fits: the track is exactly as long as the source's, to its last cue's end.
    assert samples.shape[0] == round(cues[-1][1] * rate)
    # The published subtitles are the source's cues, times and text.
    assert source_cues(srt) == source_cues(vtt) == source_cues(script)
    # The tight cues were spoken faster (measured: shorter than their natural length), inside the range.
    regions = speech_regions(samples)
    for n in (1, 3):
        natural = len(LINES[n].text.encode("utf-8")) * pace
        assert regions[n][1] - regions[n][0] < natural * 0.8
    speeds = [c["speed"] for c in timed["cues"]]
    assert all(0.5 <= s <= 2.0 for s in speeds) and speeds[TOO_LONG] == 2.0
    flagged_cue = timed["cues"][TOO_LONG]
    assert flagged_cue["overrun"] > 0 and timed["cues"][PUSHED]["late"] > 0


def test_synth_speaks_a_subtitle_file_cue_by_cue(
    tiny_model_dir: Path, voice: tuple[Path, float], tmp_path: Path
) -> None:
    folder, pace = voice
    script, cues = write_timed_script(tmp_path / "scripts", pace)
    command = [sys.executable, "-m", "voicebatch.cli", "synth", "--voice", str(folder), "--script", str(script)]
    options = ["--out", str(tmp_path / "out"), "--model", str(tiny_model_dir), "--nfe", "8", "--device", "cpu"]
    result = subprocess.run([*command, *options, "--verify", "off"], capture_output=True, text=True, env=tree_env())
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["dub.csv", "dub.manifest.json", "dub.srt", "dub.vtt", "dub.wav"]
    sidecar = json.loads((out / "dub.manifest.json").read_text())
    check_outputs(out / "dub.wav", out / "dub.srt", out / "dub.vtt", script, cues, sidecar["timed"], pace)
    # The log names the cues that did not fit.
    assert f"dub: cue {TOO_LONG + 1} does not fit its slot" in result.stderr
    assert f"dub: cue {PUSHED + 1} does not fit its slot" in result.stderr


def test_a_run_speaks_a_timed_script_and_the_report_flags_what_did_not_fit(
    tiny_model_dir: Path, voice: tuple[Path, float], tmp_path: Path
) -> None:
    from voicebatch.locations.storage import open_storage
    from voicebatch.publish.report import report_prefix
    from voicebatch.run.config import RunConfig
    from voicebatch.run.pipeline import RunSettings
    from voicebatch.synthesis.engine import Engine, SynthesisParams
    from voicebatch.synthesis.models import load_model_files
    from voicebatch.verify.settings import VerifySettings

    from run_helpers import run_stages

    folder, pace = voice
    voices = tmp_path / "voices"
    shutil.copytree(folder, voices / "pace")
    script, cues = write_timed_script(tmp_path / "scripts", pace)
    files = load_model_files(tiny_model_dir)
    settings = RunSettings(params=SynthesisParams(nfe_steps=8), verify=VerifySettings(mode="off"))
    out = open_storage(str(tmp_path / "out"))
    result = run_stages(
        RunConfig(str(voices), str(tmp_path / "scripts"), settings),
        out,
        "dub-run",
        Engine(files, device="cpu"),
        model=files,
    )
    assert result["published"]["published"] == 1, result
    (manifest_key,) = [k for k in out.list("audio/dub/") if k.endswith("manifest.json")]
    manifest = json.loads(out.get_bytes(manifest_key))
    prefix = manifest_key.rsplit("/", 1)[0]
    root = tmp_path / "out" / prefix
    check_outputs(root / "dub.wav", root / "dub.srt", root / "dub.vtt", script, cues, manifest["timed"], pace)
    # Every chunk is one cue, spoken at its planned rate.
    assert [c["speed"] for c in manifest["chunks"]] == [c["speed"] for c in manifest["timed"]["cues"]]
    report = json.loads(out.get_bytes(report_prefix("test", "dub-run") + "report.json"))
    (row,) = report["scripts"]
    assert [c["cue"] for c in row["timed"]["flagged"]] == [TOO_LONG + 1, PUSHED + 1]
    page = out.get_bytes(report_prefix("test", "dub-run") + "report.html").decode()
    assert "2 cues of 10 did not fit their slots" in page and f"cue {TOO_LONG + 1} (" in page
