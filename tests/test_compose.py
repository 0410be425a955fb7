"""The deployment files, checked statically (no Docker engine here): docker-compose.yaml and
docker-compose.worker.yaml through Debian's `docker-compose config`, the `.env` generator, and the
image's requirement split. What they must never do is what a review of the deploy files found: unpinned images,
secrets with defaults, services without healthchecks, a GPU worker started on every host."""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yaml"
WORKER_COMPOSE = ROOT / "docker-compose.worker.yaml"
sys.path.insert(0, str(ROOT / "deploy"))

from make_env import SECRETS  # noqa: E402 - deploy/ is not a package
from requirements import requirements  # noqa: E402

# One-shot services (they exit); every other service runs for good and needs a healthcheck.
ONE_SHOT = {"airflow-init", "s3-init"}
PROJECT_IMAGES = {"${VOICEBATCH_IMAGE", "${VOICEBATCH_CONTROL_IMAGE"}
REMOTE = {"VOICEBATCH_MAIN_HOST": "10.0.0.2", "VOICEBATCH_WORKER_ADDRESS": "10.0.0.3"}


def make_env(path: Path, *settings: str) -> Path:
    sets = [arg for item in settings for arg in ("--set", item)]
    subprocess.run([sys.executable, str(ROOT / "deploy" / "make_env.py"), "--output", str(path), *sets], check=True)
    return path


def compose_config(env_file: Path | None, compose: Path = COMPOSE, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    command = ["docker-compose", "-f", str(compose), "--project-directory", str(cwd)]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    # A clean environment: nothing of the caller's shell may fill a variable the file requires.
    env = {"PATH": os.environ["PATH"], "COMPOSE_INTERACTIVE_NO_CLI": "1"}
    return subprocess.run([*command, "config"], capture_output=True, text=True, env=env, cwd=cwd)


def raw(path: Path = COMPOSE) -> dict:
    return yaml.safe_load(path.read_text())


def env_lines(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def test_config_passes_with_a_generated_env_and_names_the_missing_secret_without(tmp_path: Path) -> None:
    env_file = make_env(tmp_path / ".env")
    result = compose_config(env_file)
    assert result.returncode == 0, result.stderr
    assert "airflow-gpu-worker" in yaml.safe_load(result.stdout)["services"]
    # Without .env (a directory holding only the compose file): a clear refusal, not a stack with
    # empty passwords.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "docker-compose.yaml").write_text(COMPOSE.read_text())
    result = compose_config(None, bare / "docker-compose.yaml", cwd=bare)
    assert result.returncode != 0
    assert "Missing mandatory value" in result.stderr and "run make env to write .env" in result.stderr


def test_every_secret_is_required_and_has_no_default() -> None:
    text = COMPOSE.read_text() + WORKER_COMPOSE.read_text()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"(:?[-?][^}]*)?\}", text)
        assert uses, f"{name} is not used"
        assert all(use.startswith(":?") for use in uses), f"{name} has a default or no check: {uses}"
    # No ${VAR:-default} anywhere: every setting comes from .env, written from .env.example.
    assert not re.findall(r"\$\{[A-Z0-9_]+:?-", text)


def test_images_are_pinned() -> None:
    for path in (COMPOSE, WORKER_COMPOSE):
        for name, service in raw(path)["services"].items():
            image = service["image"]
            if any(image.startswith(own) for own in PROJECT_IMAGES):
                continue  # built from this repository's Dockerfile, tagged from .env (not latest)
            assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+(\.\d+)?[a-z0-9.-]*@sha256:[0-9a-f]{64}", image), (
                f"{path.name}: {name} uses {image}: pin a version tag and its digest"
            )
    own = env_lines(ROOT / ".env.example")
    assert not own["VOICEBATCH_IMAGE"].endswith(":latest") and not own["VOICEBATCH_CONTROL_IMAGE"].endswith(":latest")


def test_every_long_running_service_has_a_healthcheck() -> None:
    for path in (COMPOSE, WORKER_COMPOSE):
        services = raw(path)["services"]
        missing = sorted(n for n, s in services.items() if n not in ONE_SHOT and "healthcheck" not in s)
        assert not missing, f"{path.name}: no healthcheck for {missing}"


