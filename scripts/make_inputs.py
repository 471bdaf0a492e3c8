"""Noisy test inputs for the core-vs-tract comparisons (float32 .npy, [0,1] scale).

    python3 scripts/make_inputs.py DATA_DIR OUT_DIR

Writes crop_64x64.npy (Set12/01.png, top-left), crop_97x131.npy (BSD68/test001.png,
97 rows × 131 columns) and crop_256x256.npy (Set12/01.png, whole), each with
σ = 25 Gaussian noise (numpy seed 0). Outputs are derived from the test sets:
never commit them.
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cases = [("Set12/01.png", 64, 64), ("BSD68/test001.png", 97, 131), ("Set12/01.png", 256, 256)]
    for rel, h, w in cases:
        img = np.asarray(Image.open(data / "testsets" / rel).convert("L"), dtype=np.float32) / 255.0
        crop = img[:h, :w]
        noisy = crop + np.float32(25 / 255) * rng.standard_normal(crop.shape).astype(np.float32)
        np.save(out / f"crop_{h}x{w}.npy", noisy.astype(np.float32))


if __name__ == "__main__":
    main()
