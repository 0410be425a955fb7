"""dag.test() end to end: the tiny model, a real HTTP S3 endpoint, a bad voice, a re-run, strict."""

from __future__ import annotations

import json
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
    # Issue 14: the tiny random model's noise fails every content check; published anyway,
    # marked needs_review, no re-take tried (random weights), and the report says so.
    qa = report["qa"]
    assert qa["checked"] > 0 and qa["passed"] == 0 and qa["quarantined"] == qa["checked"] and qa["retakes"] == 0
    assert sorted(qa["needs_review"]) == ["duet", "hello"]
    assert any("random weights" in n for n in qa["notes"])
    latest = json.loads(storage.get_bytes("audio/hello/latest.json"))
    assert latest["needs_review"] is True


def test_a_rerun_synthesizes_nothing_and_strict_fails_on_the_bad_voice(setup: dict) -> None:
    storage = setup["storage"]
    before = [k for k in storage.list("") if not k.startswith("runs/")]
    run = dag_test(setup["env"], {**setup["conf"], "strict": True})
    assert run["state"] == "failed", "strict: the bad voice fails the run"
    assert "synthesize" not in " ".join(k for k, v in run["tasks"].items() if v == "success")
    assert [k for k in storage.list("") if not k.startswith("runs/")] == before, "nothing new was published"
    report = report_of(storage, run["run_id"])
    assert report["totals"]["skipped"] == 2 and report["totals"]["published"] == 0
