#include "common.h"

/* PGM header whitespace; '#' starts a comment up to the end of the line. */
static int pgm_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skips whitespace and comments, then reads a decimal number of at most five
 * digits (enough for PGM's fields here); returns 0 on any malformation. */
static int pgm_number(const uint8_t *pgm, size_t len, size_t *at, uint32_t *value)
{
    size_t i = *at;
    for (;;) {
        if (i < len && pgm_space(pgm[i])) {
            i++;
        } else if (i < len && pgm[i] == '#') {
            while (i < len && pgm[i] != '\n') {
                i++;
            }
        } else {
            break;
        }
    }
    uint32_t v = 0;
    size_t digits = 0;
    while (i < len && pgm[i] >= '0' && pgm[i] <= '9' && digits < 5) {
        v = v * 10u + (uint32_t)(pgm[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || (i < len && pgm[i] >= '0' && pgm[i] <= '9')) {
        return 0;
    }
    *at = i;
    *value = v;
    return 1;
}

const uint8_t *pgm_tile_pixels(const uint8_t *pgm, size_t len)
{
    if (len < 2 || pgm[0] != 'P' || pgm[1] != '5') {
        return NULL;
    }
    size_t at = 2;
    uint32_t width, height, maxval;
    if (!pgm_number(pgm, len, &at, &width) || !pgm_number(pgm, len, &at, &height) ||
        !pgm_number(pgm, len, &at, &maxval)) {
        return NULL;
    }
    /* Exactly one whitespace byte separates maxval from the pixels. */
    if (at >= len || !pgm_space(pgm[at])) {
        return NULL;
    }
    at++;
    if (width != TILE_SIDE || height != TILE_SIDE || maxval != 255 || len - at != TILE_PIXELS) {
        return NULL;
    }
    return pgm + at;
}

uint32_t fnv1a32(const uint8_t *bytes, size_t len)
{
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < len; i++) {
        h ^= bytes[i];
        h *= 0x01000193u;
    }
    return h;
}

char *fmt_hex32(char out[11], uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    out[0] = '0';
    out[1] = 'x';
    for (int i = 0; i < 8; i++) {
        out[2 + i] = digits[(v >> (28 - 4 * i)) & 0xfu];
    }
    out[10] = '\0';
    return out;
}

char *fmt_u64(char out[21], uint64_t v)
{
    char rev[20];
    size_t n = 0;
    do {
        rev[n++] = (char)('0' + (unsigned)(v % 10u));
        v /= 10u;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = rev[n - 1 - i];
    }
    out[n] = '\0';
    return out;
}
