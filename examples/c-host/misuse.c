/* misuse: every wrong call of the n3net C ABI must return its documented
 * error code, without touching memory outside the buffers it was given.
 *
 *   misuse MODEL.n3b      (a noise-conditioned model, e.g. the default one)
 *
 * Every buffer handed to the library lies between two canaries of guard
 * bytes, checked after each call; under valgrind the canaries are also
 * marked no-access, so a read beyond a buffer fails the run as well as a
 * write (the requests of <valgrind/memcheck.h>, from the valgrind package,
 * do nothing outside valgrind). Prints one line per case and exits 1 on the
 * first mismatch.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <valgrind/memcheck.h>

#include <n3net.h>

/* ---- guarded buffers ---------------------------------------------------- */

#define GUARD_BYTES 64
#define GUARD_FILL 0xA5
#define DATA_FILL 0x5A      /* fresh buffers: a pattern no output is made of */
#define ALIGNMENT 16
#define MAX_GUARDED 16

typedef struct {
    unsigned char *raw;     /* what malloc returned */
    unsigned char *data;    /* 16-byte aligned, GUARD_BYTES after raw or more */
    size_t bytes;
    int persistent;         /* lives for the whole run (blobs of open models) */
} Guarded;

static Guarded guarded[MAX_GUARDED];
static size_t guarded_count;

static void die(const char *what)
{
    fprintf(stderr, "misuse: %s\n", what);
    exit(1);
}

static void *guarded_alloc_kind(size_t bytes, int persistent)
{
    Guarded *g;
    if (guarded_count == MAX_GUARDED) {
        die("too many guarded buffers");
    }
    g = &guarded[guarded_count++];
    g->raw = malloc(GUARD_BYTES + (ALIGNMENT - 1) + bytes + GUARD_BYTES);
    if (g->raw == NULL) {
        die("out of memory");
    }
    g->data = (unsigned char *)(((uintptr_t)g->raw + GUARD_BYTES + (ALIGNMENT - 1))
                                & ~(uintptr_t)(ALIGNMENT - 1));
    g->bytes = bytes;
    g->persistent = persistent;
    memset(g->data - GUARD_BYTES, GUARD_FILL, GUARD_BYTES);
    memset(g->data + bytes, GUARD_FILL, GUARD_BYTES);
    memset(g->data, DATA_FILL, bytes);
    VALGRIND_MAKE_MEM_NOACCESS(g->data - GUARD_BYTES, GUARD_BYTES);
    VALGRIND_MAKE_MEM_NOACCESS(g->data + bytes, GUARD_BYTES);
    return g->data;
}

/* A buffer for one case; freed by release_case_buffers(). */
static void *guarded_alloc(size_t bytes)
{
    return guarded_alloc_kind(bytes, 0);
}

static int canary_intact(unsigned char *p)
{
    size_t i;
    int ok = 1;
    VALGRIND_MAKE_MEM_DEFINED(p, GUARD_BYTES);
    for (i = 0; i < GUARD_BYTES; i++) {
        ok &= p[i] == GUARD_FILL;
    }
    VALGRIND_MAKE_MEM_NOACCESS(p, GUARD_BYTES);
    return ok;
}

static int guards_intact(void)
{
    size_t i;
    for (i = 0; i < guarded_count; i++) {
        if (!canary_intact(guarded[i].data - GUARD_BYTES)
            || !canary_intact(guarded[i].data + guarded[i].bytes)) {
            return 0;
        }
    }
    return 1;
}

static void release_buffers(int all)
{
    size_t i, kept = 0;
    for (i = 0; i < guarded_count; i++) {
        if (guarded[i].persistent && !all) {
            guarded[kept++] = guarded[i];
        } else {
            free(guarded[i].raw);
        }
    }
    guarded_count = kept;
}

static void release_case_buffers(void)
{
    release_buffers(0);
}

/* ---- expectations ------------------------------------------------------- */

typedef struct {
    int32_t code;
    const char *name;
} CodeName;

static const CodeName codes[] = {
    {N3NET_OK, "N3NET_OK"},
    {N3NET_ERR_NULL_POINTER, "N3NET_ERR_NULL_POINTER"},
    {N3NET_ERR_INVALID_ARGUMENT, "N3NET_ERR_INVALID_ARGUMENT"},
    {N3NET_ERR_TOO_LARGE, "N3NET_ERR_TOO_LARGE"},
    {N3NET_ERR_BUFFER_TOO_SMALL, "N3NET_ERR_BUFFER_TOO_SMALL"},
    {N3NET_ERR_WORKSPACE_TOO_SMALL, "N3NET_ERR_WORKSPACE_TOO_SMALL"},
    {N3NET_ERR_IMAGE_TOO_SMALL, "N3NET_ERR_IMAGE_TOO_SMALL"},
    {N3NET_ERR_NON_FINITE_INPUT, "N3NET_ERR_NON_FINITE_INPUT"},
    {N3NET_ERR_NOISE_LEVEL, "N3NET_ERR_NOISE_LEVEL"},
    {N3NET_ERR_BAD_CFA, "N3NET_ERR_BAD_CFA"},
    {N3NET_ERR_BAD_MAGIC, "N3NET_ERR_BAD_MAGIC"},
    {N3NET_ERR_UNSUPPORTED_VERSION, "N3NET_ERR_UNSUPPORTED_VERSION"},
    {N3NET_ERR_UNSUPPORTED_PRECISION, "N3NET_ERR_UNSUPPORTED_PRECISION"},
    {N3NET_ERR_CHECKSUM, "N3NET_ERR_CHECKSUM"},
    {N3NET_ERR_TRUNCATED, "N3NET_ERR_TRUNCATED"},
    {N3NET_ERR_MISALIGNED, "N3NET_ERR_MISALIGNED"},
    {N3NET_ERR_CORRUPT_BLOB, "N3NET_ERR_CORRUPT_BLOB"},
    {N3NET_ERR_INVALID_MODEL, "N3NET_ERR_INVALID_MODEL"},
    {N3NET_ERR_NOT_OPEN, "N3NET_ERR_NOT_OPEN"},
    {N3NET_ERR_STREAM_STATE, "N3NET_ERR_STREAM_STATE"},
    {N3NET_ERR_INTERNAL, "N3NET_ERR_INTERNAL"},
};
#define CODE_COUNT (sizeof codes / sizeof codes[0])

static const char *code_name(int32_t code)
{
    size_t i;
    for (i = 0; i < CODE_COUNT; i++) {
        if (codes[i].code == code) {
            return codes[i].name;
        }
    }
    return "(not an n3net code)";
}

static unsigned cases_run;

/* Checks one call's result and every canary; exits on the first mismatch. */
static void expect(const char *group, const char *name, int32_t got, int32_t expected)
{
    int ok = got == expected;
    int intact = guards_intact();
    cases_run++;
    printf("%-4s %-28s %-44s -> %s (%ld)", ok && intact ? "ok" : "FAIL", group, name,
           code_name(got), (long)got);
    if (!ok) {
        printf(", expected %s: \"%s\"", code_name(expected), n3net_strerror(got));
    }
    if (!intact) {
        printf(", a canary was overwritten");
    }
    printf("\n");
    if (!ok || !intact) {
        release_buffers(1);
        exit(1);
    }
}

