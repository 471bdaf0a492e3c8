#!/usr/bin/env bash
# n3net against tract, ONNX Runtime and PyTorch on the whole N³Net, in one
# run on this machine: the paper's σ=25 network (the authors' checkpoint
# from $N3NET_DATA, exported by python/export_onnx.py into target/bench/,
# never committed), square images of each size, 1 and 2 threads.
#
#   scripts/bench-peers.sh [--sizes 256,512,1024] [--threads 1,2] [--repeat 2] [--timeout 300]
#                          [--n3net-only]
#
# --n3net-only measures n3net f32/f16/q16 alone (no peers; the graph is
# exported at the first size only, for the weight blobs): the precisions
# against each other in a quarter of the time.
#
# Engines, each configuration in its own process (its peak resident memory
# is measured by GNU time):
#   n3net f32/f16/q16  `n3net bench` on weight blobs written by `n3net convert`
#                      (q16 calibrated on Train400)
#   tract              `n3net bench --engine tract` on the graph exported at that size
#   onnxruntime        python/bench_peer.py --engine ort, the same graph
#   pytorch            python/bench_peer.py --engine torch, the python tool's model
# A peer that passes --timeout seconds, or runs out of memory (the address
# space of peers is capped at --mem-gb GiB, default 20, so that the machine
# does not swap), is reported as such. The single-core FMA peak is measured
# by core/examples/fma_peak.rs in the same run; the table prints every
# engine's GMAC/s as a fraction of it (times the thread count) and the
# speed of n3net f32 relative to the fastest peer that finished.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=256,512,1024 threads=1,2 repeat=2 limit=300 mem_gb=20 peers=1
while [ $# -gt 0 ]; do
    case $1 in
        --sizes) sizes=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --repeat) repeat=$2; shift 2 ;;
        --timeout) limit=$2; shift 2 ;;
        --mem-gb) mem_gb=$2; shift 2 ;;
        --n3net-only) peers=0; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
data=${N3NET_DATA:-../shared/data}
ckpt=$data/pretrained/official-n3net/n3net_sigma25.t7
[ -f "$ckpt" ] || { echo "missing $ckpt (set N3NET_DATA)" >&2; exit 1; }
[ -x /usr/bin/time ] || bash scripts/ensure-packages.sh time
dir=target/bench
mkdir -p "$dir"
results=$dir/results.jsonl
: >"$results"

cargo build --release -q -p n3net-runtime
cargo build --release -q -p n3net-core --example fma_peak --example conv_speed
n3net=target/release/n3net
target/release/examples/fma_peak | tee "$dir/peak.txt" >&2
peak=$(sed -n 's/^single-core f32 FMA peak: \([0-9.]*\) GMAC.*/\1/p' "$dir/peak.txt")
# The int16 multiply-add rate of the q16 kernels' AVX2 instructions (x86-64 only).
int16=$(sed -n 's/^single-core int16 multiply-add rate[^:]*: \([0-9.]*\) GMAC.*/\1/p' "$dir/peak.txt")
# The 64→64 3×3 convolution alone, f32 and q16, against the same peak.
target/release/examples/conv_speed | tee "$dir/conv.txt" >&2

IFS=, read -ra size_list <<<"$sizes"
IFS=, read -ra thread_list <<<"$threads"
export_sizes=("${size_list[@]}")
[ "$peers" = 1 ] || export_sizes=("${size_list[0]}")
for n in "${export_sizes[@]}"; do
    m=$dir/n3net_sigma25_$n.onnx
    [ -f "$m" ] || python3 python/export_onnx.py --checkpoint "$ckpt" --out "$m" \
        --height "$n" --width "$n" --threads 2 --no-compare >&2
done
first=$dir/n3net_sigma25_${size_list[0]}.onnx
for p in f32 f16 q16; do
    b=$dir/sigma25-$p.n3b
    [ -f "$b" ] || "$n3net" convert "$first" --precision "$p" \
        --calibration "$data/train/Train400" -o "$b" >&2
done

# measure LABEL SIZE THREADS CMD...: runs CMD under the limits and appends
# one JSON line (the engine's own JSON line on stdout, the last one, plus
# status and peak memory) to $results.
measure() {
    local label=$1 n=$2 t=$3 status=ok rc=0
    shift 3
    echo "== $label ${n}x$n, $t thread(s)" >&2
    ( ulimit -v $((mem_gb << 20)); exec timeout "$limit" /usr/bin/time -f %M -o "$dir/rss" "$@" ) \
        >"$dir/out" 2>"$dir/err" || rc=$?
    if [ $rc -ne 0 ]; then
        if [ $rc -eq 124 ]; then
            status="out of time (> ${limit} s)"
        elif grep -qiE "memory|bad_alloc|allocat|Killed" "$dir/err" || [ $rc -eq 137 ]; then
            status="out of memory (> ${mem_gb} GiB)"
        else
            status="failed (exit $rc): $(grep -v '^\s*$' "$dir/err" | tail -1 | cut -c1-120)"
        fi
    fi
    python3 - "$label" "$n" "$t" "$status" "$dir/out" "$dir/rss" >>"$results" <<'PY'
import json, sys
label, n, t, status, out, rss = sys.argv[1:]
rec = {"label": label, "size": int(n), "threads": int(t), "status": status}
lines = [l for l in open(out).read().splitlines() if l.startswith("{")]
if status == "ok" and lines:
    rec.update({k: v for k, v in json.loads(lines[-1]).items() if k in ("best_s", "median_s", "runs")})
try:
    rec["rss_kb"] = int(open(rss).read().split()[-1])
except (OSError, ValueError, IndexError):
    pass
print(json.dumps(rec))
PY
    tail -1 "$results" >&2
}

