"""Run a command so that stopping this process stops everything the command started.

`airflow standalone` starts the scheduler, API server, DAG processor and triggerer, and those
start workers and task processes (which move to process groups of their own). A SIGTERM to
`make airflow` reaches make and its direct child only: `airflow standalone` stops on Ctrl-C
but dies on SIGTERM and leaves the rest running. So the command runs in a session of its own
(every descendant stays in it, whatever its process group), and a SIGTERM, SIGINT or SIGHUP
here is passed to the whole session: SIGTERM at once, SIGKILL to whatever is left after
``GRACE_SECONDS``. The exit status is the command's.

Standard library only (deploy/airflow_env.py runs it before anything is installed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

GRACE_SECONDS = 30.0


def session_members(sid: int) -> list[int]:
    """Every live process of session ``sid`` (Linux ``/proc``; elsewhere none are found and the
    process group alone is signalled). Zombies are left out: they are gone, only not reaped."""
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and os.getsid(int(entry.name)) == sid:
                members.append(int(entry.name))
        except (OSError, IndexError):  # gone meanwhile, or not ours to read
            continue
    return members


def signal_session(sid: int, sig: int) -> None:
    """``sig`` to the session's process group and to every other live process of the session."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)
    for pid in session_members(sid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_session(process: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = GRACE_SECONDS) -> None:
    """``sig`` to the whole session the command leads, then SIGKILL to what is left after ``grace``."""
    signal_session(process.pid, sig)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and (process.poll() is None or session_members(process.pid)):
        time.sleep(0.2)  # waiting for processes to exit
    if process.poll() is None or session_members(process.pid):
        signal_session(process.pid, signal.SIGKILL)
    process.wait()


def run_in_session(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``command`` in a new session; stop the session on SIGTERM, SIGINT or SIGHUP."""
    process = subprocess.Popen(list(command), env=dict(env), start_new_session=True)
    received: list[int] = []

    def forward(sig: int, frame: object) -> None:
        received.append(sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    while process.poll() is None and not received:
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            continue
    if received:
        print(f"process_group: signal {signal.Signals(received[0]).name}: stopping every process of the session")
        stop_session(process, signal.SIGTERM)
    elif session_members(process.pid):  # the command ended but left processes behind
        stop_session(process, signal.SIGTERM)
    return process.returncode if process.returncode >= 0 else 128 - process.returncode
