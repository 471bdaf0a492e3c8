#!/usr/bin/env bash
# Peak memory (maximum resident set size, /usr/bin/time -v) of `n3net denoise`
# with the paper's σ=25 network (the authors' checkpoint converted: a
# paper-sized model) on a 4000×3000 and an 8000×6000 noisy grey PNG, default
# options (stripes sized for --max-memory 192, all cores). Passes if both are
# at most 256 MiB and the larger image needs at most 10% more than the smaller.
# Takes long: the 8000×6000 run is 48 megapixels of the paper's network
# (about half an hour on two cores).
#
#   N3NET_DATA=../shared/data scripts/memory.sh [SIZES...]   (default: 4000x3000 8000x6000)
set -euo pipefail
cd "$(dirname "$0")/.."
data="${N3NET_DATA:-../shared/data}"
ckpt="$data/pretrained/official-n3net/n3net_sigma25.t7"
if [ ! -f "$ckpt" ]; then
    echo "checkpoint not found under $data (set N3NET_DATA)" >&2
    exit 1
fi
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(4000x3000 8000x6000)
dir=target/memory
mkdir -p "$dir"
model=target/ci-onnx/n3net_sigma25_64x64.onnx
mkdir -p target/ci-onnx
[ -f "$model" ] || python3 python/export_onnx.py --checkpoint "$ckpt" --out "$model" \
    --height 64 --width 64 2>&1 | grep -v Warning
cargo build --release -q
rss=()
for size in "${sizes[@]}"; do
    w=${size%x*} h=${size#*x}
    img="$dir/noisy-$size.png"
    [ -f "$img" ] || python3 scripts/make_big_png.py "$w" "$h" "$img"
    /usr/bin/time -v ./target/release/n3net denoise "$img" "$dir/out-$size.png" \
        --model "$model" --verbose 2> "$dir/time-$size.txt"
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time-$size.txt")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time-$size.txt")
    grep -E "stripe" "$dir/time-$size.txt" || true
    echo "$size: max RSS $(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }') MiB, wall $wall"
    rss+=("$kb")
done
python3 - "${rss[@]}" <<'PY'
import sys
kb = [int(v) for v in sys.argv[1:]]
mib = [v / 1024 for v in kb]
ok = all(m <= 256 for m in mib)
if len(kb) > 1:
    ratio = kb[-1] / kb[0]
    print(f"largest / smallest max RSS: {ratio:.3f}")
    ok = ok and ratio <= 1.10
print("memory check:", "pass" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
