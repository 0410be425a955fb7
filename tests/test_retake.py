"""`voicebatch retake`: one chunk of a published output spoken again, the rest kept sample for sample.

The output is made by the run's stages (as the DAG makes it) with the tiny random model, in a
local output location. What the re-take must keep is measured on the published audio itself:
both files are cut by their own manifest's chunk times, one scalar gain is fitted by least
squares across every chunk that was not re-taken, and what the gain does not explain must be
no more than the 16-bit files' rounding.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicebatch.locations.storage import open_storage
from voicebatch.run.config import RunConfig

from conftest import tree_env
from retake_helpers import audio_of, cut, manifest_path, one_gain, sentence_rows
from run_helpers import make_voice, run_stages

SCRIPT = "---\nvoice: anna\n---\nThe first sentence is here. A second one follows it. And the third one ends it."


@pytest.fixture(scope="module")
def published(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(output root, manifest) of one script published by the run's stages with the tiny model."""
    from voicebatch.run.pipeline import RunSettings
    from voicebatch.synthesis.engine import Engine
    from voicebatch.synthesis.models import load_model_files
    from voicebatch.verify.settings import VerifySettings

    tmp = tmp_path_factory.mktemp("retake")
    make_voice(tmp / "voices", "anna")
    (tmp / "scripts").mkdir()
    (tmp / "scripts" / "intro.txt").write_text(SCRIPT, encoding="utf-8")
    engine = Engine(load_model_files(tiny_model_dir), device="cpu")
    settings = RunSettings(verify=VerifySettings(mode="signal"))
    config = RunConfig(str(tmp / "voices"), str(tmp / "scripts"), settings=settings)
    out = open_storage(str(tmp / "out"))
    run_stages(config, out, "first", engine, model=engine.files)
    (key,) = [k for k in out.list("audio/intro/") if k.endswith("manifest.json")]
    return tmp / "out", json.loads(out.get_bytes(key))


def retake_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "voicebatch.cli", "retake", *argv]
    return subprocess.run(command, capture_output=True, text=True, env=tree_env())


