"""`voicebatch synth` and the DAG's stages are one pipeline: the same voice, script and settings
give byte-identical audio and subtitles, the same output hash and one manifest schema both ways."""

from __future__ import annotations

import json
from pathlib import Path

from voicebatch.cli.main import main as voicebatch
from voicebatch.locations.storage import open_storage
from voicebatch.run.config import RunConfig
from voicebatch.run.pipeline import RunSettings
from voicebatch.synthesis.engine import Engine, SynthesisParams
from voicebatch.synthesis.models import load_model_files
from voicebatch.verify.settings import VerifySettings

from run_helpers import make_voice, run_stages

SCRIPT = "---\nvoice: anna\n---\nGood morning. This is the first paragraph.\n\nAnd a second one, a little longer.\n"


def test_synth_and_the_dag_stages_write_the_same_bytes(tmp_path: Path, tiny_model_dir: Path) -> None:
    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    make_voice(voices, "anna")
    scripts.mkdir()
    (scripts / "story.txt").write_text(SCRIPT, encoding="utf-8")

    # The DAG's stages, as the tasks run them (no Airflow), on the real engine.
    files = load_model_files(tiny_model_dir)
    settings = RunSettings(params=SynthesisParams(nfe_steps=8), verify=VerifySettings(mode="signal", max_takes=2))
    out = open_storage(str(tmp_path / "dag"))
    config = RunConfig(str(voices), str(scripts), settings=settings)
    run_stages(config, out, "one", Engine(files, device="cpu"), model=files)
    dag = json.loads(out.get_bytes(json.loads(out.get_bytes("audio/story/latest.json"))["manifest"]))
    dag_files = {o["key"].rsplit("/", 1)[-1]: out.get_bytes(o["key"]) for o in dag["outputs"]}

    # The command, with the same settings as flags.
    cli_out = tmp_path / "cli"
    flags = ["--model", str(tiny_model_dir), "--nfe", "8", "--verify", "signal", "--max-takes", "2", "--device", "cpu"]
    code = voicebatch(
        [
            "synth",
            "--voice",
            str(voices / "anna"),
            "--script",
            str(scripts / "story.txt"),
            "--out",
            str(cli_out),
            *flags,
        ]
    )
    assert code == 0
    cli = json.loads((cli_out / "story.manifest.json").read_text())
    cli_files = {o["key"]: (cli_out / o["key"]).read_bytes() for o in cli["outputs"]}

    assert cli["output_hash"] == dag["output_hash"]
    assert sorted(cli_files) == sorted(dag_files) == ["story.csv", "story.srt", "story.vtt", "story.wav"]
    assert cli_files == dag_files, "byte-identical audio, subtitles and timing table"
    # One manifest schema, written by one function: the same fields, the same chunks with their seeds and QA.
    assert set(cli) == set(dag)
    assert [(c["key"], c["seed"], c["start"], c["end"]) for c in cli["chunks"]] == [
        (c["key"], c["seed"], c["start"], c["end"]) for c in dag["chunks"]
    ]
    assert [c["qa"]["status"] for c in cli["chunks"]] == [c["qa"]["status"] for c in dag["chunks"]]
    assert cli["loudness"] == dag["loudness"] and cli["qa"]["status"] == dag["qa"]["status"]
