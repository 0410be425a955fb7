"""The pipeline's stages with verification on, a test engine planting takes of real speech
(espeak-ng): re-takes keep the good take, a chunk that never passes is quarantined and the
run goes on, the manifest, latest.json, timing table and report say so."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from voicebatch.keys import take_seed
from voicebatch.locations.storage import open_storage
from voicebatch.run.config import RunConfig
from voicebatch.run.pipeline import RunSettings
from voicebatch.synthesis.engine import ChunkAudio
from voicebatch.synthesis.models import load_model_files
from voicebatch.verify.settings import VerifySettings

from run_helpers import run_stages
from speech_helpers import speak

GOOD = "These days a chicken leg is a rare dish."
BAD = "Four hours of steady work faced us."
RATE = 24_000


class SpeakingEngine:
    """Speaks each request with espeak-ng; the BAD text always comes out with a word
    missing, and the GOOD text's first take repeats a word (its second take is right)."""

    def __init__(self, files: object) -> None:
        self.files = files
        self.device = "cpu"
        self.calls: list[list[tuple[str, int]]] = []
        self.first_seeds: dict[str, int] = {}

    def synthesize(self, references, chunks, params, **kwargs) -> list[ChunkAudio]:
        self.calls.append([(c.key, c.seed) for c in chunks])
        out = []
        for c in chunks:
            first = self.first_seeds.setdefault(c.key, c.seed)
            if c.text == BAD:
                spoken = BAD.replace(" steady", "")
            elif c.seed == first:
                spoken = GOOD.replace("chicken", "chicken chicken")
            else:
                spoken = c.text
            samples = speak(spoken, RATE, wpm=110)  # about the demo voice's own rate, as F5 would speak
            frames = samples.size // 256
            out.append(ChunkAudio(c.key, samples[: frames * 256], frames, np.zeros((100, frames), np.float32)))
        return out


class _Files:
    name = "speaking-test-engine"
    random_weights = False


def run_pipeline(tmp: Path, demo_voices: Path, tiny_model_dir: Path, verify: VerifySettings) -> tuple:
    scripts = tmp / "scripts"
    scripts.mkdir()
    (scripts / "good.txt").write_text(f"---\nvoice: nature\n---\n{GOOD}\n")
    (scripts / "bad.txt").write_text(f"---\nvoice: nature\n---\n{BAD}\n")
    out = open_storage(str(tmp / "out"))
    config = RunConfig(
        voices_uri=str(demo_voices),
        scripts_uri=str(scripts),
        settings=RunSettings(verify=verify),
        voices=("nature",),
    )
    engine = SpeakingEngine(_Files())
    # Every stage in order, each recording its outcome as the DAG's tasks do.
    result = run_stages(config, out, "run-1", engine, model=load_model_files(tiny_model_dir))
    published, summary = result["published"], result["summary"]
    report = json.loads(out.get_bytes("runs/test/run-1/report.json"))
    return out, engine, published, summary, report


def _manifest(out, script: str) -> dict:
    latest = json.loads(out.get_bytes(f"audio/{script}/latest.json"))
    return latest, json.loads(out.get_bytes(latest["manifest"]))


def test_retakes_quarantine_and_what_the_outputs_say(demo_voices: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    out, _, published, summary, report = run_pipeline(tmp_path, demo_voices, tiny_model_dir, VerifySettings())
    assert published["published"] == 2 and published["needs_review"] == 1, "the run goes on past a bad chunk"

    latest, manifest = _manifest(out, "good")
    assert latest["needs_review"] is False and manifest["qa"]["status"] == "verified"
    (chunk,) = manifest["chunks"]
    assert chunk["qa"]["kept_take"] == 2 and [t["status"] for t in chunk["qa"]["takes"]] == ["failed", "passed"]
    assert chunk["qa"]["takes"][1]["seed"] == take_seed(chunk["key"], 2, chunk["seed"])
    assert manifest["qa"]["models"]["recognizer"]["name"] == "pocketsphinx:en-us"
    assert manifest["qa"]["models"]["recognizer"]["files"], "the ASR model's files with their hashes"
    table = out.get_bytes(next(o["key"] for o in manifest["outputs"] if o["key"].endswith(".csv"))).decode()
    rows = list(csv.DictReader(io.StringIO(table)))
    assert {r["source"] for r in rows if r["level"] == "word"} == {"aligned"}
    assert [r["source"] for r in rows if r["level"] == "sentence"] == ["chunk_boundary"]

    latest, manifest = _manifest(out, "bad")
    assert latest["needs_review"] is True and manifest["qa"]["needs_review"] is True
    (chunk,) = manifest["chunks"]
    assert chunk["qa"]["status"] == "quarantined" and len(chunk["qa"]["takes"]) == 3
    assert "steady" in json.dumps(chunk["qa"]["takes"][0]["diff"])

    qa = report["qa"]
    assert qa["quarantined"] == 1 and qa["passed"] == 1 and qa["retakes"] == 3 and qa["needs_review"] == ["bad"]
    (row,) = [r for r in report["scripts"] if r["script_id"] == "bad"]
    (quarantined,) = row["quarantined"]
    assert [t["take"] for t in quarantined["takes"]] == [1, 2, 3]
    for take in quarantined["takes"]:
        assert out.exists(take["audio_key"]), "each take's audio stays next to the report"
    page = out.get_bytes("runs/test/run-1/report.html").decode()
    assert "id='quarantine'" in page and page.count("<audio controls") >= 3 + 2
    assert "<del>steady</del>" in page
    assert summary["quarantined_chunks"] == 1


def test_publish_unverified_off_holds_the_script_back(demo_voices: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    out, _, published, _, report = run_pipeline(
        tmp_path, demo_voices, tiny_model_dir, VerifySettings(publish_unverified=False, max_takes=2)
    )
    assert published["published"] == 1 and published["held"] == 1
    assert not out.exists("audio/bad/latest.json") and out.exists("audio/good/latest.json")
    assert report["qa"]["held"] == ["bad"] and report["totals"]["held"] == 1
    assert "id='held'" in out.get_bytes("runs/test/run-1/report.html").decode()


@pytest.mark.parametrize("mode", ["off", "signal"])
def test_without_asr_no_chunk_is_called_passed(
    demo_voices: Path, tiny_model_dir: Path, tmp_path: Path, mode: str
) -> None:
    out, engine, published, _, _ = run_pipeline(tmp_path, demo_voices, tiny_model_dir, VerifySettings(mode=mode))
    assert published["published"] == 2 and len(engine.calls) == 1, "no content check, no re-take"
    _, manifest = _manifest(out, "bad")
    assert manifest["qa"]["passed"] == 0
    if mode == "signal":
        assert manifest["chunks"][0]["qa"]["takes"][0]["transcript"] is None
        assert manifest["qa"]["aligned_chunks"] == 1, "signal mode still measures word times"
    else:
        assert manifest["qa"]["status"] == "unverified"