def test_retake_one_chunk_with_a_new_seed_keeps_every_other_chunk(published: tuple[Path, dict], tiny_model_dir: Path):
    root, old = published
    assert len(old["chunks"]) == 3, "one sentence a chunk (the sentence pause)"
    result = retake_cli(
        str(manifest_path(root, old)), "--chunk", "1", "--seed", "99", "--out", str(root),
        "--model", str(tiny_model_dir), "--device", "cpu", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    new = json.loads((root / "audio" / "intro" / row["output_hash"] / "manifest.json").read_text())
    # A new content-addressed output that names the one it supersedes; the old one stays.
    assert new["output_hash"] != old["output_hash"] and manifest_path(root, old).is_file()
    assert new["supersedes"]["output_hash"] == old["output_hash"]
    assert json.loads((root / "audio" / "intro" / "latest.json").read_text())["output_hash"] == new["output_hash"]
    assert [c["seed"] for c in new["chunks"]] == [old["chunks"][0]["seed"], 99, old["chunks"][2]["seed"]]
    assert [c["key"] for c in new["chunks"]][::2] == [c["key"] for c in old["chunks"]][::2]
    assert new["retake"]["chunks"] == [
        {"index": 1, "action": "seed", "seed": 99, "text": None, "status": "quarantined"}
    ]
    # The audio: one gain explains every other chunk; chunk 1 is another take.
    gain, residual, changed = one_gain(root, old, new, {1})
    assert 0.1 < gain < 10 and residual < 2e-3, (gain, residual)
    assert changed[1] > 0.3, "chunk 1 is another take"
    # The subtitles and the timing table follow the new audio.
    (srt_key,) = [o["key"] for o in new["outputs"] if o["key"].endswith(".srt")]
    assert (root / srt_key).read_text().count("-->") >= 1
    old_rows, new_rows = sentence_rows(root, old), sentence_rows(root, new)
    assert [r["text"] for r in new_rows] == [r["text"] for r in old_rows] and len(new_rows) == 3
    shift = new["chunks"][2]["start"] - old["chunks"][2]["start"]
    assert float(new_rows[2]["start_s"]) - float(old_rows[2]["start_s"]) == pytest.approx(shift, abs=0.002)
    print(f"gain {gain:.4f}, residual {residual:.2e}, chunk 2 moved {shift:+.3f} s")
    # The same re-take again: found published, nothing synthesized, latest.json unchanged.
    again = retake_cli(
        str(manifest_path(root, old)), "--chunk", "1", "--seed", "99", "--out", str(root), "--json",
        "--model", str(tiny_model_dir), "--device", "cpu",
    )  # fmt: skip
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "skipped"


def test_retake_with_edited_text_and_a_dropped_chunk(published: tuple[Path, dict], tiny_model_dir: Path, tmp_path):
    from voicebatch.run.retake import ChunkEdit, retake
    from voicebatch.synthesis.engine import Engine
    from voicebatch.synthesis.models import load_model_files

    root, old = published
    engine = Engine(load_model_files(tiny_model_dir), device="cpu")
    edits = [ChunkEdit(0, text="A new first sentence, longer than before."), ChunkEdit(2, drop=True)]
    result = retake(str(manifest_path(root, old)), edits, str(tmp_path / "elsewhere"), engine=engine)
    other = tmp_path / "elsewhere"
    new = json.loads((other / "audio" / "intro" / result.output_hash / "manifest.json").read_text())
    assert new["supersedes"]["output_hash"] == old["output_hash"]
    assert new["chunks"][0]["text"] == "A new first sentence, longer than before."
    assert new["chunks"][0]["seed"] == old["chunks"][0]["seed"] and new["chunks"][1]["key"] == old["chunks"][1]["key"]
    assert new["chunks"][2]["qa"]["status"] == "dropped"
    # The voice registry travels with the output: the new location is complete on its own.
    assert (other / "voices" / "anna").is_dir()
    audio = audio_of(other, new)
    dropped = cut(audio, new["chunks"][2])
    assert dropped.size > 0 and not np.any(dropped), "a dropped chunk is silence of its length"
    assert new["chunks"][2]["end"] - new["chunks"][2]["start"] == pytest.approx(
        old["chunks"][2]["end"] - old["chunks"][2]["start"], abs=0.002
    )
    rows = (other / "audio" / "intro" / result.output_hash / "intro.csv").read_text()
    assert "A new first sentence, longer than before." in rows and "The first sentence is here." not in rows


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--chunk", "7"), "chunk 7: no such chunk (the output has chunks 0-2)"),
        (("--chunk", "0", "--chunk", "0"), "chunk 0: named twice"),
        (
            ("--chunk", "0", "--chunk", "1", "--text", "Hi."),
            "--text: an edited text is for one chunk: give one --chunk",
        ),
    ],
)
def test_retake_refuses_bad_requests_in_one_line(published: tuple[Path, dict], argv: tuple[str, ...], message: str):
    root, old = published
    result = retake_cli(str(manifest_path(root, old)), *argv)
    assert result.returncode == 2
    where = "" if message.startswith("--") else f"{manifest_path(root, old)}: "
    assert result.stderr.strip().splitlines()[-1] == f"error: {where}{message}"


def test_retake_of_an_output_without_chunk_audio_says_why(published: tuple[Path, dict], tmp_path: Path) -> None:
    old = published[1]
    legacy = {k: v for k, v in old.items() if k != "chunk_audio"}
    path = tmp_path / "audio" / "intro" / old["output_hash"] / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(legacy))
    result = retake_cli(str(path), "--chunk", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {path}: published without each chunk's own audio (an older voicebatch): synthesize it again "
        "(force) to re-take"
    )


def test_retake_of_an_s3_output_publishes_beside_it(tiny_model_dir: Path, tmp_path: Path, s3_bucket: str) -> None:
    from voicebatch.locations.storage import open_storage

    voice = make_voice(tmp_path / "voices", "anna")
    out = f"s3://{s3_bucket}/published"
    synth = [sys.executable, "-m", "voicebatch.cli", "synth", "--voice", str(voice), "--out", out]
    options = ["--model", str(tiny_model_dir), "--device", "cpu"]
    made = subprocess.run(
        [*synth, "--text", "One here. Two there.", *options, "--nfe", "8"], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    manifest_uri = made.stdout.strip().splitlines()[-1]
    storage = open_storage(out)
    old = json.loads(storage.get_bytes(manifest_uri.removeprefix(out + "/")))
    result = retake_cli(manifest_uri, "--chunk", "0", "--seed", "5", *options, "--json")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["manifest"] == f"{out}/audio/synth/{row['output_hash']}/manifest.json"
    new = json.loads(storage.get_bytes(f"audio/synth/{row['output_hash']}/manifest.json"))
    assert new["supersedes"] == {"output_hash": old["output_hash"], "manifest": manifest_uri}
    assert json.loads(storage.get_bytes("audio/synth/latest.json"))["output_hash"] == row["output_hash"]
    assert storage.exists(f"audio/synth/{old['output_hash']}/manifest.json")
    assert [c["seed"] for c in new["chunks"]] == [5, old["chunks"][1]["seed"]]
