#!/usr/bin/env bash
# The mean PSNR of one paper-table cell over several noise draws (seeds
# 0..N-1), with its standard error: one draw moves a 12-image set's mean by
# about ±0.013 dB, so this separates the network from the draw.
#
#   N3NET_DATA=../shared/data scripts/noise-draws.sh SET SIGMA N [MODELS_DIR]
#
# MODELS_DIR as in scripts/fidelity.sh (n3net_sigma{25,50,70}.onnx, exported there
# when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 SET SIGMA N [MODELS_DIR]" >&2; exit 2; }
set_name=$1 sigma=$2 draws=$3
data="${N3NET_DATA:-../shared/data}"
models="${4:-target/official-onnx}"
model="$models/n3net_sigma$sigma.onnx"
mkdir -p "$models" target/noise-draws
[ -f "$model" ] || python3 python/export_onnx.py --checkpoint "$data/pretrained/official-n3net/n3net_sigma$sigma.t7" \
    --out "$model" --height 64 --width 64
cargo build --release -q
for ((seed = 0; seed < draws; seed++)); do
    json="target/noise-draws/$set_name-sigma$sigma-seed$seed.json"
    [ -f "$json" ] || ./target/release/n3net eval --model "$model" --dataset "$data/testsets/$set_name" \
        --sigma "$sigma" --seed "$seed" --json "$json" >/dev/null
    python3 -c "import json,sys; print('seed $seed: %.3f dB' % json.load(open(sys.argv[1]))['mean_psnr'])" "$json"
done
python3 - "$set_name" "$sigma" "$draws" <<'PY'
import json, math, statistics, sys
s, sigma, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
m = [json.load(open(f"target/noise-draws/{s}-sigma{sigma}-seed{i}.json"))["mean_psnr"] for i in range(n)]
sd = statistics.stdev(m) if n > 1 else float("nan")
print(f"{s} sigma {sigma}, {n} draws: mean {statistics.mean(m):.4f} dB, standard error {sd / math.sqrt(n):.4f}, "
      f"standard deviation {sd:.4f}, range {min(m):.3f}..{max(m):.3f}")
PY
