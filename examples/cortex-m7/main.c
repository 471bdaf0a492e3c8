/* Denoises the 64x64 test tile with the q16 model from flash, through the
 * n3net C API, and reports the output checksum, the memory it took and how
 * the library rejects two misuses. Output over semihosting; exit status 0 on
 * success, 1 on any failure. */
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "n3net.h"
#include "semihosting.h"

/* Bytes reserved for the library's workspace: the default q16 model needs
 * 1178302 for a 64x64 tile. The exact need comes from n3net_workspace_size
 * at run time; this only has to be at least that (the firmware stops with
 * the needed figure otherwise). */
#define WORKSPACE_BYTES (1152u * 1024u)

/* Embedded by data.S. */
extern const uint8_t model_blob[];
extern const uint32_t model_blob_len;
extern const uint8_t tile_pgm[];
extern const uint32_t tile_pgm_len;

/* Defined by link.ld: the usable stack is [__stack_limit, __stack_top). */
extern uint32_t __stack_limit[], __stack_top[];

/* The library's only RAM besides the stack. No alignment is needed: the
 * query includes the slack for aligning the buffers carved from it. */
static uint8_t workspace[WORKSPACE_BYTES];
static uint8_t denoised[TILE_PIXELS];

/* One output line, assembled piecewise because there is no printf. */
static char line[160];
static size_t line_len;

static void put(const char *s)
{
    while (*s != '\0' && line_len < sizeof line - 2) {
        line[line_len++] = *s++;
    }
}

static void put_u64(uint64_t v)
{
    char digits[21];
    put(fmt_u64(digits, v));
}

static void put_hex32(uint32_t v)
{
    char hex[11];
    put(fmt_hex32(hex, v));
}

static void end_line(void)
{
    line[line_len++] = '\n';
    line[line_len] = '\0';
    semihosting_write0(line);
    line_len = 0;
}

/* Prints "error: <what>: <code> (<n3net_strerror>)" and returns main's
 * failure status. */
static int fail(const char *what, int32_t code)
{
    put("error: ");
    put(what);
    put(": ");
    if (code < 0) {
        put("-");
        put_u64((uint64_t)(-(int64_t)code));
    } else {
        put_u64((uint64_t)code);
    }
    put(" (");
    put(n3net_strerror(code));
    put(")");
    end_line();
    return 1;
}

/* Checks that a misuse gave the expected error code; prints the outcome. */
static int expect_rejected(const char *what, int32_t got, int32_t want)
{
    if (got != want) {
        return fail(what, got);
    }
    put("misuse rejected: ");
    put(what);
    put(": ");
    put(n3net_strerror(got));
    end_line();
    return 0;
}

static const char *precision_name(uint32_t precision)
{
    switch (precision) {
    case N3NET_PRECISION_F32:
        return "f32";
    case N3NET_PRECISION_F16:
        return "f16";
    case N3NET_PRECISION_Q16:
        return "q16";
    default:
        return "unknown";
    }
}

/* The stack's high-water mark: the unused part of the stack is painted with
 * a pattern before library calls and scanned afterwards; the lowest word
 * that lost the pattern marks the deepest point the stack reached. */
#define STACK_PAINT 0xDEADBEEFu

/* Paints from the stack limit up to a little below this function's own
 * frame; noinline so the frame of the caller stays above the painted part. */
__attribute__((noinline)) static void stack_paint(void)
{
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    volatile uint32_t *end = (volatile uint32_t *)(sp - 64u);
    for (volatile uint32_t *p = __stack_limit; p < end; p++) {
        *p = STACK_PAINT;
    }
}

