#!/usr/bin/env bash
# 1- vs 2-thread time of `n3net denoise` (the built-in default model, σ=25) on
# a 2048×1536 noisy grey PNG, with the same 256-column stripes both times;
# checks that the two outputs are identical and prints the ratio measured in
# this run (the machine is shared: compare the ratio, not the seconds).
#
#   scripts/threads.sh [WIDTHxHEIGHT] [MODEL.onnx]
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-2048x1536}
model=(); [ $# -ge 2 ] && model=(--model "$2")
w=${size%x*} h=${size#*x}
dir=target/threads
mkdir -p "$dir"
img="$dir/noisy-$size.png"
[ -f "$img" ] || python3 scripts/make_big_png.py "$w" "$h" "$img"
cargo build --release -q
t() {
    local start end
    start=$(date +%s.%N)
    ./target/release/n3net denoise "$img" "$dir/out-$1.png" --sigma 25 --stripe 256 --threads "$1" "${model[@]}"
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}
t1=$(t 1)
t2=$(t 2)
cmp "$dir/out-1.png" "$dir/out-2.png"
echo "$size: 1 thread ${t1} s, 2 threads ${t2} s, speed-up $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", a / b }'), outputs identical"
