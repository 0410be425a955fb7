"""A run's stages without Airflow: failed stages named once, latest.json, item isolation, safe local inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicebatch.locations.storage import open_storage
from voicebatch.publish.report import report_prefix
from voicebatch.run.config import RunConfig, check_run_config
from voicebatch.run.ingest import ingest_voice, list_voice_names
from voicebatch.run.layout import staging_prefix
from voicebatch.run.outcomes import NO_RECORD, StageNotReady, record_stage
from voicebatch.run.pipeline import RunSettings
from voicebatch.run.plan import plan_run
from voicebatch.run.publish import publish_run
from voicebatch.run.report import report_run
from voicebatch.synthesis.model_store import ModelStore
from voicebatch.synthesis.models import ModelError

from run_helpers import FakeEngine, fake_model, make_voice, run_stages


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    voices, scripts = tmp_path / "voices", tmp_path / "scripts"
    make_voice(voices, "anna")
    scripts.mkdir()
    (scripts / "hello.txt").write_text("---\nvoice: anna\n---\nHello there. This is a test.")
    return voices, scripts


def report_of(out, run_id: str) -> dict:
    return json.loads(out.get_bytes(report_prefix("test", run_id) + "report.json"))


def test_a_failed_plan_is_named_once_and_publish_is_skipped_not_failed(tmp_path: Path, inputs) -> None:
    voices, scripts = inputs
    out, staging = open_storage(str(tmp_path / "out")), staging_prefix("r1")
    config = RunConfig(str(voices), str(scripts))
    with record_stage(out, staging, "list_voices"):
        names = list_voice_names(config, out, staging, open_storage)
    ingest_voice(names[0], config, out, staging, open_storage)
    with pytest.raises(ModelError), record_stage(out, staging, "plan"):
        ModelStore(cache_dir=tmp_path / "cache", hub=False).resolve(str(tmp_path / "no" / "such" / "dir"))
    with pytest.raises(StageNotReady, match="plan did not finish"), record_stage(out, staging, "publish"):
        publish_run(out, staging, RunSettings(), {})
    summary = report_run(out, staging, dag_id="test", run_id="r1", started_at=None)
    report = report_of(out, "r1")
    assert report["status"] == "failed" and summary["stages_failed"] == 1
    (failure,) = report["failed_stages"]
    assert failure["stage"] == "plan" and "no such directory" in failure["error"]
    assert report["totals"]["voices_ok"] == 1 and report["scripts"] == []
    page = out.get_bytes(report_prefix("test", "r1") + "report.html").decode()
    assert "Run failed: stage <code>plan</code>" in page and "no such directory" in page


def test_a_stage_that_recorded_nothing_did_not_finish(tmp_path: Path, inputs) -> None:
    voices, scripts = inputs
    out = open_storage(str(tmp_path / "out"))
    run_stages(RunConfig(str(voices), str(scripts)), out, "ok-run", FakeEngine())
    assert report_of(out, "ok-run")["status"] == "finished"
    # The same run with one synthesize task killed (no outcome recorded) and publish failing:
    staging = staging_prefix("killed")
    config = RunConfig(str(voices), str(scripts), force=True)
    with record_stage(out, staging, "list_voices"):
        list_voice_names(config, out, staging, open_storage)
    ingest_voice("anna", config, out, staging, open_storage)
    with record_stage(out, staging, "plan"):
        plan_run(config, out, staging, fake_model(), open_storage, None)
    with pytest.raises(PermissionError), record_stage(out, staging, "publish"):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out" / "audio"))
    report_run(out, staging, dag_id="test", run_id="killed", started_at=None)
    failures = report_of(out, "killed")["failed_stages"]
    assert [(f["stage"], f["part"]) for f in failures] == [("synthesize", "0000"), ("publish", None)]
    assert (
        failures[0]["error"] == NO_RECORD and failures[1]["error"] == f"{tmp_path / 'out' / 'audio'}: Permission denied"
    )


def test_latest_names_what_the_latest_run_asked_for(tmp_path: Path, inputs) -> None:
    voices, scripts = inputs
    out, engine = open_storage(str(tmp_path / "out")), FakeEngine()
    hashes = []
    for n, seed in enumerate((1, 2, 1)):
        spoken = len(engine.spoken)
        result = run_stages(RunConfig(str(voices), str(scripts), RunSettings(seed=seed)), out, f"run{n}", engine)
        manifests = sorted(k for k in out.list("audio/hello/") if k.endswith("manifest.json"))
        hashes.append({json.loads(out.get_bytes(k))["run"]["run_id"]: k.split("/")[2] for k in manifests})
        latest = json.loads(out.get_bytes("audio/hello/latest.json"))
        assert latest["run"]["run_id"] == f"run{n}" and latest["updated_at"]
        assert out.exists(latest["manifest"]) and latest["manifest"].split("/")[2] == latest["output_hash"]
        if n == 2:  # seed 1 again: already published, nothing spoken, and yet latest names it
            assert result["published"]["skipped"] == 1 and len(engine.spoken) == spoken
            assert latest["output_hash"] == hashes[-1]["run0"] != hashes[-1]["run1"]
    # A run asking again for the output latest.json already names writes nothing there.
    before = out.get_bytes("audio/hello/latest.json")
    run_stages(RunConfig(str(voices), str(scripts), RunSettings(seed=1)), out, "run3", engine)
    assert out.get_bytes("audio/hello/latest.json") == before


def test_a_bad_line_or_row_fails_alone(tmp_path: Path, inputs) -> None:
    voices, scripts = inputs
    (scripts / "hello.txt").unlink()
    (scripts / "lines.jsonl").write_text(
        '{"id": "first", "voice": "anna", "text": "One."}\n'
        '{"id": "broken", "voice": "anna", "text": "Two.\n'
        '{"id": "third", "voice": "anna", "text": "Three."}\n'
    )
    (scripts / "rows.csv").write_text("id,voice,text\nr1,anna,Row one.\nr2,anna,\nr3,anna,Row three.\n")
    out = open_storage(str(tmp_path / "out"))
    result = run_stages(RunConfig(str(voices), str(scripts)), out, "items", FakeEngine())
    published = {k.split("/")[1] for k in out.list("audio/") if k.endswith("manifest.json")}
    assert published == {"first", "third", "r1", "r3"}
    failed = {s["script_id"]: s["error"] for s in report_of(out, "items")["scripts"] if s["status"] == "failed"}
    assert set(failed) == {"lines.jsonl item 2", "rows.csv row 3"}
    assert failed["rows.csv row 3"] == f"{scripts / 'rows.csv'}: row 3: missing 'text'"
    assert failed["lines.jsonl item 2"].startswith(f"{scripts / 'lines.jsonl'}: item 2: not valid JSON")
    assert result["summary"]["failed_stages"] == []


def test_symlinks_out_of_the_input_folder_are_refused(tmp_path: Path, inputs) -> None:
    voices, scripts = inputs
    make_voice(voices, "ben")
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "private.srt").write_text("1\n00:00:00,500 --> 00:00:06,500\nTop secret words.\n")
    (secret / "private.txt").write_text("Top secret script.")
    (voices / "ben" / "take.srt").unlink()
    (voices / "ben" / "take.srt").symlink_to(secret / "private.srt")
    (scripts / "leak.txt").symlink_to(secret / "private.txt")
    (scripts / "nowhere.txt").symlink_to(tmp_path / "missing.txt")
    (scripts / "inside.txt").symlink_to(scripts / "hello.txt")  # a link that stays inside is fine
    out = open_storage(str(tmp_path / "out"))
    result = run_stages(RunConfig(str(voices), str(scripts)), out, "links", FakeEngine())
    report = report_of(out, "links")
    # Counted, not listed one by one (a folder of 200,000 links is one line), naming the first.
    assert report["rejected_inputs"] == [
        f"{voices}: 1 symbolic link leading outside it (or nowhere) skipped, the first: ben/take.srt"
    ]
    (ben,) = [v for v in report["voices"] if v["voice"] == "ben"]
    assert ben["status"] == "error" and "no transcript" in ben["reason"] and str(voices / "ben") in ben["reason"]
    failed = {s["script_id"]: s["error"] for s in report["scripts"] if s["status"] == "failed"}
    expected = f"{scripts}: 2 symbolic links leading outside it (or nowhere) skipped, the first: leak.txt"
    assert failed == {"(refused input)": expected}
    assert {s["script_id"] for s in report["scripts"] if s["status"] == "published"} == {"hello", "inside"}
    everything = b"".join(out.get_bytes(k) for k in out.list(""))
    assert b"Top secret" not in everything and result["summary"]["failed_stages"] == []


@pytest.mark.parametrize(
    ("voices", "scripts", "output", "says"),
    [
        ("in/voices", "in/scripts", "in/voices", "overlaps voices_uri"),
        ("s3://b/in", "s3://b/scripts", "s3://b/in/out", "overlaps voices_uri"),
        ("s3://b/voices", "s3://b/scripts", "s3://b", "overlaps voices_uri"),
        ("in/voices", "in/scripts", "gs://bucket/x", "unsupported location"),
        ("s3:///voices", "in/scripts", "out", "no bucket"),
    ],
)
def test_param_combinations_no_run_can_succeed_with(voices: str, scripts: str, output: str, says: str) -> None:
    from voicebatch.errors import InputError

    with pytest.raises(InputError, match=says):
        check_run_config(RunConfig(voices, scripts), output)
    check_run_config(RunConfig("s3://b/voices", "s3://b/scripts"), "s3://b/output")  # the compose layout is fine


def test_script_files_reads_only_the_files_named(tmp_path: Path, inputs) -> None:
    voices, scripts = inputs
    (scripts / "other.txt").write_text("---\nvoice: anna\n---\nNot asked for.")
    (scripts / "lines.jsonl").write_text('{"id": "first", "voice": "anna", "text": "One."}\n')
    out = open_storage(str(tmp_path / "out"))
    config = RunConfig(str(voices), str(scripts), script_files=("lines.jsonl", "hello.txt"))
    check_run_config(config, str(tmp_path / "out"))
    result = run_stages(config, out, "some", FakeEngine())
    published = {k.split("/")[1] for k in out.list("audio/") if k.endswith("manifest.json")}
    assert published == {"hello", "first"}
    assert {s["script_id"] for s in report_of(out, "some")["scripts"]} == {"hello", "first"}
    assert result["summary"]["failed_stages"] == []


def test_a_script_file_not_in_the_folder_fails_plan_naming_it(tmp_path: Path, inputs) -> None:
    voices, scripts = inputs
    out = open_storage(str(tmp_path / "out"))
    config = RunConfig(str(voices), str(scripts), script_files=("hello.txt", "gone.md"))
    from voicebatch.errors import InputError

    with pytest.raises(InputError, match="script files not found"):
        run_stages(config, out, "gone", FakeEngine())
    report_run(out, staging_prefix("gone"), dag_id="test", run_id="gone", started_at=None)
    failures = {f["stage"]: f["error"] for f in report_of(out, "gone")["failed_stages"]}
    assert failures["plan"] == f"{scripts}: script files not found: gone.md (script_files)"
    assert not [k for k in out.list("audio/") if k.endswith("manifest.json")], "nothing of the run published"


@pytest.mark.parametrize(
    ("name", "says"), [("a/b.txt", "contains a slash"), ("..", "'.' or '..' segment"), ("", "empty")]
)
def test_a_script_file_name_must_be_a_file_of_the_folder(name: str, says: str) -> None:
    from voicebatch.errors import InputError

    with pytest.raises(InputError, match=f"script_files: file name {name!r} .*{says}"):
        check_run_config(RunConfig("in/voices", "in/scripts", script_files=(name,)), "out")