/* Bytes between the stack top and the deepest word written since the paint. */
static size_t stack_high_water(void)
{
    const volatile uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == STACK_PAINT) {
        p++;
    }
    return (size_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

/* The two misuses: a blob whose magic is corrupt, and a workspace one byte
 * shorter than the query says. The API checks every argument before it
 * writes anything, so the model and the buffers stay usable afterwards. */
static int check_misuse(const N3netModel *model, const N3netGeometry *geometry,
                        const uint8_t *tile, const N3netNoise *noise, size_t need)
{
    /* A copy of the blob's first bytes (its header starts with the magic);
     * the magic is checked before anything else, so 16 bytes suffice. */
    static uint8_t corrupt[16] __attribute__((aligned(16)));
    for (size_t i = 0; i < sizeof corrupt; i++) {
        corrupt[i] = model_blob[i];
    }
    corrupt[0] ^= 0xffu;
    N3netModel probe;
    if (expect_rejected("blob with a corrupt magic",
                        n3net_model_open(corrupt, sizeof corrupt, NULL, &probe),
                        N3NET_ERR_BAD_MAGIC) != 0) {
        return 1;
    }
    return expect_rejected("workspace one byte short",
                           n3net_denoise_u8(model, geometry, tile, TILE_PIXELS, denoised,
                                            TILE_PIXELS, noise, workspace, need - 1),
                           N3NET_ERR_WORKSPACE_TOO_SMALL);
}

int main(void)
{
    /* Measures the set-up calls (open, info, queries, misuses) as well: they
     * rebuild the network like the denoising call does, and the stack must
     * fit the deepest of all. */
    stack_paint();
    put("n3net ");
    put(n3net_version());
    put(" on a Cortex-M7 (qemu mps2-an500)");
    end_line();

    const uint8_t *tile = pgm_tile_pixels(tile_pgm, tile_pgm_len);
    if (tile == NULL) {
        put("error: the embedded tile is not a 64x64 binary PGM with maxval 255");
        end_line();
        return 1;
    }

    /* Validates the whole blob once (CRC, tables, network) and then runs it
     * in place from flash. */
    N3netModel model;
    int32_t rc = n3net_model_open(model_blob, model_blob_len, NULL, &model);
    if (rc != N3NET_OK) {
        return fail("n3net_model_open", rc);
    }
    N3netModelInfo info;
    rc = n3net_model_info(&model, &info);
    if (rc != N3NET_OK) {
        return fail("n3net_model_info", rc);
    }
    put("model: ");
    put(precision_name(info.precision));
    put(", ");
    put_u64(info.in_channels);
    put(" input channels, ");
    put_u64(info.macs_per_pixel);
    put(" MACs/pixel, ");
    put_u64(info.parameters);
    put(" parameters, ");
    put_u64(info.blob_bytes);
    put(" blob bytes");
    end_line();

    size_t need;
    rc = n3net_workspace_size(&model, TILE_SIDE, TILE_SIDE, &need);
    if (rc != N3NET_OK) {
        return fail("n3net_workspace_size", rc);
    }
    put("workspace: ");
    put_u64(need);
    put(" bytes for 64x64, ");
    put_u64(sizeof workspace);
    put(" reserved");
    end_line();
    if (need > sizeof workspace) {
        put("error: the workspace is too small: set WORKSPACE_BYTES in main.c to at least ");
        put_u64(need);
        end_line();
        return 1;
    }

    const N3netGeometry geometry = {
        .width = TILE_SIDE,
        .height = TILE_SIDE,
        .src_stride = TILE_SIDE,
        .dst_stride = TILE_SIDE,
    };
    const N3netNoise noise = {.kind = N3NET_NOISE_SIGMA, .sigma = TILE_SIGMA};
    if (check_misuse(&model, &geometry, tile, &noise, need) != 0) {
        return 1;
    }

    size_t setup_stack = stack_high_water();
    stack_paint();
    rc = n3net_denoise_u8(&model, &geometry, tile, TILE_PIXELS, denoised, TILE_PIXELS, &noise,
                          workspace, sizeof workspace);
    size_t stack = stack_high_water();
    if (rc != N3NET_OK) {
        return fail("n3net_denoise_u8", rc);
    }

    put("checksum ");
    put_hex32(fnv1a32(denoised, sizeof denoised));
    end_line();
    put("stack high-water: ");
    put_u64(stack);
    put(" bytes in n3net_denoise_u8, ");
    put_u64(setup_stack);
    put(" in the calls before it, of ");
    put_u64((uintptr_t)__stack_top - (uintptr_t)__stack_limit);
    put(" bytes");
    end_line();

    n3net_model_close(&model);
    return 0;
}
