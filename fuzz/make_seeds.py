"""Writes the committed seed corpora of the fuzz targets (fuzz/corpus/).

Run from the repository root: python3 fuzz/make_seeds.py. Deterministic:
the same files every time. Needs numpy and Pillow (python/requirements.txt).
"""

import io
import random
import struct
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def png(img, **kw):
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def npy(arr, version=(1, 0)):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version)
    return buf.getvalue()


def main():
    rng = np.random.default_rng(7)
    grey = rng.integers(0, 256, (6, 9), dtype=np.uint8)

    # Blobs: mode byte (bit 0 re-seals the CRC), then the blob.
    for name in ["tiny-f32", "tiny-2ch-q16"]:
        blob = (ROOT / "models" / f"{name}.n3b").read_bytes()
        put("blob", f"{name}-resealed", b"\x01" + blob)
        put("blob", f"{name}-header", b"\x01" + blob[:96])

    # ONNX: scripts/fuzz.sh seeds the onnx target with the committed
    # fixtures, tests/fixtures/*/model.onnx.

    # PNG: every colour type the reader takes, at 1, 8 and 16 bits.
    put("png", "grey8", png(Image.fromarray(grey)))
    put("png", "grey16", png(Image.fromarray(grey.astype(np.uint16) * 257)))
    put("png", "grey1", png(Image.fromarray(grey > 127)))
    put("png", "grey-alpha", png(Image.fromarray(np.stack([grey, grey], -1), "LA")))
    put("png", "rgb", png(Image.fromarray(np.stack([grey, 255 - grey, grey // 2], -1))))
    put("png", "rgba", png(Image.fromarray(np.stack([grey] * 4, -1), "RGBA")))
    put("png", "palette", png(Image.fromarray(grey).convert("P")))

    # PGM: 8- and 16-bit, an odd maxval, a comment.
    h, w = grey.shape
    put("pgm", "p5-8bit", b"P5\n%d %d\n255\n" % (w, h) + grey.tobytes())
    put("pgm", "p5-16bit", b"P5 %d %d 65535\n" % (w, h)
        + (grey.astype(">u2") * 257).tobytes())
    put("pgm", "p5-comment-maxval-1023", b"P5\n# a comment\n%d %d\n1023\n" % (w, h)
        + (grey.astype(">u2") * 4).tobytes())

    # NPY: float32 (H, W), float64 (C, H, W), format 2.0, a 0-d array.
    f = grey.astype(np.float32) / 255
    put("npy", "f4-hw", npy(f))
    put("npy", "f8-chw", npy(np.stack([f, 1 - f]).astype(np.float64)))
    put("npy", "f4-v2", npy(f, version=(2, 0)))
    put("npy", "f4-scalar", npy(np.float32(0.5)))

    # The structured targets read their choices from raw bytes.
    r = random.Random(11)
    for target in ["capi", "stream"]:
        for i in range(8):
            put(target, f"random-{i}", bytes(r.randrange(256) for _ in range(64 << i % 4)))


if __name__ == "__main__":
    main()
