"""The distributed path without Docker: CeleryExecutor, PostgreSQL, Redis, two Celery workers.

PostgreSQL (a private cluster in a temporary directory) and Redis come from Debian's packages
(`make system-deps` installs them). Airflow's Celery settings are taken from
docker-compose.yaml's common environment, with the hosts pointed at 127.0.0.1. A CPU worker
serves queue `default` and a "GPU" worker (the tiny model on the CPU) serves queue `gpu`;
the DAG runs and the metadata DB must show every synthesize task on queue `gpu`, run by the
gpu worker, and never two at once (pool `f5_gpu` has one slot). Everything started here is
stopped by its PID.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from voicebatch.storage import open_storage, s3_client

from airflow_helpers import BIN, ROOT, demo_inputs, init_airflow, s3_connection, start, stop
from conftest import S3_ACCESS_KEY, S3_SECRET_KEY, free_port, wait_for_port

COMPOSE = ROOT / "docker-compose.yaml"


def compose_environment() -> dict[str, str]:
    document = yaml.safe_load(COMPOSE.read_text())
    return {k: str(v) for k, v in document["x-airflow-common"]["environment"].items()}


def postgres(root: Path, logs: Path, processes: list) -> int:
    """A private PostgreSQL cluster owned by the postgres user (initdb refuses root). It lives
    in its own directory under /tmp: pytest's temporary tree is closed to other users."""
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
    data = Path(tempfile.mkdtemp(prefix="voicebatch-pg-"))
    (root / "pgdata").symlink_to(data)  # removed with the test's tree; see cluster() for the data
    shutil.chown(data, "postgres")
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "airflow", "--auth=trust"],
        check=True,
        capture_output=True,
        user="postgres",
    )
    port = free_port()
    process = start(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data), "-h", "127.0.0.1"],
        logs / "postgres.log",
        user="postgres",
    )
    processes.append(process)
    wait_for_port(port, process)
    subprocess.run(
        [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "airflow"],
        check=True,
        capture_output=True,
    )
    return port


def redis(logs: Path, processes: list) -> int:
    port = free_port()
    process = start(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        logs / "redis.log",
    )
    processes.append(process)
    wait_for_port(port, process)
    return port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, tiny_model_dir: Path) -> Iterator[dict]:
    pwd.getpwnam("postgres")  # Debian's postgresql package creates this user
    root = tmp_path_factory.mktemp("celery")
    logs = root / "logs"
    logs.mkdir()
    processes: list[subprocess.Popen] = []
    try:
        pg_port, redis_port = postgres(root, logs, processes), redis(logs, processes)
        voices, scripts = demo_inputs(root, broken_voice=False)
        client = s3_client(
            s3_endpoint, "us-east-1", aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY
        )
        client.create_bucket(Bucket="celery")
        api_port = free_port()
        home = root / "airflow"
        home.mkdir()
        (home / "passwords.json").write_text(json.dumps({"admin": "celery-test"}))
        compose = compose_environment()
        database = f"postgresql+psycopg2://airflow@127.0.0.1:{pg_port}/airflow"
        env = init_airflow(
            home,
            **{
                **{k: v for k, v in compose.items() if k.startswith("AIRFLOW__")},
                # The compose file's settings, with its service hosts pointed at this machine.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database.replace("+psycopg2", ""),
                "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "true",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "voicebatch_airflow.worker_hostname",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW_CONN_TEST_S3": s3_connection(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY),
                "VOICEBATCH_VOICES_URI": str(voices),
                "VOICEBATCH_SCRIPTS_URI": str(scripts),
                "VOICEBATCH_OUTPUT_URI": "s3://celery/out",
                "VOICEBATCH_AWS_CONN_ID": "test_s3",
                "VOICEBATCH_MODEL": str(tiny_model_dir),
                "VOICEBATCH_GPU_LOCK_DIR": str(root / "gpu-locks"),
            },
        )
        airflow = str(BIN / "airflow")
        processes.append(start([airflow, "api-server", "-H", "127.0.0.1", "-p", str(api_port)], logs / "api.log", env))
        processes.append(start([airflow, "scheduler"], logs / "scheduler.log", env))
        processes.append(start([airflow, "dag-processor"], logs / "dag-processor.log", env))
        for name, queue in (("cpu", "default"), ("gpu", "gpu")):
            worker_env = {
                **env,
                "VOICEBATCH_WORKER_HOSTNAME": f"{name}-worker",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            }
            command = [airflow, "celery", "worker", "-q", queue, "-H", f"{name}@%h", "--concurrency", "2"]
            processes.append(start(command, logs / f"worker-{name}.log", worker_env))
        wait_for_port(api_port, processes[2], timeout=120)
        yield {
            "env": env,
            "logs": logs,
            "database": database,
            "storage": open_storage("s3://celery/out", client=client),
        }
    finally:
        stop(processes)
        if (root / "pgdata").is_symlink():
            shutil.rmtree((root / "pgdata").resolve(), ignore_errors=True)


