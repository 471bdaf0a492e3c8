"""BM3D on exactly the noisy images `n3net eval` uses, with the same PSNR.

    python3 python/bm3d_baseline.py --n3net target/release/n3net \
        --dataset ../shared/data/testsets/BSD68 --sigma 25 --seed 0 --json target/bm3d-bsd68-s25.json

The noisy images come from `n3net noisy` (the same seeded draws as `n3net
eval --seed S`; pass ``--noisy DIR`` to reuse a folder it wrote).  BM3D is
the `bm3d` package (Makinen, Azzari, Foi), given the true sigma; PSNR has
peak 1 on the unclipped output, per image, then the mean over the set, as
`n3net eval` computes it.

The `bm3d` package is free for non-commercial use only; it is a measuring
tool here and no part of the product depends on it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image


def clean_images(dataset: str):
    """The test set in `n3net eval` order (file names sorted; PNG/PGM/NPY)."""
    names = sorted(n for n in os.listdir(dataset) if n.lower().rsplit(".", 1)[-1] in ("png", "pgm", "npy"))
    if not names:
        raise SystemExit(f"no images in {dataset}")
    return names


def load_clean(path: str) -> np.ndarray:
    if path.lower().endswith(".npy"):
        return np.load(path).astype(np.float32)
    im = Image.open(path)
    if im.mode not in ("L", "I;16", "I"):
        raise SystemExit(f"{path}: expected a grey image, got mode {im.mode}")
    a = np.asarray(im, dtype=np.float32)
    return a / (65535.0 if im.mode != "L" else 255.0)


def psnr(clean: np.ndarray, test: np.ndarray) -> float:
    mse = float(np.mean((clean.astype(np.float64) - test.astype(np.float64)) ** 2))
    return 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf


def run_one(job):
    name, clean_path, noisy_path, sigma = job
    import bm3d
    clean = load_clean(clean_path)
    noisy = np.load(noisy_path).astype(np.float32)
    if noisy.shape != clean.shape:
        raise SystemExit(f"{noisy_path}: shape {noisy.shape} != clean {clean.shape}")
    t = time.time()
    out = bm3d.bm3d(noisy, sigma_psd=sigma / 255.0).astype(np.float32)
    return {"name": name, "size": [clean.shape[1], clean.shape[0]], "psnr_noisy": psnr(clean, noisy),
            "psnr": psnr(clean, out), "seconds": time.time() - t}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--sigma", type=float, required=True, help="0-255 scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n3net", default="target/release/n3net", help="the n3net binary (writes the noisy images)")
    ap.add_argument("--noisy", default=None, help="folder already written by `n3net noisy` (same seed/sigma)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)

    names = clean_images(a.dataset)
    if a.limit > 0:
        names = names[:a.limit]
    with tempfile.TemporaryDirectory() as tmp:
        noisy_dir = a.noisy
        if noisy_dir is None:
            noisy_dir = tmp
            subprocess.run([a.n3net, "noisy", "--dataset", a.dataset, "--sigma", str(a.sigma),
                            "--seed", str(a.seed), "--out", noisy_dir], check=True)
        jobs = [(n, os.path.join(a.dataset, n), os.path.join(noisy_dir, os.path.splitext(n)[0] + ".npy"), a.sigma)
                for n in names]
        with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as ex:
            results = []
            for r in ex.map(run_one, jobs):
                results.append(r)
                print(f"{r['name']:<16} {r['psnr_noisy']:8.3f} -> {r['psnr']:8.3f} dB  ({r['seconds']:.1f} s)",
                      flush=True)
    mean = sum(r["psnr"] for r in results) / len(results)
    mean_noisy = sum(r["psnr_noisy"] for r in results) / len(results)
    print(f"BM3D mean over {len(results)} images (sigma = {a.sigma:g}, seed {a.seed}): "
          f"PSNR {mean:.3f} dB (noisy {mean_noisy:.3f} dB)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": "BM3D (bm3d package)", "dataset": a.dataset, "sigma": a.sigma, "seed": a.seed,
                       "images": results, "mean_psnr_noisy": mean_noisy, "mean_psnr": mean}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
