"""The engine server as a process: started detached, found, told to go, killed when wedged.

Kept apart from ``warm.py`` (the protocol side): what is here touches processes and files only.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from voicebatch.synthesis import wire

log = logging.getLogger(__name__)

SERVER_MODULE = "voicebatch.synthesis.engine_server"
_SOURCE = Path(__file__).resolve().parent.parent.parent  # the voicebatch this process runs


def start_server(
    socket_path: Path, log_path: Path, device: str, visible: str | None, options: list[str], startup_s: float
) -> int:
    """Start a detached engine server (its own session: it outlives the task that started it)
    and wait until its socket appears. Returns its pid; raises RuntimeError with its log's tail."""
    socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)  # a dead server's name
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_SOURCE), env.get("PYTHONPATH")) if p)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    command = [sys.executable, "-m", SERVER_MODULE, "--socket", str(socket_path), "--device", device, *options]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd="/",
            start_new_session=True,
        )
    log.info("started engine server %d on %s (log %s)", process.pid, device, log_path)
    deadline = time.monotonic() + startup_s
    while not socket_path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"engine server exited with {process.returncode}: {log_tail(log_path)}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"engine server did not listen within {startup_s:g} s: {log_tail(log_path)}")
        time.sleep(0.05)  # readiness poll of the process just started
    return process.pid


@contextlib.contextmanager
def spawn_lock(socket_path: Path) -> Iterator[None]:
    """One process at a time looks for, or starts, the server of ``socket_path``."""
    socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with socket_path.with_suffix(".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel if this process dies
        yield


def say_goodbye(sock: socket.socket) -> None:
    """Ask the server to exit and wait for its goodbye (a heartbeat may come first)."""
    wire.send(sock, {"op": "shutdown"})
    while wire.recv(sock)[0].get("type") != "bye":
        pass


def kill_server(pid: int, socket_path: Path) -> bool:
    """SIGKILL the server of ``socket_path`` if ``pid`` still is it (never a reused pid), and
    wait until it is gone. True when it was killed."""
    if not is_server(pid, socket_path):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid, 30.0)
    return True


def is_server(pid: int, socket_path: Path) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return SERVER_MODULE.encode() in command and str(socket_path).encode() in command


def wait_gone(pid: int | None, timeout: float) -> None:
    """Wait until ``pid`` has exited (reaped when it is this process's child)."""
    if not pid:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        try:
            os.kill(pid, 0)
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        # A zombie whose threads are all gone: its files (the server's socket) are closed. The
        # leader of a process with threads shows as a zombie while the others still hold them.
        if fields.get("State", "").strip().startswith("Z") and fields.get("Threads", "").strip() in ("0", "1"):
            return
        time.sleep(0.02)  # waiting for a killed process to go


def log_tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
