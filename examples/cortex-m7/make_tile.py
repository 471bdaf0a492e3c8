"""Cut the firmware's 64x64 test tile out of the project's noisy sample.

    python3 examples/cortex-m7/make_tile.py

Reads ``samples/astronaut-noisy-s25.png`` (512x512, 8-bit grey, sigma 25
noise; see ``scripts/make_sample.py``), takes the 64x64 square whose top-left
corner is column 192, row 88 (the eyes and nose: edges and smooth skin), and
writes it as a binary PGM (P5, maxval 255) to ``examples/cortex-m7/tile64.pgm``.
The crop is fixed, so the tile and the checksums computed from it are
reproducible. Only the standard library is used: the PNG is decoded here
(8-bit greyscale, non-interlaced, all five filter types).
"""

import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "..", "..", "samples", "astronaut-noisy-s25.png")
OUT = os.path.join(HERE, "tile64.pgm")
LEFT, TOP, SIDE = 192, 88, 64


def read_grey_png(path):
    """Returns (width, height, rows) of an 8-bit grey non-interlaced PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    at, idat, header = 8, [], None
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    if (depth, colour, interlace) != (8, 0, 0):
        raise SystemExit(f"{path}: not 8-bit grey non-interlaced")
    raw = zlib.decompress(b"".join(idat))
    rows, prev = [], bytearray(width)
    for y in range(height):
        start = y * (width + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + width])
        for x in range(width):
            a = line[x - 1] if x else 0
            b = prev[x]
            c = prev[x - 1] if x else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[x] = (line[x] + pred) & 0xFF
            elif kind != 0:
                raise SystemExit(f"{path}: bad filter type {kind}")
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def main():
    width, height, rows = read_grey_png(SOURCE)
    if LEFT + SIDE > width or TOP + SIDE > height:
        raise SystemExit("crop outside the image")
    pixels = b"".join(row[LEFT : LEFT + SIDE] for row in rows[TOP : TOP + SIDE])
    with open(OUT, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (SIDE, SIDE) + pixels)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
