"""docker compose stacks for `make compose-test`: start, wait, drive through the REST API, stop.

A stack is a compose project of this repository's compose file and the stand-ins' override
(tests/compose/docker-compose.standins.yaml), on a Docker network the test creates, with its
ports published on that network's gateway address: the test (on this machine) and the
second-host drill (on another network) reach it only there, and nothing binds loopback ports
other tests may use. Everything is taken down with `down -v` and the networks removed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
HERE = Path(__file__).resolve().parent
COMPOSE = shutil.which("docker-compose") or "docker-compose"
TAG = os.environ.get("VOICEBATCH_TEST_TAG", "compose-test")


def run(command: Sequence[str], *, check: bool = True, env: dict | None = None, timeout: float = 900) -> str:
    """A command's stdout; on failure, an error with its output."""
    result = subprocess.run(list(command), capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def wait_until(what: str, check: Callable[[], Any], timeout: float, on_timeout: Callable[[], str] = str) -> Any:
    """``check()``'s first truthy value, polled every 2 s; on timeout an error with ``on_timeout()``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(2)  # polling live services, not timing anything
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{on_timeout()}")


def dotenv(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def set_env_values(path: Path, values: dict[str, str]) -> None:
    """Set existing keys of a .env file (as a person edits the copied .env of a GPU host)."""
    lines = []
    for line in path.read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if key in values and "=" in line else line)
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Network:
    name: str

    @classmethod
    def create(cls, name: str) -> Network:
        run(["docker", "network", "create", name])
        return cls(name)

    @property
    def gateway(self) -> str:
        return run(["docker", "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", self.name]).strip()

    def remove(self) -> None:
        run(["docker", "network", "rm", self.name], check=False)


@dataclass
class Project:
    """One compose project: its files, .env, network and name."""

    name: str
    files: list[Path]
    env_file: Path
    network: Network
    profiles: list[str] = field(default_factory=list)
    logs: Path | None = None

    def compose(self, *args: str, check: bool = True, timeout: float = 900) -> str:
        command = [COMPOSE, "-p", self.name, "--project-directory", str(ROOT), "--env-file", str(self.env_file)]
        for path in self.files:
            command += ["-f", str(path)]
        for profile in self.profiles:
            command += ["--profile", profile]
        env = {**os.environ, "VOICEBATCH_TEST_NETWORK": self.network.name, "COMPOSE_INTERACTIVE_NO_CLI": "1"}
        return run([*command, *args], check=check, env=env, timeout=timeout)

    def container(self, service: str) -> str:
        found = self.compose("ps", "-q", service).split()
        assert found, f"{self.name}: no container for {service}"
        return found[0]

    def health(self) -> dict[str, str]:
        """service -> 'healthy', 'starting', 'unhealthy', 'running' (no healthcheck) or 'exited N'."""
        states = {}
        for cid in self.compose("ps", "-q").split():
            info = json.loads(run(["docker", "inspect", cid]))[0]
            service = info["Config"]["Labels"]["com.docker.compose.service"]
            state = info["State"]
            if state["Status"] != "running":
                states[service] = f"{state['Status']} {state['ExitCode']}"
            else:
                states[service] = state.get("Health", {}).get("Status", "running")
        return states

    def wait_healthy(self, timeout: float = 900) -> float:
        """Seconds until every long-running service is healthy (one-shot services exited 0)."""
        start = time.monotonic()

        def ready() -> bool:
            states = self.health()
            failed = {s: v for s, v in states.items() if v.startswith("exited") and v != "exited 0"}
            assert not failed, f"{self.name}: services failed: {failed}\n{self.tail_logs()}"
            return bool(states) and all(v in ("healthy", "exited 0") for v in states.values())

        wait_until(f"{self.name} to be healthy", ready, timeout, lambda: f"{self.health()}\n{self.tail_logs()}")
        return time.monotonic() - start

    def tail_logs(self, lines: int = 60) -> str:
        return self.compose("logs", "--no-color", "--tail", str(lines), check=False)[-20000:]

    def save_logs(self) -> None:
        if self.logs is not None:
            self.logs.mkdir(parents=True, exist_ok=True)
            (self.logs / f"{self.name}.log").write_text(self.compose("logs", "--no-color", check=False))

    def down(self) -> None:
        self.save_logs()
        self.compose("down", "-v", "--remove-orphans", check=False)


class Airflow:
    """The stack's REST API, as a user drives it: a token from the login in .env, then /api/v2."""

    def __init__(self, base: str, username: str, password: str) -> None:
        self.base, self.username, self.password = base, username, password
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            body = {"username": self.username, "password": self.password}
            self._token = self.request("POST", "/auth/token", body, auth=False)["access_token"]
        return self._token

    def request(self, method: str, path: str, body: dict | None = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code == 401 and auth:
                self._token = None  # expired: sign in again once
                headers["Authorization"] = f"Bearer {self.token()}"
                request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
                with urllib.request.urlopen(request, timeout=60) as response:
                    return json.loads(response.read() or b"null")
            raise AssertionError(f"{method} {path}: HTTP {e.code}: {e.read()[:2000]!r}") from None

    def fetch(self, path: str) -> tuple[int, bytes, str]:
        """GET with the token, following redirects: (status, body, final URL)."""
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token()}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), response.geturl()

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/api/v2/version", timeout=5):
                return True
        except OSError:
            return False

    def trigger(self, dag_id: str, run_id: str, conf: dict) -> None:
        self.request(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        found = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        return found["task_instances"]

    def wait_finished(self, dag_id: str, run_id: str, timeout: float = 900) -> dict:
        def finished() -> dict | None:
            try:
                run = self.dag_run(dag_id, run_id)
            except (OSError, AssertionError):
                return None  # the api-server or its database restarting (the restart drill)
            return run if run["state"] in ("success", "failed") else None

        def states() -> str:
            try:
                return json.dumps(
                    [(t["task_id"], t["map_index"], t["state"]) for t in self.task_instances(dag_id, run_id)]
                )
            except (OSError, AssertionError) as e:
                return str(e)

        return wait_until(f"run {run_id} to finish", finished, timeout, states)


def gather(fns: Sequence[Callable[[], Any]]) -> Iterator[Any]:
    """Call each of ``fns`` in a thread of its own; their results in order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(fns)) as pool:
        yield from pool.map(lambda fn: fn(), fns)
