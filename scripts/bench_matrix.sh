#!/usr/bin/env bash
# The full benchmark matrix for this machine class, written to benchmarks/.
#
#   scripts/bench_matrix.sh [WORKDIR]      (default WORKDIR: /tmp/feredge-bench-work, reused between runs)
#
# 1. a synthetic FER set (feredge data synth) for training and for the fidelity/eval split;
# 2. the default model (mini_xception) fine-tuned from its shipped FER2013 weights and two seed
#    models trained briefly on it (csam_net at its paper size 1x48x48; lfer_ldl at a reduced
#    3x64x64 input instead of 224x224, the registry's own test size) — enough for fidelity deltas to
#    mean something, not for accuracy claims. Why fine-tune the default model: fidelity is measured
#    on the synthetic test split, which is out of domain for the FER2013 weights (about 40 %
#    accurate there, near-tied predictions that INT8 flips on rounding); the shipped weights'
#    INT8 fidelity on real faces is in benchmarks/int8_report.md;
# 3. `feredge bench --matrix`: default model + both seeds × fp32/fp16/int8 × every installed runtime
#    × batch 1/8, references (benchmark_app, PyTorch eager, compute floor), pipeline stages,
#    fidelity against FP32 PyTorch, regression gates (regression.yaml) and precision advice.
#    INT8 calibrates on the synthetic set, whose val split then gates INT8 parity. An INT8 export
#    that misses the gate keeps its most sensitive layers in float until top-1 agreement on val
#    reaches MIN_AGREEMENT % (default 98, the gate; the row says how many layers). The regression
#    gates then judge the test split, which can land a point lower (280 faces a split). A margin
#    (99) costs a search over every layer with NNCF/ONNX Runtime PTQ (one re-quantization each):
#    over 10 minutes for csam_net alone on 2 cores.
# Environment knobs: ITERATIONS (default 200), TRAIN_MINUTES (default 1.5), REF_TRIALS (default 5),
# PIPELINE_ITERATIONS (default 30); SYNTH (an existing synthetic set, instead of writing one) and
# MINI_XCEPTION_CKPT / CSAM_NET_CKPT / LFER_LDL_CKPT (checkpoints trained on that set, e.g. by the recipes of
# benchmarks/training.md, instead of the brief runs of step 2).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK="${1:-/tmp/feredge-bench-work}"
ITERATIONS="${ITERATIONS:-200}"
TRAIN_MINUTES="${TRAIN_MINUTES:-1.5}"
REF_TRIALS="${REF_TRIALS:-5}"
PIPELINE_ITERATIONS="${PIPELINE_ITERATIONS:-30}"
MIN_AGREEMENT="${MIN_AGREEMENT:-98}"
FEREDGE="${FEREDGE:-python3 -m feredge}"
mkdir -p "$WORK" benchmarks

SYNTH="${SYNTH:-$WORK/synth}"
if [ ! -d "$SYNTH/test" ]; then
    $FEREDGE data synth --output "$SYNTH" --per-class 120 --size 64
fi
train() {  # name, extra args...
    local name="$1"; shift
    if [ ! -f "$WORK/runs/$name/best.safetensors" ]; then
        $FEREDGE train --model "$name" --data "$SYNTH" --out "$WORK/runs/$name" --epochs 3 \
            --optimizer adamw --lr 0.002 --batch-size 32 --max-minutes "$TRAIN_MINUTES" "$@"
    fi
}
MINI_XCEPTION_CKPT="${MINI_XCEPTION_CKPT:-$WORK/runs/mini_xception/best.safetensors}"
CSAM_NET_CKPT="${CSAM_NET_CKPT:-$WORK/runs/csam_net/best.safetensors}"
LFER_LDL_CKPT="${LFER_LDL_CKPT:-$WORK/runs/lfer_ldl/best.safetensors}"
[ -f "$MINI_XCEPTION_CKPT" ] || train mini_xception --init pretrained --lr 0.0003
[ -f "$CSAM_NET_CKPT" ] || train csam_net
[ -f "$LFER_LDL_CKPT" ] || train lfer_ldl --input-size 64 --loss ce

echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
$FEREDGE bench --matrix \
    --model "mini_xception=$MINI_XCEPTION_CKPT" "csam_net=$CSAM_NET_CKPT" "lfer_ldl=$LFER_LDL_CKPT" \
    --precisions fp32 fp16 int8 --batch 1 8 --iterations "$ITERATIONS" --warmup 20 \
    --ref-trials "$REF_TRIALS" --ref-seconds 5 --pipeline-iterations "$PIPELINE_ITERATIONS" \
    --data "$SYNTH" --split test --gates regression.yaml --recommend \
    --calib "$SYNTH" --min-agreement "$MIN_AGREEMENT" \
    --workdir "$WORK/bundles" \
    --report-dir benchmarks --report-name matrix \
    --title "default + seed models, fp32/fp16/int8, every installed CPU runtime"
