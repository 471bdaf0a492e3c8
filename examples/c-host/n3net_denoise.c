/* n3net_denoise: denoise a binary PGM (P5) with the n3net C API.
 *
 *   n3net_denoise MODEL.n3b IN.pgm OUT.pgm [--sigma S] [--profile A,B]
 *                 [--float-out OUT.f32] [--stripe N] [--generic]
 *
 * The program owns every byte of memory: it reads the weight blob into a
 * 16-byte aligned buffer (the library views the weights in place), asks the
 * library for the workspace size and allocates it. The library never
 * allocates.
 *
 * PGM samples: maxval 255 goes through n3net_denoise_u8; any other maxval
 * must be 2^k - 1 (k = 1..16, e.g. 1023 for 10 bits) and goes through
 * n3net_denoise_u16 with bit depth k. Other maxvals (e.g. 1000) are rejected:
 * the library scales a k-bit sample by 1 / (2^k - 1), so a maxval of 1000
 * would put white at 1000/1023 instead of 1. The output keeps the input's
 * maxval and sample width.
 *
 * --float-out additionally denoises the same samples through
 * n3net_denoise_f32 (input value / maxval) and writes the unclamped output
 * as raw little-endian float32, row by row: a bit-exact trace to compare
 * builds for different architectures.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <n3net.h>

#define PROGRAM "n3net_denoise"
#define ALIGNMENT 16

/* C99 has no aligned_alloc: over-allocate and round the pointer up, keeping
 * the pointer malloc returned for free(). */
typedef struct {
    void *raw;
    void *data;
} AlignedBuffer;

static int aligned_alloc16(AlignedBuffer *buf, size_t bytes)
{
    if (bytes > SIZE_MAX - (ALIGNMENT - 1)) {
        return -1;
    }
    buf->raw = malloc(bytes + (ALIGNMENT - 1));
    if (buf->raw == NULL) {
        return -1;
    }
    buf->data = (void *)(((uintptr_t)buf->raw + (ALIGNMENT - 1)) & ~(uintptr_t)(ALIGNMENT - 1));
    return 0;
}

static void aligned_free(AlignedBuffer *buf)
{
    free(buf->raw);
    buf->raw = NULL;
    buf->data = NULL;
}

typedef struct {
    const char *model_path;
    const char *in_path;
    const char *out_path;
    const char *float_out_path; /* NULL: no float run */
    int has_sigma;
    float sigma;
    int has_profile;
    float profile_a;
    float profile_b;
    uint32_t stripe_columns;
    int generic;
} Options;

typedef struct {
    uint32_t width;
    uint32_t height;
    uint32_t maxval;
    uint32_t bit_depth;       /* k with maxval = 2^k - 1 */
    size_t samples;           /* width * height */
    size_t bytes_per_sample;  /* 1 when maxval < 256, else 2 (big-endian) */
    unsigned char *data;      /* the file's sample bytes, row by row */
} Pgm;

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROGRAM " MODEL.n3b IN.pgm OUT.pgm [--sigma S] [--profile A,B]\n"
            "                     [--float-out OUT.f32] [--stripe N] [--generic]\n"
            "  --sigma S          constant noise level S on the 0-255 scale\n"
            "  --profile A,B      Poisson-Gaussian noise: variance(x) = A*x + B, x in [0,1]\n"
            "  --float-out FILE   also run the float32 path, write raw little-endian float32\n"
            "  --stripe N         output columns per stripe (bounded memory); 0 = whole width\n"
            "  --generic          plain reference kernels instead of this CPU's fastest\n");
}

static int parse_float(const char *text, float *value)
{
    char *end;
    double v;
    errno = 0;
    v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v)) {
        return -1;
    }
    *value = (float)v;
    return 0;
}

static int parse_profile(const char *text, float *a, float *b)
{
    char *end;
    double va, vb;
    errno = 0;
    va = strtod(text, &end);
    if (end == text || *end != ',' || errno != 0 || !isfinite(va)) {
        return -1;
    }
    text = end + 1;
    vb = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(vb)) {
        return -1;
    }
    *a = (float)va;
    *b = (float)vb;
    return 0;
}

