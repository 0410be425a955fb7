"""dag.test() end to end: the tiny model, a real HTTP S3 endpoint, a bad voice, a re-run, strict,
a failed stage turning the run red, and a hostile bucket listing."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from voicebatch.storage import open_storage

from airflow_helpers import dag_test, demo_inputs, init_airflow, s3_connection
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, tiny_model_dir: Path) -> dict:
    from voicebatch.storage import s3_client

    root = tmp_path_factory.mktemp("dagrun")
    voices, scripts = demo_inputs(root)
    env = init_airflow(root / "airflow", AIRFLOW_CONN_TEST_S3=s3_connection(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY))
    client = s3_client(s3_endpoint, "us-east-1", aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY)
    client.create_bucket(Bucket="dagrun")
    conf = {
        "voices_uri": str(voices),
        "scripts_uri": str(scripts),
        "output_uri": "s3://dagrun/out",
        "aws_conn_id": "test_s3",
        "model": str(tiny_model_dir),
        "nfe_steps": 8,
    }
    return {"env": env, "conf": conf, "storage": open_storage("s3://dagrun/out", client=client)}


def report_of(storage, run_id: str) -> dict:
    from voicebatch.report import report_prefix

    return json.loads(storage.get_bytes(report_prefix("voice_batch", run_id) + "report.json"))


def test_end_to_end_a_bad_voice_fails_only_its_own_task(setup: dict) -> None:
    storage = setup["storage"]
    run = dag_test(setup["env"], setup["conf"])
    assert run["state"] == "success", run
    tasks = run["tasks"]
    assert [v for k, v in tasks.items() if k.startswith("ingest_voice")].count("failed") == 1
    assert tasks["synthesize[0]"] == "success" and tasks["publish[-1]"] == "success"
    keys = storage.list("")
    for script in ("hello", "duet"):
        (manifest,) = [k for k in keys if k.startswith(f"audio/{script}/") and k.endswith("manifest.json")]
        outputs = json.loads(storage.get_bytes(manifest))["outputs"]
        assert sorted(o["key"].rsplit(".", 1)[1] for o in outputs) == ["csv", "srt", "vtt", "wav"]
        assert json.loads(storage.get_bytes(manifest))["run"]["dag_id"] == "voice_batch"
    assert not [k for k in keys if k.startswith("_staging/")], "staging is removed after the run"
    report = report_of(storage, run["run_id"])
    assert report["totals"]["published"] == 2 and report["totals"]["voices_failed"] == 1
    (ghost,) = [v for v in report["voices"] if v["voice"] == "ghost"]
    assert "silent" in ghost["reason"] and report["notice"] == "random weights: noise, not a voice"
    assert any(k.endswith("report.html") for k in keys)
    assert run["tasks"]["final_check[-1]"] == "success" and report["status"] == "finished"
    # Asset events name this run's own output location, with the counts.
    events = {e["uri"]: e["extra"] for e in run["events"]}
    assert set(events) == {"s3://dagrun/out/audio", "s3://dagrun/out/voices"}
    assert events["s3://dagrun/out/audio"]["published"] == 2 and events["s3://dagrun/out/audio"]["run_id"]
    assert events["s3://dagrun/out/voices"]["voices_registered"] == 2


def test_a_rerun_synthesizes_nothing_and_strict_fails_on_the_bad_voice(setup: dict) -> None:
    storage = setup["storage"]
    before = [k for k in storage.list("") if not k.startswith("runs/")]
    run = dag_test(setup["env"], {**setup["conf"], "strict": True})
    assert run["state"] == "failed", "strict: the bad voice fails the run"
    assert "synthesize" not in " ".join(k for k, v in run["tasks"].items() if v == "success")
    assert [k for k in storage.list("") if not k.startswith("runs/")] == before, "nothing new was published"
    report = report_of(storage, run["run_id"])
    assert report["totals"]["skipped"] == 2 and report["totals"]["published"] == 0
    assert run["events"] == [], "a cached re-run fires no downstream DAG"
    assert run["tasks"]["report[-1]"] == "failed" and run["tasks"]["final_check[-1]"] == "upstream_failed"


def failed_tasks(run: dict) -> set[str]:
    """Failed tasks other than the bad voice's own (the ghost voice fails by design)."""
    return {k for k, v in run["tasks"].items() if v == "failed" and not k.startswith("ingest_voice")}


