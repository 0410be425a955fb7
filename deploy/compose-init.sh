#!/usr/bin/env bash
# docker compose's airflow-init (tests/test_celery.py runs it too): migrate the metadata database
# and create the pools (airflow-init.sh), then create the UI's admin user (FAB auth manager) or
# reset its password, both from the environment (.env), so the login is always the one in .env.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
airflow="${AIRFLOW_BIN:-airflow}"
user="${VOICEBATCH_ADMIN_USER:?is not set: run make env}"
: "${VOICEBATCH_ADMIN_PASSWORD:?is not set: run make env}"
bash "$here/airflow-init.sh"
# The password reaches the CLI from the environment only (never compose's command or the image).
created="$("$airflow" users create --role Admin --username "$user" --password "$VOICEBATCH_ADMIN_PASSWORD" \
  --firstname voicebatch --lastname admin --email "${user}@voicebatch.invalid")"
if grep -q "already exist" <<<"$created"; then
  "$airflow" users reset-password --username "$user" --password "$VOICEBATCH_ADMIN_PASSWORD" >/dev/null
  echo "compose-init: UI user '${user}' exists; password set from VOICEBATCH_ADMIN_PASSWORD"
else
  echo "compose-init: UI user '${user}' created; password: VOICEBATCH_ADMIN_PASSWORD in .env"
fi