def test_gpu_worker_is_profiled_gets_all_gpus_and_refuses_the_cpu() -> None:
    services = raw()["services"]
    gpu = services["airflow-gpu-worker"]
    assert gpu["profiles"] == ["gpu"], "without a GPU host `docker compose up` must not start it"
    for worker in (gpu, raw(WORKER_COMPOSE)["services"]["airflow-gpu-worker"]):
        (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
        # One worker per host with every GPU; worker.sh sets the concurrency to the GPUs it sees.
        assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
        assert worker["command"] == ["bash", "/opt/voicebatch/deploy/worker.sh", "gpu"]
        assert worker["environment"]["VOICEBATCH_REQUIRE_GPU"] == "1"
        assert "voicebatch.synthesis.devices" in " ".join(worker["healthcheck"]["test"])
    assert services["airflow-worker"]["command"] == ["bash", "/opt/voicebatch/deploy/worker.sh", "default"]
    assert "profiles" not in services["airflow-worker"]
    worker_sh = (ROOT / "deploy" / "worker.sh").read_text()
    assert "--concurrency" in worker_sh and "synthesis.devices --count" in worker_sh


def test_control_plane_runs_the_slim_image_and_workers_the_full_one() -> None:
    services = raw()["services"]
    for name in (
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
    ):
        assert services[name]["image"].startswith("${VOICEBATCH_CONTROL_IMAGE"), name
    for name in ("airflow-worker", "airflow-gpu-worker"):
        assert services[name]["image"].startswith("${VOICEBATCH_IMAGE"), name


def test_worker_compose_file_is_the_main_worker_pointed_at_the_main_host(tmp_path: Path) -> None:
    env_file = make_env(
        tmp_path / ".env", *(f"{k}={v}" for k, v in REMOTE.items()), "WORKER_S3_ENDPOINT_URL=http://10.0.0.2:9000"
    )
    main = yaml.safe_load(compose_config(env_file).stdout)["services"]["airflow-gpu-worker"]["environment"]
    result = compose_config(env_file, WORKER_COMPOSE)
    assert result.returncode == 0, result.stderr
    remote = yaml.safe_load(result.stdout)["services"]["airflow-gpu-worker"]["environment"]
    host_bound = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW_CONN_VOICEBATCH_S3",
    }
    for key in host_bound:
        assert (
            main[key]
            .replace("@postgres:", "@10.0.0.2:")
            .replace("@redis:", "@10.0.0.2:")
            .replace("//airflow-apiserver:", "//10.0.0.2:")
            .replace("http://s3:9000", "http://10.0.0.2:9000")
            == remote[key]
        ), key
    extra = {"AIRFLOW__CORE__HOSTNAME_CALLABLE", "VOICEBATCH_WORKER_HOSTNAME"}
    assert {k: v for k, v in main.items() if k not in host_bound} == {
        k: v for k, v in remote.items() if k not in host_bound | extra
    }
    # Without the remote addresses it refuses, naming what is missing.
    result = compose_config(make_env(tmp_path / "main.env"), WORKER_COMPOSE)
    assert result.returncode != 0 and "the main host's address" in result.stderr


def test_ports_bind_to_the_configured_address_only() -> None:
    for name, service in raw()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("${VOICEBATCH_BIND_ADDRESS:?"), f"{name} publishes {port} on every interface"
    assert env_lines(ROOT / ".env.example")["VOICEBATCH_BIND_ADDRESS"] == "127.0.0.1"


def test_make_env_fills_every_secret_once_and_never_overwrites(tmp_path: Path) -> None:
    first = make_env(tmp_path / ".env")
    values = env_lines(first)
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    secrets = [values[name] for name in SECRETS]
    assert all(len(v) >= 20 and re.fullmatch(r"[A-Za-z0-9_=-]+", v) for v in secrets), "URL- and JSON-safe"
    assert len(set(secrets)) == len(secrets)
    assert len(base64.urlsafe_b64decode(values["AIRFLOW__CORE__FERNET_KEY"])) == 32  # Fernet's key format
    from cryptography.fernet import Fernet

    assert Fernet(values["AIRFLOW__CORE__FERNET_KEY"]).decrypt(
        Fernet(values["AIRFLOW__CORE__FERNET_KEY"]).encrypt(b"x")
    )
    # Everything else is .env.example's, in its order.
    template = env_lines(ROOT / ".env.example")
    assert list(values) == list(template)
    assert {k: v for k, v in values.items() if k not in SECRETS} == {
        k: v for k, v in template.items() if k not in SECRETS
    }
    again = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "make_env.py"), "--output", str(first)], capture_output=True, text=True
    )
    assert again.returncode != 0 and "exists; keeping it" in again.stderr
    assert env_lines(first) == values
    bad = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "make_env.py"), "--output", str(tmp_path / "x"), "--set", "NOPE=1"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "not a setting of .env.example: NOPE" in bad.stderr


