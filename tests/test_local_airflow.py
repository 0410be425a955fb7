"""`make airflow PORT=<free port>` as a new user runs it, offline, with local inputs and outputs.

One `airflow standalone` (its own AIRFLOW_HOME, no hub, an empty model cache) serves every test
here; it is stopped by its process group when the module ends. What it shows:

- the API server and the execution API follow PORT (a run succeeds: its tasks reach the API);
- offline, the default model falls back to the tiny one, announced at start, in the task log and
  in the report, and unpausing the DAG with default Params gives a green run;
- the trigger form: sections, only required fields marked, NFE 100 refused with a message and no
  run, a valid trigger; its run's "Run report" (tab and link) opens the report through the API
  server's plugin, whose players load their audio and captions;
- mapped synthesize tasks are labelled with their scripts; a misspelt conf key fails the run at
  once, naming the valid keys; the plugin serves nothing without a valid token (its docs routes
  included) and no file outside the report;
- an untrusted triggerer's probes through the REST API (hostile locations, a crafted model) fail
  at once with one line, and nothing ran, nothing was read, nothing was written outside.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_helpers import ROOT, airflow, api_token, demo_inputs, stop, wait_until
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, sign_in
from conftest import free_port, wait_for_port
from trust_helpers import crafted_model, files_containing, forged_token, secret

PASSWORD = "voicebatch-local-test"


def token(port: int) -> str:
    return api_token(port, PASSWORD)


def get(port: int, path: str, bearer: str | None = None) -> tuple[int, bytes, dict]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def post(port: int, path: str, body: dict, bearer: str) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def trigger(port: int, body: dict, bearer: str, tries: int = 5) -> tuple[int, dict]:
    """POST a run. `airflow standalone` keeps its metadata in SQLite: a write that meets the
    scheduler's (database locked) is answered 500 "Database error" and rolled back, so the same
    request is sent again (a run that was created after all answers 409, and counts as created)."""
    for attempt in range(tries):
        status, answer = post(port, "/api/v2/dags/voice_batch/dagRuns", body, bearer)
        if status == 409 and attempt:
            return 200, answer
        if not (status == 500 and "Database error" in json.dumps(answer)):
            return status, answer
        time.sleep(1 + attempt)
    return status, answer


def api(port: int, path: str) -> dict:
    status, body, _ = get(port, path, token(port))
    assert status == 200, body[:500]
    return json.loads(body)


def runs(port: int) -> list[dict]:
    return api(port, "/api/v2/dags/voice_batch/dagRuns?limit=100")["dag_runs"]


def wait_for_run(local: dict, run_id: str) -> dict:
    def finished() -> dict | None:
        found = [r for r in runs(local["port"]) if r["dag_run_id"] == run_id]
        return found[0] if found and found[0]["state"] in ("success", "failed") else None

    return wait_until(f"run {run_id}", finished, 420, local["logs"])


def task_log(home: Path, run_id: str, task_id: str) -> str:
    """Every log line the task wrote (Airflow 3 writes JSON lines; the event is the message)."""
    folder = home / "logs" / "dag_id=voice_batch" / f"run_id={run_id}" / f"task_id={task_id}"
    events = []
    for path in sorted(folder.rglob("*.log")):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                events.append(line)
                continue
            events.append(str(record.get("event", "")))
            # A task's exception is logged as structured detail: its type and message, one line each.
            for detail in record.get("error_detail") or record.get("exception") or []:
                if isinstance(detail, dict) and "exc_value" in detail:
                    events.append(f"{detail.get('exc_type')}: {detail['exc_value']}")
    return "\n".join(events)


def report_of(local: dict, run_id: str) -> dict:
    from voicebatch.locations.storage import open_storage
    from voicebatch.publish.report import report_prefix

    return json.loads(
        open_storage(str(local["output"])).get_bytes(report_prefix("voice_batch", run_id) + "report.json")
    )


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("local-airflow")
    voices, scripts = demo_inputs(root, broken_voice=False)
    home, output, logs = root / "airflow", root / "out", root / "logs"
    home.mkdir()
    logs.mkdir()
    (root / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VOICEBATCH_"))}
    env.update(
        # Offline, and nothing cached: the default model cannot be had.
        HF_HUB_OFFLINE="1",
        VOICEBATCH_MODEL_DIR=str(root / "empty-model-cache"),
        VOICEBATCH_VOICES_URI=str(voices),
        VOICEBATCH_SCRIPTS_URI=str(scripts),
        VOICEBATCH_OUTPUT_URI=str(output),
        VOICEBATCH_GPU_LOCK_DIR=str(root / "gpu-locks"),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(root / "passwords.json"),
        AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
    )
    # As a user types it; -o: never reinstall .venv or rebuild the repository's demo voices here.
    command = ["make", "-o", ".venv/.installed-stamp", "-o", "include/voices/.built", "airflow"]
    command += [f"PORT={port}", f"AIRFLOW_HOME_DIR={home}"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=(logs / "make-airflow.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cli = {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "PYTHONPATH": str(ROOT / "plugins"),
    }
    local = {"port": port, "home": home, "output": output, "logs": logs, "cli": cli, "process": process}
    try:
        wait_for_port(port, process, timeout=240)
        listed = lambda: "voice_batch" in airflow(cli, "dags", "list", "-o", "plain")  # noqa: E731
        wait_until("the dag-processor to serialize voice_batch", listed, 180, logs)
        yield local
    finally:
        # make passes the SIGTERM on; Airflow's processes, in a session of their own, get it from
        # deploy/process_group.py, which kills what is left after its 30 s grace.
        stop([process], timeout=90)


@pytest.fixture(scope="module")
def scheduled_run(local: dict) -> dict:
    """Unpausing the DAG, Params untouched: the scheduler's run of the latest interval."""
    airflow(local["cli"], "dags", "unpause", "voice_batch")
    found = wait_until(
        "the scheduled run",
        lambda: [r for r in runs(local["port"]) if r["run_type"] == "scheduled"],
        120,
        local["logs"],
    )
    return wait_for_run(local, found[0]["dag_run_id"])


