/* Code shared by the firmware (main.c) and the host checker
 * (host_checksum.c), so that both feed the library the same pixels and hash
 * its output the same way. Freestanding: no libc. */
#ifndef COMMON_H
#define COMMON_H

#include <stddef.h>
#include <stdint.h>

/* The test tile's side: a 64 x 64 grey image. */
#define TILE_SIDE 64u
#define TILE_PIXELS (TILE_SIDE * TILE_SIDE)

/* The noise level the tile carries (the sample has sigma 25 on the 0-255
 * scale) and the model is told. */
#define TILE_SIGMA 25.0f

/* Returns the pixel bytes of a binary PGM (P5) of TILE_SIDE x TILE_SIDE
 * samples with maxval 255 and nothing after the pixels, or NULL if `pgm` is
 * anything else. */
const uint8_t *pgm_tile_pixels(const uint8_t *pgm, size_t len);

/* 32-bit FNV-1a of `len` bytes. */
uint32_t fnv1a32(const uint8_t *bytes, size_t len);

/* Writes "0x" and 8 lower-case hex digits of `v`, NUL-terminated, into
 * `out` (11 bytes); returns `out`. */
char *fmt_hex32(char out[11], uint32_t v);

/* Writes `v` in decimal, NUL-terminated, into `out` (21 bytes); returns
 * `out`. */
char *fmt_u64(char out[21], uint64_t v);

#endif
