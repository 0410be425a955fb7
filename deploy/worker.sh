#!/usr/bin/env bash
# Start this project's Celery worker for one queue (docker-compose.yaml, docker-compose.worker.yaml,
# the Helm values):
#   worker.sh default   every task but synthesis; concurrency VOICEBATCH_WORKER_CONCURRENCY (4)
#   worker.sh gpu       synthesis only; refuses to start without a usable GPU, and runs one task
#                       per GPU it sees (each task leases a free GPU: synthesis/devices.py)
set -euo pipefail
queue="${1:?usage: worker.sh default|gpu}"
airflow="${AIRFLOW_BIN:-airflow}"
python="${VOICEBATCH_PYTHON:-python}"
# The model cache (/models) is shared by containers that may run as different uids of group 0.
umask 0002
case "$queue" in
  gpu)
    # The lease then fails a task loudly instead of synthesizing on the CPU.
    export VOICEBATCH_REQUIRE_GPU=1
    "$python" -m voicebatch.synthesis.devices --probe
    concurrency="$("$python" -m voicebatch.synthesis.devices --count)"
    ;;
  *)
    concurrency="${VOICEBATCH_WORKER_CONCURRENCY:-4}"
    ;;
esac
# Celery node name: the compose healthchecks ping "<queue>@<host>"; the Helm chart's liveness probe
# pings "celery@<host>" (deploy/helm/values.yaml sets VOICEBATCH_CELERY_HOSTNAME accordingly).
node="${VOICEBATCH_CELERY_HOSTNAME:-${queue}@%h}"
echo "worker.sh: queue ${queue}, concurrency ${concurrency}, node ${node}"
exec "$airflow" celery worker --queues "$queue" --celery-hostname "$node" --concurrency "$concurrency"
