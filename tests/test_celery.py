"""The distributed path without Docker: docker-compose.yaml's Airflow, run as separate processes.

PostgreSQL and Redis come from Debian's packages (`make system-deps`), each a private instance
on a free port with the password `make env` generated; S3 is the moto server. Every Airflow
component gets its own AIRFLOW_HOME, as each container has its own filesystem, and takes its
settings from its service's environment in `docker-compose config` (with a generated `.env`),
with the compose host names pointed at this machine and the few test-only changes in
`local_overrides`. So a setting the components must share (the JWT secret, the fernet key) is
shared only if the compose file shares it:

- without the shared secrets each component generates its own and tasks fail on token
  verification (the first test shows it);
- with them the DAG runs: synthesize tasks on queue `gpu` on the gpu worker, never two at once
  (pool `f5_gpu` has one slot), everything else on `default`; the UI login is the one in `.env`
  (FAB user created by deploy/compose-init.sh) and task logs are read back from S3.

Everything started here is stopped by its PID.
"""

from __future__ import annotations

import itertools
import json
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from voicebatch.locations.storage import open_storage, s3_client

from airflow_helpers import BIN, ROOT, airflow_env, demo_inputs, start, stop
from conftest import free_port, wait_for_port

COMPOSE = ROOT / "docker-compose.yaml"
BUCKET = "celery-compose"
# What the components must agree on; the compose file sets each once for all of them.
SHARED_SECRETS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY")
COMPONENTS = {  # test name -> compose service
    "init": "airflow-init",
    "api": "airflow-apiserver",
    "scheduler": "airflow-scheduler",
    "dag-processor": "airflow-dag-processor",
    "worker-cpu": "airflow-worker",
    "worker-gpu": "airflow-gpu-worker",
}


def compose_services(env_file: Path) -> dict[str, dict[str, str]]:
    """Each service's environment as `docker-compose config` resolves it with ``env_file``."""
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "--project-directory", str(ROOT), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        check=True,
    )
    services = yaml.safe_load(result.stdout)["services"]
    return {name: {k: str(v) for k, v in s.get("environment", {}).items()} for name, s in services.items()}


def dotenv(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def postgres(root: Path, logs: Path, password: str, processes: list) -> int:
    """A private PostgreSQL cluster owned by the postgres user (initdb refuses root), with the
    generated password required. It lives under /tmp: pytest's temporary tree is closed to
    other users."""
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1].parent
    data = Path(tempfile.mkdtemp(prefix="voicebatch-pg-"))
    (root / "pgdata").symlink_to(data)  # removed with the test's tree; see services() for the data
    shutil.chown(data, "postgres")
    pwfile = data / "pwfile"
    pwfile.write_text(password)
    shutil.chown(pwfile, "postgres")
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data / "db"), "-U", "airflow", "--auth=scram-sha-256", f"--pwfile={pwfile}"],
        check=True,
        capture_output=True,
        user="postgres",
    )
    port = free_port()
    process = start(
        [str(bindir / "postgres"), "-D", str(data / "db"), "-p", str(port), "-k", str(data), "-h", "127.0.0.1"],
        logs / "postgres.log",
        user="postgres",
    )
    processes.append(process)
    wait_for_port(port, process)
    return port


def createdb(port: int, password: str, name: str) -> None:
    bindir = sorted(Path("/usr/lib/postgresql").glob("*/bin/createdb"))[-1].parent
    env = {"PGPASSWORD": password, "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", name],
        check=True,
        capture_output=True,
        env=env,
    )