def airflow_cli(env: dict, *args: str) -> str:
    result = subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"airflow {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


def query(database: str, sql: str) -> list[tuple]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(database)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sqlalchemy.text(sql))]
    finally:
        engine.dispose()


def wait_for(what: str, check, logs: Path, timeout: float = 480) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(2)  # polling live services
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(logs.glob("*.log")))
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def test_synthesize_runs_on_the_gpu_queue_and_worker_one_at_a_time(
    cluster: dict, capsys: pytest.CaptureFixture
) -> None:
    env, logs, database = cluster["env"], cluster["logs"], cluster["database"]
    wait_for("voice_batch to be parsed", lambda: "voice_batch" in airflow_cli(env, "dags", "list", "-o", "plain"), logs)
    airflow_cli(env, "dags", "unpause", "voice_batch")
    conf = {"nfe_steps": 8, "chunks_per_task": 1}
    airflow_cli(env, "dags", "trigger", "voice_batch", "-r", "celery_run", "--conf", json.dumps(conf))

    def finished() -> str | None:
        found = query(database, "select state from dag_run where run_id = 'celery_run'")
        return found[0][0] if found and found[0][0] in ("success", "failed") else None

    state = wait_for("the run to finish", finished, logs)
    rows = query(
        database,
        "select task_id, map_index, state, queue, hostname, pool, start_date, end_date, queued_dttm "
        "from task_instance where run_id = 'celery_run' order by start_date",
    )
    table = "\n".join(f"{r[0]:>14} {r[1]:>3} {r[2]:>8} {r[3]:>8} {r[4]:>12} {r[5]}" for r in rows)
    with capsys.disabled():  # shown in CI's output, not only on failure
        print(f"\ntask instances of celery_run (task, map index, state, queue, hostname, pool):\n{table}")
    assert state == "success", table
    synth = [r for r in rows if r[0] == "synthesize"]
    assert len(synth) >= 3, "several synthesize tasks are needed to see the pool at work"
    assert all(r[2] == "success" and r[3] == "gpu" and r[4] == "gpu-worker" and r[5] == "f5_gpu" for r in synth)
    others = [r for r in rows if r[0] != "synthesize"]
    assert all(r[3] == "default" and r[4] == "cpu-worker" for r in others), table
    spans = sorted((r[6], r[7]) for r in synth)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans)), (
        "two synthesize tasks overlapped although pool f5_gpu has one slot"
    )
    # Not by chance: the scheduler queued each synthesize task only after the one before it had ended
    # (the gpu worker could run two at once), because the pool has one slot.
    by_queueing = sorted(synth, key=lambda r: r[8])
    assert all(before[7] <= after[8] for before, after in itertools.pairwise(by_queueing)), (
        "a synthesize task was queued while another held the pool's only slot"
    )
    assert query(database, "select slots from slot_pool where pool = 'f5_gpu'") == [(1,)]
    assert {"hello", "duet"} <= {
        k.split("/")[1] for k in cluster["storage"].list("audio/") if k.endswith("manifest.json")
    }


def test_compose_file_is_valid_and_its_celery_environment_is_the_tested_one(tmp_path: Path) -> None:
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--project-directory", str(ROOT), "config", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "COMPOSE_INTERACTIVE_NO_CLI": "1"},
    )
    assert result.returncode == 0, result.stderr
    compose = compose_environment()
    assert compose["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    document = yaml.safe_load(COMPOSE.read_text())
    services = document["services"]
    assert (
        "-q default" in services["airflow-worker"]["command"] and "-q gpu" in services["airflow-gpu-worker"]["command"]
    )
    devices = services["airflow-gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    assert {
        "postgres",
        "redis",
        "minio",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-gpu-worker",
    } <= set(services)
