"""Job callbacks through real DAG runs (`dag.test()` in a subprocess, moto's S3 server, the tiny
model): a green run calls back signed, once, after two failures of the receiver; a red run's
callback says failed and names the stage; a URL the deployment does not allow is sent nothing and
the run's state is what it would have been. Every expectation is read from what the run left (the
published manifests, the report, the metadata DB), never from the callback's own record alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voicebatch.locations.storage import open_storage
from voicebatch.publish.report import report_prefix

from airflow_helpers import dag_test, demo_inputs, init_airflow, s3_connection
from callback_helpers import ANSWER_MARKER, receiver, signature_ok
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY

SIGNING_SECRET = "voicebatch-callback-secret-c0ffee"
CALLBACK_PATH = "/hooks/voicebatch"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, tiny_model_dir: Path) -> dict:
    from voicebatch.locations.storage import s3_client

    root = tmp_path_factory.mktemp("callbacks")
    voices, scripts = demo_inputs(root, broken_voice=False)
    (scripts / "duet.txt").unlink()  # one script: the run stays short
    client = s3_client(s3_endpoint, "us-east-1", aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY)
    client.create_bucket(Bucket="callbacks")
    with receiver([500, 500, 200]) as hooks:
        env = init_airflow(
            root / "airflow",
            AIRFLOW_CONN_TEST_S3=s3_connection(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY),
            # The signing secret: the password of the connection voicebatch_callback.
            AIRFLOW_CONN_VOICEBATCH_CALLBACK=json.dumps({"conn_type": "generic", "password": SIGNING_SECRET}),
            VOICEBATCH_CALLBACK_ALLOWED=f"http://127.0.0.1:{hooks.port}{CALLBACK_PATH}",
            VOICEBATCH_ALLOWED_INPUTS=str(tmp_path_factory.getbasetemp()),
            VOICEBATCH_ALLOWED_OUTPUTS="s3://callbacks",
            VOICEBATCH_MODEL_ROOTS=str(tiny_model_dir),
        )
        conf = {
            "voices_uri": str(voices),
            "scripts_uri": str(scripts),
            "output_uri": "s3://callbacks/out",
            "aws_conn_id": "test_s3",
            "model": str(tiny_model_dir),
            "nfe_steps": 4,
            # A query string, as receivers use for their own routing: kept in the call, never in records.
            "callback_url": hooks.url(CALLBACK_PATH + "/green?route=abc"),
        }
        yield {
            "env": env,
            "conf": conf,
            "hooks": hooks,
            "model": tiny_model_dir,
            "storage": open_storage("s3://callbacks/out", client=client),
        }


@pytest.fixture(scope="module")
def green(setup: dict) -> dict:
    run = dag_test(setup["env"], setup["conf"])
    return {**run, "received": list(setup["hooks"].got)}


def stored_json(storage, key: str) -> dict:
    return json.loads(storage.get_bytes(key))


def test_a_green_run_calls_back_signed_once_after_two_failures(setup: dict, green: dict) -> None:
    storage, received = setup["storage"], green["received"]
    assert green["state"] == "success", green["tasks"]
    assert green["tasks"]["final_check[-1]"] == "success" and green["tasks"]["notify[-1]"] == "success"
    # The receiver answered 500 twice, then 200: three tries of one body, each signed; one accepted.
    assert [r.status for r in received] == [500, 500, 200]
    assert all(signature_ok(SIGNING_SECRET.encode(), r) for r in received)
    assert len({r.body for r in received}) == 1 and len({r.headers["x-voicebatch-delivery"] for r in received}) == 1
    assert all(r.path == CALLBACK_PATH + "/green?route=abc" for r in received)
    payload = json.loads(received[-1].body)
    assert (payload["dag_id"], payload["run_id"], payload["state"]) == ("voice_batch", green["run_id"], "success")
    assert payload["failed_stage"] is None and payload["reason"] is None
    # The outputs: what the run published, read from the bucket here.
    manifests = {}
    for key in storage.list("audio/"):
        if key.endswith("manifest.json") and stored_json(storage, key)["run"]["run_id"] == green["run_id"]:
            manifests[stored_json(storage, key)["script_id"]] = f"s3://callbacks/out/{key}"
    assert manifests and {o["script_id"]: o["manifest_uri"] for o in payload["outputs"]} == manifests
    (output,) = payload["outputs"]
    manifest = stored_json(storage, output["manifest_uri"].removeprefix("s3://callbacks/out/"))
    files = {f"s3://callbacks/out/{o['key']}" for o in manifest["outputs"]}
    assert files < set(output["uris"].values())
    assert all(storage.exists(u.removeprefix("s3://callbacks/out/")) for u in output["uris"].values())
    # QA counts as the report has them (the tiny model's noise: every chunk quarantined).
    prefix = report_prefix("voice_batch", green["run_id"])
    report = stored_json(storage, prefix + "report.json")
    assert payload["qa"]["quarantined"] == report["qa"]["quarantined"] > 0
    assert payload["qa"]["checked"] == report["qa"]["checked"] and payload["qa"]["needs_review"] == ["hello"]
    assert payload["report_uri"] == f"s3://callbacks/out/{prefix}report.json"
    # The outcome is recorded beside the report, without the query, the secret or the answer.
    record = storage.get_bytes(prefix + "callback.json")
    assert json.loads(record)["status"] == "delivered" and json.loads(record)["outcomes"] == ["500", "500", "200"]
    assert b"route=abc" not in record and ANSWER_MARKER.encode() not in record


def test_the_signing_secret_is_in_no_log_record_or_xcom(setup: dict, green: dict) -> None:
    storage, home = setup["storage"], Path(setup["env"]["AIRFLOW_HOME"])
    places = {k: storage.get_bytes(k) for k in storage.list("")}
    places |= {str(p): p.read_bytes() for p in home.rglob("*") if p.is_file()}
    places["task logs"] = green["output"].encode()
    assert any(p.endswith("airflow.db") for p in places) and "calling back" in green["output"]
    assert [p for p, data in places.items() if SIGNING_SECRET.encode() in data] == []
    assert ANSWER_MARKER not in green["output"], "the receiver's answer is never logged"


def test_a_red_run_calls_back_failed_with_the_failed_stage(setup: dict, green: dict) -> None:
    hooks = setup["hooks"]
    hooks.statuses = [200]
    before = len(hooks.got)
    missing = f"{setup['model']}/no-such-model"  # under the allowed model root: plan is where it fails
    conf = {**setup["conf"], "model": missing, "output_uri": "s3://callbacks/red", "callback_url": hooks.url()}
    run = dag_test(setup["env"], conf)
    assert run["state"] == "failed" and run["tasks"]["plan[-1]"] == "failed"
    assert run["tasks"]["notify[-1]"] == "success", "the callback went out and changed nothing"
    (got,) = hooks.got[before:]
    assert signature_ok(SIGNING_SECRET.encode(), got)
    payload = json.loads(got.body)
    assert (payload["run_id"], payload["state"], payload["failed_stage"]) == (run["run_id"], "failed", "plan")
    assert payload["reason"] == f"model {missing!r}: no such directory" and payload["outputs"] == []


def test_a_url_the_deployment_does_not_allow_is_sent_nothing(setup: dict, green: dict) -> None:
    hooks = setup["hooks"]
    hooks.statuses = [200]
    before = len(hooks.got)
    # Same host and port as the allowed prefix, another path; a cached re-run: nothing to synthesize.
    conf = {**setup["conf"], "callback_url": hooks.url("/elsewhere")}
    run = dag_test(setup["env"], conf)
    assert hooks.got[before:] == [], "nothing was sent"
    assert run["state"] == "success" and run["tasks"]["final_check[-1]"] == "success"
    assert run["tasks"]["notify[-1]"] == "success"
    record = stored_json(setup["storage"], report_prefix("voice_batch", run["run_id"]) + "callback.json")
    assert record["status"] == "refused" and record["attempts"] == 0
    assert "VOICEBATCH_CALLBACK_ALLOWED" in record["error"] and "/elsewhere is outside" in record["error"]