def test_make_airflow_on_a_free_port_offline_runs_green_on_the_announced_tiny_model(
    local: dict, scheduled_run: dict
) -> None:
    assert scheduled_run["state"] == "success", scheduled_run
    assert scheduled_run["conf"] == {}, "default Params"
    started = (local["logs"] / "make-airflow.log").read_text()
    assert "OFFLINE: F5TTS_v1_Base is not cached" in started and "NOISE, NOT A VOICE" in started
    assert f"AIRFLOW__API__PORT={local['port']}" in started
    assert f"AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:{local['port']}/execution/" in started
    run_id = scheduled_run["dag_run_id"]
    assert "RANDOM WEIGHTS: every audio file of this run is NOISE, NOT A VOICE" in task_log(
        local["home"], run_id, "plan"
    )
    report = report_of(local, run_id)
    assert report["notice"] == "random weights: noise, not a voice" and report["model"]["random_weights"]
    assert report["totals"]["published"] == 2 and report["status"] == "finished"
    # What each task decided, in its own log.
    assert "voice nature: clip 0.00–" in task_log(local["home"], run_id, "ingest_voice")
    planned = task_log(local["home"], run_id, "plan")
    # A sentence a chunk (the default sentence pause): hello's two sentences, duet's two voices' one each.
    assert "planned hello: 2 chunk(s)" in planned and "planned duet: 2 chunk(s)" in planned
    synthesized = task_log(local["home"], run_id, "synthesize")
    assert "of duet, hello, voices nature, taiyi" in synthesized and ", ETA " in synthesized
    assert "Load vocos" not in synthesized and "ffmpeg" not in synthesized, "F5's own output stays out of the log"


def test_synthesize_tasks_are_labelled_with_their_scripts(local: dict, scheduled_run: dict) -> None:
    run = urllib.parse.quote(scheduled_run["dag_run_id"], safe="")
    found = api(local["port"], f"/api/v2/dags/voice_batch/dagRuns/{run}/taskInstances?task_id=synthesize")
    labels = [t["rendered_map_index"] for t in found["task_instances"]]
    assert labels == ["duet, hello (4 chunks)"]


def test_the_plugin_serves_only_the_reports_files_and_only_to_users(local: dict, scheduled_run: dict) -> None:
    port, run = local["port"], urllib.parse.quote(scheduled_run["dag_run_id"], safe="")
    assert get(port, f"/voicebatch/runs/voice_batch/{run}/")[0] == 401
    assert get(port, "/voicebatch/")[0] == 401
    bearer = token(port)
    status, body, _ = get(port, "/voicebatch/", bearer)
    assert status == 200 and scheduled_run["dag_run_id"] in body.decode()
    report = report_of(local, scheduled_run["dag_run_id"])
    wav = next(k for k in report["files"] if k.endswith(".wav") and k.startswith("audio/"))
    status, body, headers = get(port, f"/voicebatch/runs/voice_batch/{run}/files/{wav}", bearer)
    assert status == 200 and body == (local["output"] / wav).read_bytes() and headers["content-type"] == "audio/wav"
    for outside in ("_staging/x.json", "voices/../../../passwords.json", "audio/nope.wav"):
        assert get(port, f"/voicebatch/runs/voice_batch/{run}/files/{outside}", bearer)[0] == 404, outside
    assert get(port, "/voicebatch/runs/voice_batch/no-such-run/", bearer)[0] == 404