static int parse_u32(const char *text, uint32_t *value)
{
    char *end;
    unsigned long v;
    if (text[0] < '0' || text[0] > '9') {
        return -1;
    }
    errno = 0;
    v = strtoul(text, &end, 10);
    if (*end != '\0' || errno != 0 || v > UINT32_MAX) {
        return -1;
    }
    *value = (uint32_t)v;
    return 0;
}

/* Returns 0 on success, -1 on a usage error (already reported). */
static int parse_options(int argc, char **argv, Options *opt)
{
    int positional = 0;
    int i;
    memset(opt, 0, sizeof *opt);
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--generic") == 0) {
            opt->generic = 1;
            continue;
        }
        if (strcmp(arg, "--sigma") == 0 || strcmp(arg, "--profile") == 0
            || strcmp(arg, "--float-out") == 0 || strcmp(arg, "--stripe") == 0) {
            if (value == NULL) {
                fprintf(stderr, PROGRAM ": %s needs a value\n", arg);
                return -1;
            }
            i++;
            if (strcmp(arg, "--sigma") == 0) {
                if (parse_float(value, &opt->sigma) != 0) {
                    fprintf(stderr, PROGRAM ": --sigma: not a finite number: %s\n", value);
                    return -1;
                }
                opt->has_sigma = 1;
            } else if (strcmp(arg, "--profile") == 0) {
                if (parse_profile(value, &opt->profile_a, &opt->profile_b) != 0) {
                    fprintf(stderr, PROGRAM ": --profile: expected A,B (two finite numbers): %s\n", value);
                    return -1;
                }
                opt->has_profile = 1;
            } else if (strcmp(arg, "--float-out") == 0) {
                opt->float_out_path = value;
            } else if (parse_u32(value, &opt->stripe_columns) != 0) {
                fprintf(stderr, PROGRAM ": --stripe: not a column count: %s\n", value);
                return -1;
            }
            continue;
        }
        if (arg[0] == '-' && arg[1] == '-') {
            fprintf(stderr, PROGRAM ": unknown option %s\n", arg);
            return -1;
        }
        switch (positional++) {
        case 0: opt->model_path = arg; break;
        case 1: opt->in_path = arg; break;
        case 2: opt->out_path = arg; break;
        default:
            fprintf(stderr, PROGRAM ": unexpected argument %s\n", arg);
            return -1;
        }
    }
    if (positional != 3) {
        fprintf(stderr, PROGRAM ": expected MODEL.n3b IN.pgm OUT.pgm\n");
        return -1;
    }
    if (opt->has_sigma && opt->has_profile) {
        fprintf(stderr, PROGRAM ": --sigma and --profile exclude each other\n");
        return -1;
    }
    return 0;
}

/* Reads the whole file into a 16-byte aligned buffer: the library views the
 * blob's weights in place and 16 bytes is enough for every precision. */
