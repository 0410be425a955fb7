"""A real Airflow: scheduler, dag-processor and api-server (LocalExecutor, SQLite, 127.0.0.1).

Unpause, trigger with --conf, backfill two dates with scripts in two date folders, re-run
with everything cached, and trigger from the UI's form in headless Chromium as a user does.
Every process started here is stopped by its PID (process group).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicebatch.locations.storage import open_storage, s3_client

from airflow_helpers import BIN, airflow, api_token, demo_inputs, init_airflow, s3_connection, start, stop, wait_until
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, sign_in
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY, free_port, wait_for_port

PASSWORD = "voicebatch-ui-test"


def token(port: int) -> str:
    return api_token(port, PASSWORD)


def api(port: int, path: str) -> dict:
    """The public REST API, as the UI uses it."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token(port)}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def runs(env: dict[str, str]) -> list[dict]:
    return api(int(env["VOICEBATCH_TEST_API_PORT"]), "/api/v2/dags/voice_batch/dagRuns?limit=100")["dag_runs"]


def wait_for_runs(env: dict[str, str], run_ids: set[str] | None, logs: Path, count: int = 0) -> list[dict]:
    def done() -> list[dict] | None:
        found = [r for r in runs(env) if (run_ids is None or r["dag_run_id"] in run_ids)]
        if run_ids is None:
            found = [r for r in found if r["run_type"] == "backfill"]
        if len(found) >= max(count, len(run_ids or ())) and all(r["state"] in ("success", "failed") for r in found):
            return found
        return None

    return wait_until(f"runs {run_ids or 'backfill'}", done, 420, logs)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, tiny_model_dir: Path) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("deploy")
    voices, scripts = demo_inputs(root, broken_voice=False)
    for day, text in (("2026-11-01", "The first day."), ("2026-11-02", "The second day.")):
        (scripts / day).mkdir()
        (scripts / day / f"day-{day[-1]}.txt").write_text(f"---\nvoice: nature\n---\n{text}")
    client = s3_client(s3_endpoint, "us-east-1", aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY)
    client.create_bucket(Bucket="deploy")
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
        # The form's defaults (and the scheduled run's inputs) point at this test's inputs.
        VOICEBATCH_VOICES_URI=str(voices),
        VOICEBATCH_SCRIPTS_URI=str(scripts),
        VOICEBATCH_OUTPUT_URI="s3://deploy/out",
        VOICEBATCH_AWS_CONN_ID="test_s3",
        VOICEBATCH_MODEL=str(tiny_model_dir),
        VOICEBATCH_GPU_LOCK_DIR=str(root / "gpu-locks"),
        VOICEBATCH_TEST_API_PORT=str(port),
    )
    logs = root / "logs"
    logs.mkdir()
    airflow_bin = str(BIN / "airflow")
    processes = [
        start([airflow_bin, "api-server", "-H", "127.0.0.1", "-p", str(port)], logs / "api-server.log", env),
        start([airflow_bin, "scheduler"], logs / "scheduler.log", env),
        start([airflow_bin, "dag-processor"], logs / "dag-processor.log", env),
    ]
    try:
        wait_for_port(port, processes[0], timeout=120)
        listed = lambda: "voice_batch" in airflow(env, "dags", "list", "-o", "plain")  # noqa: E731
        wait_until("the dag-processor to serialize voice_batch", listed, 180, logs)
        airflow(env, "dags", "unpause", "voice_batch")
        conf = {"nfe_steps": 8}
        yield {
            "env": env,
            "port": port,
            "conf": conf,
            "logs": logs,
            "storage": open_storage("s3://deploy/out", client=client),
        }
    finally:
        stop(processes)


def published_scripts(storage) -> set[str]:
    return {k.split("/")[1] for k in storage.list("audio/") if k.endswith("manifest.json")}