static void expect_true(const char *group, const char *name, int condition)
{
    int intact = guards_intact();
    cases_run++;
    printf("%-4s %-28s %s%s\n", condition && intact ? "ok" : "FAIL", group, name,
           intact ? "" : " (a canary was overwritten)");
    if (!condition || !intact) {
        release_buffers(1);
        exit(1);
    }
}

/* A further condition on the case just reported; silent when it holds. */
static void require(int condition, const char *group, const char *name, const char *what)
{
    if (!condition) {
        printf("FAIL %-28s %s: %s\n", group, name, what);
        release_buffers(1);
        exit(1);
    }
}

/* A call that prepares a case; silent when it succeeds. */
static void setup(int32_t rc, const char *what)
{
    require(rc == N3NET_OK, "setup", what, n3net_strerror(rc));
}

/* ---- models ------------------------------------------------------------- */

static const uint8_t *blob;   /* the model file, persistent and guarded */
static size_t blob_len;
static N3netModel model;      /* default settings */
static N3netModel striped;    /* stripe_columns = 8: no in-place calls */
static N3netModel closed;     /* opened, then closed */
static N3netModel never;      /* all zero, never opened */

static void read_blob(const char *path)
{
    FILE *f = fopen(path, "rb");
    long size;
    uint8_t *data;
    if (f == NULL) {
        die("cannot open the model file");
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0) {
        die("cannot find the model file's size");
    }
    data = guarded_alloc_kind((size_t)size, 1);
    if (fread(data, 1, (size_t)size, f) != (size_t)size) {
        die("short read of the model file");
    }
    fclose(f);
    blob = data;
    blob_len = (size_t)size;
}

static void open_models(void)
{
    N3netSettings s;
    n3net_default_settings(&s);
    expect("setup", "open the model", n3net_model_open(blob, blob_len, &s, &model), N3NET_OK);
    s.stripe_columns = 8;
    expect("setup", "open with stripe_columns 8", n3net_model_open(blob, blob_len, &s, &striped),
           N3NET_OK);
    expect("setup", "open a model to close", n3net_model_open(blob, blob_len, NULL, &closed),
           N3NET_OK);
    n3net_model_close(&closed);
    memset(&never, 0, sizeof never);
}

