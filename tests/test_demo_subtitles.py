"""The demo's published subtitles meet the broadcast rules.

The demo's own voices and scripts (include/) go through the pipeline's library path with
the tiny model (its durations follow F5's rule, so the timing is a real script's), are
published through the protocol, and tests/check_subtitles.py checks what was published.
`make demo` output can be checked the same way: python tests/check_subtitles.py output/demo
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from check_subtitles import main as check_subtitles
from check_subtitles import statistics

INCLUDE = Path(__file__).parent.parent / "include"


@pytest.fixture(scope="module")
def published(demo_voices: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voicebatch.inputs.scripts import load_scripts
    from voicebatch.inputs.vocab import load_vocabulary
    from voicebatch.inputs.voices import prepare_voices
    from voicebatch.locations.storage import open_storage
    from voicebatch.run.pipeline import RunSettings, plan_scripts, publish_script_outputs
    from voicebatch.synthesis.engine import Engine, Reference, SynthesisParams
    from voicebatch.synthesis.model_store import ModelStore

    out = tmp_path_factory.mktemp("demo-out")
    voices, _ = prepare_voices(demo_voices, vocab=load_vocabulary())
    scripts, problems = load_scripts(INCLUDE / "scripts", set(voices), load_vocabulary())
    assert problems == [] and len(scripts) == 7
    files = ModelStore().resolve(str(tiny_model_dir))
    settings = RunSettings(SynthesisParams(nfe_steps=8))
    storage = open_storage(str(out))
    plans = plan_scripts(scripts, voices, files.checksum, settings, storage)
    engine = Engine(files, device="cpu")
    references = {n: Reference(n, v.samples, v.text) for n, v in voices.items()}
    requests = [r for p in plans for r in p.requests]
    audio = {a.key: a.samples for a in engine.synthesize(references, requests, settings.params)}
    for plan in plans:
        publish_script_outputs(storage, plan, [audio[r.key] for r in plan.requests], voices, files.lineage(), settings)
    return out


def test_the_demo_subtitles_meet_the_rules(published: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_subtitles([str(published)]) == 0, capsys.readouterr().out
    totals = [statistics(p) for p in published.rglob("*.srt")]
    assert len(totals) == 7 and sum(t["cues"] for t in totals) > 30
    assert sum(t["zero_gaps"] for t in totals) == 0 and max(t["widest_line"] for t in totals) <= 42


def test_the_demo_csv_has_whole_sentences_and_the_documented_schema(published: Path) -> None:
    (table,) = published.rglob("fable.csv")
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))))
    assert list(rows[0]) == [
        "script",
        "voice",
        "level",
        "index",
        "sentence",
        "start_s",
        "end_s",
        "text",
        "estimated",
        "source",
    ]
    sentences = [r for r in rows if r["level"] == "sentence"]
    assert [int(r["index"]) for r in sentences] == list(range(1, len(sentences) + 1))
    assert {r["estimated"] for r in rows} <= {"true", "false"} and {r["script"] for r in rows} == {"fable"}
    assert {r["voice"] for r in sentences} == {"narrator", "nature", "taiyi"}
    # Whole sentences: none ends in a comma (the fable's long sentences are split into chunks).
    assert not [r["text"] for r in sentences if r["text"].endswith(",")]
    manifest = json.loads(next(published.rglob("fable/*/manifest.json")).read_text())
    assert manifest["output_format_version"] == 2 and manifest["subtitle_problems"] is not None