def test_the_plugin_serves_nothing_without_a_valid_token_docs_routes_included(local: dict, scheduled_run: dict) -> None:
    port, run = local["port"], urllib.parse.quote(scheduled_run["dag_run_id"], safe="")
    report = report_of(local, scheduled_run["dag_run_id"])
    wav = next(k for k in report["files"] if k.endswith(".wav"))
    docs = ("/voicebatch/docs", "/voicebatch/redoc", "/voicebatch/openapi.json", "/voicebatch/docs/oauth2-redirect")
    pages = (f"/voicebatch/runs/voice_batch/{run}/", f"/voicebatch/runs/voice_batch/{run}/files/{wav}")
    routes = (*docs, "/voicebatch/", *pages)
    for path in (*routes, "/voicebatch/no-such-page"):
        for bearer, refused in ((None, 401), (forged_token(), 403), ("not.a.token", 403)):
            status, body, _ = get(port, path, bearer)
            assert status == refused, (path, bearer, status)
            assert b"swagger" not in body.lower() and b"cdn" not in body.lower() and b"RIFF" not in body
    bearer = token(port)
    for path in docs:  # not there at all, even for a signed-in user: no schema, no Swagger from a CDN
        assert get(port, path, bearer)[0] == 404, path
    assert get(port, f"/voicebatch/runs/voice_batch/{run}/files/{wav}", bearer)[0] == 200


@pytest.fixture(scope="module")
def probes(local: dict, scheduled_run: dict, tiny_model_dir: Path) -> dict:
    """What an untrusted triggerer sends through the REST API: locations outside the allow-list
    (planted private files, the worker's own folders, somewhere to write) and a crafted model whose
    vocoder config runs code (outside the model roots, and inside them). All triggered at once."""
    root = local["home"].parent
    planted = secret()
    private = root / "private"
    (private / "voices" / "spy").mkdir(parents=True)
    (private / "creds.txt").write_text(f"---\nvoice: nature\n---\nThe password is {planted}.")
    (private / "creds.csv").write_text(f"word,respelling\nhello,{planted}\n")
    for path in (root / "voices" / "nature").iterdir():
        if path.suffix == ".wav":
            (private / "voices" / "spy" / path.name).write_bytes(path.read_bytes())
    (private / "voices" / "spy" / "take.srt").write_text(f"1\n00:00:00,000 --> 00:00:05,000\n{planted}\n")
    marker = root / "PWNED"
    outside_model = crafted_model(tiny_model_dir, root / "crafted-model", marker)
    inside_model = crafted_model(tiny_model_dir, local["home"] / "models" / "crafted", marker)  # an allowed root
    conf = {
        "probe-scripts": ("scripts_uri", f"file://{private}", "VOICEBATCH_ALLOWED_INPUTS"),
        "probe-lexicon": ("lexicon_uri", f"file://{private}/creds.csv", "VOICEBATCH_ALLOWED_INPUTS"),
        "probe-voices": ("voices_uri", str(private / "voices"), "VOICEBATCH_ALLOWED_INPUTS"),
        "probe-etc": ("scripts_uri", "file:///etc", "VOICEBATCH_ALLOWED_INPUTS"),
        "probe-root": ("voices_uri", "file:///root", "VOICEBATCH_ALLOWED_INPUTS"),
        "probe-output": ("output_uri", str(root / "elsewhere"), "VOICEBATCH_ALLOWED_OUTPUTS"),
        "probe-model": ("model", str(outside_model), "VOICEBATCH_MODEL_ROOTS"),
        "probe-crafted-inside": ("model", str(inside_model), None),
    }
    before = sorted(p.relative_to(private).as_posix() for p in private.rglob("*"))
    bearer = token(local["port"])
    for run_id, (name, value, _) in conf.items():
        body = {"dag_run_id": run_id, "logical_date": None, "conf": {name: value}}
        status, answer = trigger(local["port"], body, bearer)
        assert status == 200, answer
    runs = {run_id: wait_for_run(local, run_id) for run_id in conf}
    return {"conf": conf, "runs": runs, "secret": planted, "marker": marker, "private": private, "before": before}