static int read_model_file(const char *path, AlignedBuffer *buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long size;
    if (f == NULL) {
        fprintf(stderr, PROGRAM ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, PROGRAM ": %s: cannot find its size: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    if (aligned_alloc16(buf, (size_t)size) != 0) {
        fprintf(stderr, PROGRAM ": %s: out of memory for %ld bytes\n", path, size);
        fclose(f);
        return -1;
    }
    if (fread(buf->data, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, PROGRAM ": %s: short read\n", path);
        fclose(f);
        aligned_free(buf);
        return -1;
    }
    fclose(f);
    *len = (size_t)size;
    return 0;
}

/* Skips whitespace and '#' comments between PGM header fields. */
static void skip_space(FILE *f)
{
    int c;
    while ((c = getc(f)) != EOF) {
        if (c == '#') {
            while ((c = getc(f)) != EOF && c != '\n') {
            }
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\v' && c != '\f') {
            ungetc(c, f);
            return;
        }
    }
}

static int read_header_number(FILE *f, uint32_t *value)
{
    unsigned long v = 0;
    int digits = 0;
    int c;
    skip_space(f);
    while ((c = getc(f)) != EOF && c >= '0' && c <= '9') {
        v = v * 10 + (unsigned long)(c - '0');
        if (v > UINT32_MAX) {
            return -1;
        }
        digits++;
    }
    if (c != EOF) {
        ungetc(c, f);
    }
    if (digits == 0) {
        return -1;
    }
    *value = (uint32_t)v;
    return 0;
}

/* k with maxval = 2^k - 1, or 0 when maxval is not of that form. */
static uint32_t bit_depth_of(uint32_t maxval)
{
    uint32_t k;
    for (k = 1; k <= 16; k++) {
        if (maxval == (UINT32_C(1) << k) - 1) {
            return k;
        }
    }
    return 0;
}

static uint32_t sample_at(const Pgm *img, size_t i)
{
    if (img->bytes_per_sample == 1) {
        return img->data[i];
    }
    return ((uint32_t)img->data[2 * i] << 8) | img->data[2 * i + 1];
}

static int read_pgm(const char *path, Pgm *img)
{
    FILE *f = fopen(path, "rb");
    int c;
    size_t i, bytes;
    memset(img, 0, sizeof *img);
    if (f == NULL) {
        fprintf(stderr, PROGRAM ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (getc(f) != 'P' || getc(f) != '5') {
        fprintf(stderr, PROGRAM ": %s: not a binary PGM (P5)\n", path);
        goto fail;
    }
    if (read_header_number(f, &img->width) != 0 || read_header_number(f, &img->height) != 0
        || read_header_number(f, &img->maxval) != 0) {
        fprintf(stderr, PROGRAM ": %s: bad PGM header\n", path);
        goto fail;
    }
    /* Exactly one whitespace byte separates the header from the samples. */
    c = getc(f);
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
        fprintf(stderr, PROGRAM ": %s: bad PGM header\n", path);
        goto fail;
    }
    if (img->width == 0 || img->height == 0) {
        fprintf(stderr, PROGRAM ": %s: empty image (%" PRIu32 "x%" PRIu32 ")\n", path, img->width,
                img->height);
        goto fail;
    }
    if (img->maxval == 0 || img->maxval > 65535) {
        fprintf(stderr, PROGRAM ": %s: PGM maxval %" PRIu32 " is outside 1..65535\n", path,
                img->maxval);
        goto fail;
    }
    img->bit_depth = bit_depth_of(img->maxval);
    if (img->bit_depth == 0) {
        fprintf(stderr,
                PROGRAM ": %s: PGM maxval %" PRIu32 " is not 2^k - 1 (255, 1023, 4095, 65535, ...):"
                        " the library scales k-bit samples by 1/(2^k - 1); rescale the image first\n",
                path, img->maxval);
        goto fail;
    }
    img->bytes_per_sample = img->maxval < 256 ? 1 : 2;
    if ((size_t)img->width > SIZE_MAX / img->height
        || (size_t)img->width * img->height > SIZE_MAX / img->bytes_per_sample) {
        fprintf(stderr, PROGRAM ": %s: image too large for this machine\n", path);
        goto fail;
    }
    img->samples = (size_t)img->width * img->height;
    bytes = img->samples * img->bytes_per_sample;
    img->data = malloc(bytes);
    if (img->data == NULL) {
        fprintf(stderr, PROGRAM ": %s: out of memory for %zu bytes\n", path, bytes);
        goto fail;
    }
    if (fread(img->data, 1, bytes, f) != bytes) {
        fprintf(stderr, PROGRAM ": %s: PGM samples are truncated\n", path);
        goto fail;
    }
    for (i = 0; i < img->samples; i++) {
        if (sample_at(img, i) > img->maxval) {
            fprintf(stderr, PROGRAM ": %s: sample %zu is above maxval %" PRIu32 "\n", path, i,
                    img->maxval);
            goto fail;
        }
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    free(img->data);
    img->data = NULL;
    return -1;
}

static int write_file(const char *path, const char *header, const void *data, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    int ok;
    if (f == NULL) {
        fprintf(stderr, PROGRAM ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    ok = fputs(header, f) >= 0 && fwrite(data, 1, bytes, f) == bytes;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        fprintf(stderr, PROGRAM ": %s: write failed\n", path);
        return -1;
    }
    return 0;
}

static int write_pgm(const char *path, const Pgm *img, const unsigned char *data)
{
    char header[64];
    sprintf(header, "P5\n%" PRIu32 " %" PRIu32 "\n%" PRIu32 "\n", img->width, img->height,
            img->maxval);
    return write_file(path, header, data, img->samples * img->bytes_per_sample);
}

static int check(int32_t code, const char *call)
{
    if (code != N3NET_OK) {
        fprintf(stderr, PROGRAM ": %s: %s (%" PRId32 ")\n", call, n3net_strerror(code), code);
        return -1;
    }
    return 0;
}

static const char *precision_name(uint32_t precision)
{
    switch (precision) {
    case N3NET_PRECISION_F32: return "f32";
    case N3NET_PRECISION_F16: return "f16";
    case N3NET_PRECISION_Q16: return "q16";
    default: return "unknown";
    }
}

/* The integer path: u8 for maxval 255, u16 with the PGM's bit depth otherwise. */
static int denoise_integer(const N3netModel *model, const N3netGeometry *geometry, const Pgm *img,
                           const N3netNoise *noise, void *workspace, size_t workspace_len,
                           const char *out_path)
{
    unsigned char *out = NULL;
    uint16_t *src = NULL, *dst = NULL;
    size_t i;
    int rc = -1;
    out = malloc(img->samples * img->bytes_per_sample);
    if (out == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return -1;
    }
    if (img->maxval == 255) {
        if (check(n3net_denoise_u8(model, geometry, img->data, img->samples, out, img->samples,
                                   noise, workspace, workspace_len),
                  "n3net_denoise_u8") != 0) {
            goto done;
        }
    } else {
        src = malloc(img->samples * sizeof *src);
        dst = malloc(img->samples * sizeof *dst);
        if (src == NULL || dst == NULL) {
            fprintf(stderr, PROGRAM ": out of memory\n");
            goto done;
        }
        for (i = 0; i < img->samples; i++) {
            src[i] = (uint16_t)sample_at(img, i);
        }
        if (check(n3net_denoise_u16(model, geometry, img->bit_depth, src, img->samples, dst,
                                    img->samples, noise, workspace, workspace_len),
                  "n3net_denoise_u16") != 0) {
            goto done;
        }
        for (i = 0; i < img->samples; i++) {
            if (img->bytes_per_sample == 1) {
                out[i] = (unsigned char)dst[i];
            } else {
                out[2 * i] = (unsigned char)(dst[i] >> 8);
                out[2 * i + 1] = (unsigned char)(dst[i] & 0xFF);
            }
        }
    }
    rc = write_pgm(out_path, img, out);
done:
    free(out);
    free(src);
    free(dst);
    return rc;
}

/* The float path on value / maxval; the output is written as little-endian
 * float32 bytes whatever the host's byte order. */
static int denoise_float(const N3netModel *model, const N3netGeometry *geometry, const Pgm *img,
                         const N3netNoise *noise, void *workspace, size_t workspace_len,
                         const char *out_path)
{
    float *src = NULL, *dst = NULL;
    unsigned char *bytes = NULL;
    size_t i;
    int rc = -1;
    if (img->samples > SIZE_MAX / 4) {
        fprintf(stderr, PROGRAM ": image too large for the float path\n");
        return -1;
    }
    src = malloc(img->samples * sizeof *src);
    dst = malloc(img->samples * sizeof *dst);
    bytes = malloc(img->samples * 4);
    if (src == NULL || dst == NULL || bytes == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        goto done;
    }
    for (i = 0; i < img->samples; i++) {
        src[i] = (float)sample_at(img, i) / (float)img->maxval;
    }
    if (check(n3net_denoise_f32(model, geometry, src, img->samples, dst, img->samples, noise,
                                workspace, workspace_len),
              "n3net_denoise_f32") != 0) {
        goto done;
    }
    for (i = 0; i < img->samples; i++) {
        uint32_t bits;
        memcpy(&bits, &dst[i], sizeof bits);
        bytes[4 * i] = (unsigned char)(bits & 0xFF);
        bytes[4 * i + 1] = (unsigned char)((bits >> 8) & 0xFF);
        bytes[4 * i + 2] = (unsigned char)((bits >> 16) & 0xFF);
        bytes[4 * i + 3] = (unsigned char)(bits >> 24);
    }
    rc = write_file(out_path, "", bytes, img->samples * 4);
done:
    free(src);
    free(dst);
    free(bytes);
    return rc;
}

int main(int argc, char **argv)
{
    Options opt;
    AlignedBuffer blob = {NULL, NULL};
    AlignedBuffer workspace = {NULL, NULL};
    size_t blob_len = 0, workspace_len = 0;
    N3netSettings settings;
    N3netModel model;
    N3netModelInfo info;
    N3netGeometry geometry;
    N3netNoise noise_value;
    const N3netNoise *noise = NULL; /* NULL: no noise level (fixed-sigma models) */
    Pgm img;
    int model_open = 0;
    int rc = 1;

    memset(&img, 0, sizeof img);
    if (parse_options(argc, argv, &opt) != 0) {
        usage();
        return 2;
    }
    if (read_model_file(opt.model_path, &blob, &blob_len) != 0) {
        goto done;
    }
    n3net_default_settings(&settings);
    settings.isa = opt.generic ? N3NET_ISA_GENERIC : N3NET_ISA_AUTO;
    settings.stripe_columns = opt.stripe_columns;
    if (check(n3net_model_open(blob.data, blob_len, &settings, &model), "n3net_model_open") != 0) {
        goto done;
    }
    model_open = 1;
    if (check(n3net_model_info(&model, &info), "n3net_model_info") != 0) {
        goto done;
    }
    if (info.in_channels == 2 && !opt.has_sigma && !opt.has_profile) {
        fprintf(stderr, PROGRAM ": %s takes the noise level as an input: pass --sigma S or --profile A,B\n",
                opt.model_path);
        goto done;
    }
    if (opt.has_sigma || opt.has_profile) {
        memset(&noise_value, 0, sizeof noise_value);
        noise_value.kind = opt.has_sigma ? N3NET_NOISE_SIGMA : N3NET_NOISE_PROFILE;
        noise_value.sigma = opt.sigma;
        noise_value.a = opt.profile_a;
        noise_value.b = opt.profile_b;
        noise = &noise_value;
    }
    if (read_pgm(opt.in_path, &img) != 0) {
        goto done;
    }
    geometry.width = img.width;
    geometry.height = img.height;
    geometry.src_stride = img.width;
    geometry.dst_stride = img.width;
    if (check(n3net_workspace_size(&model, img.width, img.height, &workspace_len),
              "n3net_workspace_size") != 0) {
        goto done;
    }
    if (aligned_alloc16(&workspace, workspace_len) != 0) {
        fprintf(stderr, PROGRAM ": out of memory for a %zu-byte workspace\n", workspace_len);
        goto done;
    }
    fprintf(stderr,
            PROGRAM ": n3net %s, %s model (%" PRIu32 " input channel%s, %" PRIu64
                    " MACs/pixel), %" PRIu32 "x%" PRIu32 " %" PRIu32 "-bit, workspace %zu bytes\n",
            n3net_version(), precision_name(info.precision), info.in_channels,
            info.in_channels == 1 ? "" : "s", info.macs_per_pixel, img.width, img.height,
            img.bit_depth, workspace_len);
    if (denoise_integer(&model, &geometry, &img, noise, workspace.data, workspace_len,
                        opt.out_path) != 0) {
        goto done;
    }
    if (opt.float_out_path != NULL
        && denoise_float(&model, &geometry, &img, noise, workspace.data, workspace_len,
                         opt.float_out_path) != 0) {
        goto done;
    }
    rc = 0;
done:
    if (model_open) {
        n3net_model_close(&model);
    }
    aligned_free(&workspace);
    aligned_free(&blob);
    free(img.data);
    return rc;
}
