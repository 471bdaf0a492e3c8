"""Writes a large noisy grey test image for the memory and speed checks.

    python3 scripts/make_big_png.py WIDTH HEIGHT OUT.png [--seed N]

The committed clean sample (samples/astronaut.png) is tiled, mirrored
at every other tile so that edges stay continuous, to WIDTH × HEIGHT, and
Gaussian noise of σ = 25 (seeded) is added; 8-bit grey PNG. Only numpy and
Pillow are needed.
"""
import argparse

import numpy as np
from PIL import Image


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("width", type=int)
    ap.add_argument("height", type=int)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    clean = np.asarray(Image.open("samples/astronaut.png").convert("L"), dtype=np.float32)
    # Mirror-tile: [x, flip(x)] repeats without seams.
    tile = np.concatenate([clean, clean[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[::-1, :]], axis=0)
    reps = (-(-a.height // tile.shape[0]), -(-a.width // tile.shape[1]))
    big = np.tile(tile, reps)[: a.height, : a.width]
    rng = np.random.default_rng(a.seed)
    noisy = big + rng.normal(0.0, 25.0, size=big.shape).astype(np.float32)
    Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8), mode="L").save(a.out)


if __name__ == "__main__":
    main()
