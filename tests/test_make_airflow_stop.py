"""A SIGTERM to `make airflow` stops everything Airflow started, task processes included.

The Makefile's own recipe runs, as a user types it, with ``BIN`` pointing at a folder whose
``airflow`` stands in for Airflow's: ``db migrate`` and ``pools import`` succeed, ``standalone``
starts components the way the real one does (children in its process group) and a "task"
that moves to a process group of its own (as Airflow 3's task supervisor does), then all wait
forever. Only make's own PID gets the SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from airflow_helpers import ROOT, wait_until

FAKE_AIRFLOW = """#!{python}
import os, signal, subprocess, sys
if sys.argv[1:2] != ["standalone"]:
    sys.exit(0)  # db migrate, pools import
pids = os.environ["FAKE_PIDS"]
wait = "import signal; signal.pause()"
task = "import os, signal; os.setpgid(0, 0); signal.pause()"  # Airflow 3's task supervisor does this
children = [subprocess.Popen([sys.executable, "-c", code]) for code in (wait, wait, task)]
with open(pids, "w") as f:
    f.write(" ".join(str(p) for p in [os.getpid(), *(c.pid for c in children)]))
signal.pause()  # like `airflow standalone`, no SIGTERM handler of its own: it just dies
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_to_make_airflow_stops_the_scheduler_workers_and_tasks(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python").symlink_to(sys.executable)
    (fake / "airflow").write_text(FAKE_AIRFLOW.format(python=sys.executable))
    (fake / "airflow").chmod(0o755)
    pids, logs = tmp_path / "pids", tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(FAKE_PIDS=str(pids), VOICEBATCH_MODEL="F5TTS_v1_Base")  # no model lookup at start
    command = ["make", "-o", ".venv/.installed-stamp", "-o", "include/voices/.built", "airflow"]
    command += [f"BIN={fake}", f"AIRFLOW_HOME_DIR={tmp_path / 'home'}", "PORT=1"]
    with (logs / "make.log").open("w") as log:
        make = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    everything: list[int] = []
    try:
        started = wait_until(
            "the fake standalone and its children", lambda: pids.exists() and pids.read_text(), 60, logs
        )
        everything += [int(p) for p in started.split()]
        assert all(alive(p) for p in everything)
        make.send_signal(signal.SIGTERM)  # make's own PID only, as `kill <pid>` or a process manager sends it
        make.wait(timeout=60)
        wait_until("every process to stop", lambda: not [p for p in everything if alive(p)], 60, logs)
        assert "stopping every process of the session" in (logs / "make.log").read_text()
    finally:
        for pid in everything:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