def manifests_of(storage, run_id: str) -> dict[str, dict]:
    """script id -> manifest, for the outputs the run ``run_id`` published."""
    manifests = (json.loads(storage.get_bytes(k)) for k in storage.list("audio/") if k.endswith("manifest.json"))
    return {m["script_id"]: m for m in manifests if (m["run"] or {}).get("run_id") == run_id}


@pytest.fixture(scope="module")
def first_run(deployment: dict) -> dict:
    """A CLI trigger with conf over fresh outputs; tests that need something published ask for it."""
    env = deployment["env"]
    airflow(env, "dags", "trigger", "voice_batch", "-r", "cli_conf", "--conf", json.dumps(deployment["conf"]))
    (run,) = wait_for_runs(env, {"cli_conf"}, deployment["logs"])
    return run


def test_trigger_with_conf_runs_to_success(deployment: dict, first_run: dict) -> None:
    assert first_run["state"] == "success"
    assert {"hello", "duet"} <= published_scripts(deployment["storage"])
    manifests = manifests_of(deployment["storage"], "cli_conf")
    assert {"hello", "duet"} <= set(manifests)
    assert all(m["parameters"]["nfe_steps"] == deployment["conf"]["nfe_steps"] for m in manifests.values())


def backfill(deployment: dict, *args: str, tries: int = 3) -> None:
    """``airflow backfill create ARGS``, sent again when this test's SQLite metadata database refused
    its writes at once ("database is locked": two writers that would deadlock, which no busy timeout
    waits out; deployments use PostgreSQL). Airflow keeps the half-made backfill after that error (it
    cleans up only after PostgreSQL's and MySQL's lock errors), so it is cancelled first."""
    import subprocess

    for _ in range(tries):
        command = [str(BIN / "airflow"), "backfill", "create", *args]
        result = subprocess.run(command, env=deployment["env"], capture_output=True, text=True, timeout=120)
        said = result.stdout[-2000:] + "\n" + result.stderr[-2000:]
        if result.returncode == 0:
            return
        assert "database is locked" in said, f"airflow backfill create:\n{said}"
        for left in api(deployment["port"], "/api/v2/backfills?dag_id=voice_batch")["backfills"]:
            if not left["completed_at"]:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{deployment['port']}/api/v2/backfills/{left['id']}/cancel",
                    headers={"Authorization": f"Bearer {token(deployment['port'])}"},
                    method="PUT",
                )
                urllib.request.urlopen(request, timeout=30).close()
    raise AssertionError(f"airflow backfill create: database locked {tries} times:\n{said}")


def test_backfill_two_dates_uses_each_dates_scripts(deployment: dict) -> None:
    env = deployment["env"]
    backfill(
        deployment,
        "--dag-id",
        "voice_batch",
        "--from-date",
        "2026-11-01",
        "--to-date",
        "2026-11-02",
        "--dag-run-conf",
        json.dumps(deployment["conf"]),
    )
    backfills = wait_for_runs(env, None, deployment["logs"], count=2)
    assert len(backfills) == 2 and all(r["state"] == "success" for r in backfills), backfills
    assert {"day-1", "day-2"} <= published_scripts(deployment["storage"])


def test_a_rerun_synthesizes_nothing(deployment: dict, first_run: dict) -> None:
    env, storage = deployment["env"], deployment["storage"]
    assert first_run["state"] == "success"
    # The manifests published so far, byte for byte (other runs of the unpaused DAG, such as its
    # scheduled one, may publish other outputs meanwhile: only rewrites of these count).
    before = {k: storage.get_bytes(k) for k in storage.list("audio/") if k.endswith("manifest.json")}
    airflow(env, "dags", "trigger", "voice_batch", "-r", "cli_again", "--conf", json.dumps(deployment["conf"]))
    (run,) = wait_for_runs(env, {"cli_again"}, deployment["logs"])
    assert run["state"] == "success"
    states = json.loads(airflow(env, "tasks", "states-for-dag-run", "voice_batch", "cli_again", "-o", "json"))
    assert not [s for s in states if s["task_id"] == "synthesize" and s["state"] == "success"]
    assert {k: storage.get_bytes(k) for k in before} == before
    from voicebatch.publish.report import report_prefix

    report = json.loads(storage.get_bytes(report_prefix("voice_batch", "cli_again") + "report.json"))
    assert report["totals"]["published"] == 0 and report["totals"]["skipped"] == 2


