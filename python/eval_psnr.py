"""Mean PSNR of an N3Net checkpoint on a grey test set (spec section 6), in PyTorch.

    python3 python/eval_psnr.py --checkpoint n3net_sigma25.t7 \
        --testset $N3NET_DATA/testsets/Set12 --sigma 25

noisy = clean + sigma/255 * N(0, 1) (float, no clipping); PSNR with peak 1 on
the unclipped output; mean over the set.  Single-threaded by default.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_onnx import build_model_from_files  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--args", default=None, help="training args pickle (default: beside the checkpoint)")
    ap.add_argument("--testset", required=True, help="folder of grey 8-bit PNGs")
    ap.add_argument("--sigma", type=float, required=True, help="noise level on the 0-255 scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=256, help="query patches per chunk in the N3 blocks")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    model, cfg, _sigma, _ = build_model_from_files(a.checkpoint, a.args)
    model.set_chunk(a.chunk)
    files = sorted(glob.glob(os.path.join(a.testset, "*.png")))
    if a.limit:
        files = files[:a.limit]
    if not files:
        print("no PNG files in", a.testset, file=sys.stderr)
        return 2
    gen = torch.Generator().manual_seed(a.seed)
    psnrs = []
    t0 = time.time()
    for f in files:
        img = np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255.0
        clean = torch.from_numpy(img)[None, None]
        noisy = clean + (a.sigma / 255.0) * torch.randn(clean.shape, generator=gen)
        extra = cfg.in_channels - 1
        inp = noisy if extra == 0 else torch.cat([noisy, torch.full((1, extra) + noisy.shape[2:], a.sigma / 255.0)], 1)
        with torch.no_grad():
            out = model(inp)[:, :1]
        mse = float(((out.double() - clean.double()) ** 2).mean())
        psnr = 10 * math.log10(1.0 / mse)
        psnrs.append(psnr)
        print(f"{os.path.basename(f)}  {img.shape[1]}x{img.shape[0]}  PSNR {psnr:.3f} dB  "
              f"(noisy {10 * math.log10(1.0 / float(((noisy - clean) ** 2).mean())):.2f})  "
              f"[{time.time() - t0:.0f}s]", flush=True)
    print(f"mean PSNR over {len(psnrs)} images: {np.mean(psnrs):.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