/* ---- version, strerror, settings, close ---------------------------------- */

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        if (b[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/* One line per code: its string, which must be its own (or, for codes the
 * library never returns, "unknown error code"). */
static void expect_string(const char *code, const char *s, int condition)
{
    int intact = guards_intact();
    cases_run++;
    printf("%-4s %-28s %-31s \"%s\"\n", condition && intact ? "ok" : "FAIL", "n3net_strerror", code,
           s != NULL ? s : "(null)");
    if (!condition || !intact) {
        release_buffers(1);
        exit(1);
    }
}

static void test_strings(void)
{
    static const int32_t unknown[] = {1, -21, 100, INT32_MIN, INT32_MAX};
    size_t i, j;
    expect_true("n3net_version", "a non-empty string",
                n3net_version() != NULL && n3net_version()[0] != '\0');
    for (i = 0; i < CODE_COUNT; i++) {
        const char *s = n3net_strerror(codes[i].code);
        int distinct = s != NULL && s[0] != '\0' && strcmp(s, "unknown error code") != 0;
        for (j = 0; distinct && j < i; j++) {
            distinct = strcmp(s, n3net_strerror(codes[j].code)) != 0;
        }
        expect_string(codes[i].name, s, distinct);
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = n3net_strerror(unknown[i]);
        char name[32];
        sprintf(name, "%ld (unknown)", (long)unknown[i]);
        expect_string(name, s, s != NULL && strcmp(s, "unknown error code") == 0);
    }
}

static void test_settings_and_close(void)
{
    N3netSettings s;
    N3netModel m;
    n3net_default_settings(NULL);
    expect_true("n3net_default_settings", "NULL is ignored", 1);
    memset(&s, 0xFF, sizeof s);
    n3net_default_settings(&s);
    expect_true("n3net_default_settings", "auto ISA, whole width, zero reserved",
                s.isa == N3NET_ISA_AUTO && s.stripe_columns == 0
                    && all_zero(s.reserved, sizeof s.reserved));
    n3net_model_close(NULL);
    expect_true("n3net_model_close", "NULL is ignored", 1);
    n3net_model_close(&closed);
    expect_true("n3net_model_close", "a closed handle is ignored", all_zero(&closed, sizeof closed));
    expect("n3net_model_open", "open a handle to close", n3net_model_open(blob, blob_len, NULL, &m),
           N3NET_OK);
    n3net_model_close(&m);
    expect_true("n3net_model_close", "zeroes the handle", all_zero(&m, sizeof m));
}

/* ---- model_open: pointers, settings, corrupt blobs ----------------------- */

typedef struct {
    const char *name;
    int32_t expected;
    size_t len_change;      /* bytes removed from the end of the copy */
    size_t offset;          /* copy placed this many bytes after a 16-byte boundary */
    long flip_at;           /* byte index to invert; -1: none; -2: the last byte */
    size_t set_at;          /* byte index to overwrite with set_to (when set_len) */
    uint8_t set_to;
    size_t set_len;
} BlobCase;

static const BlobCase blob_cases[] = {
    {"intact copy", N3NET_OK, 0, 0, -1, 0, 0, 0},
    {"copy 4 bytes past a 16-byte boundary", N3NET_OK, 0, 4, -1, 0, 0, 0},
    {"wrong magic", N3NET_ERR_BAD_MAGIC, 0, 0, -1, 0, 'X', 1},
    {"format version 2", N3NET_ERR_UNSUPPORTED_VERSION, 0, 0, -1, 4, 2, 1},
    {"precision code 3", N3NET_ERR_UNSUPPORTED_PRECISION, 0, 0, -1, 6, 3, 1},
    {"one byte short", N3NET_ERR_TRUNCATED, 1, 0, -1, 0, 0, 0},
    {"a flipped byte in the middle", N3NET_ERR_CHECKSUM, 0, 0, 200, 0, 0, 0},
    {"the last byte flipped", N3NET_ERR_CHECKSUM, 0, 0, -2, 0, 0, 0},
    {"starting at an odd address", N3NET_ERR_MISALIGNED, 0, 1, -1, 0, 0, 0},
};

/* After a failed open the handle must read as closed, whatever it held. */
static void expect_open(const char *name, const uint8_t *bytes, size_t len,
                        const N3netSettings *settings, int32_t expected)
{
    N3netModel *m = guarded_alloc(sizeof *m);
    N3netModelInfo *info = guarded_alloc(sizeof *info);
    int32_t rc;
    memset(m, 0xFF, sizeof *m);
    rc = n3net_model_open(bytes, len, settings, m);
    expect("n3net_model_open", name, rc, expected);
    if (rc == N3NET_OK) {
        n3net_model_close(m);
    } else {
        require(n3net_model_info(m, info) == N3NET_ERR_NOT_OPEN, "n3net_model_open", name,
                "the handle is not closed after the failed open");
    }
}

static void test_blobs(void)
{
    size_t i;
    uint8_t *region, *copy;
    for (i = 0; i < sizeof blob_cases / sizeof blob_cases[0]; i++) {
        const BlobCase *c = &blob_cases[i];
        size_t len = blob_len - c->len_change;
        region = guarded_alloc(c->offset + len);
        copy = region + c->offset;
        memcpy(copy, blob, len);
        if (c->set_len != 0) {
            memset(copy + c->set_at, c->set_to, c->set_len);
        }
        if (c->flip_at != -1) {
            copy[c->flip_at == -2 ? len - 1 : (size_t)c->flip_at] ^= 0xFF;
        }
        expect_open(c->name, copy, len, NULL, c->expected);
        release_case_buffers();
    }
    /* Only the magic fits: shorter than the fixed header. */
    copy = guarded_alloc(16);
    memcpy(copy, blob, 16);
    expect_open("16 bytes: magic, no header", copy, 16, NULL, N3NET_ERR_TRUNCATED);
    expect_open("3 bytes: shorter than the magic", copy, 3, NULL, N3NET_ERR_TRUNCATED);
    expect_open("empty blob", copy, 0, NULL, N3NET_ERR_TRUNCATED);
    expect_open("blob NULL", NULL, blob_len, NULL, N3NET_ERR_NULL_POINTER);
    release_case_buffers();
    expect("n3net_model_open", "model NULL", n3net_model_open(blob, blob_len, NULL, NULL),
           N3NET_ERR_NULL_POINTER);
}

typedef struct {
    const char *name;
    int32_t expected;
    void (*change)(N3netSettings *s);
} SettingsCase;

static void settings_isa_unknown(N3netSettings *s) { s->isa = 2; }
static void settings_generic(N3netSettings *s) { s->isa = N3NET_ISA_GENERIC; }
static void settings_reserved_first(N3netSettings *s) { s->reserved[0] = 1; }
static void settings_reserved_last(N3netSettings *s) { s->reserved[sizeof s->reserved - 1] = 0x80; }

static const SettingsCase settings_cases[] = {
    {"isa GENERIC", N3NET_OK, settings_generic},
    {"isa 2 (unknown)", N3NET_ERR_INVALID_ARGUMENT, settings_isa_unknown},
    {"reserved[0] = 1", N3NET_ERR_INVALID_ARGUMENT, settings_reserved_first},
    {"reserved[55] = 0x80", N3NET_ERR_INVALID_ARGUMENT, settings_reserved_last},
};

static void test_settings(void)
{
    size_t i;
    for (i = 0; i < sizeof settings_cases / sizeof settings_cases[0]; i++) {
        N3netSettings *s = guarded_alloc(sizeof *s);
        n3net_default_settings(s);
        settings_cases[i].change(s);
        expect_open(settings_cases[i].name, blob, blob_len, s, settings_cases[i].expected);
        release_case_buffers();
    }
}

/* ---- model_info ---------------------------------------------------------- */

static void test_info(void)
{
    N3netModelInfo *info = guarded_alloc(sizeof *info);
    expect("n3net_model_info", "valid", n3net_model_info(&model, info), N3NET_OK);
    expect_true("n3net_model_info", "2 input channels, sigma -1, the blob's size and precision",
                info->in_channels == 2 && info->sigma == -1.0f && info->blob_bytes == blob_len
                    && info->precision == (uint32_t)(blob[6] | blob[7] << 8)
                    && info->macs_per_pixel > 0 && info->parameters > 0);
    expect("n3net_model_info", "model NULL", n3net_model_info(NULL, info), N3NET_ERR_NULL_POINTER);
    expect("n3net_model_info", "info NULL", n3net_model_info(&model, NULL), N3NET_ERR_NULL_POINTER);
    expect("n3net_model_info", "closed model", n3net_model_info(&closed, info), N3NET_ERR_NOT_OPEN);
    expect("n3net_model_info", "never opened (zeroed) model", n3net_model_info(&never, info),
           N3NET_ERR_NOT_OPEN);
    release_case_buffers();
}

/* ---- workspace size queries ---------------------------------------------- */

typedef int32_t (*SizeQuery)(const N3netModel *, uint32_t, uint32_t, size_t *);

typedef struct {
    const char *name;
    SizeQuery query;
    int32_t odd_width;      /* what an odd width gives (Bayer mosaics need even sides) */
} QueryFn;

typedef struct {
    const char *name;
    const N3netModel *model;
    uint32_t width;
    uint32_t height;
    int bytes_null;
    int odd;                /* the expected code is the function's odd_width */
    int32_t expected;
} QueryCase;

/* Workspaces grow with the width only: a 2^32-column plane needs about 8e13
 * bytes, which a 64-bit size_t holds and a 32-bit one does not. */
#define HUGE_WIDTH_EXPECTED (SIZE_MAX > UINT32_MAX ? N3NET_OK : N3NET_ERR_TOO_LARGE)

static void test_queries(void)
{
    static const QueryFn fns[] = {
        {"n3net_workspace_size", n3net_workspace_size, N3NET_OK},
        {"n3net_bayer_workspace_size", n3net_bayer_workspace_size, N3NET_ERR_BAD_CFA},
        {"n3net_stream_workspace_size", n3net_stream_workspace_size, N3NET_OK},
    };
    const QueryCase cases[] = {
        {"valid 48x40", &model, 48, 40, 0, 0, N3NET_OK},
        {"model NULL", NULL, 48, 40, 0, 0, N3NET_ERR_NULL_POINTER},
        {"bytes NULL", &model, 48, 40, 1, 0, N3NET_ERR_NULL_POINTER},
        {"closed model", &closed, 48, 40, 0, 0, N3NET_ERR_NOT_OPEN},
        {"never opened model", &never, 48, 40, 0, 0, N3NET_ERR_NOT_OPEN},
        {"width 0", &model, 0, 40, 0, 0, N3NET_ERR_INVALID_ARGUMENT},
        {"height 0", &model, 48, 0, 0, 0, N3NET_ERR_INVALID_ARGUMENT},
        {"odd width 49", &model, 49, 40, 0, 1, 0},
        {"8x8: smaller than two patches", &model, 8, 8, 0, 0, N3NET_ERR_IMAGE_TOO_SMALL},
        {"width 0xFFFFFFFE: no wrap-around", &model, 0xFFFFFFFEu, 40, 0, 0, HUGE_WIDTH_EXPECTED},
    };
    size_t f, i;
    for (f = 0; f < sizeof fns / sizeof fns[0]; f++) {
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const QueryCase *c = &cases[i];
            size_t *bytes = guarded_alloc(sizeof *bytes);
            int32_t rc = fns[f].query(c->model, c->width, c->height, c->bytes_null ? NULL : bytes);
            expect(fns[f].name, c->name, rc, c->odd ? fns[f].odd_width : c->expected);
            if (rc == N3NET_OK) {
                /* At least a byte per column: a wrapped size would be smaller. */
                expect_true(fns[f].name, "at least a byte per column", *bytes >= c->width);
            }
            release_case_buffers();
        }
    }
}

/* ---- whole-plane calls (u8, u16, f32) ------------------------------------ */

typedef enum { FMT_U8, FMT_U16, FMT_F32 } Format;

static const char *const plane_fn[] = {"n3net_denoise_u8", "n3net_denoise_u16", "n3net_denoise_f32"};

/* 24x20 plane with padded rows: src rows 27 samples apart, dst rows 25. */
#define PLANE_W 24u
#define PLANE_H 20u
#define SRC_STRIDE 27u
#define DST_STRIDE 25u
#define BIT_DEPTH 10u

typedef struct {
    Format format;
    const N3netModel *model;
    N3netGeometry geom;
    const N3netGeometry *geometry;
    uint32_t bit_depth;
    const void *src;
    size_t src_len;
    void *dst;
    size_t dst_len;
    N3netNoise noise_value;
    const N3netNoise *noise;
    void *workspace;
    size_t workspace_len;
} PlaneCall;

static size_t sample_bytes(Format f)
{
    return f == FMT_U8 ? 1 : f == FMT_U16 ? 2 : 4;
}

static size_t plane_len(uint32_t width, uint32_t height, size_t stride)
{
    return (size_t)(height - 1) * stride + width;
}

/* Deterministic noise-like samples inside each format's range. */
static void fill_samples(Format f, void *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t v = (uint32_t)((i * 2654435761u) >> 7);
        switch (f) {
        case FMT_U8: ((uint8_t *)buf)[i] = (uint8_t)(v & 0xFF); break;
        case FMT_U16: ((uint16_t *)buf)[i] = (uint16_t)(v & ((1u << BIT_DEPTH) - 1)); break;
        case FMT_F32: ((float *)buf)[i] = (float)(v & 0xFF) / 255.0f; break;
        }
    }
}

