#!/usr/bin/env bash
# The default model against BM3D on BSD68, on identical noisy inputs (seed 0),
# with the published N3Net / DnCNN / BM3D figures beside them.
#
#   N3NET_DATA=../shared/data scripts/default-model-table.sh [MODEL.onnx]
#
# Results go to target/default-model/ (n3net-s*.json, bm3d-s*.json). BM3D
# takes about 15 s per BSD68 image per core; existing bm3d-s*.json files are
# reused unless FRESH=1.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${N3NET_DATA:?set N3NET_DATA to the shared data folder, e.g. ../shared/data}
SET="$DATA/testsets/BSD68"
OUT=target/default-model
MODEL_ARGS=()
if [ $# -ge 1 ]; then MODEL_ARGS=(--model "$1"); fi
mkdir -p "$OUT"
cargo build --release -q
for s in 15 25 50; do
  target/release/n3net eval "${MODEL_ARGS[@]}" --dataset "$SET" --sigma "$s" --seed 0 \
    --json "$OUT/n3net-s$s.json" | tail -1
  if [ -n "${FRESH:-}" ] || [ ! -f "$OUT/bm3d-s$s.json" ]; then
    python3 python/bm3d_baseline.py --n3net target/release/n3net --dataset "$SET" --sigma "$s" \
      --seed 0 --jobs "$(nproc)" --json "$OUT/bm3d-s$s.json" | tail -1
  fi
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
# Published BSD68 figures: N3Net (Ploetz & Roth 2018, Table 2); DnCNN and BM3D
# (Zhang et al. 2017, DnCNN paper, Table 2).
paper_n3 = {15: None, 25: 29.30, 50: 26.39}
paper_dncnn = {15: 31.73, 25: 29.23, 50: 26.23}
paper_bm3d = {15: 31.07, 25: 28.57, 50: 25.62}
fmt = lambda v: "—" if v is None else f"{v:.2f}"
print("| σ | BM3D (measured) | default model (measured) | gap to BM3D | paper BM3D | paper DnCNN | paper N³Net |")
print("|---|---|---|---|---|---|---|")
ok = True
for s in (15, 25, 50):
    n = json.load(open(f"{out}/n3net-s{s}.json"))
    b = json.load(open(f"{out}/bm3d-s{s}.json"))
    assert [i["name"] for i in n["images"]] == [i["name"] for i in b["images"]]
    for i, j in zip(n["images"], b["images"]):  # identical noisy inputs
        assert abs(i["psnr_noisy"] - j["psnr_noisy"]) < 1e-6, (i["name"], i["psnr_noisy"], j["psnr_noisy"])
    gap = n["mean_psnr"] - b["mean_psnr"]
    ok &= gap > 0
    print(f"| {s} | {b['mean_psnr']:.3f} | {n['mean_psnr']:.3f} | {gap:+.3f} | {fmt(paper_bm3d[s])} "
          f"| {fmt(paper_dncnn[s])} | {fmt(paper_n3[s])} |")
sys.exit(0 if ok else 1)
PY
