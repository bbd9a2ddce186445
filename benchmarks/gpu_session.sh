#!/usr/bin/env bash
# One prepared session on a lent GPU machine (the `device` tool; a task has 15 minutes of device
# time in all, so this is one call of about 7 minutes). Prepare the wheels here first:
#
#     bash benchmarks/gpu_wheels.sh
#     # device tool: run(command="bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=560)
#
# It runs, each under its own time limit, with what it prints and writes under $OUT:
#   1. the `gpu`-marked tests (CUDA load / predict / learn paths; never run before 2026-12),
#   2. issue #12's GPU cells' cost per env step on CUDA: drive-ddpg and drive-multi10 at 1/40 of
#      the budget (1000 env steps each; `--budget-scale` files never count as grid cells),
#   3. issue #13's AD speed on CUDA (in-context steps/s with the KV cache vs recompute, and
#      training tokens/s at batch 128).
# The figures go to BENCHMARKS.md by hand, with the machine named; nothing here asserts a time.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu_session}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
started=$(date +%s)
stamp() { echo "[$(($(date +%s) - started)) s] $*" | tee -a "$OUT/session.log"; }

if [ ! -d .whl ]; then
    echo ".whl/ is missing: run benchmarks/gpu_wheels.sh here and carry .whl" >&2
    exit 2
fi
python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 -c "import torch, zoo, stable_baselines3 as sb3; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'sb3', sb3.__version__)"
    nproc
} > "$OUT/machine.txt" 2>&1
stamp "installed; $(tail -2 "$OUT/machine.txt" | head -1)"

stamp "1. gpu tests"
timeout 200 python3 -m pytest -m gpu -p no:cacheprovider -q -rA --timeout 150 \
    tests/test_quickstart.py tests/test_kickstart.py tests/test_hub.py tests/test_reengage.py \
    > "$OUT/gpu_tests.log" 2>&1
stamp "gpu tests exit $? ($(tail -1 "$OUT/gpu_tests.log"))"

stamp "2. DriveSeek cells on cuda, 1/40 budget, side by side"
for cell in drive-ddpg drive-multi10; do
    timeout 170 python3 benchmarks/reengage.py --backend serial --device cuda --cells "$cell" --seeds 0 \
        --budget-scale 0.025 --no-checkpoints --results "$OUT/reengage" > "$OUT/$cell.log" 2>&1 &
done
wait
stamp "DriveSeek done: $(ls "$OUT/reengage/scale0.025" 2>/dev/null | tr '\n' ' ')"

stamp "3. AD speed on cuda"
timeout 120 python3 benchmarks/ad.py --experiment speed --device cuda --batch-size 128 \
    --speed-train-steps 100 --out /tmp/ad_speed > "$OUT/ad_speed.log" 2>&1
stamp "AD speed exit $?"
cat "$OUT/session.log"