static size_t workspace_for(const N3netModel *m, uint32_t width, uint32_t height)
{
    size_t bytes = 0;
    setup(n3net_workspace_size(m, width, height, &bytes), "n3net_workspace_size");
    return bytes;
}

/* A valid call: fresh guarded buffers of exactly the lengths passed. */
static void plane_setup(PlaneCall *c, Format f)
{
    void *src;
    memset(c, 0, sizeof *c);
    c->format = f;
    c->model = &model;
    c->geom.width = PLANE_W;
    c->geom.height = PLANE_H;
    c->geom.src_stride = SRC_STRIDE;
    c->geom.dst_stride = DST_STRIDE;
    c->geometry = &c->geom;
    c->bit_depth = BIT_DEPTH;
    c->src_len = plane_len(PLANE_W, PLANE_H, SRC_STRIDE);
    c->dst_len = plane_len(PLANE_W, PLANE_H, DST_STRIDE);
    src = guarded_alloc(c->src_len * sample_bytes(f));
    fill_samples(f, src, c->src_len);
    c->src = src;
    c->dst = guarded_alloc(c->dst_len * sample_bytes(f));
    c->noise_value.kind = N3NET_NOISE_SIGMA;
    c->noise_value.sigma = 25.0f;
    c->noise = &c->noise_value;
    c->workspace_len = workspace_for(&model, PLANE_W, PLANE_H);
    c->workspace = guarded_alloc(c->workspace_len);
}

static int32_t plane_call(const PlaneCall *c)
{
    switch (c->format) {
    case FMT_U8:
        return n3net_denoise_u8(c->model, c->geometry, c->src, c->src_len, c->dst, c->dst_len,
                                c->noise, c->workspace, c->workspace_len);
    case FMT_U16:
        return n3net_denoise_u16(c->model, c->geometry, c->bit_depth, c->src, c->src_len, c->dst,
                                 c->dst_len, c->noise, c->workspace, c->workspace_len);
    default:
        return n3net_denoise_f32(c->model, c->geometry, c->src, c->src_len, c->dst, c->dst_len,
                                 c->noise, c->workspace, c->workspace_len);
    }
}

static void pc_model_null(PlaneCall *c) { c->model = NULL; }
static void pc_model_closed(PlaneCall *c) { c->model = &closed; }
static void pc_model_never(PlaneCall *c) { c->model = &never; }
static void pc_geometry_null(PlaneCall *c) { c->geometry = NULL; }
static void pc_src_null(PlaneCall *c) { c->src = NULL; }
static void pc_dst_null(PlaneCall *c) { c->dst = NULL; }
static void pc_workspace_null(PlaneCall *c) { c->workspace = NULL; }
static void pc_noise_null(PlaneCall *c) { c->noise = NULL; }
static void pc_noise_none(PlaneCall *c) { c->noise_value.kind = N3NET_NOISE_NONE; }
static void pc_sigma_negative(PlaneCall *c) { c->noise_value.sigma = -1.0f; }
static void pc_sigma_nan(PlaneCall *c) { c->noise_value.sigma = (float)NAN; }
static void pc_sigma_above_max(PlaneCall *c) { c->noise_value.sigma = (float)(2 * N3NET_MAX_SIGMA); }
static void pc_noise_kind_unknown(PlaneCall *c) { c->noise_value.kind = 7; }
static void pc_profile(PlaneCall *c)
{
    c->noise_value.kind = N3NET_NOISE_PROFILE;
    c->noise_value.a = 0.01f;
    c->noise_value.b = 0.0001f;
}
static void pc_profile_inf(PlaneCall *c)
{
    pc_profile(c);
    c->noise_value.b = (float)INFINITY;
}
static void pc_profile_negative(PlaneCall *c)
{
    pc_profile(c);
    c->noise_value.a = -0.01f;
}
static void pc_width_zero(PlaneCall *c) { c->geom.width = 0; }
static void pc_height_zero(PlaneCall *c) { c->geom.height = 0; }
static void pc_src_stride_short(PlaneCall *c) { c->geom.src_stride = PLANE_W - 1; }
static void pc_dst_stride_short(PlaneCall *c) { c->geom.dst_stride = PLANE_W - 1; }
static void pc_stride_overflow(PlaneCall *c) { c->geom.src_stride = SIZE_MAX; }
static void pc_all_overflow(PlaneCall *c)
{
    c->geom.width = 0xFFFFFFFFu;
    c->geom.height = 0xFFFFFFFFu;
    c->geom.src_stride = SIZE_MAX;
    c->geom.dst_stride = SIZE_MAX;
}
static void pc_too_small(PlaneCall *c)
{
    c->geom.width = 8;
    c->geom.height = 8;
}
/* Short buffers are reallocated one sample short, so the canary sits right
 * where the missing sample would be. */
static void pc_src_short(PlaneCall *c)
{
    void *src;
    c->src_len -= 1;
    src = guarded_alloc(c->src_len * sample_bytes(c->format));
    fill_samples(c->format, src, c->src_len);
    c->src = src;
}
static void pc_dst_short(PlaneCall *c)
{
    c->dst_len -= 1;
    c->dst = guarded_alloc(c->dst_len * sample_bytes(c->format));
}
/* 16-bit and float samples one byte off their alignment. */
static void pc_src_misaligned(PlaneCall *c)
{
    size_t bytes = c->src_len * sample_bytes(c->format);
    unsigned char *p = guarded_alloc(bytes + 1);
    memcpy(p + 1, c->src, bytes);
    c->src = p + 1;
}
static void pc_dst_misaligned(PlaneCall *c)
{
    unsigned char *p = guarded_alloc(c->dst_len * sample_bytes(c->format) + 1);
    c->dst = p + 1;
}
static void pc_workspace_short(PlaneCall *c)
{
    c->workspace_len -= 1;
    c->workspace = guarded_alloc(c->workspace_len);
}
/* src and dst in one buffer: equal strides, dst one sample further on. */
static void pc_overlap(PlaneCall *c)
{
    unsigned char *both = guarded_alloc((c->src_len + 1) * sample_bytes(c->format));
    fill_samples(c->format, both, c->src_len + 1);
    c->geom.dst_stride = c->geom.src_stride;
    c->src = both;
    c->dst = both + sample_bytes(c->format);
    c->dst_len = c->src_len;
}
static void pc_in_place(PlaneCall *c)
{
    c->geom.dst_stride = c->geom.src_stride;
    c->dst = (void *)c->src;
    c->dst_len = c->src_len;
}
static void pc_in_place_striped(PlaneCall *c)
{
    pc_in_place(c);
    c->model = &striped;
    c->workspace_len = workspace_for(&striped, PLANE_W, PLANE_H);
    c->workspace = guarded_alloc(c->workspace_len);
}
static void pc_striped(PlaneCall *c)
{
    c->model = &striped;
    c->workspace_len = workspace_for(&striped, PLANE_W, PLANE_H);
    c->workspace = guarded_alloc(c->workspace_len);
}
static void pc_bit_depth_zero(PlaneCall *c) { c->bit_depth = 0; }
static void pc_bit_depth_17(PlaneCall *c) { c->bit_depth = 17; }
static void pc_bit_depth_16(PlaneCall *c) { c->bit_depth = 16; }
static void pc_sample_above_depth(PlaneCall *c)
{
    ((uint16_t *)c->src)[c->src_len - 1] = 1u << BIT_DEPTH;
}
static void pc_sample_nan(PlaneCall *c) { ((float *)c->src)[10 * SRC_STRIDE + 5] = (float)NAN; }
static void pc_sample_inf(PlaneCall *c) { ((float *)c->src)[0] = -(float)INFINITY; }