def redis(logs: Path, password: str, processes: list) -> int:
    port = free_port()
    process = start(
        [*("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""), "--requirepass", password],
        logs / "redis.log",
    )
    processes.append(process)
    wait_for_port(port, process)
    return port


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, s3_endpoint: str, tiny_model_dir: Path) -> Iterator[dict]:
    """PostgreSQL, Redis and S3 with the secrets of a `.env` written by deploy/make_env.py."""
    pwd.getpwnam("postgres")  # Debian's postgresql package creates this user
    root = tmp_path_factory.mktemp("celery")
    logs = root / "logs"
    logs.mkdir()
    env_file = root / ".env"
    settings = {
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_BUCKET": BUCKET,
        "VOICEBATCH_VOICES_URI": f"s3://{BUCKET}/voices",
        "VOICEBATCH_SCRIPTS_URI": f"s3://{BUCKET}/scripts",
        "VOICEBATCH_OUTPUT_URI": f"s3://{BUCKET}/output",
        "VOICEBATCH_MODELS_URI": f"s3://{BUCKET}/models",
        "VOICEBATCH_MODEL": str(tiny_model_dir),
    }
    sets = [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]
    subprocess.run(["python3", str(ROOT / "deploy" / "make_env.py"), "--output", str(env_file), *sets], check=True)
    dot = dotenv(env_file)
    processes: list[subprocess.Popen] = []
    try:
        pg_port = postgres(root, logs, dot["POSTGRES_PASSWORD"], processes)
        redis_port = redis(logs, dot["REDIS_PASSWORD"], processes)
        client = s3_client(
            s3_endpoint, "us-east-1", aws_access_key_id=dot["S3_ACCESS_KEY"], aws_secret_access_key=dot["S3_SECRET_KEY"]
        )
        client.create_bucket(Bucket=BUCKET)
        voices, scripts = demo_inputs(root, broken_voice=False)
        inputs = open_storage(f"s3://{BUCKET}", client=client)
        for folder in (voices, scripts):
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                inputs.put_bytes(f"{folder.name}/{path.relative_to(folder)}", path.read_bytes())
        yield {
            "root": root,
            "dotenv": dot,
            "compose": compose_services(env_file),
            "ports": {"postgres": pg_port, "redis": redis_port},
            "client": client,
            "tiny_model": tiny_model_dir,
        }
    finally:
        stop(processes)
        if (root / "pgdata").is_symlink():
            shutil.rmtree((root / "pgdata").resolve(), ignore_errors=True)


def local_overrides(name: str, root: Path) -> dict[str, str]:
    """What the test changes besides host names, and why: the processes share one machine."""
    overrides = {
        "VOICEBATCH_MODEL_DIR": str(root / "models"),  # compose: the /models volume
        "VOICEBATCH_GPU_LOCK_DIR": str(root / "gpu-locks"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",  # parse the DAG soon after start
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
    }
    if name.startswith("worker"):
        # Containers have their own host names and ports; here the two workers share both.
        overrides["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "voicebatch_airflow.worker_hostname"
        overrides["VOICEBATCH_WORKER_HOSTNAME"] = name
        overrides["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        overrides["VOICEBATCH_WORKER_CONCURRENCY"] = "2"
    return overrides


def component_env(
    services: dict, name: str, home: Path, api_port: int, database: str, redis_db: int, shared_secrets: bool
) -> dict[str, str]:
    compose = dict(services["compose"][COMPONENTS[name]])
    if name == "worker-gpu":
        # The one compose setting this CPU-only machine cannot honour: the GPU worker refuses the CPU.
        assert compose.pop("VOICEBATCH_REQUIRE_GPU") == "1"
    if not shared_secrets:
        for key in SHARED_SECRETS:
            del compose[key]
    ports = services["ports"]
    hosts = {
        "@postgres:5432/airflow": f"@127.0.0.1:{ports['postgres']}/{database}",
        "@redis:6379/0": f"@127.0.0.1:{ports['redis']}/{redis_db}",
        "//airflow-apiserver:8080/": f"//127.0.0.1:{api_port}/",
    }
    for key, value in compose.items():
        for host, here in hosts.items():
            value = value.replace(host, here)
        compose[key] = value
    home.mkdir(parents=True)
    return airflow_env(home, **{**compose, **local_overrides(name, services["root"])})


def start_airflow(services: dict, tag: str, *, shared_secrets: bool, redis_db: int) -> dict:
    """One Airflow on its own database: init, api-server, scheduler, dag-processor, two workers."""
    root = services["root"] / tag
    logs = root / "logs"
    logs.mkdir(parents=True)
    database = f"airflow_{tag}"
    createdb(services["ports"]["postgres"], services["dotenv"]["POSTGRES_PASSWORD"], database)
    api_port = free_port()
    envs = {
        name: component_env(services, name, root / name, api_port, database, redis_db, shared_secrets)
        for name in COMPONENTS
    }
    init = subprocess.run(
        ["bash", str(ROOT / "deploy" / "compose-init.sh")], env=envs["init"], capture_output=True, text=True
    )
    assert init.returncode == 0, init.stdout + init.stderr
    airflow = str(BIN / "airflow")
    commands = {
        "api": [airflow, "api-server", "-H", "127.0.0.1", "-p", str(api_port)],
        "scheduler": [airflow, "scheduler"],
        "dag-processor": [airflow, "dag-processor"],
        # compose's command; the GPU worker's (worker.sh gpu) refuses to start without a GPU, so
        # it gets the command worker.sh would exec.
        "worker-cpu": ["bash", str(ROOT / "deploy" / "worker.sh"), "default"],
        "worker-gpu": [airflow, "celery", "worker", "--queues", "gpu", "-H", "gpu@%h", "--concurrency", "2"],
    }
    processes = [start(command, logs / f"{name}.log", envs[name]) for name, command in commands.items()]
    try:
        wait_for_port(api_port, processes[0], timeout=180)
    except BaseException:
        stop(processes)
        raise
    database_url = envs["api"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    return {"env": envs["api"], "logs": logs, "database": database_url, "processes": processes, "api": api_port}


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


def trigger(cluster: dict, run_id: str, conf: dict) -> None:
    env, logs = cluster["env"], cluster["logs"]
    wait_for("voice_batch to be parsed", lambda: "voice_batch" in airflow_cli(env, "dags", "list", "-o", "plain"), logs)
    airflow_cli(env, "dags", "unpause", "voice_batch")
    airflow_cli(env, "dags", "trigger", "voice_batch", "-r", run_id, "--conf", json.dumps(conf))


def api(port: int, path: str, token: str | None = None, body: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_without_the_shared_secrets_tasks_fail_on_token_verification(services: dict) -> None:
    """The bug this deployment fixes: each component with its own secrets (as containers without
    AIRFLOW__API_AUTH__JWT_SECRET write their own) cannot run a single task."""
    cluster = start_airflow(services, "nosecrets", shared_secrets=False, redis_db=1)
    try:
        trigger(cluster, "nosecrets_run", {"nfe_steps": 8})

        def rejected() -> bool:
            text = "".join(p.read_text() for p in cluster["logs"].glob("*.log"))
            return "Invalid auth token" in text and "Signature verification failed" in text

        wait_for("a task to be rejected on token verification", rejected, cluster["logs"], timeout=300)
        states = query(cluster["database"], "select state from task_instance where run_id = 'nosecrets_run'")
        assert ("success",) not in states, states
    finally:
        stop(cluster["processes"])


@pytest.fixture(scope="module")
def cluster(services: dict) -> Iterator[dict]:
    airflow = start_airflow(services, "compose", shared_secrets=True, redis_db=0)
    try:
        yield airflow | {"storage": open_storage(f"s3://{BUCKET}/output", client=services["client"])}
    finally:
        stop(airflow["processes"])


@pytest.fixture(scope="module")
def celery_run(cluster: dict) -> str:
    """One run through the cluster, finished (both tests read what it left, in any order)."""
    trigger(cluster, "celery_run", {"nfe_steps": 8, "chunks_per_task": 1})

    def finished() -> str | None:
        found = query(cluster["database"], "select state from dag_run where run_id = 'celery_run'")
        return found[0][0] if found and found[0][0] in ("success", "failed") else None

    return wait_for("the run to finish", finished, cluster["logs"])


def test_synthesize_runs_on_the_gpu_queue_and_worker_one_at_a_time(
    cluster: dict, celery_run: str, capsys: pytest.CaptureFixture
) -> None:
    database, state = cluster["database"], celery_run
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
    assert all(r[2] == "success" and r[3] == "gpu" and r[4] == "worker-gpu" and r[5] == "f5_gpu" for r in synth)
    # The review's tasks (Param review off) are skipped by the scheduler without running anywhere.
    never_ran = [r for r in rows if not r[4]]
    assert {r[0] for r in never_ran} <= {"review", "apply_review"}, table
    assert all(r[2] == "skipped" for r in never_ran), table
    others = [r for r in rows if r[0] != "synthesize" and r[4]]
    assert all(r[3] == "default" and r[4] == "worker-cpu" for r in others), table
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


def test_login_from_env_and_task_logs_from_s3(cluster: dict, services: dict, celery_run: str) -> None:
    """The documented login works (FAB user from .env, created by deploy/compose-init.sh), and
    the api-server, whose home holds no task log, reads a worker's log back from S3."""
    dot = services["dotenv"]
    body = {"username": dot["VOICEBATCH_ADMIN_USER"], "password": dot["VOICEBATCH_ADMIN_PASSWORD"]}
    token = api(cluster["api"], "/auth/token", body=body)["access_token"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(cluster["api"], "/auth/token", body=body | {"password": "admin"})
    assert refused.value.code == 401
    keys = [o["Key"] for o in services["client"].list_objects_v2(Bucket=BUCKET, Prefix="logs/")["Contents"]]
    assert any("run_id=celery_run" in k and "task_id=plan" in k for k in keys), keys
    log = api(cluster["api"], "/api/v2/dags/voice_batch/dagRuns/celery_run/taskInstances/plan/logs/1", token)
    text = json.dumps(log["content"])
    assert f"s3://{BUCKET}/logs/" in text, text[:2000]  # the source the api-server names
    assert "plan" in text and "voice_batch" in text, text[:2000]
    assert not list((cluster["logs"].parent / "api" / "logs").rglob("*plan*")), "the api-server read a local copy"


def test_plan_fails_at_once_naming_the_missing_gpu_worker(services: dict) -> None:
    """No worker consumes queue gpu (compose without --profile gpu and no GPU host): the check plan
    runs before synthesis fails with one line, instead of the run waiting forever. Here against the
    real broker, on a Redis database no worker listens on; with a worker (celery_run) it passes."""
    import sys

    password, port = services["dotenv"]["REDIS_PASSWORD"], services["ports"]["redis"]
    env = airflow_env(
        services["root"] / "queue-check",
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=f"redis://:{password}@127.0.0.1:{port}/7",
    )
    code = "from voicebatch_airflow import require_queue_worker; require_queue_worker('gpu', 3, wait_seconds=0)"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("airflow.sdk.exceptions.AirflowFailException")]
    assert "queue 'gpu'" in line and "3 synthesize task(s)" in line and "start the GPU worker" in line, line
