"""The review of quarantined chunks in a real Airflow (API server, scheduler, DAG processor and
executor of `airflow standalone`), answered through its REST API.

The tiny random model speaks noise, so the ASR check quarantines every chunk, deterministically.
With the Param ``review`` on, the run waits in the Human-in-the-loop task ``review``; its form
lists each chunk with a link to hear the take through the /voicebatch app (token required). The
answer "re-take with a new seed" for one chunk, PATCHed to the task's hitlDetails, publishes a new
output that supersedes the old one, in which only that chunk's samples changed (one gain fitted
across the others, as in test_retake). Everything started here is stopped by its process group.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_helpers import BIN, ROOT, airflow_env, api_token, start, stop, wait_until
from conftest import free_port, wait_for_port
from retake_helpers import one_gain
from run_helpers import make_voice

PASSWORD = "voicebatch-review-test"


def call(port: int, path: str, method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {api_token(port, PASSWORD)}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def api(port: int, path: str, method: str = "GET", body: dict | None = None) -> dict:
    status, data = call(port, path, method, body)
    assert status == 200, data[:1000]
    return json.loads(data)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[dict]:
    import subprocess

    root = tmp_path_factory.mktemp("review-airflow")
    make_voice(root / "inputs" / "voices", "anna")
    (root / "inputs" / "scripts").mkdir()
    (root / "inputs" / "scripts" / "hello.txt").write_text("---\nvoice: anna\n---\nHello there. This is a short test.")
    home, logs, output = root / "airflow", root / "logs", root / "out"
    home.mkdir()
    logs.mkdir()
    (root / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    port = free_port()
    env = airflow_env(
        home,
        HF_HUB_OFFLINE="1",
        VOICEBATCH_VOICES_URI=str(root / "inputs" / "voices"),
        VOICEBATCH_SCRIPTS_URI=str(root / "inputs" / "scripts"),
        VOICEBATCH_OUTPUT_URI=str(output),
        VOICEBATCH_MODEL=str(tiny_model_dir),
        VOICEBATCH_ALLOWED_INPUTS=str(root / "inputs"),
        VOICEBATCH_ALLOWED_OUTPUTS=str(output),
        VOICEBATCH_MODEL_ROOTS=str(tiny_model_dir),
        VOICEBATCH_GPU_LOCK_DIR=str(root / "gpu-locks"),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(root / "passwords.json"),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
    )
    subprocess.run(["bash", str(ROOT / "deploy" / "airflow-init.sh")], env=env, check=True, capture_output=True)
    process = start([str(BIN / "airflow"), "standalone"], logs / "standalone.log", env=env)
    try:
        wait_for_port(port, process, timeout=240)
        wait_until("voice_batch to be parsed", lambda: call(port, "/api/v2/dags/voice_batch")[0] == 200, 240, logs)
        # Unpausing starts the scheduled run of the latest interval (Params untouched: review off);
        # it ends before the test's own run, so the two never race for latest.json.
        api(port, "/api/v2/dags/voice_batch", "PATCH", {"is_paused": False})
        scheduled = wait_until("the scheduled run", lambda: ended(port, "scheduled"), 600, logs)
        yield {"port": port, "output": output, "logs": logs, "scheduled": scheduled}
    finally:
        stop([process], timeout=60)


def ended(port: int, run_type: str) -> dict | None:
    found = [r for r in api(port, "/api/v2/dags/voice_batch/dagRuns")["dag_runs"] if r["run_type"] == run_type]
    return found[0] if found and found[0]["state"] in ("success", "failed") else None


def log(airflow: dict) -> str:
    return (airflow["logs"] / "standalone.log").read_text(errors="replace")


def task(airflow: dict, run_id: str, task_id: str) -> dict:
    run = urllib.parse.quote(run_id, safe="")
    return api(airflow["port"], f"/api/v2/dags/voice_batch/dagRuns/{run}/taskInstances/{task_id}")


def test_a_review_answered_through_the_rest_api_retakes_only_that_chunk(airflow: dict) -> None:
    port, output = airflow["port"], airflow["output"]
    # Review off (the default): a run with quarantined chunks does not wait.
    assert airflow["scheduled"]["state"] == "success"
    assert task(airflow, airflow["scheduled"]["dag_run_id"], "review_list")["state"] == "skipped"
    conf = {"review": True, "nfe_steps": 8}
    api(
        port, "/api/v2/dags/voice_batch/dagRuns", "POST", {"dag_run_id": "review-1", "logical_date": None, "conf": conf}
    )

    def waiting() -> bool:
        state = task(airflow, "review-1", "review")["state"]
        assert state not in ("failed", "upstream_failed", "skipped"), state
        return state == "awaiting_input"

    wait_until("the review task to wait for an answer", waiting, 600, airflow["logs"])
    report = json.loads((output / "runs" / "voice_batch" / "review-1" / "report.json").read_text())
    old_key = report["scripts"][0]["manifest_key"]
    old = json.loads((output / old_key).read_text())
    assert old["qa"]["quarantined_chunks"] == [0, 1]
    path = "/api/v2/dags/voice_batch/dagRuns/review-1/taskInstances/review/-1/hitlDetails"
    detail = api(port, path)
    assert detail["options"][0] == "accept" and detail["defaults"] == ["accept"]
    body = detail["body"]
    assert "`hello#0`" in body and "`hello#1`" in body and "Hello there." in body
    # Each take's link opens its audio through the /voicebatch app, for a signed-in user only.
    links = [part.split(")", 1)[0] for part in body.split("[listen to the take](")[1:]]
    assert len(links) == 2 and all(link.startswith("/voicebatch/runs/voice_batch/review-1/files/") for link in links)
    status, audio = call(port, links[1])
    assert status == 200 and audio[:4] == b"RIFF"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"http://127.0.0.1:{port}{links[1]}", timeout=30)
    assert anonymous.value.code == 401
    # A reviewer answers minutes later; a test answers at once, so it first waits for the scheduler to
    # take the exit of the worker that parked the task (its executor event). Airflow 3.3's scheduler
    # takes that event, when it comes after the answer has queued the task again, for a task killed
    # from outside, and retries it: the new try asks again (docs/editorial.md).
    parked = "Received executor event with state success for task instance TaskInstanceKey(dag_id='voice_batch', "
    parked += "task_id='review', run_id='review-1'"
    wait_until("the scheduler to take the parked worker's exit", lambda: parked in log(airflow), 300, airflow["logs"])
    # The answer: a new seed for chunk 1 only.
    answer = {"chosen_options": ["re-take with a new seed"], "params_input": {"chunks": "hello#1", "text": ""}}
    api(port, path, "PATCH", answer)

    def finished() -> dict | None:
        assert task(airflow, "review-1", "review")["try_number"] == 1, "the review was tried again: answer lost"
        run = api(port, "/api/v2/dags/voice_batch/dagRuns/review-1")
        return run if run["state"] in ("success", "failed") else None

    run = wait_until("the run to end after the answer", finished, 600, airflow["logs"])
    assert run["state"] == "success", run
    assert task(airflow, "review-1", "apply_review")["state"] == "success"
    latest = json.loads((output / "audio" / "hello" / "latest.json").read_text())
    assert latest["output_hash"] != old["output_hash"]
    new = json.loads((output / latest["manifest"]).read_text())
    assert new["supersedes"]["output_hash"] == old["output_hash"] and (output / old_key).is_file()
    assert [c["index"] for c in new["retake"]["chunks"]] == [1] and new["run"]["run_id"] == "review-1"
    assert new["chunks"][0]["key"] == old["chunks"][0]["key"] and new["chunks"][1]["seed"] != old["chunks"][1]["seed"]
    gain, residual, changed = one_gain(output, old, new, {1})
    assert 0.1 < gain < 10 and residual < 2e-3 and changed[1] > 0.3, (gain, residual, changed)
    print(f"review: gain {gain:.4f}, residual {residual:.2e}, chunk 1 residual {changed[1]:.2f}")
