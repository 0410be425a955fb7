#!/usr/bin/env bash
# Download the wheels the GPU machine lacks (benchmarks/gpu/wheels.txt) for CPython 3.12 on
# manylinux x86-64 into benchmarks/gpu/wheels/ (git-ignored; the device tool carries it).
# A package published only as a source archive (encodec) is built here into a wheel, which
# is accepted only when it is pure Python (py3-none-any). Run as `make gpu-wheels`.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
mkdir -p wheels
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
grep -v '^#' wheels.txt | grep . | while read -r pin; do
  name="${pin%%==*}"
  if ls wheels/ | grep -qi "^$(echo "$name" | tr '-' '_')-${pin##*==}-"; then continue; fi
  if ! "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${platforms[@]}" -d wheels "$pin" 2>/dev/null; then
    echo "no wheel for $pin: building one from its source archive"
    "$PYTHON" -m pip wheel -q --no-deps --no-binary=:all: -w wheels "$pin"
    built=$(ls wheels/ | grep -i "^$(echo "$name" | tr '-' '_')-${pin##*==}-")
    case "$built" in *-py3-none-any.whl|*-py2.py3-none-any.whl) ;; *) echo "$built is not pure Python" >&2; exit 1;; esac
  fi
done
count=$(ls wheels/*.whl | wc -l)
size=$(du -cm wheels/*.whl | tail -1 | cut -f1)
echo "benchmarks/gpu/wheels: $count wheels, ${size} MiB (the device tool carries at most 64 MiB with the tree)"
[ "$size" -lt 60 ] || { echo "too large for the device tool" >&2; exit 1; }
