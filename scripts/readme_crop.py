"""The README's before/after picture: the same crop of the noisy sample and of
its denoised version, side by side, upscaled 2x (nearest neighbour).

    cargo run --release -- denoise samples/astronaut-noisy-s25.png target/astronaut-denoised.png --sigma 25
    python3 scripts/readme_crop.py target/astronaut-denoised.png docs/img/sample-crop.png
"""

import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
CROP = (150, 60, 310, 220)  # left, top, right, bottom: the face and the flag patch


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    noisy = Image.open(os.path.join(HERE, "..", "samples", "astronaut-noisy-s25.png")).convert("L")
    denoised = Image.open(sys.argv[1]).convert("L")
    a = np.asarray(noisy.crop(CROP))
    b = np.asarray(denoised.crop(CROP))
    gap = np.full((a.shape[0], 4), 255, dtype=np.uint8)
    both = Image.fromarray(np.concatenate([a, gap, b], axis=1))
    both = both.resize((both.width * 2, both.height * 2), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(sys.argv[2])), exist_ok=True)
    both.save(sys.argv[2], optimize=True)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
