#!/usr/bin/env bash
# `make compose-test`: the compose stack built from this repository, started with docker compose on
# this machine, driven end to end, taken down (docs/deploy/compose-test.md).
#   1. Docker: docker.io, docker-compose and debootstrap installed when missing; dockerd started when
#      none answers, and stopped at the end only if started here (tests/compose/docker.sh).
#   2. Images: the stand-in bases and the project's control and worker images (tests/compose/build.sh).
#   3. The stack and its drills (tests/compose/test_stack.py), then `down -v`.
# The last line gives the figures; they also go to benchmarks/RESULTS.md by hand, with the machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
state="${VOICEBATCH_COMPOSE_STATE:-$root/out/compose-test}"
python="${VOICEBATCH_PYTHON:-$root/.venv/bin/python}"
mkdir -p "$state"
started=$(date +%s)
bash "$root/tests/compose/docker.sh" start "$state/docker"
stop_docker() { bash "$root/tests/compose/docker.sh" stop "$state/docker"; }
trap stop_docker EXIT
bash "$root/tests/compose/build.sh" "$state"
status=0
VOICEBATCH_COMPOSE_TEST=1 VOICEBATCH_COMPOSE_STATE="$state" \
  "$python" -m pytest "$root/tests/compose" -p no:randomly -p no:cacheprovider -v -rA || status=$?
trap - EXIT
stop_docker
"$python" "$root/tests/compose/figures.py" "$state" --total-seconds $(( $(date +%s) - started )) --status "$status"
exit "$status"
