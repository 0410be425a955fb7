"""The stack for `make compose-test` (tests/compose/run.sh builds the images first).

One compose project for the whole session: docker-compose.yaml with the stand-ins' override and
`--profile gpu`, a `.env` written by deploy/make_env.py (secrets generated), the tiny random
model in the stack's S3 models prefix (the deployment's VOICEBATCH_MODEL), the demo voices and
scripts in its S3. The figures (build, sizes, time to healthy, each run) go to
$VOICEBATCH_COMPOSE_STATE/figures.json for the summary line; `down -v` at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import HERE, ROOT, TAG, Airflow, Network, Project, dotenv, run, wait_until

STATE = Path(os.environ.get("VOICEBATCH_COMPOSE_STATE", ROOT / "out" / "compose-test"))
BUCKET = "voicebatch"
# The first run: the demo voices and scripts. The drills: two short scripts, two chunks per
# synthesize task (several tasks, so a kill lands mid-synthesis and the f5_gpu pool has work to
# order). Both: NFE 4 (the Param's minimum) to keep CPU time short, no ASR verification (the tiny
# model speaks noise: every take would fail and be re-taken).
CONF = {"nfe_steps": 4, "verify": "off", "chunks_per_task": 16, "scripts_uri": f"s3://{BUCKET}/scripts/demo"}
DRILL = {"nfe_steps": 4, "verify": "off", "chunks_per_task": 2, "scripts_uri": f"s3://{BUCKET}/scripts/drill"}
DRILL_SCRIPTS = {
    "morning.txt": "---\nvoice: nature\n---\nGood morning. The train leaves at nine.\n\n"
    "Bring a coat, it is cold outside. We will be back before dinner.",
    "duet.txt": "[nature] Hello there! Are you ready? [narrator] Ready as ever. Let us go.",
}


def output_uri(name: str) -> str:
    return f"s3://{BUCKET}/output/{name}"


class Figures:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = json.loads(path.read_text()) if path.exists() else {}

    def set(self, key: str, value: object) -> None:
        self.data[key] = value
        self.path.write_text(json.dumps(self.data, indent=1))


@pytest.fixture(scope="session")
def figures() -> Figures:
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "figures.json").unlink(missing_ok=True)
    return Figures(STATE / "figures.json")


def build_inputs(state: Path) -> tuple[Path, Path, dict]:
    """The demo voices (real speech, include/build_demo_voices.py) and the tiny model, made here."""
    voices = state / "voices"
    if not (voices / ".built").exists():
        run([sys.executable, str(ROOT / "include" / "build_demo_voices.py"), "--out", str(voices)])
        (voices / ".built").touch()
    drill = state / "drill-scripts"
    drill.mkdir(exist_ok=True)
    for name, text in DRILL_SCRIPTS.items():
        (drill / name).write_text(text)
    model = state / "tiny-model"
    row = json.loads(run([str(Path(sys.executable).parent / "voicebatch"), "model", "tiny", str(model), "--json"]))
    return voices, model, row


def upload(client, folder: Path, prefix: str) -> int:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder)}")
    return len(files)


@pytest.fixture(scope="session")
def stack(figures: Figures) -> Iterator[dict]:
    import boto3

    voices, model, row = build_inputs(STATE)
    ident = uuid.uuid4().hex[:6]
    network = Network.create(f"vbct{ident}-main")
    env_file = STATE / "main.env"
    env_file.unlink(missing_ok=True)
    settings = {
        "VOICEBATCH_BIND_ADDRESS": network.gateway,
        "VOICEBATCH_IMAGE": f"voicebatch:{TAG}",
        "VOICEBATCH_CONTROL_IMAGE": f"voicebatch-control:{TAG}",
        "VOICEBATCH_MODEL": row["name"],  # found in the S3 models prefix, where the test puts it
    }
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    run([sys.executable, str(ROOT / "deploy" / "make_env.py"), "--output", str(env_file), *sets])
    project = Project(
        name=f"vbct{ident}",
        files=[ROOT / "docker-compose.yaml", HERE / "docker-compose.standins.yaml"],
        env_file=env_file,
        network=network,
        profiles=["gpu"],
        logs=STATE / "logs",
    )
    dot = dotenv(env_file)
    gateway = network.gateway
    try:
        start = time.monotonic()
        project.compose("up", "-d", timeout=1200)
        healthy = time.monotonic() - start
        healthy += project.wait_healthy()
        figures.set("time_to_healthy_s", round(healthy))
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{gateway}:9000",
            aws_access_key_id=dot["S3_ADMIN_ACCESS_KEY"],
            aws_secret_access_key=dot["S3_ADMIN_SECRET_KEY"],
            region_name=dot["S3_REGION"],
        )
        uploaded = upload(s3, model, f"models/{row['name']}")
        uploaded += upload(s3, voices, "voices")
        uploaded += upload(s3, ROOT / "include" / "scripts", "scripts/demo")
        uploaded += upload(s3, STATE / "drill-scripts", "scripts/drill")
        figures.set("inputs_uploaded", uploaded)
        airflow = Airflow(f"http://{gateway}:8080", dot["VOICEBATCH_ADMIN_USER"], dot["VOICEBATCH_ADMIN_PASSWORD"])
        wait_until(
            "voice_batch to be parsed",
            lambda: _dag_parsed(airflow),
            300,
            project.tail_logs,
        )
        airflow.request("PATCH", "/api/v2/dags/voice_batch", {"is_paused": False})
        yield {
            "project": project,
            "airflow": airflow,
            "s3": s3,
            "dotenv": dot,
            "gateway": gateway,
            "ident": ident,
            "model": row,
        }
    finally:
        project.down()
        network.remove()


def _dag_parsed(airflow: Airflow) -> bool:
    try:
        return airflow.request("GET", "/api/v2/dags/voice_batch")["dag_id"] == "voice_batch"
    except (OSError, AssertionError):
        return False


def timed_run(stack: dict, figures: Figures, name: str, base: dict = DRILL, **conf: object) -> dict:
    """Trigger voice_batch through the REST API with output under output/<name>; wait for it."""
    airflow: Airflow = stack["airflow"]
    run_id = f"{name}-{uuid.uuid4().hex[:6]}"
    start = time.monotonic()
    airflow.trigger("voice_batch", run_id, {**base, "output_uri": output_uri(name), **conf})
    finished = airflow.wait_finished("voice_batch", run_id)
    figures.set(f"run_{name}_s", round(time.monotonic() - start))
    return finished | {"run_id": run_id, "output": f"output/{name}"}


@pytest.fixture(scope="session")
def main_run(stack: dict, figures: Figures) -> dict:
    """The first run on the fresh stack: every task from scratch, the reference output."""
    stack["project"].compose("start", "airflow-gpu-worker")
    found = timed_run(stack, figures, "main", CONF)
    tis = stack["airflow"].task_instances("voice_batch", found["run_id"])
    keys = [o["Key"] for o in _objects(stack["s3"], "output/main/")]
    figures.set("main_run_state", found["state"])
    figures.set("main_tasks_succeeded", sum(t["state"] == "success" for t in tis))
    figures.set("main_tasks", len(tis))
    figures.set("main_objects_published", len([k for k in keys if "/_staging/" not in k]))
    return found | {"task_instances": tis, "keys": keys}


def _objects(s3, prefix: str) -> list[dict]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o for page in pages for o in page.get("Contents", [])]


@pytest.fixture
def objects(stack: dict):
    return lambda prefix: _objects(stack["s3"], prefix)


def container_ids(project: Project, service: str) -> list[str]:
    return project.compose("ps", "-q", service).split()


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="session")
def drill_run(stack: dict, figures: Figures, main_run: dict) -> dict:
    """One undisturbed run of the drill scripts on the stack's own GPU worker: the single run the
    drills' outputs must equal."""
    stack["project"].compose("start", "airflow-gpu-worker")
    found = timed_run(stack, figures, "drill")
    assert found["state"] == "success", found
    return found
