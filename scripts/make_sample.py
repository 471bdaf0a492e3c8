"""Make the README's sample image pair.

    python3 scripts/make_sample.py [--source astronaut.png]

``samples/astronaut.png`` is the photograph of astronaut Eileen Collins from
NASA's Great Images collection (public domain; as shipped in scikit-image's
``skimage/data/astronaut.png``), converted to grey (ITU-R BT.601 luma,
rounded to 8 bits).  With ``--source`` the grey image is made again from the
colour original; without it the committed grey image is used.

``samples/astronaut-noisy-s25.png`` is that image plus white Gaussian noise of
sigma 25/255 (numpy ``default_rng(2026)``), rounded and clipped to 8 bits,
as a camera would store it.
"""

import argparse
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.join(HERE, "..", "samples")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", help="colour astronaut.png (scikit-image's skimage/data/astronaut.png)")
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args()
    clean_path = os.path.join(SAMPLES, "astronaut.png")
    if a.source:
        rgb = np.asarray(Image.open(a.source).convert("RGB"), dtype=np.float64)
        grey = rgb @ np.array([0.299, 0.587, 0.114])
        Image.fromarray(np.clip(np.round(grey), 0, 255).astype(np.uint8)).save(clean_path)
    clean = np.asarray(Image.open(clean_path).convert("L"), dtype=np.float64)
    noise = np.random.default_rng(a.seed).standard_normal(clean.shape) * a.sigma
    noisy = np.clip(np.round(clean + noise), 0, 255).astype(np.uint8)
    out = os.path.join(SAMPLES, f"astronaut-noisy-s{a.sigma:g}.png")
    Image.fromarray(noisy).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