typedef struct {
    const char *name;
    int32_t expected;
    void (*change)(PlaneCall *c);   /* NULL: the valid call */
    unsigned formats;               /* bit per Format */
} PlaneCase;

#define ALL_FORMATS 7u
#define ONLY(f) (1u << (f))

static const PlaneCase plane_cases[] = {
    {"valid", N3NET_OK, NULL, ALL_FORMATS},
    {"noise profile", N3NET_OK, pc_profile, ALL_FORMATS},
    {"in place (src == dst, equal strides)", N3NET_OK, pc_in_place, ALL_FORMATS},
    {"stripes of 8 columns", N3NET_OK, pc_striped, ALL_FORMATS},
    {"model NULL", N3NET_ERR_NULL_POINTER, pc_model_null, ALL_FORMATS},
    {"geometry NULL", N3NET_ERR_NULL_POINTER, pc_geometry_null, ALL_FORMATS},
    {"src NULL", N3NET_ERR_NULL_POINTER, pc_src_null, ALL_FORMATS},
    {"dst NULL", N3NET_ERR_NULL_POINTER, pc_dst_null, ALL_FORMATS},
    {"workspace NULL", N3NET_ERR_NULL_POINTER, pc_workspace_null, ALL_FORMATS},
    {"closed model", N3NET_ERR_NOT_OPEN, pc_model_closed, ALL_FORMATS},
    {"never opened model", N3NET_ERR_NOT_OPEN, pc_model_never, ALL_FORMATS},
    {"noise NULL (model needs a level)", N3NET_ERR_NOISE_LEVEL, pc_noise_null, ALL_FORMATS},
    {"noise kind NONE", N3NET_ERR_NOISE_LEVEL, pc_noise_none, ALL_FORMATS},
    {"sigma -1", N3NET_ERR_NOISE_LEVEL, pc_sigma_negative, ALL_FORMATS},
    {"sigma NaN", N3NET_ERR_NOISE_LEVEL, pc_sigma_nan, ALL_FORMATS},
    {"profile b = inf", N3NET_ERR_NOISE_LEVEL, pc_profile_inf, ALL_FORMATS},
    {"profile a = -0.01", N3NET_ERR_NOISE_LEVEL, pc_profile_negative, ALL_FORMATS},
    {"sigma 2 * N3NET_MAX_SIGMA", N3NET_ERR_NOISE_LEVEL, pc_sigma_above_max, ALL_FORMATS},
    {"noise kind 7 (unknown)", N3NET_ERR_NOISE_LEVEL, pc_noise_kind_unknown, ALL_FORMATS},
    {"width 0", N3NET_ERR_INVALID_ARGUMENT, pc_width_zero, ALL_FORMATS},
    {"height 0", N3NET_ERR_INVALID_ARGUMENT, pc_height_zero, ALL_FORMATS},
    {"src_stride = width - 1", N3NET_ERR_INVALID_ARGUMENT, pc_src_stride_short, ALL_FORMATS},
    {"dst_stride = width - 1", N3NET_ERR_INVALID_ARGUMENT, pc_dst_stride_short, ALL_FORMATS},
    {"src_stride SIZE_MAX overflows", N3NET_ERR_TOO_LARGE, pc_stride_overflow, ALL_FORMATS},
    {"0xFFFFFFFF^2, strides SIZE_MAX", N3NET_ERR_TOO_LARGE, pc_all_overflow, ALL_FORMATS},
    {"8x8: smaller than two patches", N3NET_ERR_IMAGE_TOO_SMALL, pc_too_small, ALL_FORMATS},
    {"src one sample short", N3NET_ERR_BUFFER_TOO_SMALL, pc_src_short, ALL_FORMATS},
    {"dst one sample short", N3NET_ERR_BUFFER_TOO_SMALL, pc_dst_short, ALL_FORMATS},
    {"workspace one byte short", N3NET_ERR_WORKSPACE_TOO_SMALL, pc_workspace_short, ALL_FORMATS},
    {"dst overlaps src one sample on", N3NET_ERR_INVALID_ARGUMENT, pc_overlap, ALL_FORMATS},
    {"in place with stripes", N3NET_ERR_INVALID_ARGUMENT, pc_in_place_striped, ALL_FORMATS},
    {"bit depth 16", N3NET_OK, pc_bit_depth_16, ONLY(FMT_U16)},
    {"bit depth 0", N3NET_ERR_INVALID_ARGUMENT, pc_bit_depth_zero, ONLY(FMT_U16)},
    {"bit depth 17", N3NET_ERR_INVALID_ARGUMENT, pc_bit_depth_17, ONLY(FMT_U16)},
    {"sample 1024 at bit depth 10", N3NET_ERR_INVALID_ARGUMENT, pc_sample_above_depth, ONLY(FMT_U16)},
    {"src one byte off alignment", N3NET_ERR_INVALID_ARGUMENT, pc_src_misaligned, ONLY(FMT_U16) | ONLY(FMT_F32)},
    {"dst one byte off alignment", N3NET_ERR_INVALID_ARGUMENT, pc_dst_misaligned, ONLY(FMT_U16) | ONLY(FMT_F32)},
    {"a NaN sample", N3NET_ERR_NON_FINITE_INPUT, pc_sample_nan, ONLY(FMT_F32)},
    {"a -inf sample", N3NET_ERR_NON_FINITE_INPUT, pc_sample_inf, ONLY(FMT_F32)},
};

/* "Nothing is written to dst unless every check passes": a copy of dst
 * taken before the call must still match it after a refused call. */
static unsigned char *dst_before;

static void snapshot_dst(const void *dst, size_t bytes)
{
    free(dst_before);
    dst_before = NULL;
    if (dst != NULL) {
        dst_before = malloc(bytes);
        if (dst_before == NULL) {
            die("out of memory");
        }
        memcpy(dst_before, dst, bytes);
    }
}

