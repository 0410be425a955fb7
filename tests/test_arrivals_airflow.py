"""Runs when files land, and job status over REST, on a real Airflow (api-server, scheduler,
dag-processor and triggerer; LocalExecutor, SQLite) against moto's S3 and SQS.

The bucket's event notifications feed a queue (scripts/ only, as docs/arrivals.md advises);
the deployment names the queue (VOICEBATCH_ARRIVALS_QUEUE_URL). A script put into S3 starts a
voice_batch run of that script alone, which publishes it, with no one triggering anything.
The REST recipe of docs/arrivals.md runs as the page shows it (its command line read from
the page) and reads the run's outputs back. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicebatch.locations.storage import open_storage, s3_client

from airflow_helpers import (
    BIN,
    ROOT,
    airflow,
    api_token,
    demo_inputs,
    init_airflow,
    s3_connection,
    start,
    stop,
    wait_until,
)
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY, free_port, wait_for_port

PASSWORD = "voicebatch-arrivals-test"
BUCKET = "landing"
WELCOME = "---\nvoice: nature\n---\nWelcome. This one was asked for over REST."


def api(port: int, path: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {api_token(port, PASSWORD)}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def runs(port: int, dag_id: str) -> list[dict]:
    return api(port, f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]


def task_log(home: Path, dag_id: str, run_id: str, task_id: str) -> str:
    """Every message the task logged (Airflow 3 writes JSON lines; the event is the message)."""
    folder = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    lines = []
    for path in sorted(folder.rglob("*.log")):
        for line in path.read_text().splitlines():
            try:
                lines.append(str(json.loads(line).get("event", "")))
            except json.JSONDecodeError:
                lines.append(line)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, tiny_model_dir: Path) -> Iterator[dict]:
    import boto3

    root = tmp_path_factory.mktemp("arrivals")
    voices, _ = demo_inputs(root, broken_voice=False)
    keys = {"aws_access_key_id": S3_ACCESS_KEY, "aws_secret_access_key": S3_SECRET_KEY}
    client = s3_client(s3_endpoint, "us-east-1", **keys)
    client.create_bucket(Bucket=BUCKET)
    # There before the bucket notifies anyone: in a folder where a script lands later, and at the top.
    client.put_object(Bucket=BUCKET, Key="scripts/landed/old.txt", Body=b"---\nvoice: nature\n---\nAlready here.")
    client.put_object(Bucket=BUCKET, Key="scripts/welcome.md", Body=WELCOME.encode())
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name="us-east-1", **keys)
    queue_url = sqs.create_queue(QueueName="scripts-arrived")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "scripts-arrive",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "scripts/"}]}},
                }
            ]
        },
    )
    port = free_port()
    home = root / "airflow"
    home.mkdir()
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    env = init_airflow(
        home,
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(home / "passwords.json"),
        AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW_CONN_TEST_S3=s3_connection(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY),
        VOICEBATCH_VOICES_URI=str(voices),
        VOICEBATCH_SCRIPTS_URI=f"s3://{BUCKET}/scripts",
        VOICEBATCH_OUTPUT_URI=f"s3://{BUCKET}/out",
        VOICEBATCH_AWS_CONN_ID="test_s3",
        VOICEBATCH_MODEL=str(tiny_model_dir),
        VOICEBATCH_GPU_LOCK_DIR=str(root / "gpu-locks"),
        # The deployment's queue; its connection is VOICEBATCH_AWS_CONN_ID's (the default).
        VOICEBATCH_ARRIVALS_QUEUE_URL=queue_url,
        VOICEBATCH_ARRIVALS_POLL_SECONDS="2",
    )
    logs = root / "logs"
    logs.mkdir()
    airflow_bin = str(BIN / "airflow")
    processes = [
        start([airflow_bin, "api-server", "-H", "127.0.0.1", "-p", str(port)], logs / "api-server.log", env),
        start([airflow_bin, "scheduler"], logs / "scheduler.log", env),
        start([airflow_bin, "dag-processor"], logs / "dag-processor.log", env),
        start([airflow_bin, "triggerer"], logs / "triggerer.log", env),  # runs the AssetWatcher's trigger
    ]
    try:
        wait_for_port(port, processes[0], timeout=180)
        both = {"voice_batch", "voice_batch_on_arrival"}
        listed = lambda: both <= set(airflow(env, "dags", "list", "-o", "plain").split())  # noqa: E731
        wait_until("the dag-processor to serialize both DAGs", listed, 240, logs)
        airflow(env, "dags", "unpause", "voice_batch")
        airflow(env, "dags", "unpause", "voice_batch_on_arrival")
        yield {
            "env": env,
            "port": port,
            "home": home,
            "logs": logs,
            "client": client,
            "sqs": sqs,
            "queue_url": queue_url,
            "storage": open_storage(f"s3://{BUCKET}/out", client=client),
        }
    finally:
        stop(processes)


def manifests_of(storage, run_id: str) -> dict[str, dict]:
    """script id -> manifest, for the outputs the run ``run_id`` published."""
    manifests = (json.loads(storage.get_bytes(k)) for k in storage.list("audio/") if k.endswith("manifest.json"))
    return {m["script_id"]: m for m in manifests if (m["run"] or {}).get("run_id") == run_id}


def test_a_script_landing_in_s3_starts_a_run_that_publishes_it(landing: dict) -> None:
    port, folder = landing["port"], f"s3://{BUCKET}/scripts/landed"
    landing["client"].put_object(
        Bucket=BUCKET, Key="scripts/landed/arrived.txt", Body=b"---\nvoice: nature\n---\nIt arrived on its own."
    )

    def finished() -> dict | None:
        found = [r for r in runs(port, "voice_batch") if (r["conf"] or {}).get("scripts_uri") == folder]
        return found[0] if found and found[0]["state"] in ("success", "failed") else None

    run = wait_until("the run the arrival starts", finished, 600, landing["logs"])
    assert run["state"] == "success", run
    assert run["conf"] == {"scripts_uri": folder, "script_files": ["arrived.txt"]}, "only what arrived"
    published = manifests_of(landing["storage"], run["dag_run_id"])
    assert set(published) == {"arrived"}, "old.txt, in the same folder, did not arrive"
    manifest = published["arrived"]
    assert landing["storage"].exists(f"audio/arrived/{manifest['output_hash']}/manifest.json")
    # Started by the arrivals DAG, which an event of the watched Asset scheduled: nobody triggered it.
    (started,) = [r for r in runs(port, "voice_batch_on_arrival") if run["dag_run_id"].startswith(r["dag_run_id"])]
    assert started["run_type"] == "asset_triggered" and run["run_type"] == "operator_triggered"
    selected = task_log(landing["home"], "voice_batch_on_arrival", started["dag_run_id"], "select_scripts")
    assert f"scripts arrived in {folder}: arrived.txt" in selected
    quoted = urllib.parse.quote(started["dag_run_id"], safe="")
    found = api(port, f"/api/v2/dags/voice_batch_on_arrival/dagRuns/{quoted}/taskInstances?task_id=start_voice_batch")
    assert [t["rendered_map_index"] for t in found["task_instances"]] == [folder], "labelled with its folder"
    # The messages were taken off the queue.
    attributes = landing["sqs"].get_queue_attributes(
        QueueUrl=landing["queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def rest_recipe() -> str:
    """The command line docs/arrivals.md gives for the REST recipe (its bash block running deploy/rest_run.py)."""
    page = (ROOT / "docs" / "arrivals.md").read_text()
    section = page[page.index("## Job status over REST") :]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    (block,) = [b for b in blocks if "deploy/rest_run.py" in b]
    return block


def test_the_rest_recipe_runs_as_documented_and_reads_the_outputs(landing: dict, tmp_path: Path) -> None:
    recipe = rest_recipe()
    (tmp_path / "deploy").symlink_to(ROOT / "deploy")  # the page's paths are the repository's
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",  # its `python`: this environment's
        "AIRFLOW_URL": f"http://127.0.0.1:{landing['port']}",
        "AIRFLOW_USERNAME": "admin",
        "AIRFLOW_PASSWORD": PASSWORD,
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    run_id = result["dag_run_id"]
    # What the API says of the run, and what its outputs hold, read back independently of the script.
    (run,) = [r for r in runs(landing["port"], "voice_batch") if r["dag_run_id"] == run_id]
    assert run["state"] == result["state"] == "success" and run["run_type"] == "manual"
    asked = json.loads(re.search(r"--conf '([^']*)'", recipe).group(1))
    assert run["conf"] == asked
    manifest = manifests_of(landing["storage"], run_id)["welcome"]
    key = f"audio/welcome/{manifest['output_hash']}/manifest.json"
    assert {s["script_id"]: s["manifest"] for s in result["scripts"]} == {"welcome": key}
    (script,) = result["scripts"]
    assert set(script["outputs"]) == {o["key"] for o in manifest["outputs"]} | {key}
    assert result["summary"]["published"] == 1
    saved = {Path(p).relative_to("run-outputs").as_posix(): tmp_path / p for p in result["downloaded"]}
    assert key in saved and set(saved) == set(result["files"])
    for name, path in saved.items():
        assert path.read_bytes() == landing["storage"].get_bytes(name), name
    assert any(name.endswith(".wav") for name in saved) and any(name.endswith(".srt") for name in saved)


def test_the_daily_schedule_stays(landing: dict) -> None:
    assert [r for r in runs(landing["port"], "voice_batch") if r["run_type"] == "scheduled"], "unpausing scheduled one"


def test_the_recipe_fails_in_one_line_naming_what_is_wrong() -> None:
    script = [sys.executable, str(ROOT / "deploy" / "rest_run.py")]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    missing = subprocess.run(script, env=clean, capture_output=True, text=True, timeout=60)
    assert (missing.returncode, missing.stderr) == (
        2,
        "error: set AIRFLOW_URL, AIRFLOW_USERNAME, AIRFLOW_PASSWORD (the API server's URL and a user's login)\n",
    )
    port = free_port()  # nothing listens there
    login = {**clean, "AIRFLOW_URL": f"http://127.0.0.1:{port}", "AIRFLOW_USERNAME": "a", "AIRFLOW_PASSWORD": "b"}
    refused = subprocess.run(script, env=login, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        refused.stderr.startswith(f"error: POST http://127.0.0.1:{port}/auth/token: ")
        and refused.stderr.count("\n") == 1
    )
    bad = subprocess.run([*script, "--conf", "[1]"], env=login, capture_output=True, text=True, timeout=60)
    assert (bad.returncode, bad.stderr) == (2, "error: --conf: a JSON object of Params, e.g. '{\"nfe_steps\": 16}'\n")
