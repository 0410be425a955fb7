#!/usr/bin/env bash
# The official Airflow image's /entrypoint, in the parts docker-compose.yaml relies on: an
# AIRFLOW_UID without a passwd entry gets one; `bash ...` and `python ...` run as given; anything
# else is an Airflow command, run after the metadata database answers (CONNECTION_CHECK_MAX_COUNT
# tries, CONNECTION_CHECK_SLEEP_TIME apart, as the official image).
set -euo pipefail
if ! whoami >/dev/null 2>&1 && [ -w /etc/passwd ]; then
  echo "airflow:x:$(id -u):0:airflow:${AIRFLOW_USER_HOME_DIR}:/bin/bash" >>/etc/passwd
fi
case "${1:-}" in
  "" | bash) [ $# -gt 0 ] && shift; exec /bin/bash "$@" ;;
  python) shift; exec python "$@" ;;
  airflow) shift ;;
esac
if [ "${1:-}" != version ] && [ "${CONNECTION_CHECK_MAX_COUNT:-20}" -gt 0 ]; then
  for try in $(seq 1 "${CONNECTION_CHECK_MAX_COUNT:-20}"); do
    airflow db check >/dev/null 2>&1 && break
    [ "$try" = "${CONNECTION_CHECK_MAX_COUNT:-20}" ] && { echo "entrypoint: the metadata database does not answer" >&2; exit 1; }
    sleep "${CONNECTION_CHECK_SLEEP_TIME:-3}"  # the database may still be starting
  done
fi
exec airflow "$@"
