#!/usr/bin/env bash
# The one-call GPU check, run from the repository root on a machine with a GPU:
#
#   bash benchmarks/gpu/run.sh                 # figures into $OUT (default: out/gpu-check)
#   bash benchmarks/gpu/run.sh --dry-run       # the same steps on a CPU, tiny model (tests run this)
#
# The GPU machine has Python 3.12 and torch 2.11 but no package registry: the packages it lacks
# travel as wheels in benchmarks/gpu/wheels/ (made here by `make gpu-wheels`) and are installed
# into a scratch folder, never over the machine's own packages. Steps: install the wheels, record
# the machine (nvidia-smi), run the CUDA tests, then benchmarks/gpu/check.py (ceilings, F5
# infer_process vs the engine eager and compiled at NFE 32 and EPSS 7, compiled vs eager, the warm
# engine's fixed cost per task, verification beside synthesis, bf16 vs fp16, CUDA graphs). Every
# step writes under $OUT as it ends. The whole run stays within TOTAL_S seconds (default 570: the
# device tool's 600-second call, less a margin): check.py gets what the steps before it left.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-out/gpu-check}"
mkdir -p "$OUT"
PYTHON="${PYTHON:-python3}"
DRY=""
[ "${1:-}" = "--dry-run" ] && DRY="--dry-run"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg HF_HUB_OFFLINE=1

step() { echo; echo "== $* ($(date +%T))"; }

if [ -d benchmarks/gpu/wheels ] && ls benchmarks/gpu/wheels/*.whl >/dev/null 2>&1 && [ -z "$DRY" ]; then
  step "installing $(ls benchmarks/gpu/wheels/*.whl | wc -l) carried wheels into /tmp/voicebatch-site"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/voicebatch-site benchmarks/gpu/wheels/*.whl || exit 3
  export PYTHONPATH="/tmp/voicebatch-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if [ -n "${VOICEBATCH_DEVICE_PACKAGES:-}" ]; then
  # The dry run's device simulation: only the GPU machine's packages and wheels.txt import.
  export PYTHONPATH="$PWD/benchmarks/gpu/device_guard:$PYTHONPATH"
fi
# Plugins the machine happens to have must not change what the tests do.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1

step "import check"
if ! "$PYTHON" -c 'import f5_tts.model, f5_tts.infer.utils_infer, vocos, voicebatch.synthesis.engine' 2>/tmp/voicebatch-import-error.txt; then
  tail -5 /tmp/voicebatch-import-error.txt | tee "$OUT/import-error.txt"
  # f5_tts.model imports its trainer, whose wandb/datasets imports are never used for
  # inference: if only those fail on this machine, stand them in (loudly) rather than lose
  # the whole check; anything else is fatal.
  if grep -qE "wandb|datasets" /tmp/voicebatch-import-error.txt; then
    echo "!! training-only imports failed: standing in empty wandb/datasets modules (inference never uses them)"
    mkdir -p /tmp/voicebatch-standins/datasets
    echo 'raise_on_use = "wandb is not installed on this machine (training only)"' > /tmp/voicebatch-standins/wandb.py
    printf 'class Dataset:
    pass

def load_from_disk(*a, **k):
    raise RuntimeError("datasets is not installed on this machine (training only)")
' \
      > /tmp/voicebatch-standins/datasets/__init__.py
    export PYTHONPATH="/tmp/voicebatch-standins:$PYTHONPATH"
    "$PYTHON" -c 'import f5_tts.model, f5_tts.infer.utils_infer, vocos, voicebatch.synthesis.engine' || exit 4
  else
    exit 4
  fi
fi
echo "imports ok"

step "machine"
{
  "$PYTHON" --version
  "$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
  nproc
} 2>&1 | tee "$OUT/machine.txt"

step "CUDA tests (tests/test_cuda.py; skipped without CUDA)"
timeout "${TEST_TIMEOUT_S:-240}" "$PYTHON" -m pytest tests/test_cuda.py tests/test_attention.py -q -p no:cacheprovider \
  -p no:randomly -o addopts="" --junitxml="$OUT/pytest.xml" 2>&1 | tail -40 | tee "$OUT/pytest.txt"

budget=$(( ${TOTAL_S:-570} - SECONDS - 25 ))
step "benchmarks/gpu/check.py (${budget} s left to start sections in)"
"$PYTHON" benchmarks/gpu/check.py --out "$OUT" --budget-s "${CHECK_BUDGET_S:-$budget}" \
  ${CHECK_SECTIONS:+--sections "$CHECK_SECTIONS"} ${CHECK_SKIP:+--skip "$CHECK_SKIP"} $DRY 2>&1 \
  | tee "$OUT/check.log" | grep -v "^   " | cut -c1-400
status=${PIPESTATUS[0]}
step "done (check.py exit $status)"
exit "$status"
