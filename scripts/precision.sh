#!/usr/bin/env bash
# Accuracy of the f16 and q16 precisions against f32, on identical noise draws:
# the authors' σ=25 model at σ=25, their σ=50 model at σ=50, and the built-in
# default model at σ=25, each run as f32, f16 and q16 (calibrated on the first
# 32 Train400 images) through `n3net eval --precision`. Prints a table with
# the differences and fails unless f16 ≥ f32 − 0.02 dB and q16 ≥ f32 − 0.05 dB.
#
#   N3NET_DATA=../shared/data scripts/precision.sh [TESTSET [LIMIT [MODELS]]]
#
# TESTSET defaults to BSD68; LIMIT to all images; MODELS to
# "sigma25 sigma50 default". Converted checkpoints stay under target/.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${N3NET_DATA:-../shared/data}"
export N3NET_DATA="$data"
set_name="${1:-BSD68}"
limit="${2:-}"
models="${3:-sigma25 sigma50 default}"
if [ ! -d "$data/testsets/$set_name" ] || [ ! -d "$data/train/Train400" ]; then
    echo "data not found under $data (set N3NET_DATA)" >&2
    exit 1
fi
onnx=target/ci-onnx
out=target/precision
mkdir -p "$onnx" "$out"
cargo build --release -q
for m in $models; do
    case "$m" in
    sigma25 | sigma50)
        s=${m#sigma}
        ckpt="$data/pretrained/official-n3net/n3net_$m.t7"
        file="$onnx/n3net_${m}_64x64.onnx"
        [ -f "$file" ] || python3 python/export_onnx.py --checkpoint "$ckpt" --out "$file" \
            --height 64 --width 64 2>&1 | grep -v Warning
        model=(--model "$file")
        ;;
    default)
        s=25
        model=()
        ;;
    *)
        echo "unknown model $m" >&2
        exit 1
        ;;
    esac
    for p in f32 f16 q16; do
        ./target/release/n3net eval "${model[@]}" --dataset "$data/testsets/$set_name" \
            --sigma "$s" --seed 0 --precision "$p" ${limit:+--limit "$limit"} \
            --json "$out/$m-$set_name-$p.json" | tail -n 1
    done
done
python3 - "$out" "$set_name" $models <<'PY'
import json, sys
out, set_name, models = sys.argv[1], sys.argv[2], sys.argv[3:]
ok = True
print(f"\n{set_name}: mean PSNR [dB] (identical noise draws, seed 0)")
print(f"{'model':<10} {'σ':>3} {'f32':>8} {'f16':>8} {'Δf16':>7} {'q16':>8} {'Δq16':>7}")
for m in models:
    r = {p: json.load(open(f"{out}/{m}-{set_name}-{p}.json")) for p in ("f32", "f16", "q16")}
    f, h, q = (r[p]["mean_psnr"] for p in ("f32", "f16", "q16"))
    s = r["f32"]["sigma"]
    print(f"{m:<10} {s:>3.0f} {f:>8.3f} {h:>8.3f} {h - f:>+7.3f} {q:>8.3f} {q - f:>+7.3f}")
    ok &= h >= f - 0.02 and q >= f - 0.05
print("f16 within 0.02 dB and q16 within 0.05 dB of f32:", "yes" if ok else "NO")
sys.exit(0 if ok else 1)
PY