def task_states(local: dict, run_id: str) -> dict[str, tuple[str, int]]:
    found = api(local["port"], f"/api/v2/dags/voice_batch/dagRuns/{run_id}/taskInstances")["task_instances"]
    return {t["task_id"]: (t["state"], t["try_number"]) for t in found if t["map_index"] in (-1, 0)}


REFUSED = ["probe-scripts", "probe-lexicon", "probe-voices", "probe-etc", "probe-root", "probe-output", "probe-model"]


@pytest.mark.parametrize("run_id", REFUSED)
def test_a_rest_trigger_outside_the_allow_list_fails_at_once_with_one_line(
    local: dict, probes: dict, run_id: str
) -> None:
    name, value, setting = probes["conf"][run_id]
    assert probes["runs"][run_id]["state"] == "failed"
    states = task_states(local, run_id)
    assert states["list_voices"] == ("failed", 1), "at once: no retry"
    assert states["plan"][0] == states["publish"][0] == "skipped"
    assert states.get("synthesize", ("skipped",))[0] in ("skipped", "upstream_failed"), "nothing synthesized"
    logged = task_log(local["home"], run_id, "list_voices")
    line = next(line for line in logged.splitlines() if "is outside the locations this deployment allows" in line)
    assert f"{name}: {value} is outside" in line and line.endswith(f"add it to {setting} where voicebatch runs")
    if name == "output_uri":  # nowhere to write: no report, nothing created there
        assert states["report"][0] == "skipped" and not Path(value).exists()
    else:
        (failure,) = report_of(local, run_id)["failed_stages"]
        assert failure["stage"] == "list_voices" and failure["error"] == line[line.index(f"{name}: ") :]


def test_the_probes_ran_nothing_read_nothing_and_wrote_nothing_outside(local: dict, probes: dict) -> None:
    root = local["home"].parent
    assert not probes["marker"].exists(), "no code from a model folder ran"
    leaks = [f for f in files_containing(root, probes["secret"]) if not Path(f).is_relative_to(probes["private"])]
    assert leaks == [], "a planted file's content is in outputs, logs, reports or Airflow's database"
    assert sorted(p.relative_to(probes["private"]).as_posix() for p in probes["private"].rglob("*")) == probes["before"]
    assert not (root / "elsewhere").exists()
    etc = report_of(local, "probe-etc")
    assert not [name for name in ("passwd", "shadow", "fstab") if name in json.dumps(etc)], "no file of /etc listed"


def test_a_crafted_model_inside_a_model_root_is_refused_by_plan_before_any_code_runs(local: dict, probes: dict) -> None:
    states = task_states(local, "probe-crafted-inside")
    assert states["list_voices"][0] == "success" and states["plan"] == ("failed", 1)
    assert states.get("synthesize", ("upstream_failed",))[0] in ("skipped", "upstream_failed"), "no model loaded"
    (failure,) = report_of(local, "probe-crafted-inside")["failed_stages"]
    assert failure["stage"] == "plan" and "class_path 'subprocess.run' refused" in failure["error"]
    assert not probes["marker"].exists()


def test_a_misspelt_conf_key_fails_the_run_at_once_naming_the_valid_keys(local: dict, scheduled_run: dict) -> None:
    # ``scheduled_run`` unpauses the DAG: a triggered run of a paused DAG stays queued.
    airflow(local["cli"], "dags", "trigger", "voice_batch", "-r", "misspelt", "--conf", '{"nfe_step": 8}')
    run = wait_for_run(local, "misspelt")
    assert run["state"] == "failed"
    (failure,) = report_of(local, "misspelt")["failed_stages"]
    assert failure["stage"] == "list_voices"
    assert failure["error"].startswith("conf: unknown key 'nfe_step' (did you mean 'nfe_steps'?); valid keys: ")
    assert "nfe_steps" in failure["error"] and "publish_unverified" in failure["error"]
    tis = api(local["port"], "/api/v2/dags/voice_batch/dagRuns/misspelt/taskInstances?task_id=list_voices")
    assert [t["try_number"] for t in tis["task_instances"]] == [1], "no retry"


