"""Running Airflow in a subprocess with its own AIRFLOW_HOME (config is read at import time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "deploy"))

from airflow_env import airflow_env as project_airflow_env  # noqa: E402 - deploy/ is not a package


def start(command: list[str], log: Path, env: dict | None = None, user: str | None = None) -> subprocess.Popen:
    """A long-running process in its own session (so its whole group can be stopped), logging to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, user=user
        )


def stop(processes: list[subprocess.Popen], timeout: float = 30) -> None:
    """Stop every process group by PID: SIGTERM, then SIGKILL after ``timeout`` seconds."""
    import signal

    for process in reversed(processes):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def airflow(env: dict[str, str], *args: str) -> str:
    """``airflow ARGS`` with ``env``; its stdout (the test fails with its output when it fails)."""
    result = subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"airflow {' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


def api_token(port: int, password: str) -> str:
    """A JWT from the simple auth manager for ``admin``, as the UI gets one."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/auth/token",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["access_token"]


def wait_until(what: str, check: Callable[[], Any], timeout: float, logs: Path) -> Any:
    """``check()``'s first truthy value; on timeout, fail with the tail of every log in ``logs``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(2)  # polling a live scheduler, not timing anything
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in sorted(logs.glob("*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The project's Airflow environment (deploy/airflow_env.py), with nothing of the caller's Airflow,
    and this tree's src/ first on PYTHONPATH (the tree under test, not an installed copy)."""
    env = project_airflow_env(home, parallelism=2, clean=True, **extra)
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env["PYTHONPATH"]])}


def init_airflow(home: Path, **extra: str) -> dict[str, str]:
    env = airflow_env(home, **extra)
    subprocess.run(["bash", str(ROOT / "deploy" / "airflow-init.sh")], env=env, check=True, capture_output=True)
    return env


def s3_connection(endpoint: str, access_key: str, secret: str) -> str:
    import json

    return json.dumps(
        {
            "conn_type": "aws",
            "login": access_key,
            "password": secret,
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )


DAG_TEST = r"""
import datetime, json, sys
from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.dagbag import DagBag
from airflow.utils.session import create_session
from sqlalchemy import select
dag = DagBag(sys.argv[1]).dags["voice_batch"]
logical_date = datetime.datetime.fromisoformat(sys.argv[3]) if sys.argv[3] else None
run = dag.test(run_conf=json.loads(sys.argv[2]), logical_date=logical_date)
# Read back from the metadata DB: each task's state and try number, the run's Asset events and links.
tis = run.get_task_instances()
tasks = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in tis}
tries = {f"{ti.task_id}[{ti.map_index}]": ti.try_number for ti in tis}
query = select(AssetEvent, AssetModel.uri, AssetModel.name, AssetModel.extra).join(
    AssetModel, AssetModel.id == AssetEvent.asset_id
)
from airflow.models.xcom import XComModel
with create_session() as session:
    rows = session.execute(query.where(AssetEvent.source_run_id == run.run_id)).all()
    events = [
        {"uri": uri, "asset": name, "extra": event.extra, "task": event.source_task_id, "asset_extra": asset_extra}
        for event, uri, name, asset_extra in rows
    ]
    found = session.scalars(
        select(XComModel).where(XComModel.run_id == run.run_id, XComModel.key.startswith("_link_"))
    ).all()
    links = {f"{x.task_id}[{x.map_index}]": XComModel.deserialize_value(x) for x in found}
result = {"state": str(run.state), "run_id": run.run_id, "tasks": tasks, "tries": tries, "events": events,
          "links": links}
print("DAGTEST " + json.dumps(result))
"""


def dag_test(env: dict[str, str], conf: dict, timeout: int = 600, logical_date: str = "") -> dict:
    """``dag.test()`` in a subprocess: the run's state, task states and tries, its Asset events
    and the extra links its tasks computed."""
    import json

    result = subprocess.run(
        [sys.executable, "-c", DAG_TEST, str(ROOT / "dags"), json.dumps(conf), logical_date],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("DAGTEST ")]
    assert lines, f"dag.test failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return {**json.loads(lines[-1][len("DAGTEST ") :]), "output": result.stdout + result.stderr}  # the task logs


def demo_inputs(root: Path, *, broken_voice: bool = True) -> tuple[Path, Path]:
    """Two demo voices (real speech), optionally a silent one, and two short scripts."""
    import numpy as np
    import soundfile as sf

    voices = root / "voices"
    subprocess.run(
        [sys.executable, str(ROOT / "include" / "build_demo_voices.py"), "--out", str(voices)],
        check=True,
        capture_output=True,
    )
    import shutil

    shutil.rmtree(voices / "narrator")
    if broken_voice:
        (voices / "ghost").mkdir()
        sf.write(voices / "ghost" / "take.wav", np.zeros(24_000 * 5, dtype="float32"), 24_000)
        (voices / "ghost" / "take.srt").write_text("1\n00:00:00,000 --> 00:00:04,000\nNothing at all.\n")
    scripts = root / "scripts"
    scripts.mkdir()
    (scripts / "hello.txt").write_text("---\nvoice: nature\n---\nHello there. This is a short test.")
    (scripts / "duet.txt").write_text("[nature] Good morning! [taiyi] 你好。")
    return voices, scripts
