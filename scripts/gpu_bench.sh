#!/usr/bin/env bash
# snapflow-bench at real size on a lent CUDA machine (no network, no lerobot, transformers 5.17 in its image).
#
# Prepare HERE first:  scripts/fetch_gpu_wheels.sh        (fills .whl/, ~17 MB, git-ignored: carry it)
# Then, on the GPU machine, from the repo root:  bash scripts/gpu_bench.sh
#   (device tool: command "bash scripts/gpu_bench.sh", carry [".whl"], timeout_s 540)
# Writes $OUT/<family>/bench.json + latency_breakdown.png + <family>.log for smolvla, pi0, pi05 (real size,
# random weights, CUDA, PI0/PI05 in bf16 as released, SmolVLA in its config's fp32), NFE 1 and 10, torch.
# Each family is capped by FAMILY_TIMEOUT seconds so that the three fit in ~8 minutes.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$REPO/outputs/gpu_bench}
SITE=${SITE:-/tmp/snapflow_site}
PY=${PY:-python3}
REPEATS=${REPEATS:-20}
WARMUP=${WARMUP:-3}
FAMILY_TIMEOUT=${FAMILY_TIMEOUT:-150}
DEVICE=${DEVICE:-cuda}   # DEVICE=cpu SIZE=tiny: a smoke test of this script on a CPU machine
SIZE=${SIZE:-real}
mkdir -p "$OUT" "$SITE/snapflow"
start=$(date +%s)

# 1. The carried wheels into a private target dir (never into the image's environment).
ls "$REPO"/.whl/*.whl >/dev/null 2>&1 || { echo "no .whl/: run scripts/fetch_gpu_wheels.sh and carry .whl" >&2; exit 2; }
"$PY" -m pip install -q --no-index --no-deps --disable-pip-version-check --target "$SITE" "$REPO"/.whl/*.whl \
  || { echo "wheel install failed" >&2; exit 3; }
# 2. The `snapflow` namespace without pip-installing the package: a symlink tree (snapflow.policies -> policies/
#    and so on, as pyproject's package-dir maps it); the repo root on the path gives lerobot_policy_snapflow.
for d in policies sim deploy scripts configs; do ln -sfn "$REPO/$d" "$SITE/snapflow/$d"; done
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONDONTWRITEBYTECODE=1

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true; } | tee "$OUT/gpu.txt"
"$PY" - <<'PY' 2>&1 | tee "$OUT/env.txt"
import torch, transformers, lerobot, onnxruntime, snapflow.deploy.bench  # noqa: F401
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.version.cuda,
      "transformers", transformers.__version__, "lerobot", lerobot.__version__)
PY
[ "${PIPESTATUS[0]}" = 0 ] || { echo "imports failed; see $OUT/env.txt" >&2; exit 4; }

# 3. One family at a time (the GPU holds ~8 GB for PI0 in bf16); threads = torch CPU threads for the host side.
for fam in smolvla pi0 pi05; do
  t0=$(date +%s)
  timeout "$FAMILY_TIMEOUT" "$PY" -m snapflow.scripts.bench policy="$fam" size="$SIZE" 'nfe=[1,10]' 'runtimes=[torch]' \
    device="$DEVICE" threads=8 repeats="$REPEATS" warmup="$WARMUP" out="$OUT/$fam" cache_dir=/tmp/snapflow_bench_cache \
    > "$OUT/$fam.log" 2>&1
  rc=$?
  echo "== $fam: rc=$rc wall=$(( $(date +%s) - t0 )) s"
  grep -v -i "warn" "$OUT/$fam.log" | tail -25
done
echo "total wall $(( $(date +%s) - start )) s; results under $OUT"
