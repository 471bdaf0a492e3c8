"""Test images and comparisons for the C examples, with the standard library only
(the machines that cross-build need no numpy or Pillow).

    python3 pgm.py crop IN.png OUT.pgm [--x X --y Y --size N] [--maxval M]
        a square crop of an 8-bit grey PNG as a binary PGM; with --maxval M
        (2^k - 1, e.g. 1023) the samples are rescaled to round(v * M / 255)
        and stored as 16-bit big-endian PGM samples when M > 255
    python3 pgm.py psnr-gain CLEAN.pgm NOISY.pgm DENOISED.pgm --min-gain DB
        PSNR of NOISY and of DENOISED against CLEAN; fails unless the
        denoised image gains at least DB decibels
    python3 pgm.py f32diff A.f32 B.f32 --tol T
        maximum absolute difference of two raw little-endian float32 files;
        fails if the sizes differ, a value is not finite, or the difference
        exceeds T
"""

import argparse
import math
import struct
import sys
import zlib


def read_grey_png(path):
    """(width, height, rows) of an 8-bit greyscale, non-interlaced PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise SystemExit(f"{path}: no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour != 0 or interlace != 0:
        raise SystemExit(f"{path}: only 8-bit greyscale non-interlaced PNGs are read")
    raw = zlib.decompress(b"".join(idat))
    rows, prev = [], bytearray(width)
    for y in range(height):
        line = raw[y * (width + 1) : (y + 1) * (width + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for x in range(width):
            left = cur[x - 1] if x else 0
            up = prev[x]
            upleft = prev[x - 1] if x else 0
            if kind == 1:
                cur[x] = (cur[x] + left) & 0xFF
            elif kind == 2:
                cur[x] = (cur[x] + up) & 0xFF
            elif kind == 3:
                cur[x] = (cur[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - upleft
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else upleft)
                cur[x] = (cur[x] + pred) & 0xFF
            elif kind != 0:
                raise SystemExit(f"{path}: unknown PNG filter {kind}")
        rows.append(cur)
        prev = cur
    return width, height, rows


def write_pgm(path, width, height, maxval, samples):
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n%d\n" % (width, height, maxval))
        if maxval < 256:
            f.write(bytes(samples))
        else:
            f.write(struct.pack(">%dH" % len(samples), *samples))


def read_pgm(path):
    """(width, height, maxval, samples) of a binary PGM without comments."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos : pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    pos += 1
    if fields[0] != b"P5":
        raise SystemExit(f"{path}: not a binary PGM")
    width, height, maxval = (int(v) for v in fields[1:])
    n = width * height
    if maxval < 256:
        samples = list(data[pos : pos + n])
    else:
        samples = list(struct.unpack(">%dH" % n, data[pos : pos + 2 * n]))
    if len(samples) != n:
        raise SystemExit(f"{path}: truncated samples")
    return width, height, maxval, samples


def psnr(ref, img, maxval):
    mse = sum((a - b) ** 2 for a, b in zip(ref, img)) / len(ref)
    return math.inf if mse == 0 else 10 * math.log10(maxval * maxval / mse)


def cmd_crop(a):
    width, height, rows = read_grey_png(a.png)
    if a.x + a.size > width or a.y + a.size > height:
        raise SystemExit(f"{a.png}: crop outside the {width}x{height} image")
    samples = [
        round(v * a.maxval / 255)
        for row in rows[a.y : a.y + a.size]
        for v in row[a.x : a.x + a.size]
    ]
    write_pgm(a.pgm, a.size, a.size, a.maxval, samples)
    print(f"wrote {a.pgm} ({a.size}x{a.size}, maxval {a.maxval})")


def cmd_psnr_gain(a):
    w, h, m, clean = read_pgm(a.clean)
    noisy, denoised = read_pgm(a.noisy), read_pgm(a.denoised)
    if noisy[:3] != (w, h, m) or denoised[:3] != (w, h, m):
        raise SystemExit("images differ in size or maxval")
    before, after = psnr(clean, noisy[3], m), psnr(clean, denoised[3], m)
    print(f"PSNR {before:.2f} dB -> {after:.2f} dB (gain {after - before:.2f} dB, need {a.min_gain})")
    if not after - before >= a.min_gain:
        sys.exit(1)


def cmd_f32diff(a):
    with open(a.a, "rb") as f:
        x = f.read()
    with open(a.b, "rb") as f:
        y = f.read()
    if len(x) != len(y) or len(x) % 4:
        raise SystemExit(f"sizes differ or are not whole float32s: {len(x)} and {len(y)} bytes")
    n = len(x) // 4
    xs, ys = struct.unpack("<%df" % n, x), struct.unpack("<%df" % n, y)
    if not all(math.isfinite(v) for v in xs + ys):
        raise SystemExit("a value is not finite")
    diff = max((abs(p - q) for p, q in zip(xs, ys)), default=0.0)
    identical = x == y
    print(f"{n} floats, max abs diff {diff:.3g} (tolerance {a.tol:g}), byte-identical: {'yes' if identical else 'no'}")
    if not diff <= a.tol:
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("crop")
    c.add_argument("png")
    c.add_argument("pgm")
    c.add_argument("--x", type=int, default=182)
    c.add_argument("--y", type=int, default=92)
    c.add_argument("--size", type=int, default=96)
    c.add_argument("--maxval", type=int, default=255)
    c.set_defaults(run=cmd_crop)
    p = sub.add_parser("psnr-gain")
    p.add_argument("clean")
    p.add_argument("noisy")
    p.add_argument("denoised")
    p.add_argument("--min-gain", type=float, required=True)
    p.set_defaults(run=cmd_psnr_gain)
    d = sub.add_parser("f32diff")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--tol", type=float, required=True)
    d.set_defaults(run=cmd_f32diff)
    a = ap.parse_args()
    a.run(a)


if __name__ == "__main__":
    main()
