"""Mean PSNR of an N3Net checkpoint on a grey test set (spec section 6), in PyTorch.

    python3 python/eval_psnr.py --checkpoint n3net_sigma25.t7 \
        --testset $N3NET_DATA/testsets/Set12 --sigma 25 [--draws 100 --device cuda]

noisy = clean + sigma/255 * N(0, 1) (float, no clipping); PSNR with peak 1 on
the unclipped output; mean over the set.  Single-threaded by default.

``--draws N`` repeats the evaluation with the seeds seed .. seed+N-1 and
prints, per draw, the set's mean PSNR, then the mean over the draws with its
standard error and spread: the noise draw alone moves a small set's mean by
hundredths of a dB, and this separates that from the network.  Each line also
gives the mean PSNR of the output clipped to [0, 1], which is *not* the
spec's protocol, for comparison with evaluations that clip.
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


def psnr(out: torch.Tensor, clean: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((out.double() - clean.double()) ** 2).mean()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--args", default=None, help="training args pickle (default: beside the checkpoint)")
    ap.add_argument("--testset", required=True, help="folder of grey 8-bit PNGs")
    ap.add_argument("--sigma", type=float, required=True, help="noise level on the 0-255 scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draws", type=int, default=1, help="noise draws, seeds seed..seed+draws-1")
    ap.add_argument("--chunk", type=int, default=256,
                    help="query patches per chunk in the N3 blocks (0: all at once)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda")
    ap.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    a = ap.parse_args()
    if a.draws < 1:
        ap.error("--draws must be >= 1")

    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    model, cfg, _sigma, _ = build_model_from_files(a.checkpoint, a.args)
    model.set_chunk(a.chunk)
    model.to(dev)
    files = sorted(glob.glob(os.path.join(a.testset, "*.png")))
    if a.limit:
        files = files[:a.limit]
    if not files:
        print("no PNG files in", a.testset, file=sys.stderr)
        return 2
    cleans = [torch.from_numpy(np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 255.0)[None, None]
              for f in files]
    means, clipped_means = [], []
    t0 = time.time()
    for seed in range(a.seed, a.seed + a.draws):
        gen = torch.Generator().manual_seed(seed)
        psnrs, clipped = [], []
        for f, clean in zip(files, cleans):
            noisy = clean + (a.sigma / 255.0) * torch.randn(clean.shape, generator=gen)
            extra = cfg.in_channels - 1
            inp = noisy if extra == 0 else torch.cat(
                [noisy, torch.full((1, extra) + noisy.shape[2:], a.sigma / 255.0)], 1)
            with torch.no_grad():
                out = model(inp.to(dev))[:, :1].cpu()
            psnrs.append(psnr(out, clean))
            clipped.append(psnr(out.clamp(0.0, 1.0), clean))
            if a.draws == 1:
                print(f"{os.path.basename(f)}  {clean.shape[3]}x{clean.shape[2]}  PSNR {psnrs[-1]:.3f} dB  "
                      f"(noisy {psnr(noisy, clean):.2f})  [{time.time() - t0:.0f}s]", flush=True)
        means.append(float(np.mean(psnrs)))
        clipped_means.append(float(np.mean(clipped)))
        print(f"seed {seed}: mean PSNR over {len(psnrs)} images: {means[-1]:.3f} dB "
              f"(output clipped to [0, 1]: {clipped_means[-1]:.3f})  [{time.time() - t0:.0f}s]", flush=True)
    if a.draws > 1:
        m = np.array(means)
        c = np.array(clipped_means)
        print(f"over {a.draws} draws: mean {m.mean():.4f} dB, standard error {m.std(ddof=1) / math.sqrt(a.draws):.4f}, "
              f"standard deviation {m.std(ddof=1):.4f}, range {m.min():.3f}..{m.max():.3f}; "
              f"clipped output: mean {c.mean():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