for n in "${size_list[@]}"; do
    for t in "${thread_list[@]}"; do
        for p in f32 f16 q16; do
            rm -f "$dir/one.json"
            measure "n3net $p" "$n" "$t" sh -c "'$n3net' bench --model '$dir/sigma25-$p.n3b' --size $n \
                --threads $t --repeat $repeat --json '$dir/one.json' >&2 && cat '$dir/one.json'"
        done
        [ "$peers" = 1 ] || continue
        onnx=$dir/n3net_sigma25_$n.onnx
        measure "tract" "$n" "$t" sh -c "rm -f '$dir/one.json'; '$n3net' bench --engine tract \
            --model '$onnx' --threads $t --repeat $repeat --json '$dir/one.json' >&2 && cat '$dir/one.json'"
        measure "onnxruntime" "$n" "$t" python3 python/bench_peer.py --engine ort --onnx "$onnx" \
            --size "$n" --threads "$t" --repeat "$repeat"
        measure "pytorch" "$n" "$t" python3 python/bench_peer.py --engine torch --checkpoint "$ckpt" \
            --size "$n" --threads "$t" --repeat "$repeat"
    done
done

macs=$("$n3net" info "$dir/sigma25-f32.n3b" | sed -n 's/^multiply-adds *\([0-9]*\) per pixel/\1/p')
python3 - "$results" "$peak" "$macs" "$dir/conv.txt" "${int16:-0}" <<'PY'
import json, re, sys
res, peak, macs = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
int16 = float(sys.argv[5])
rows = [json.loads(l) for l in open(res)]
print(f"\nsingle-core f32 FMA peak: {peak:.2f} GMAC/s; network: {macs:.0f} multiply-adds per pixel")
if int16:
    print(f"single-core int16 multiply-add rate (vpmaddwd + vpaddd): {int16:.2f} GMAC/s, "
          f"{int16 / peak:.2f}× the f32 FMA peak")
for line in open(sys.argv[4]):
    m = re.match(r"(\S+)\s+f32\s+([0-9.]+) GMAC/s.*q16\s+([0-9.]+) GMAC/s", line)
    if m:
        isa, f, q = m.group(1), float(m.group(2)), float(m.group(3))
        of16 = f" ({100 * q / int16:.0f} % of the int16 rate)" if int16 else ""
        print(f"64→64 3×3 convolution, 1 thread, {isa}: f32 {f:.1f} GMAC/s ({100 * f / peak:.0f} % of the "
              f"FMA peak), q16 {q:.1f} GMAC/s{of16}")
print("| size | threads | engine | s/image | MP/s | GMAC/s | of FMA peak | peak memory | n3net f32 speed-up |")
print("|---|---|---|---|---|---|---|---|---|")
peers = ("tract", "onnxruntime", "pytorch")
for size in sorted({r["size"] for r in rows}):
    for t in sorted({r["threads"] for r in rows if r["size"] == size}):
        group = [r for r in rows if r["size"] == size and r["threads"] == t]
        ours = next((r for r in group if r["label"] == "n3net f32" and r["status"] == "ok"), None)
        done = [r for r in group if r["label"] in peers and r["status"] == "ok"]
        fastest = min(done, key=lambda r: r["best_s"]) if done else None
        for r in group:
            mem = f"{r['rss_kb'] / 1024:.0f} MiB" if "rss_kb" in r else "–"
            if r["status"] != "ok":
                print(f"| {size}² | {t} | {r['label']} | {r['status']} | | | | {mem} | |")
                continue
            s = r["best_s"]
            gmacs = macs * size * size / s / 1e9
            ratio = ""
            if r is ours and fastest:
                ratio = f"**{fastest['best_s'] / s:.2f}×** vs {fastest['label']}"
            elif r["label"] in peers and ours:
                ratio = f"{s / ours['best_s']:.2f}×"
            print(f"| {size}² | {t} | {r['label']} | {s:.3f} | {size * size / s / 1e6:.3f} | "
                  f"{gmacs:.1f} | {100 * gmacs / (peak * t):.0f} % | {mem} | {ratio} |")
print("\n| size | threads | q16 speed vs f32 | f16 speed vs f32 |")
print("|---|---|---|---|")
for size in sorted({r["size"] for r in rows}):
    for t in sorted({r["threads"] for r in rows if r["size"] == size}):
        best = {r["label"]: r["best_s"] for r in rows
                if r["size"] == size and r["threads"] == t and r["status"] == "ok"}
        if "n3net f32" in best:
            f = best["n3net f32"]
            q, h = (f"{f / best[l]:.2f}×" if l in best else "–" for l in ("n3net q16", "n3net f16"))
            print(f"| {size}² | {t} | {q} | {h} |")
PY