static void expect_dst_untouched_on_error(const char *group, const char *name, const void *dst,
                                          size_t bytes, int32_t got, int32_t expected)
{
    int untouched = dst == NULL || got == N3NET_OK || memcmp(dst, dst_before, bytes) == 0;
    free(dst_before);
    dst_before = NULL;
    expect(group, name, got, expected);
    require(untouched, group, name, "dst was written although the call failed");
}

static void test_planes(void)
{
    Format f;
    size_t i;
    for (f = FMT_U8; f <= FMT_F32; f++) {
        for (i = 0; i < sizeof plane_cases / sizeof plane_cases[0]; i++) {
            const PlaneCase *pc = &plane_cases[i];
            PlaneCall c;
            int32_t rc;
            if (!(pc->formats & ONLY(f))) {
                continue;
            }
            plane_setup(&c, f);
            if (pc->change != NULL) {
                pc->change(&c);
            }
            snapshot_dst(c.dst, c.dst_len * sample_bytes(f));
            rc = plane_call(&c);
            expect_dst_untouched_on_error(plane_fn[f], pc->name, c.dst, c.dst_len * sample_bytes(f),
                                          rc, pc->expected);
            release_case_buffers();
        }
    }
}

/* ---- Bayer mosaics -------------------------------------------------------- */

/* 48x40 mosaic (four 24x20 planes) with padded rows. */
#define MOSAIC_W 48u
#define MOSAIC_H 40u
#define MOSAIC_STRIDE 50u

typedef struct {
    const N3netModel *model;
    N3netGeometry geom;
    const N3netGeometry *geometry;
    N3netBayer bayer_value;
    const N3netBayer *bayer;
    const uint16_t *src;
    size_t src_len;
    uint16_t *dst;
    size_t dst_len;
    void *workspace;
    size_t workspace_len;
} BayerCall;

static void bayer_setup(BayerCall *c)
{
    uint16_t *src;
    size_t bytes = 0;
    int k;
    memset(c, 0, sizeof *c);
    c->model = &model;
    c->geom.width = MOSAIC_W;
    c->geom.height = MOSAIC_H;
    c->geom.src_stride = MOSAIC_STRIDE;
    c->geom.dst_stride = MOSAIC_W;
    c->geometry = &c->geom;
    c->bayer_value.cfa = N3NET_CFA_RGGB;
    c->bayer_value.black_level = 64;
    c->bayer_value.white_level = 1023;
    for (k = 0; k < 4; k++) {
        c->bayer_value.noise[k].kind = N3NET_NOISE_SIGMA;
        c->bayer_value.noise[k].sigma = 10.0f + 5.0f * (float)k;
    }
    c->bayer = &c->bayer_value;
    c->src_len = plane_len(MOSAIC_W, MOSAIC_H, MOSAIC_STRIDE);
    c->dst_len = plane_len(MOSAIC_W, MOSAIC_H, MOSAIC_W);
    src = guarded_alloc(c->src_len * sizeof *src);
    fill_samples(FMT_U16, src, c->src_len);
    c->src = src;
    c->dst = guarded_alloc(c->dst_len * sizeof *c->dst);
    setup(n3net_bayer_workspace_size(&model, MOSAIC_W, MOSAIC_H, &bytes), "n3net_bayer_workspace_size");
    c->workspace_len = bytes;
    c->workspace = guarded_alloc(bytes);
}

static void bc_model_null(BayerCall *c) { c->model = NULL; }
static void bc_geometry_null(BayerCall *c) { c->geometry = NULL; }
static void bc_bayer_null(BayerCall *c) { c->bayer = NULL; }
static void bc_src_null(BayerCall *c) { c->src = NULL; }
static void bc_dst_null(BayerCall *c) { c->dst = NULL; }
static void bc_workspace_null(BayerCall *c) { c->workspace = NULL; }
static void bc_closed(BayerCall *c) { c->model = &closed; }
static void bc_cfa_unknown(BayerCall *c) { c->bayer_value.cfa = 4; }
static void bc_cfa_bggr(BayerCall *c) { c->bayer_value.cfa = N3NET_CFA_BGGR; }
static void bc_odd_width(BayerCall *c) { c->geom.width = MOSAIC_W - 1; }
static void bc_odd_height(BayerCall *c) { c->geom.height = MOSAIC_H - 1; }
static void bc_black_is_white(BayerCall *c) { c->bayer_value.black_level = c->bayer_value.white_level; }
static void bc_black_above_white(BayerCall *c) { c->bayer_value.black_level = 2000; }
static void bc_white_above_16_bits(BayerCall *c) { c->bayer_value.white_level = 65536; }
static void bc_reserved(BayerCall *c) { c->bayer_value.reserved0 = 1; }
static void bc_in_place(BayerCall *c)
{
    c->geom.dst_stride = c->geom.src_stride;
    c->dst = (uint16_t *)c->src;
    c->dst_len = c->src_len;
}
static void bc_in_place_striped(BayerCall *c)
{
    size_t bytes = 0;
    bc_in_place(c);
    c->model = &striped;
    setup(n3net_bayer_workspace_size(&striped, MOSAIC_W, MOSAIC_H, &bytes), "n3net_bayer_workspace_size");
    c->workspace_len = bytes;
    c->workspace = guarded_alloc(bytes);
}
static void bc_src_misaligned(BayerCall *c)
{
    unsigned char *p = guarded_alloc(c->src_len * sizeof *c->src + 1);
    memcpy(p + 1, c->src, c->src_len * sizeof *c->src);
    c->src = (const uint16_t *)(const void *)(p + 1);
}
static void bc_noise_negative(BayerCall *c) { c->bayer_value.noise[2].sigma = -3.0f; }
static void bc_noise_missing(BayerCall *c) { c->bayer_value.noise[3].kind = N3NET_NOISE_NONE; }
static void bc_src_short(BayerCall *c)
{
    uint16_t *src;
    c->src_len -= 1;
    src = guarded_alloc(c->src_len * sizeof *src);
    fill_samples(FMT_U16, src, c->src_len);
    c->src = src;
}
static void bc_dst_short(BayerCall *c)
{
    c->dst_len -= 1;
    c->dst = guarded_alloc(c->dst_len * sizeof *c->dst);
}
static void bc_workspace_short(BayerCall *c)
{
    c->workspace_len -= 1;
    c->workspace = guarded_alloc(c->workspace_len);
}
static void bc_stride_short(BayerCall *c) { c->geom.src_stride = MOSAIC_W - 1; }

typedef struct {
    const char *name;
    int32_t expected;
    void (*change)(BayerCall *c);
} BayerCase;

