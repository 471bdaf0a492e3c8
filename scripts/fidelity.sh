#!/usr/bin/env bash
# Reproduces the paper's N³Net PSNR table (spec §6) with the authors' checkpoints
# converted by the project's own tool.
#
#   scripts/fidelity.sh [MODELS_DIR] [RESULTS_DIR]
#
# MODELS_DIR holds n3net_sigma{25,50,70}.onnx; missing files are exported from
# $N3NET_DATA/pretrained/official-n3net/ (default ../shared/data). Never commit
# them: the authors' licence forbids redistribution.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${N3NET_DATA:-../shared/data}"
models="${1:-target/official-onnx}"
results="${2:-target/fidelity}"
mkdir -p "$models" "$results"
for s in 25 50 70; do
    m="$models/n3net_sigma$s.onnx"
    [ -f "$m" ] || python3 python/export_onnx.py --checkpoint "$data/pretrained/official-n3net/n3net_sigma$s.t7" \
        --out "$m" --height 64 --width 64
done
cargo build --release -q
cells="Set12:25:30.55 Set12:50:27.43 Set12:70:25.90 BSD68:25:29.30 BSD68:50:26.39 BSD68:70:25.14 Urban100:25:30.19"
for cell in $cells; do
    IFS=: read -r set s paper <<<"$cell"
    json="$results/$set-sigma$s.json"
    [ -f "$json" ] || ./target/release/n3net eval --model "$models/n3net_sigma$s.onnx" \
        --dataset "$data/testsets/$set" --sigma "$s" --seed 0 --json "$json" >/dev/null
done
python3 - "$results" $cells <<'PY'
import json, sys
res, cells = sys.argv[1], sys.argv[2:]
print("| set | σ | paper [dB] | n3net [dB] | difference | SSIM |")
print("|---|---|---|---|---|---|")
worst = 0.0
for cell in cells:
    s, sigma, paper = cell.split(":")
    r = json.load(open(f"{res}/{s}-sigma{sigma}.json"))
    d = r["mean_psnr"] - float(paper)
    worst = max(worst, abs(d))
    print(f"| {s} | {sigma} | {paper} | {r['mean_psnr']:.2f} | {d:+.2f} | {r['mean_ssim']:.4f} |")
print(f"\nlargest |difference|: {worst:.3f} dB")
PY
