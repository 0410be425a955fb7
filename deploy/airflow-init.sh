#!/usr/bin/env bash
# Prepare an Airflow metadata database for voicebatch: migrate (SQLite: write-ahead logging), then create the pools from
# deploy/pools.json with the GPU pool's slots from VOICEBATCH_GPU_SLOTS (default 1: one per GPU).
# Used by `make demo`, `make airflow`, the tests and docker compose's airflow-init.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
airflow="${AIRFLOW_BIN:-airflow}"
slots="${VOICEBATCH_GPU_SLOTS:-1}"
[[ "$slots" =~ ^[1-9][0-9]*$ ]] || { echo "VOICEBATCH_GPU_SLOTS must be a positive integer, got '$slots'" >&2; exit 2; }
"$airflow" db migrate >/dev/null
# Airflow's default SQLite database (make airflow, make demo, the tests): write-ahead logging, so the
# API server, scheduler, DAG processor and task runners read while one of them writes instead of
# failing with "database is locked". The mode is kept in the file; PostgreSQL is left alone.
database="$("$airflow" config get-value database sql_alchemy_conn 2>/dev/null || true)"
if [[ "$database" == sqlite:////* ]]; then
  python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("pragma journal_mode=wal").fetchone()[0])' \
    "${database#sqlite:///}" >/dev/null
fi
pools="$(mktemp)"
trap 'rm -f "$pools"' EXIT
sed "s/\"slots\": 1,/\"slots\": ${slots},/" "$here/pools.json" > "$pools"
"$airflow" pools import "$pools" >/dev/null
echo "airflow-init: database migrated; pool f5_gpu has ${slots} slot(s)"