static const BayerCase bayer_cases[] = {
    {"valid RGGB", N3NET_OK, NULL},
    {"valid BGGR", N3NET_OK, bc_cfa_bggr},
    {"in place (src == dst, equal strides)", N3NET_OK, bc_in_place},
    {"in place with stripes", N3NET_ERR_INVALID_ARGUMENT, bc_in_place_striped},
    {"model NULL", N3NET_ERR_NULL_POINTER, bc_model_null},
    {"geometry NULL", N3NET_ERR_NULL_POINTER, bc_geometry_null},
    {"bayer NULL", N3NET_ERR_NULL_POINTER, bc_bayer_null},
    {"src NULL", N3NET_ERR_NULL_POINTER, bc_src_null},
    {"dst NULL", N3NET_ERR_NULL_POINTER, bc_dst_null},
    {"workspace NULL", N3NET_ERR_NULL_POINTER, bc_workspace_null},
    {"closed model", N3NET_ERR_NOT_OPEN, bc_closed},
    {"CFA code 4", N3NET_ERR_BAD_CFA, bc_cfa_unknown},
    {"odd width", N3NET_ERR_BAD_CFA, bc_odd_width},
    {"odd height", N3NET_ERR_BAD_CFA, bc_odd_height},
    {"black level == white level", N3NET_ERR_BAD_CFA, bc_black_is_white},
    {"black level > white level", N3NET_ERR_BAD_CFA, bc_black_above_white},
    {"white level 65536", N3NET_ERR_BAD_CFA, bc_white_above_16_bits},
    {"reserved0 = 1", N3NET_ERR_INVALID_ARGUMENT, bc_reserved},
    {"noise[2] sigma -3", N3NET_ERR_NOISE_LEVEL, bc_noise_negative},
    {"noise[3] kind NONE", N3NET_ERR_NOISE_LEVEL, bc_noise_missing},
    {"src_stride = width - 1", N3NET_ERR_INVALID_ARGUMENT, bc_stride_short},
    {"src one byte off alignment", N3NET_ERR_INVALID_ARGUMENT, bc_src_misaligned},
    {"src one sample short", N3NET_ERR_BUFFER_TOO_SMALL, bc_src_short},
    {"dst one sample short", N3NET_ERR_BUFFER_TOO_SMALL, bc_dst_short},
    {"workspace one byte short", N3NET_ERR_WORKSPACE_TOO_SMALL, bc_workspace_short},
};

static void test_bayer(void)
{
    size_t i;
    for (i = 0; i < sizeof bayer_cases / sizeof bayer_cases[0]; i++) {
        BayerCall c;
        int32_t rc;
        bayer_setup(&c);
        if (bayer_cases[i].change != NULL) {
            bayer_cases[i].change(&c);
        }
        snapshot_dst(c.dst, c.dst_len * sizeof *c.dst);
        rc = n3net_denoise_bayer(c.model, c.geometry, c.bayer, c.src, c.src_len, c.dst, c.dst_len,
                                 c.workspace, c.workspace_len);
        expect_dst_untouched_on_error("n3net_denoise_bayer", bayer_cases[i].name, c.dst,
                                      c.dst_len * sizeof *c.dst, rc, bayer_cases[i].expected);
        release_case_buffers();
    }
}

/* ---- streams -------------------------------------------------------------- */

/* Narrow and tall enough that rows pushed without pulling overflow the
 * stream's queue of final rows before the last row. */
#define STREAM_W 16u
#define STREAM_H 320u

typedef struct {
    const N3netModel *model;
    uint32_t width;
    uint32_t height;
    uint32_t format;
    uint32_t bit_depth;
    N3netNoise noise_value;
    const N3netNoise *noise;
    void *workspace;
    size_t workspace_len;
    int stream_null;
} StreamOpen;

static void stream_setup(StreamOpen *o)
{
    size_t bytes = 0;
    memset(o, 0, sizeof *o);
    o->model = &model;
    o->width = STREAM_W;
    o->height = STREAM_H;
    o->format = N3NET_FORMAT_U8;
    o->noise_value.kind = N3NET_NOISE_SIGMA;
    o->noise_value.sigma = 25.0f;
    o->noise = &o->noise_value;
    setup(n3net_stream_workspace_size(&model, STREAM_W, STREAM_H, &bytes), "n3net_stream_workspace_size");
    o->workspace_len = bytes;
    o->workspace = guarded_alloc(bytes);
}

static int32_t stream_open(const StreamOpen *o, N3netStream **stream)
{
    return n3net_stream_open(o->model, o->width, o->height, o->format, o->bit_depth, o->noise,
                             o->workspace, o->workspace_len, o->stream_null ? NULL : stream);
}

static void so_model_null(StreamOpen *o) { o->model = NULL; }
static void so_workspace_null(StreamOpen *o) { o->workspace = NULL; }
static void so_stream_null(StreamOpen *o) { o->stream_null = 1; }
static void so_closed(StreamOpen *o) { o->model = &closed; }
static void so_noise_null(StreamOpen *o) { o->noise = NULL; }
static void so_width_zero(StreamOpen *o) { o->width = 0; }
static void so_height_zero(StreamOpen *o) { o->height = 0; }
static void so_format_unknown(StreamOpen *o) { o->format = 3; }
static void so_u16(StreamOpen *o)
{
    o->format = N3NET_FORMAT_U16;
    o->bit_depth = 12;
}
static void so_f32(StreamOpen *o) { o->format = N3NET_FORMAT_F32; }
static void so_u16_depth_zero(StreamOpen *o) { o->format = N3NET_FORMAT_U16; }
static void so_u16_depth_17(StreamOpen *o)
{
    o->format = N3NET_FORMAT_U16;
    o->bit_depth = 17;
}
static void so_u8_with_depth(StreamOpen *o) { o->bit_depth = 8; }
static void so_workspace_short(StreamOpen *o)
{
    o->workspace_len -= 1;
    o->workspace = guarded_alloc(o->workspace_len);
}
static void so_too_small(StreamOpen *o)
{
    o->width = 8;
    o->height = 8;
}

typedef struct {
    const char *name;
    int32_t expected;
    void (*change)(StreamOpen *o);
} StreamOpenCase;

static const StreamOpenCase stream_open_cases[] = {
    {"valid u8", N3NET_OK, NULL},
    {"valid u16, 12 bits", N3NET_OK, so_u16},
    {"valid f32", N3NET_OK, so_f32},
    {"model NULL", N3NET_ERR_NULL_POINTER, so_model_null},
    {"workspace NULL", N3NET_ERR_NULL_POINTER, so_workspace_null},
    {"stream NULL", N3NET_ERR_NULL_POINTER, so_stream_null},
    {"closed model", N3NET_ERR_NOT_OPEN, so_closed},
    {"noise NULL (model needs a level)", N3NET_ERR_NOISE_LEVEL, so_noise_null},
    {"width 0", N3NET_ERR_INVALID_ARGUMENT, so_width_zero},
    {"height 0", N3NET_ERR_INVALID_ARGUMENT, so_height_zero},
    {"8x8: smaller than two patches", N3NET_ERR_IMAGE_TOO_SMALL, so_too_small},
    {"format 3", N3NET_ERR_INVALID_ARGUMENT, so_format_unknown},
    {"u16 with bit depth 0", N3NET_ERR_INVALID_ARGUMENT, so_u16_depth_zero},
    {"u16 with bit depth 17", N3NET_ERR_INVALID_ARGUMENT, so_u16_depth_17},
    {"u8 with bit depth 8 (must be 0)", N3NET_ERR_INVALID_ARGUMENT, so_u8_with_depth},
    {"workspace one byte short", N3NET_ERR_WORKSPACE_TOO_SMALL, so_workspace_short},
};

static void test_stream_open(void)
{
    size_t i;
    for (i = 0; i < sizeof stream_open_cases / sizeof stream_open_cases[0]; i++) {
        static char not_a_stream;
        StreamOpen o;
        /* Any non-NULL value: an error must set it to NULL. */
        N3netStream *stream = (N3netStream *)(void *)&not_a_stream;
        int32_t rc;
        stream_setup(&o);
        if (stream_open_cases[i].change != NULL) {
            stream_open_cases[i].change(&o);
        }
        rc = stream_open(&o, &stream);
        expect("n3net_stream_open", stream_open_cases[i].name, rc, stream_open_cases[i].expected);
        require(rc == N3NET_OK || o.stream_null || stream == NULL, "n3net_stream_open",
                stream_open_cases[i].name, "*stream is not NULL after the error");
        if (rc == N3NET_OK) {
            n3net_stream_close(&stream);
            expect_true("n3net_stream_close", "sets the pointer to NULL", stream == NULL);
        }
        release_case_buffers();
    }
}

