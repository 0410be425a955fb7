"""Connection arguments for Airflow's SQLite metadata database (`make airflow`, `make demo`, the tests).

`airflow standalone` on SQLite has its API server, scheduler, DAG processor and task runners write
to one file. SQLite's default busy timeout is 5 seconds: on a loaded laptop a writer waiting longer
fails with "database is locked", which the API answers as 500 "Database error" (a REST trigger
lost) and the scheduler as a failed heartbeat. Waiting up to a minute for the lock instead
turns those into short delays. deploy/airflow_env.py names these dicts in
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS`` (and ``..._ASYNC``) only when the database is
SQLite; PostgreSQL (docker compose, Helm) keeps its own arguments.
"""

from __future__ import annotations

BUSY_TIMEOUT_S = 60.0

# Airflow adds check_same_thread to the sync dict itself; each process imports its own copy.
CONNECT_ARGS: dict[str, object] = {"timeout": BUSY_TIMEOUT_S}
CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": BUSY_TIMEOUT_S}
