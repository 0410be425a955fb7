#!/usr/bin/env bash
# The Docker engine for `make compose-test`, on a Debian machine where we are root:
#   docker.sh start STATE   install docker.io, docker-compose and debootstrap when missing; start
#                           dockerd when none answers (its PID in STATE/dockerd.pid, log in STATE)
#   docker.sh stop STATE    stop the dockerd that `start` started (by that PID), and nothing else
# The dockerd started here finds tests/compose/standins/nvidia/nvidia-container-runtime-hook on its
# PATH when the real NVIDIA Container Toolkit is absent: the engine then accepts the compose files'
# GPU reservations (driver nvidia) and starts those containers without a GPU (docs/deploy/compose-test.md).
set -euo pipefail
action="${1:?usage: docker.sh start|stop STATE_DIR}"
state="${2:?usage: docker.sh start|stop STATE_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$state"

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "$action" in
start)
  missing=""
  command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
  command -v docker-compose >/dev/null 2>&1 || missing="$missing docker-compose"
  command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
  if [ -n "$missing" ]; then
    echo "docker.sh: installing Debian packages:$missing"
    apt-get update -qq
    # policy-rc.d: the package's service is not started by apt (no init here); we start dockerd below.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
  if engine_answers; then
    echo "docker.sh: dockerd already running (left as it is)"
    exit 0
  fi
  path="$PATH"
  command -v nvidia-container-runtime-hook >/dev/null 2>&1 || path="$here/standins/nvidia:$PATH"
  # The apt install may have started one through its init script: that one answers above.
  PATH="$path" setsid dockerd >"$state/dockerd.log" 2>&1 < /dev/null &
  echo $! >"$state/dockerd.pid"
  for _ in $(seq 1 60); do
    engine_answers && { echo "docker.sh: started dockerd (PID $(cat "$state/dockerd.pid"), log $state/dockerd.log)"; exit 0; }
    kill -0 "$(cat "$state/dockerd.pid")" 2>/dev/null || { tail -20 "$state/dockerd.log" >&2; exit 1; }
    sleep 1  # waiting for a daemon we just started
  done
  echo "docker.sh: dockerd did not answer within 60 s; log: $state/dockerd.log" >&2
  exit 1
  ;;
stop)
  [ -f "$state/dockerd.pid" ] || { echo "docker.sh: dockerd was not started by compose-test; left running"; exit 0; }
  pid="$(cat "$state/dockerd.pid")"
  rm -f "$state/dockerd.pid"
  kill -TERM "$pid" 2>/dev/null || exit 0
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { echo "docker.sh: stopped dockerd (PID $pid)"; exit 0; }
    sleep 1  # dockerd stops its containers and its containerd first
  done
  echo "docker.sh: dockerd (PID $pid) still running after 60 s" >&2
  exit 1
  ;;
*)
  echo "usage: docker.sh start|stop STATE_DIR" >&2
  exit 2
  ;;
esac
