/* The model blob and the test tile, embedded read-only in flash. The Makefile
 * passes their paths as string literals (N3NET_BLOB_PATH, TILE_PATH). */

    .section .rodata.n3net_blob, "a", %progbits
    /* n3net_model_open needs the blob 16-byte aligned at most. */
    .balign 16
    .global model_blob
    .type model_blob, %object
model_blob:
    .incbin N3NET_BLOB_PATH
model_blob_end:
    .size model_blob, model_blob_end - model_blob

    .balign 4
    .global model_blob_len
    .type model_blob_len, %object
model_blob_len:
    .word model_blob_end - model_blob
    .size model_blob_len, 4

    .section .rodata.tile_pgm, "a", %progbits
    .balign 4
    .global tile_pgm
    .type tile_pgm, %object
tile_pgm:
    .incbin TILE_PATH
tile_pgm_end:
    .size tile_pgm, tile_pgm_end - tile_pgm

    .balign 4
    .global tile_pgm_len
    .type tile_pgm_len, %object
tile_pgm_len:
    .word tile_pgm_end - tile_pgm
    .size tile_pgm_len, 4