def test_env_files_are_ignored_by_git_and_docker() -> None:
    for name in (".env", ".env.production"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0, name
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT).returncode == 1
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_control_image_has_no_torch_and_every_requirement_is_locked() -> None:
    locked = {
        line.split("==")[0].lower().replace("_", "-")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    control, worker = requirements("control"), requirements("worker")
    names = [re.split(r"[=<>\[ ;]", r)[0].lower() for r in worker]
    assert not [r for r in control if r.startswith(("torch", "f5-tts"))]
    assert "torch" in names and "apache-airflow" in names
    assert set(names) <= locked, set(names) - locked
    dockerfile = (ROOT / "Dockerfile").read_text()
    # Dependencies from the lock before the project's code, which goes in last without deps.
    assert dockerfile.index("-c constraints.txt -r /tmp/requirements.txt") < dockerfile.index(
        "COPY --chown=50000:0 src"
    )
    assert "pip install --no-cache-dir --no-deps ." in dockerfile and dockerfile.count("pip check") >= 2


@pytest.mark.parametrize("script", ["worker.sh", "compose-init.sh", "airflow-init.sh"])
def test_deploy_scripts_parse(script: str) -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "deploy" / script)]).returncode == 0


def test_env_example_says_what_the_stack_starts() -> None:
    """airflow-init waits for s3-init (and so for the local S3 server): .env.example must not tell
    a user of AWS or B2 to start without it."""
    depends = raw()["services"]["airflow-init"]["depends_on"]
    assert depends["s3-init"] == {"condition": "service_completed_successfully"}
    text = " ".join((ROOT / ".env.example").read_text().split())
    assert "start without the local S3 server" not in text
    assert "The local S3 server (`s3`, `s3-init`) starts all the same" in text


def test_compose_test_overrides_change_only_what_they_say() -> None:
    """The stand-ins come in through the override files and image variables only: the override
    sets images of the Docker Hub services, the GPU worker's CPU command, the network, and the
    scheduler's heartbeat timeout; nothing else of a production service."""
    override = yaml.safe_load((ROOT / "tests" / "compose" / "docker-compose.standins.yaml").read_text())
    services = raw()["services"]
    allowed = {
        "postgres": {"image"},
        "redis": {"image"},
        "s3": {"image"},
        "s3-init": {"image"},
        "airflow-scheduler": {"environment"},
        "airflow-dag-processor": {"healthcheck"},
        "airflow-triggerer": {"healthcheck"},
        "airflow-worker": {"healthcheck"},
        "airflow-gpu-worker": {"command", "environment", "healthcheck"},
    }
    for name, service in override["services"].items():
        assert name in services, f"the override adds a service: {name}"
        assert set(service) <= allowed[name], (name, set(service))
        assert not str(service.get("image", "voicebatch-standin/")).startswith("voicebatch:")
    assert all(s["image"].startswith("voicebatch-standin/") for s in override["services"].values() if "image" in s)
    assert override["services"]["airflow-gpu-worker"]["environment"] == {"VOICEBATCH_REQUIRE_GPU": "0"}
    for name in ("airflow-dag-processor", "airflow-triggerer", "airflow-worker"):
        assert override["services"][name]["healthcheck"] == {"timeout": "120s"}, name
    worker = yaml.safe_load((ROOT / "tests" / "compose" / "docker-compose.worker.standins.yaml").read_text())
    assert set(worker["services"]) == {"airflow-gpu-worker"}
    assert set(worker["services"]["airflow-gpu-worker"]) == {"command", "environment", "healthcheck"}


def test_compose_test_is_not_collected_by_make_test() -> None:
    """`make test` stays free of Docker: tests/compose is collected only under `make compose-test`."""
    import conftest

    if not os.environ.get("VOICEBATCH_COMPOSE_TEST"):
        assert conftest.collect_ignore == ["compose"]
    assert "VOICEBATCH_COMPOSE_TEST=1" in (ROOT / "tests" / "compose" / "run.sh").read_text()


@pytest.mark.parametrize("script", ["run.sh", "build.sh", "docker.sh"])
def test_compose_test_scripts_parse(script: str) -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / "tests" / "compose" / script)]).returncode == 0