def test_a_missing_model_fails_plan_once_and_the_report_says_so(setup: dict) -> None:
    run = dag_test(setup["env"], {**setup["conf"], "model": "/no/such/dir", "strict": True})
    assert run["state"] == "failed"
    assert failed_tasks(run) == {"plan[-1]"} and run["tries"]["plan[-1]"] == 1, "no retry, no secondary failure"
    assert run["tasks"]["publish[-1]"] == "skipped" and run["tasks"]["report[-1]"] == "success"
    report = report_of(setup["storage"], run["run_id"])
    assert report["status"] == "failed" and report["scripts"] == []
    (failure,) = report["failed_stages"]
    assert failure["stage"] == "plan" and failure["error"] == "model '/no/such/dir': no such directory"
    assert run["events"] == []
    # The failed run's "Run report" link (on the report task: no synthesize task ran) opens that report.
    with urllib.request.urlopen(run["links"]["report[-1]"]) as response:
        page = response.read().decode()
    assert "Run failed: stage <code>plan</code>" in page and "no such directory" in page


def test_a_scheduled_run_with_default_params_offline_is_red(setup: dict, tmp_path: Path) -> None:
    conf = setup["conf"]
    env = {
        **setup["env"],
        "VOICEBATCH_VOICES_URI": conf["voices_uri"],
        "VOICEBATCH_SCRIPTS_URI": conf["scripts_uri"],
        "VOICEBATCH_OUTPUT_URI": "s3://dagrun/offline",
        "VOICEBATCH_AWS_CONN_ID": "test_s3",
        "VOICEBATCH_MODEL_DIR": str(tmp_path / "empty-model-cache"),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("VOICEBATCH_MODEL", None)
    run = dag_test(env, {}, logical_date="2026-03-01T00:00:00+00:00")
    assert run["state"] == "failed" and failed_tasks(run) == {"plan[-1]"} and run["tries"]["plan[-1]"] == 1
    storage = open_storage("s3://dagrun/offline", client=setup["storage"].client)
    (failure,) = report_of(storage, run["run_id"])["failed_stages"]
    assert failure["stage"] == "plan"
    assert failure["error"].startswith("model 'F5TTS_v1_Base' not found; tried local cache")
    assert "offline" in failure["error"]


def test_a_hostile_bucket_listing_writes_nothing_outside_and_the_rest_publishes(
    setup: dict, demo_voices: Path, tmp_path: Path
) -> None:
    client = setup["storage"].client
    escape = tmp_path / "escaped" / "x.txt"
    climb = "../" * 12 + str(escape).lstrip("/")  # from any temporary folder up to / and down to escape
    for path in sorted((demo_voices / "nature").iterdir()):
        client.put_object(Bucket="dagrun", Key=f"hostile/voices/nature/{path.name}", Body=path.read_bytes())
    hostile = [f"{climb}", "/rooted.srt", "nature\\..\\evil.srt", "x" * 300 + ".wav"]
    for key in hostile:
        client.put_object(Bucket="dagrun", Key=f"hostile/voices/{key}", Body=b"1\n00:00:00,000 --> 00:00:01,000\nX.\n")
        client.put_object(Bucket="dagrun", Key=f"hostile/scripts/{key}", Body=b"---\nvoice: nature\n---\nEvil.")
    scripts = {
        "hello.txt": "---\nvoice: nature\n---\nHello there.",
        "lines.jsonl": '{"id": "one", "voice": "nature", "text": "One."}\n{"id": "two", "voice": \n'
        '{"id": "three", "voice": "nature", "text": "Three."}\n',
        "rows.csv": "id,voice,text\nr1,nature,Row one.\nr2,nature,\nr3,nature,Row three.\n",
    }
    for name, text in scripts.items():
        client.put_object(Bucket="dagrun", Key=f"hostile/scripts/{name}", Body=text.encode())
    conf = {
        **setup["conf"],
        "voices_uri": "s3://dagrun/hostile/voices",
        "scripts_uri": "s3://dagrun/hostile/scripts",
        "output_uri": "s3://dagrun/hostile-out",
    }
    run = dag_test(setup["env"], conf)
    assert not escape.exists() and not (tmp_path / "escaped").exists()
    assert run["state"] == "success", run
    out = open_storage("s3://dagrun/hostile-out", client=client)
    published = {k.split("/")[1] for k in out.list("audio/") if k.endswith("manifest.json")}
    assert published == {"hello", "one", "three", "r1", "r3"}
    report = report_of(out, run["run_id"])
    assert len(report["rejected_inputs"]) == len(hostile)
    failed = [s for s in report["scripts"] if s["status"] == "failed"]
    assert sorted(s["script_id"] for s in failed) == sorted(
        ["(refused input)"] * len(hostile) + ["lines.jsonl item 2", "rows.csv row 3"]
    )
    for line in report["rejected_inputs"] + [s["error"] for s in failed]:
        assert "\n" not in line and line.startswith("s3://dagrun/hostile/"), line
    assert any("'..' segment" in line for line in report["rejected_inputs"])
    for problem in ("absolute", "backslash", "longer than 255 bytes"):
        assert sum(problem in line for line in report["rejected_inputs"]) == 1, problem