def test_trigger_form_guides_and_the_run_report_opens_through_the_api_server(local: dict, scheduled_run: dict) -> None:
    from playwright.sync_api import sync_playwright

    port = local["port"]
    existing = {r["dag_run_id"] for r in runs(port)}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        sign_in(page, port, PASSWORD)
        page.goto(f"http://127.0.0.1:{port}/dags/voice_batch")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        dialog.wait_for()
        required, titles = set(), set()
        for section in ("Inputs", "Model", "Sound", "Run control"):
            dialog.get_by_text(section, exact=True).first.click()  # one section open at a time
            dialog.locator("[data-state=open] label").first.wait_for()
            labels = dialog.locator("[data-state=open] label").evaluate_all("els => els.map(e => e.innerText)")
            titles |= {label.replace("*", "").strip() for label in labels}
            required |= {label.replace("*", "").strip() for label in labels if label.strip().endswith("*")}
        assert {"Voices", "Sampling steps (NFE)", "Speed", "Force", "Only these voices"} <= titles
        assert required == {"Voices", "Scripts", "Output", "Model"}, "booleans and optional lists are not required"
        dialog.get_by_text("Model", exact=True).first.click()
        nfe = dialog.locator("input[name=element_nfe_steps]")
        nfe.fill("100")
        nfe.press("Tab")
        assert nfe.input_value() == "100", "an out-of-range value is not clamped"
        dialog.get_by_test_id("trigger-dag-submit").click()
        dialog.get_by_text("100 is greater than the maximum of 64").wait_for()
        assert {r["dag_run_id"] for r in runs(port)} == existing, "nothing was triggered"
        nfe.fill("8")
        nfe.press("Tab")
        Path(local["logs"], "trigger-form.png").write_bytes(page.screenshot(full_page=True))
        dialog.get_by_test_id("trigger-dag-submit").dispatch_event("click")  # the error's toast covers the button
        new = wait_until(
            "the UI-triggered run",
            lambda: [r for r in runs(port) if r["dag_run_id"] not in existing and r["run_type"] == "manual"],
            60,
            local["logs"],
        )
        run = wait_for_run(local, new[0]["dag_run_id"])
        assert run["state"] == "success" and run["conf"]["nfe_steps"] == 8
        # The run page has a "Run report" tab: the report, through the API server's plugin.
        page.goto(f"http://127.0.0.1:{port}/dags/voice_batch/runs/{urllib.parse.quote(run['dag_run_id'])}")
        page.get_by_text("Run report", exact=True).first.click()
        frame = page.frame_locator("iframe")
        frame.locator("#summary-table").wait_for()
        audio = frame.locator("audio")
        report = report_of(local, run["dag_run_id"])
        takes = [t for r in report["scripts"] for c in r["quarantined"] for t in c["takes"] if t.get("audio_key")]
        voices = [v for v in report["voices"] if v["status"] == "ok"]
        assert len(takes) == 4 and len(voices) == 2, "the tiny model's chunks are all quarantined, one take each"
        assert audio.count() == 2 + len(voices) + len(takes), "a player per script, reference clip and kept take"
        loaded = frame.locator("body").evaluate(
            """async () => {
                const players = [...document.querySelectorAll('audio')];
                const until = Date.now() + 20000;
                while (Date.now() < until && !players.every(a => a.readyState >= 1
                        && a.textTracks.length && a.textTracks[0].cues && a.textTracks[0].cues.length)) {
                    await new Promise(r => setTimeout(r, 200));
                }
                const cues = a => (a.textTracks[0] && a.textTracks[0].cues ? a.textTracks[0].cues.length : 0);
                return players.map(a => ({src: a.src, ready: a.readyState, duration: a.duration, cues: cues(a)}));
            }"""
        )
        Path(local["logs"], "run-report.png").write_bytes(page.screenshot(full_page=True))
        prefix = f"http://127.0.0.1:{port}/voicebatch/runs/voice_batch/"
        assert all(p["src"].startswith(prefix) and "/files/" in p["src"] for p in loaded), loaded
        assert all(p["ready"] >= 1 and p["duration"] > 0.5 and p["cues"] >= 1 for p in loaded), loaded
        # The report task's "Run report" link (Details tab) opens the same report, an http link.
        page.goto(
            f"http://127.0.0.1:{port}/dags/voice_batch/runs/{urllib.parse.quote(run['dag_run_id'])}/tasks/report/details"
        )
        link = page.get_by_role("link", name="Run report")
        link.wait_for()
        href = link.get_attribute("href")
        assert href == f"/voicebatch/runs/voice_batch/{urllib.parse.quote(run['dag_run_id'], safe='')}/"
        page.goto(f"http://127.0.0.1:{port}{href}")
        assert page.locator("h1").inner_text() == "voicebatch run report"
        assert page.url.endswith("/report.html")
        browser.close()
