#!/usr/bin/env bash
# The full benchmark matrix for this machine class, written to benchmarks/.
#
#   scripts/bench_matrix.sh [WORKDIR]      (default WORKDIR: /tmp/feredge-bench-work, reused between runs)
#
# 1. a synthetic FER set (feredge data synth) for training and for the fidelity/eval split;
# 2. two seed models trained briefly on it (csam_net at its paper size 1x48x48; lfer_ldl at a
#    reduced 3x64x64 input instead of 224x224, the registry's own test size) — enough for fidelity
#    deltas to mean something, not for accuracy claims;
# 3. `feredge bench --matrix`: default model + both seeds × fp32/fp16/int8 × every installed runtime
#    × batch 1/8, references (benchmark_app, PyTorch eager, compute floor), pipeline stages,
#    fidelity against FP32 PyTorch, regression gates (regression.yaml) and precision advice.
# Environment knobs: ITERATIONS (default 200), TRAIN_MINUTES (default 1.5), REF_TRIALS (default 5),
# PIPELINE_ITERATIONS (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/feredge-bench-work}"
ITERATIONS="${ITERATIONS:-200}"
TRAIN_MINUTES="${TRAIN_MINUTES:-1.5}"
REF_TRIALS="${REF_TRIALS:-5}"
PIPELINE_ITERATIONS="${PIPELINE_ITERATIONS:-30}"
FEREDGE="${FEREDGE:-python3 -m feredge}"
mkdir -p "$WORK" benchmarks

if [ ! -d "$WORK/synth/test" ]; then
    $FEREDGE data synth --output "$WORK/synth" --per-class 120 --size 64
fi
train() {  # name, extra args...
    local name="$1"; shift
    if [ ! -f "$WORK/runs/$name/best.safetensors" ]; then
        $FEREDGE train --model "$name" --data "$WORK/synth" --out "$WORK/runs/$name" --epochs 3 \
            --optimizer adamw --lr 0.002 --batch-size 32 --max-minutes "$TRAIN_MINUTES" "$@"
    fi
}
train csam_net
train lfer_ldl --input-size 64 --loss ce

echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
$FEREDGE bench --matrix \
    --model mini_xception "csam_net=$WORK/runs/csam_net/best.safetensors" \
            "lfer_ldl=$WORK/runs/lfer_ldl/best.safetensors" \
    --precisions fp32 fp16 int8 --batch 1 8 --iterations "$ITERATIONS" --warmup 20 \
    --ref-trials "$REF_TRIALS" --ref-seconds 5 --pipeline-iterations "$PIPELINE_ITERATIONS" \
    --data "$WORK/synth" --split test --gates regression.yaml --recommend \
    --calib reference --workdir "$WORK/bundles" \
    --report-dir benchmarks --report-name matrix \
    --title "default + seed models, fp32/fp16/int8, every installed CPU runtime"
