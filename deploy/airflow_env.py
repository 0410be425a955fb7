"""This project's Airflow environment, defined once: `make demo`, `make airflow` and the tests.

    python deploy/airflow_env.py --home DIR [--set KEY=VALUE ...] [--local-model] -- COMMAND [ARGS ...]

runs COMMAND with it, in a session of its own that a SIGTERM, SIGINT or SIGHUP to this process
stops whole (deploy/process_group.py): AIRFLOW_HOME, this repository's dags/ and plugins/ (plugins also on
PYTHONPATH, so DAG files import the operator), no example DAGs, a low parallelism for small
machines, the virtual environment's bin/ first on PATH, and an allow-list of this project's own
folders (``project_locations``) unless VOICEBATCH_ALLOWED_INPUTS, VOICEBATCH_ALLOWED_OUTPUTS or
VOICEBATCH_MODEL_ROOTS is already set. ``--local-model`` sets
VOICEBATCH_MODEL to the tiny model, announced, when the default model cannot be had offline
(deploy/local_model.py: `make airflow`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def airflow_env(
    home: Path, *, parallelism: int = 4, clean: bool = False, base: Mapping[str, str] | None = None, **extra: str
) -> dict[str, str]:
    """``base`` (the current environment) plus this project's Airflow settings and ``extra``.

    ``clean`` drops every AIRFLOW* variable of ``base`` first (tests: nothing of the caller's
    Airflow leaks in); without it the caller's connections and settings are kept.
    """
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not (clean and k.startswith("AIRFLOW"))}
    # The allow-list (docs/security.md): this project's own folders, unless the caller names its own.
    for name, default in project_locations(home).items():
        if name not in env and name not in extra:
            env[name] = default
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW_BIN": str(VENV_BIN / "airflow"),
            "PYTHONPATH": str(ROOT / "plugins"),
            "PATH": f"{VENV_BIN}:{base.get('PATH', '')}",
            **extra,
        }
    )
    if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite").startswith("sqlite"):
        # Airflow's default database is SQLite in AIRFLOW_HOME: wait for its lock (plugins/voicebatch_sqlite.py).
        env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS", "voicebatch_sqlite.CONNECT_ARGS")
        env.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC", "voicebatch_sqlite.CONNECT_ARGS_ASYNC")
    return env


def project_locations(home: Path) -> dict[str, str]:
    """What `make demo` and `make airflow` allow: the demo inputs under include/ (voices, scripts,
    lexicons), outputs under output/, models under the Airflow home's models/ (the tiny model)."""
    return {
        "VOICEBATCH_ALLOWED_INPUTS": str(ROOT / "include"),
        "VOICEBATCH_ALLOWED_OUTPUTS": str(ROOT / "output"),
        "VOICEBATCH_MODEL_ROOTS": str(home / "models"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, default=ROOT / "airflow_home")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--local-model", action="store_true", help="fall back to the tiny model offline")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    extra = dict(item.split("=", 1) for item in args.set)
    if args.local_model:
        from local_model import local_model  # deploy/ is on sys.path: this file runs as a script

        extra["VOICEBATCH_MODEL"] = local_model(args.home)[0]
    from process_group import run_in_session  # deploy/ is on sys.path: this file runs as a script

    # Not exec: a SIGTERM to `make airflow` must stop every process airflow starts (process_group.py).
    sys.exit(run_in_session(command, airflow_env(args.home, **extra)))


if __name__ == "__main__":
    main()
