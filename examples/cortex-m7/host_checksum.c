/* The firmware's computation on the build machine: the same blob, tile, API
 * calls and hash, linked against the host build of the library. q16 output
 * is bit-identical on every target, so run.sh requires the firmware to print
 * the same checksum line.
 *
 *     host_checksum MODEL.n3b TILE.pgm
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "n3net.h"

/* Reads a whole file into a 16-byte aligned buffer (the blob's alignment). */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0) {
        perror(path);
        exit(1);
    }
    long size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(1);
    }
    /* aligned_alloc wants a size that is a multiple of the alignment. */
    uint8_t *data = aligned_alloc(16, ((size_t)size + 15u) & ~(size_t)15u);
    if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(1);
    }
    fclose(f);
    *len = (size_t)size;
    return data;
}

static int fail(const char *what, int32_t code)
{
    fprintf(stderr, "error: %s: %d (%s)\n", what, (int)code, n3net_strerror(code));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.n3b TILE.pgm\n", argv[0]);
        return 2;
    }
    size_t blob_len, pgm_len;
    const uint8_t *blob = read_file(argv[1], &blob_len);
    const uint8_t *pgm = read_file(argv[2], &pgm_len);
    const uint8_t *tile = pgm_tile_pixels(pgm, pgm_len);
    if (tile == NULL) {
        fprintf(stderr, "%s: not a 64x64 binary PGM with maxval 255\n", argv[2]);
        return 1;
    }

    N3netModel model;
    int32_t rc = n3net_model_open(blob, blob_len, NULL, &model);
    if (rc != N3NET_OK) {
        return fail("n3net_model_open", rc);
    }
    size_t need;
    rc = n3net_workspace_size(&model, TILE_SIDE, TILE_SIDE, &need);
    if (rc != N3NET_OK) {
        return fail("n3net_workspace_size", rc);
    }
    void *workspace = malloc(need);
    if (workspace == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    const N3netGeometry geometry = {
        .width = TILE_SIDE,
        .height = TILE_SIDE,
        .src_stride = TILE_SIDE,
        .dst_stride = TILE_SIDE,
    };
    const N3netNoise noise = {.kind = N3NET_NOISE_SIGMA, .sigma = TILE_SIGMA};
    uint8_t denoised[TILE_PIXELS];
    rc = n3net_denoise_u8(&model, &geometry, tile, TILE_PIXELS, denoised, TILE_PIXELS, &noise,
                          workspace, need);
    if (rc != N3NET_OK) {
        return fail("n3net_denoise_u8", rc);
    }
    char hex[11];
    printf("checksum %s\n", fmt_hex32(hex, fnv1a32(denoised, sizeof denoised)));
    n3net_model_close(&model);
    return 0;
}