def test_trigger_form_in_the_browser(deployment: dict) -> None:
    from playwright.sync_api import sync_playwright

    env, port = deployment["env"], deployment["port"]
    existing = {r["dag_run_id"] for r in runs(env)}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        sign_in(page, port, PASSWORD)
        page.goto(f"http://127.0.0.1:{port}/dags/voice_batch")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        dialog.get_by_text("Model", exact=True).first.click()  # the form's sections: Inputs, Model, Sound, Run control
        nfe, seed = dialog.locator("input[name=element_nfe_steps]"), dialog.locator("input[name=element_seed]")
        nfe.scroll_into_view_if_needed()
        form = dialog.inner_text()
        for title in (
            "Inputs",
            "Model",
            "Sound",
            "Run control",
            "Sampling steps (NFE)",
            "More is slower and cleaner",
            "Seed",
        ):
            assert title in form, title
        assert nfe.input_value() == "32" and seed.input_value() == "0"  # the Params' defaults
        nfe.fill("9")
        seed.fill("7")
        Path(deployment["logs"], "trigger-form.png").write_bytes(page.screenshot(full_page=True))
        dialog.get_by_test_id("trigger-dag-submit").click()
        new = wait_until(
            "the UI-triggered run",
            lambda: [r for r in runs(env) if r["dag_run_id"] not in existing and r["run_type"] == "manual"],
            60,
            deployment["logs"],
        )
        browser.close()
    (run,) = wait_for_runs(env, {new[0]["dag_run_id"]}, deployment["logs"])
    assert run["state"] == "success"
    assert run["conf"]["nfe_steps"] == 9 and run["conf"]["seed"] == 7
    # What the run produced used the form's values: new outputs, synthesized with NFE 9 and seed 7.
    manifests = manifests_of(deployment["storage"], run["dag_run_id"])
    assert {"hello", "duet"} <= set(manifests), "the form's values change the output hash: new outputs"
    for manifest in manifests.values():
        assert (manifest["parameters"]["nfe_steps"], manifest["parameters"]["seed"]) == (9, 7)


def test_the_run_report_streams_from_s3_through_the_api_server(deployment: dict, first_run: dict) -> None:
    """The plugin reads the run's S3 output through its Airflow connection and streams it: no
    presigned link, so nothing expires; a Range request (a player seeking) gets its slice."""
    port, storage = deployment["port"], deployment["storage"]
    auth = {"Authorization": f"Bearer {token(port)}"}

    def fetch(path: str, **headers: str) -> tuple[int, bytes, str]:
        found = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={**auth, **headers})
        with urllib.request.urlopen(found, timeout=30) as response:  # follows the redirect to report.html
            return response.status, response.read(), response.geturl()

    status, page, url = fetch("/voicebatch/runs/voice_batch/cli_conf/")
    assert status == 200 and url.endswith("/files/runs/voice_batch/cli_conf/report.html")
    assert page == storage.get_bytes("runs/voice_batch/cli_conf/report.html")
    report = json.loads(storage.get_bytes("runs/voice_batch/cli_conf/report.json"))
    wav = next(k for k in report["files"] if k.startswith("audio/") and k.endswith(".wav"))
    assert f"../../../{wav}" in page.decode(), "the page links the audio relative to itself"
    status, body, _ = fetch(f"/voicebatch/runs/voice_batch/cli_conf/files/{wav}")
    assert status == 200 and body == storage.get_bytes(wav)
    status, part, _ = fetch(f"/voicebatch/runs/voice_batch/cli_conf/files/{wav}", Range="bytes=100-199")
    assert status == 206 and part == storage.get_bytes(wav)[100:200]
    assert storage.exists("runs/voice_batch/cli_conf/report.shared.html"), "a presigned copy, to share outside"