/* Pulls every final row; returns how many. */
static uint32_t pull_all(N3netStream *stream, uint8_t *row)
{
    uint32_t n = 0;
    int32_t rc;
    while ((rc = n3net_stream_pull_row(stream, row, STREAM_W)) == 1) {
        n++;
    }
    expect("n3net_stream_pull_row", "no more final rows", rc, 0);
    return n;
}

/* One u8 stream through its whole life: wrong pushes and pulls, a push with
 * too many final rows waiting, then the rest of the image, then one row too
 * many. */
static void test_stream_rows(void)
{
    StreamOpen o;
    N3netStream *stream = NULL, *closed_stream;
    uint8_t *row, *short_row, *out;
    uint32_t pushed = 0, pulled = 0;
    int32_t rc = N3NET_OK;
    stream_setup(&o);
    row = guarded_alloc(STREAM_W);
    short_row = guarded_alloc(STREAM_W - 1);
    out = guarded_alloc(STREAM_W);
    fill_samples(FMT_U8, row, STREAM_W);
    fill_samples(FMT_U8, short_row, STREAM_W - 1);
    expect("n3net_stream_open", "valid u8", stream_open(&o, &stream), N3NET_OK);
    expect_true("n3net_stream_latency_rows", "below the height",
                n3net_stream_latency_rows(stream) < STREAM_H);
    expect_true("n3net_stream_latency_rows", "0 for NULL", n3net_stream_latency_rows(NULL) == 0);
    expect("n3net_stream_push_row", "stream NULL", n3net_stream_push_row(NULL, row, STREAM_W),
           N3NET_ERR_NULL_POINTER);
    expect("n3net_stream_push_row", "row NULL", n3net_stream_push_row(stream, NULL, STREAM_W),
           N3NET_ERR_NULL_POINTER);
    expect("n3net_stream_push_row", "row one sample short",
           n3net_stream_push_row(stream, short_row, STREAM_W - 1), N3NET_ERR_BUFFER_TOO_SMALL);
    expect("n3net_stream_pull_row", "stream NULL", n3net_stream_pull_row(NULL, out, STREAM_W),
           N3NET_ERR_NULL_POINTER);
    expect("n3net_stream_pull_row", "row NULL", n3net_stream_pull_row(stream, NULL, STREAM_W),
           N3NET_ERR_NULL_POINTER);
    expect("n3net_stream_pull_row", "nothing final yet", n3net_stream_pull_row(stream, out, STREAM_W), 0);
    /* Without pulling, final rows pile up until the stream refuses a push. */
    while (pushed < STREAM_H && (rc = n3net_stream_push_row(stream, row, STREAM_W)) == N3NET_OK) {
        pushed++;
    }
    printf("     %u rows pushed without pulling\n", (unsigned)pushed);
    expect("n3net_stream_push_row", "too many rows waiting", rc, N3NET_ERR_STREAM_STATE);
    expect_true("n3net_stream_push_row", "refused before the last row", pushed < STREAM_H);
    expect("n3net_stream_pull_row", "row one sample short",
           n3net_stream_pull_row(stream, short_row, STREAM_W - 1), N3NET_ERR_BUFFER_TOO_SMALL);
    pulled += pull_all(stream, out);
    while (pushed < STREAM_H) {
        rc = n3net_stream_push_row(stream, row, STREAM_W);
        if (rc != N3NET_OK) {
            break;
        }
        pushed++;
        pulled += pull_all(stream, out);
    }
    expect("n3net_stream_push_row", "every row, pulling as they come", rc, N3NET_OK);
    expect_true("n3net_stream_pull_row", "every output row pulled", pulled == STREAM_H);
    expect("n3net_stream_push_row", "one row past the height",
           n3net_stream_push_row(stream, row, STREAM_W), N3NET_ERR_STREAM_STATE);
    /* The workspace outlives the stream here, so the old pointer may be used. */
    closed_stream = stream;
    n3net_stream_close(&stream);
    expect_true("n3net_stream_close", "sets the pointer to NULL", stream == NULL);
    expect("n3net_stream_push_row", "closed stream", n3net_stream_push_row(closed_stream, row, STREAM_W),
           N3NET_ERR_NOT_OPEN);
    expect("n3net_stream_pull_row", "closed stream", n3net_stream_pull_row(closed_stream, out, STREAM_W),
           N3NET_ERR_NOT_OPEN);
    expect_true("n3net_stream_latency_rows", "0 for a closed stream",
                n3net_stream_latency_rows(closed_stream) == 0);
    n3net_stream_close(&stream);
    expect_true("n3net_stream_close", "a NULL stream is ignored", stream == NULL);
    n3net_stream_close(NULL);
    expect_true("n3net_stream_close", "NULL is ignored", 1);
    release_case_buffers();
}

/* Row contents checked at push time: u16 above the bit depth, f32 NaN. */
static void test_stream_values(void)
{
    StreamOpen o;
    N3netStream *stream = NULL;
    uint16_t *row16;
    unsigned char *misaligned;
    float *row32;
    stream_setup(&o);
    so_u16(&o);
    row16 = guarded_alloc(STREAM_W * sizeof *row16);
    row16[3] = 1u << 12;
    expect("n3net_stream_open", "valid u16, 12 bits", stream_open(&o, &stream), N3NET_OK);
    expect("n3net_stream_push_row", "u16 sample 4096 at 12 bits",
           n3net_stream_push_row(stream, row16, STREAM_W), N3NET_ERR_INVALID_ARGUMENT);
    misaligned = guarded_alloc(2 * STREAM_W + 1);
    memset(misaligned, 0, 2 * STREAM_W + 1);
    expect("n3net_stream_push_row", "u16 row one byte off alignment",
           n3net_stream_push_row(stream, misaligned + 1, STREAM_W), N3NET_ERR_INVALID_ARGUMENT);
    n3net_stream_close(&stream);
    release_case_buffers();
    stream_setup(&o);
    so_f32(&o);
    row32 = guarded_alloc(STREAM_W * sizeof *row32);
    row32[5] = (float)NAN;
    expect("n3net_stream_open", "valid f32", stream_open(&o, &stream), N3NET_OK);
    expect("n3net_stream_push_row", "f32 NaN sample", n3net_stream_push_row(stream, row32, STREAM_W),
           N3NET_ERR_NON_FINITE_INPUT);
    n3net_stream_close(&stream);
    release_case_buffers();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: misuse MODEL.n3b (a noise-conditioned model)\n");
        return 2;
    }
    printf("n3net %s\n", n3net_version());
    read_blob(argv[1]);
    open_models();
    test_strings();
    test_settings_and_close();
    test_blobs();
    test_settings();
    test_info();
    test_queries();
    test_planes();
    test_bayer();
    test_stream_open();
    test_stream_rows();
    test_stream_values();
    n3net_model_close(&model);
    n3net_model_close(&striped);
    release_buffers(1);
    printf("all %u cases passed\n", cases_run);
    return 0;
}
