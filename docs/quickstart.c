#include <n3net.h>
#include <stdio.h>
#include <stdlib.h>

/* Denoises an 8-bit grey image in place (sigma 25 on the 0-255 scale). */
int denoise_in_place(const uint8_t *blob, size_t blob_len, uint8_t *pixels, uint32_t w, uint32_t h)
{
    N3netModel model;
    size_t ws_len = 0;
    void *ws = NULL;
    int32_t rc = n3net_model_open(blob, blob_len, NULL, &model);
    if (rc == N3NET_OK)
        rc = n3net_workspace_size(&model, w, h, &ws_len);
    if (rc == N3NET_OK && (ws = malloc(ws_len)) == NULL)
        rc = N3NET_ERR_WORKSPACE_TOO_SMALL; /* no memory for it */
    if (rc == N3NET_OK) {
        N3netGeometry g = { w, h, w, w };
        N3netNoise noise = { N3NET_NOISE_SIGMA, 25.0f, 0.0f, 0.0f };
        rc = n3net_denoise_u8(&model, &g, pixels, (size_t)w * h, pixels, (size_t)w * h,
                              &noise, ws, ws_len);
    }
    if (rc != N3NET_OK)
        fprintf(stderr, "n3net: %s\n", n3net_strerror(rc));
    free(ws);
    n3net_model_close(&model);
    return rc;
}
