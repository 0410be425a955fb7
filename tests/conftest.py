from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline: on a busy 2-core machine the first example pays for imports (pandas:
# ~0.8 s), so a deadline fails by timing, not by behaviour, and only when a file runs alone.
settings.register_profile("voicebatch", deadline=None)
settings.load_profile("voicebatch")

ROOT = Path(__file__).resolve().parent.parent
# tests/compose drives Docker (`make compose-test` sets this); `make test` stays free of Docker.
collect_ignore = [] if os.environ.get("VOICEBATCH_COMPOSE_TEST") else ["compose"]
SRC = ROOT / "src"
FIXTURES = Path(__file__).parent / "fixtures"


# `make test` runs the files on parallel workers (pytest-xdist, one file per worker at a time:
# `--dist loadfile`, so a file's Airflow or Celery cluster starts once). The longest files go first,
# longest first, so no worker starts one of them near the end while the other sits idle; the rest
# keep pytest-randomly's order. Longest by `pytest --durations` on this 2-core machine (figures in
# benchmarks/RESULTS.md); an order only: no test depends on another having run.
SLOW_FIRST = (
    "test_local_airflow.py",
    "test_dag_run.py",
    "test_synth_cli.py",
    "test_celery.py",
    "test_deployment.py",
    "test_gpu_check.py",
    "test_arrivals_airflow.py",
    "test_longform.py",
    "test_warm_engine.py",
    "test_review_airflow.py",
    "test_demo_subtitles.py",
    "test_callbacks_dag.py",
    "test_compiled.py",
    "test_retake.py",
    "test_book_run.py",
)


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle, which it keeps within each rank
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))


# The tests run the tree they sit in, not whichever voicebatch the environment has installed
# (an editable install of another checkout, a wheel): this tree's src/ comes first here, and
# subprocesses get it first on PYTHONPATH (tree_env(), airflow_helpers.airflow_env()).
def tree_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this environment) with this tree's src/ first on PYTHONPATH, plus ``extra``."""
    base = os.environ if base is None else base
    paths = [str(SRC), *(p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SRC))]
    return {**base, "PYTHONPATH": os.pathsep.join(paths), **extra}


sys.path.insert(0, str(SRC))
os.environ["PYTHONPATH"] = tree_env()["PYTHONPATH"]  # every subprocess that inherits the environment
# Dummy credentials for the local S3 endpoint; the secret is searched for in outputs by tests.
S3_ACCESS_KEY = "AKIAVOICEBATCHTEST"
S3_SECRET_KEY = "voicebatch-test-secret-4f1c9e"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)  # readiness poll of a server we just started, not a timing assumption
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP S3 endpoint: moto's server on a free 127.0.0.1 port, stopped by PID; or the one
    ``VOICEBATCH_TEST_S3_ENDPOINT`` names (`make mutate` starts one for its many short runs)."""
    if shared := os.environ.get("VOICEBATCH_TEST_S3_ENDPOINT"):
        yield shared
        return
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The standard AWS environment pointing at the local endpoint (as the CLI reads it)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_endpoint


@pytest.fixture
def s3_bucket(s3_env: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test."""
    from voicebatch.locations.storage import s3_client

    # Unique even for parametrized tests whose names share their first 40 characters.
    name = "vb-" + "".join(c for c in request.node.name.lower() if c.isalnum())[:40] + f"-{uuid.uuid4().hex[:12]}"
    s3_client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def demo_voices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo voices, built once per session by include/build_demo_voices.py."""
    out = tmp_path_factory.mktemp("demo-voices")
    script = Path(__file__).parent.parent / "include" / "build_demo_voices.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random F5 model and Vocos, built once per test session in the store's layout."""
    from voicebatch.synthesis.tiny import build_tiny_model

    directory = tmp_path_factory.mktemp("tiny-model")
    build_tiny_model(directory)
    return directory
