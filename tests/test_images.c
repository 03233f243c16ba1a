/* test_images.c -- image datasets: IDX files plain and gzip, hostile and
 * broken files, non-regular files, the seeded epoch stream (permutations,
 * determinism), augmentation (shifts, flips, padding, none at evaluation),
 * normalisation, argument checks, and Debian's Fashion-MNIST when present. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "scratch.h"
#include "tokenformer.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- writing IDX files ------------------------------------------------------ */

/* An IDX file in memory: header for dims (type code `dtype`), then `data`
 * (data_len bytes, which need not match the dims).  Caller frees. */
static unsigned char *idx_image(int dtype, int ndim, const uint32_t *dims, const void *data,
                                size_t data_len, size_t *len)
{
    size_t header = 4 + 4 * (size_t)ndim;
    *len = header + data_len;
    unsigned char *buf = malloc(*len ? *len : 1);
    ck_assert_ptr_nonnull(buf);
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (unsigned char)dtype;
    buf[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        buf[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        buf[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        buf[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        buf[7 + 4 * i] = (unsigned char)dims[i];
    }
    if (data_len)
        memcpy(buf + header, data, data_len);
    return buf;
}

/* Writes bytes to tt_tmpdir/name, plain or gzip-compressed. */
static void write_bytes(const char *name, const void *bytes, size_t len, int gzip, char *path,
                        size_t cap)
{
    tt_tmp_path(path, cap, name);
    if (gzip) {
        gzFile gz = gzopen(path, "wb9");
        ck_assert_ptr_nonnull(gz);
        if (len)
            ck_assert_int_eq(gzwrite(gz, bytes, (unsigned)len), (int)len);
        ck_assert_int_eq(gzclose(gz), Z_OK);
    } else {
        FILE *fp = fopen(path, "wb");
        ck_assert_ptr_nonnull(fp);
        if (len)
            ck_assert_uint_eq(fwrite(bytes, 1, len, fp), len);
        ck_assert_int_eq(fclose(fp), 0);
    }
}

static void write_idx(const char *name, int gzip, int ndim, const uint32_t *dims,
                      const void *data, size_t data_len, char *path, size_t cap)
{
    size_t len;
    unsigned char *buf = idx_image(0x08, ndim, dims, data, data_len, &len);
    write_bytes(name, buf, len, gzip, path, cap);
    free(buf);
}

/* bytes gzip-compressed in memory (deflate with a gzip wrapper). */
static unsigned char *gzip_bytes(const void *bytes, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    z.next_in = (Bytef *)bytes;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = z.total_out;
    deflateEnd(&z);
    return out;
}

/* N images of H x W with pseudo-random pixels and labels i % classes. */
typedef struct toy {
    int N, H, W, classes;
    unsigned char *pixels, *labels;
} toy;

static toy toy_make(int N, int H, int W, int classes, uint32_t seed)
{
    toy t = {N, H, W, classes, malloc((size_t)N * H * W), malloc((size_t)N)};
    ck_assert(t.pixels && t.labels);
    uint32_t x = seed;
    for (size_t i = 0; i < (size_t)N * H * W; i++) {
        x = x * 1664525u + 1013904223u;
        t.pixels[i] = (unsigned char)(x >> 24);
    }
    for (int i = 0; i < N; i++)
        t.labels[i] = (unsigned char)(i % classes);
    return t;
}

static void toy_free(toy *t)
{
    free(t->pixels);
    free(t->labels);
}

/* Writes the toy's two files; gz says which are compressed (bit 0 images,
 * bit 1 labels). */
static void toy_write(const toy *t, int gz, char *img, char *lab, size_t cap)
{
    uint32_t idims[3] = {(uint32_t)t->N, (uint32_t)t->H, (uint32_t)t->W};
    uint32_t ldims[1] = {(uint32_t)t->N};
    write_idx((gz & 1) ? "img.gz" : "img", gz & 1, 3, idims, t->pixels,
              (size_t)t->N * t->H * t->W, img, cap);
    write_idx((gz & 2) ? "lab.gz" : "lab", (gz & 2) != 0, 1, ldims, t->labels, (size_t)t->N,
              lab, cap);
}

static tf_image_dataset *open_ok(const char *img, const char *lab)
{
    tf_image_dataset *ds = NULL;
    tf_status st = tf_image_dataset_open(img, lab, &ds);
    ck_assert_msg(st == TF_OK, "%s / %s: %s %s", img, lab, tf_status_name(st), tf_last_error());
    ck_assert_ptr_nonnull(ds);
    return ds;
}

/* Opening must fail with want, leave *out NULL and name every fragment. */
static void open_fails(const char *img, const char *lab, tf_status want,
                       const char *const *fragments)
{
    tf_image_dataset *ds = (tf_image_dataset *)(uintptr_t)0x1;
    tf_status st = tf_image_dataset_open(img, lab, &ds);
    ck_assert_msg(st == want, "%s / %s: got %s, want %s (%s)", img, lab, tf_status_name(st),
                  tf_status_name(want), tf_last_error());
    ck_assert_ptr_null(ds);
    for (int i = 0; fragments && fragments[i]; i++)
        ck_assert_msg(strstr(tf_last_error(), fragments[i]) != NULL,
                      "message '%s' lacks '%s'", tf_last_error(), fragments[i]);
}

/* A labels file that is fine for N images, for tests about image files. */
static void good_labels(int N, char *lab, size_t cap)
{
    unsigned char *l = calloc((size_t)N, 1);
    uint32_t d[1] = {(uint32_t)N};
    write_idx("good_labels", 0, 1, d, l, (size_t)N, lab, cap);
    free(l);
}

/* ---- reading files ------------------------------------------------------------ */

START_TEST(test_plain_and_gzip_round_trip)
{
    toy t = toy_make(7, 5, 4, 6, 11);
    t.labels[3] = 9; /* num_classes is 1 + the largest label */
    const int hw = t.H * t.W;
    for (int gz = 0; gz < 4; gz++) {
        char img[256], lab[256];
        toy_write(&t, gz, img, lab, sizeof img);
        tf_image_dataset *ds = open_ok(img, lab);
        ck_assert_int_eq(tf_image_dataset_size(ds), t.N);
        ck_assert_int_eq(tf_image_dataset_height(ds), t.H);
        ck_assert_int_eq(tf_image_dataset_width(ds), t.W);
        ck_assert_int_eq(tf_image_dataset_num_classes(ds), 10);

        /* every byte comes back, as v / 255 by default and normalised else */
        float px[7 * 20];
        int32_t labels[7];
        ck_assert_int_eq(tf_image_dataset_eval_batch(ds, NULL, 0, t.N, px, labels), TF_OK);
        for (int i = 0; i < t.N * hw; i++)
            ck_assert_float_eq(px[i], (float)(t.pixels[i] / 255.0));
        for (int i = 0; i < t.N; i++)
            ck_assert_int_eq(labels[i], t.labels[i]);
        tf_image_aug_params p = tf_image_aug_default_params();
        p.mean = 0.25;
        p.std = 0.5;
        ck_assert_int_eq(tf_image_dataset_eval_batch(ds, &p, 2, 3, px, labels), TF_OK);
        for (int i = 0; i < 3 * hw; i++)
            ck_assert_float_eq_tol(px[i], (t.pixels[2 * hw + i] / 255.0 - 0.25) / 0.5, 1e-6);
        ck_assert_int_eq(labels[1], 9);
        tf_image_dataset_free(ds);
    }
    toy_free(&t);
}
END_TEST

START_TEST(test_from_memory_matches_files)
{
    toy t = toy_make(9, 3, 6, 4, 5);
    char img[256], lab[256];
    toy_write(&t, 1, img, lab, sizeof img);
    tf_image_dataset *a = open_ok(img, lab);
    int32_t labels[9];
    for (int i = 0; i < t.N; i++)
        labels[i] = t.labels[i];
    tf_image_dataset *b = NULL;
    ck_assert_int_eq(tf_image_dataset_from_memory(t.pixels, labels, t.N, t.H, t.W, &b), TF_OK);
    ck_assert_int_eq(tf_image_dataset_num_classes(b), 4);
    float pa[4 * 18], pb[4 * 18];
    int32_t la[4], lb[4];
    for (int64_t i = 0; i < 6; i++) {
        ck_assert_int_eq(tf_image_dataset_train_batch(a, NULL, 3, i, 4, pa, la), TF_OK);
        ck_assert_int_eq(tf_image_dataset_train_batch(b, NULL, 3, i, 4, pb, lb), TF_OK);
        ck_assert_mem_eq(pa, pb, sizeof pa);
        ck_assert_mem_eq(la, lb, sizeof la);
    }
    tf_image_dataset_free(a);
    tf_image_dataset_free(b);

    /* the copy is the library's: the caller's arrays may go */
    labels[4] = -1;
    b = (tf_image_dataset *)(uintptr_t)0x1;
    ck_assert_int_eq(tf_image_dataset_from_memory(t.pixels, labels, t.N, t.H, t.W, &b),
                     TF_ERR_RANGE);
    ck_assert_ptr_null(b);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "image 4"));
    ck_assert_int_eq(tf_image_dataset_from_memory(t.pixels, labels, 0, t.H, t.W, &b),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_image_dataset_from_memory(NULL, labels, t.N, t.H, t.W, &b),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_image_dataset_from_memory(t.pixels, labels, t.N, t.H, t.W, NULL),
                     TF_ERR_ARGUMENT);
    toy_free(&t);
}
END_TEST

START_TEST(test_bad_headers_refused)
{
    char img[256], lab[256];
    good_labels(2, lab, sizeof lab);
    unsigned char data[2 * 3 * 3] = {0};
    uint32_t dims[3] = {2, 3, 3};
    size_t len;
    unsigned char *buf;

    /* not an IDX file: text, in plain and gzip */
    const char text[] = "P5 3 3 255 hello";
    for (int gz = 0; gz < 2; gz++) {
        write_bytes("text", text, sizeof text, gz, img, sizeof img);
        open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"not an IDX file", NULL});
    }
    /* a data type other than unsigned byte */
    buf = idx_image(0x0D, 3, dims, data, sizeof data, &len);
    write_bytes("float", buf, len, 0, img, sizeof img);
    free(buf);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"0x0d", "float32", NULL});
    /* 0 and too many dimensions, a zero dimension */
    write_idx("nodims", 0, 0, dims, data, sizeof data, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"0 dimensions", NULL});
    uint32_t five[5] = {2, 3, 3, 1, 1};
    write_idx("fivedims", 0, 5, five, data, sizeof data, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"5 dimensions", NULL});
    uint32_t zero[3] = {2, 0, 3};
    write_idx("zerodim", 0, 3, zero, data, 0, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"dimension 1 is 0", NULL});
    /* a header cut short, and an empty file */
    buf = idx_image(0x08, 3, dims, data, 0, &len);
    write_bytes("shorthead", buf, 9, 0, img, sizeof img);
    free(buf);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"truncated", "header", NULL});
    write_bytes("empty", "", 0, 0, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"truncated", NULL});
    /* plain: data one byte short, one byte long */
    write_idx("short", 0, 3, dims, data, sizeof data - 1, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"truncated", "[2, 3, 3]", NULL});
    unsigned char more[sizeof data + 1] = {0};
    write_idx("long", 0, 3, dims, more, sizeof more, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"1 bytes after", NULL});
    /* gzip: one byte short, one byte long */
    write_idx("short.gz", 1, 3, dims, data, sizeof data - 1, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"truncated", "17 of", NULL});
    write_idx("long.gz", 1, 3, dims, more, sizeof more, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT, (const char *const[]){"bytes follow", NULL});
}
END_TEST

/* A header that declares far more than the file holds is refused from the
 * header alone: under an address-space limit of ~256 MB above what the
 * process uses, allocating the declared 1.7 TB (or growing towards it)
 * would fail with TF_ERR_NOMEM instead of TF_ERR_FORMAT. */
START_TEST(test_huge_declared_size_refused_before_allocating)
{
    char img[256], lab[256];
    good_labels(4, lab, sizeof lab);
    unsigned char junk[1000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 7);
    uint32_t dims[3] = {1u << 31, 28, 28};
    uint32_t wide[4] = {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}; /* overflows */

    struct rlimit saved, low;
    ck_assert_int_eq(getrlimit(RLIMIT_AS, &saved), 0);
    long pages = 0, page = sysconf(_SC_PAGESIZE);
    FILE *fp = fopen("/proc/self/statm", "r");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fscanf(fp, "%ld", &pages), 1);
    fclose(fp);
    low = saved;
    low.rlim_cur = (rlim_t)pages * (rlim_t)page + ((rlim_t)256 << 20);
    if (saved.rlim_cur != RLIM_INFINITY && saved.rlim_cur < low.rlim_cur)
        low.rlim_cur = saved.rlim_cur;
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &low), 0);
    for (int gz = 0; gz < 2; gz++) {
        write_idx(gz ? "huge.gz" : "huge", gz, 3, dims, junk, sizeof junk, img, sizeof img);
        open_fails(img, lab, TF_ERR_FORMAT,
                   (const char *const[]){"[2147483648, 28, 28]", gz ? "gzip" : "truncated",
                                         NULL});
        write_idx(gz ? "wide.gz" : "wide", gz, 4, wide, junk, sizeof junk, img, sizeof img);
        open_fails(img, lab, TF_ERR_FORMAT, NULL);
    }
    ck_assert_int_eq(setrlimit(RLIMIT_AS, &saved), 0);
}
END_TEST

/* Within what the gzip file could hold, the data still has to be there:
 * 4 MB of zeros compress ~1000:1, and a header declaring one byte more is
 * refused after reading them (the buffer grows with what arrives). */
START_TEST(test_gzip_declaring_slightly_more)
{
    char img[256], lab[256];
    good_labels(4, lab, sizeof lab);
    size_t n = (size_t)4 << 20;
    unsigned char *zeros = calloc(n, 1);
    ck_assert_ptr_nonnull(zeros);
    uint32_t dims[3] = {1, 1, (uint32_t)n + 1};
    write_idx("almost.gz", 1, 3, dims, zeros, n, img, sizeof img);
    open_fails(img, lab, TF_ERR_FORMAT,
               (const char *const[]){"truncated", "4194304 of its 4194305", NULL});
    uint32_t exact[3] = {4, 1024, 1024};
    write_idx("exact.gz", 1, 3, exact, zeros, n, img, sizeof img);
    tf_image_dataset *ds = open_ok(img, lab);
    ck_assert_int_eq(tf_image_dataset_width(ds), 1024);
    tf_image_dataset_free(ds);
    free(zeros);
}
END_TEST

START_TEST(test_corrupt_gzip_refused)
{
    toy t = toy_make(20, 8, 8, 3, 2);
    char img[256], lab[256];
    toy_write(&t, 1, img, lab, sizeof img);
    uint32_t dims[3] = {20, 8, 8};
    size_t raw_len, len;
    unsigned char *raw = idx_image(0x08, 3, dims, t.pixels, 20 * 64, &raw_len);
    unsigned char *gz = gzip_bytes(raw, raw_len, &len);
    free(raw);
    ck_assert_uint_gt(len, 200);
    char good[256];
    write_bytes("good.gz", gz, len, 0, good, sizeof good); /* the bytes as they are */
    tf_image_dataset_free(open_ok(good, lab));
    char bad[256];
    /* cut short in the middle of the deflate stream */
    write_bytes("cut.gz", gz, len / 2, 0, bad, sizeof bad);
    open_fails(bad, lab, TF_ERR_FORMAT, (const char *const[]){"cut.gz", NULL});
    /* the CRC-32 in the trailer (bytes len-8 .. len-5) no longer matches */
    gz[len - 6] ^= 0x5a;
    write_bytes("crc.gz", gz, len, 0, bad, sizeof bad);
    open_fails(bad, lab, TF_ERR_FORMAT, (const char *const[]){"crc.gz", "corrupt gzip", NULL});
    gz[len - 6] ^= 0x5a;
    /* damage inside the compressed data */
    for (size_t i = len / 3; i < len / 3 + 8; i++)
        gz[i] ^= 0xff;
    write_bytes("flip.gz", gz, len, 0, bad, sizeof bad);
    open_fails(bad, lab, TF_ERR_FORMAT, (const char *const[]){"flip.gz", NULL});
    free(gz);
    toy_free(&t);
}
END_TEST

START_TEST(test_image_label_mismatch)
{
    toy t = toy_make(6, 4, 4, 3, 9);
    char img[256], lab[256], other[256];
    toy_write(&t, 0, img, lab, sizeof img);
    /* one label fewer than images */
    uint32_t five[1] = {5};
    write_idx("five", 0, 1, five, t.labels, 5, other, sizeof other);
    open_fails(img, other, TF_ERR_FORMAT,
               (const char *const[]){"6 images", "5 labels", NULL});
    /* arguments in the wrong order */
    open_fails(lab, img, TF_ERR_FORMAT, (const char *const[]){"swapped", NULL});
    /* images as a 2-D array, labels as a 2-D array */
    uint32_t flat[2] = {6, 16};
    write_idx("flat", 0, 2, flat, t.pixels, 96, other, sizeof other);
    open_fails(other, lab, TF_ERR_FORMAT, (const char *const[]){"3 dimensions", NULL});
    open_fails(img, other, TF_ERR_FORMAT, (const char *const[]){"1 dimension", NULL});
    toy_free(&t);
}
END_TEST

START_TEST(test_non_regular_files_refused)
{
    char img[256], lab[256], fifo[256], missing[256];
    good_labels(2, lab, sizeof lab);
    open_fails(tt_tmpdir, lab, TF_ERR_IO, (const char *const[]){"directory", NULL});
    open_fails("/dev/zero", lab, TF_ERR_IO, (const char *const[]){"not a regular file", NULL});
    /* a FIFO without a writer: opening it for reading would block */
    tt_tmp_path(fifo, sizeof fifo, "fifo");
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    open_fails(fifo, lab, TF_ERR_IO, (const char *const[]){"fifo", "not a regular file", NULL});
    tt_tmp_path(missing, sizeof missing, "missing");
    open_fails(missing, lab, TF_ERR_IO, (const char *const[]){"missing", NULL});
    /* the labels path is checked the same way */
    uint32_t dims[3] = {2, 1, 1};
    write_idx("img", 0, 3, dims, "ab", 2, img, sizeof img);
    open_fails(img, fifo, TF_ERR_IO, (const char *const[]){"not a regular file", NULL});
    open_fails(NULL, lab, TF_ERR_ARGUMENT, NULL);
    ck_assert_int_eq(tf_image_dataset_open(img, lab, NULL), TF_ERR_ARGUMENT);
}
END_TEST

/* ---- the training stream -------------------------------------------------- */

/* A dataset whose label is the image's index, so batches show the order;
 * pixels: index-dependent pattern. */
static tf_image_dataset *indexed(int N, int H, int W)
{
    unsigned char *px = malloc((size_t)N * H * W);
    int32_t *lab = malloc((size_t)N * sizeof *lab);
    ck_assert(px && lab);
    for (int i = 0; i < N; i++) {
        lab[i] = i;
        for (int j = 0; j < H * W; j++)
            px[(size_t)i * H * W + j] = (unsigned char)((i * 31 + j * 7) & 0xff);
    }
    tf_image_dataset *ds = NULL;
    ck_assert_int_eq(tf_image_dataset_from_memory(px, lab, N, H, W, &ds), TF_OK);
    free(px);
    free(lab);
    return ds;
}

START_TEST(test_epochs_are_permutations)
{
    static const int sizes[][2] = {{1, 1}, {2, 1}, {3, 3}, {17, 17}, {1000, 8}, {4097, 17}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int N = sizes[s][0], B = sizes[s][1];
        tf_image_dataset *ds = indexed(N, 1, 1);
        int64_t per = tf_image_dataset_epoch_batches(ds, B);
        ck_assert_int_eq(per, N / B);
        int *seen = calloc((size_t)N, sizeof *seen);
        int32_t *lab = malloc((size_t)B * sizeof *lab);
        float *px = malloc((size_t)B * sizeof *px);
        int32_t first_of_epoch[3];
        for (int epoch = 0; epoch < 3; epoch++) {
            memset(seen, 0, (size_t)N * sizeof *seen);
            for (int64_t j = 0; j < per; j++) {
                ck_assert_int_eq(tf_image_dataset_train_batch(ds, NULL, 42, epoch * per + j, B,
                                                              px, lab), TF_OK);
                if (j == 0)
                    first_of_epoch[epoch] = lab[0];
                for (int b = 0; b < B; b++) {
                    ck_assert_int_ge(lab[b], 0);
                    ck_assert_int_lt(lab[b], N);
                    ck_assert_msg(seen[lab[b]] == 0, "N=%d: image %d twice in epoch %d", N,
                                  lab[b], epoch);
                    seen[lab[b]] = 1;
                }
            }
        }
        /* N divisible by B: every image once per epoch (the seen[] count) */
        int count = 0;
        for (int i = 0; i < N; i++)
            count += seen[i];
        ck_assert_int_eq(count, (int)(per * B));
        /* the order changes from epoch to epoch */
        if (N >= 1000)
            ck_assert(first_of_epoch[0] != first_of_epoch[1] ||
                      first_of_epoch[1] != first_of_epoch[2]);
        free(seen);
        free(lab);
        free(px);
        tf_image_dataset_free(ds);
    }
}
END_TEST

/* With N mod B left over, the skipped images differ between epochs, and in
 * a few epochs every image has been seen. */
START_TEST(test_leftover_images_rotate)
{
    enum { N = 50, B = 7 };
    tf_image_dataset *ds = indexed(N, 2, 2);
    ck_assert_int_eq(tf_image_dataset_epoch_batches(ds, B), 7);
    int ever[N] = {0};
    float px[B * 4];
    int32_t lab[B];
    for (int epoch = 0; epoch < 10; epoch++) {
        int seen[N] = {0};
        for (int j = 0; j < 7; j++) {
            ck_assert_int_eq(tf_image_dataset_train_batch(ds, NULL, 9, epoch * 7 + j, B, px, lab),
                             TF_OK);
            for (int b = 0; b < B; b++) {
                ck_assert_int_eq(seen[lab[b]], 0);
                seen[lab[b]] = ever[lab[b]] = 1;
            }
        }
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(ever[i], "image %d never drawn in 10 epochs", i);
    tf_image_dataset_free(ds);
}
END_TEST

START_TEST(test_batches_are_pure_functions)
{
    enum { N = 300, H = 6, W = 5, B = 16 };
    tf_image_dataset *ds = indexed(N, H, W);
    tf_image_aug_params p = tf_image_aug_default_params();
    p.shift = 2;
    p.hflip = 1;
    static float a[B * H * W], b[B * H * W], c[B * H * W];
    int32_t la[B], lb[B], lc[B];
    ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 7, 40, B, a, la), TF_OK);
    /* other batches in between (a run resumed elsewhere) change nothing */
    for (int64_t i = 0; i < 5; i++)
        ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 8, i, B, c, lc), TF_OK);
    ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 7, 40, B, b, lb), TF_OK);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert_mem_eq(la, lb, sizeof la);
    /* another seed or another index gives other data */
    ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 8, 40, B, c, lc), TF_OK);
    ck_assert(memcmp(la, lc, sizeof la) != 0);
    ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 7, 41, B, c, lc), TF_OK);
    ck_assert(memcmp(la, lc, sizeof la) != 0);
    /* switching augmentation off keeps the images a batch holds */
    tf_image_aug_params q = p;
    q.shift = 0;
    q.hflip = 0;
    ck_assert_int_eq(tf_image_dataset_train_batch(ds, &q, 7, 40, B, c, lc), TF_OK);
    ck_assert_mem_eq(la, lc, sizeof la);
    ck_assert(memcmp(a, c, sizeof a) != 0); /* but the pixels are augmented */
    tf_image_dataset_free(ds);
}
END_TEST

/* ---- augmentation ------------------------------------------------------------ */

/* One bright pixel at the centre of a 9 x 9 image: a shift moves it by
 * (-dy, -dx), every offset in [-k, k]^2 occurs, nothing else changes. */
START_TEST(test_shift_moves_pixels)
{
    enum { S = 9, C = 4, K = 2, B = 50 };
    unsigned char px[S * S] = {0};
    px[C * S + C] = 255;
    int32_t label = 0;
    tf_image_dataset *ds = NULL;
    ck_assert_int_eq(tf_image_dataset_from_memory(px, &label, 1, S, S, &ds), TF_OK);
    tf_image_aug_params p = tf_image_aug_default_params();
    p.shift = K;
    p.hflip = 0;
    int offsets[2 * K + 1][2 * K + 1] = {{0}};
    float out[S * S];
    int32_t lab;
    for (int64_t i = 0; i < 400; i++) {
        ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 5, i, 1, out, &lab), TF_OK);
        int bright = 0, by = -1, bx = -1;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                if (out[y * S + x] == 1.0f) {
                    bright++;
                    by = y;
                    bx = x;
                } else {
                    ck_assert_float_eq(out[y * S + x], 0.0f);
                }
            }
        ck_assert_int_eq(bright, 1);
        ck_assert_int_le(abs(by - C), K);
        ck_assert_int_le(abs(bx - C), K);
        offsets[by - C + K][bx - C + K]++;
    }
    for (int dy = 0; dy <= 2 * K; dy++)
        for (int dx = 0; dx <= 2 * K; dx++)
            ck_assert_msg(offsets[dy][dx] > 0, "offset (%d, %d) never drawn", dy - K, dx - K);
    tf_image_dataset_free(ds);
}
END_TEST

/* A pixel in the corner leaves the image for some shifts; what comes in is
 * the padding byte 0, normalised like any pixel ((0 - mean) / std). */
START_TEST(test_shift_pads_with_normalised_zero)
{
    enum { S = 5 };
    unsigned char px[S * S];
    memset(px, 200, sizeof px);
    int32_t label = 3;
    tf_image_dataset *ds = NULL;
    ck_assert_int_eq(tf_image_dataset_from_memory(px, &label, 1, S, S, &ds), TF_OK);
    tf_image_aug_params p = tf_image_aug_default_params();
    p.shift = 2;
    p.hflip = 0;
    p.mean = 0.5;
    p.std = 0.25;
    const float pad = -2.0f, full = (float)((200 / 255.0 - 0.5) / 0.25);
    float out[S * S];
    int32_t lab;
    int padded_images = 0;
    for (int64_t i = 0; i < 100; i++) {
        ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 1, i, 1, out, &lab), TF_OK);
        ck_assert_int_eq(lab, 3);
        int pads = 0;
        for (int j = 0; j < S * S; j++) {
            ck_assert_msg(out[j] == pad || out[j] == full, "pixel %d is %g", j, out[j]);
            pads += out[j] == pad;
        }
        /* padding comes in whole rows and columns: |dy| rows, |dx| columns */
        int rows = 0, cols = 0;
        for (int y = 0; y < S; y++) {
            int all = 1;
            for (int x = 0; x < S; x++)
                all &= out[y * S + x] == pad;
            rows += all;
        }
        for (int x = 0; x < S; x++) {
            int all = 1;
            for (int y = 0; y < S; y++)
                all &= out[y * S + x] == pad;
            cols += all;
        }
        ck_assert_int_le(rows, 2);
        ck_assert_int_le(cols, 2);
        ck_assert_int_eq(pads, rows * S + cols * S - rows * cols);
        padded_images += pads > 0;
    }
    ck_assert_int_gt(padded_images, 50); /* 24 of 25 offsets pad something */
    tf_image_dataset_free(ds);
}
END_TEST

/* An asymmetric image comes out as itself or its mirror, both often. */
START_TEST(test_flip_mirrors)
{
    enum { H = 3, W = 7 };
    unsigned char px[H * W];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            px[y * W + x] = (unsigned char)(10 * x + y);
    int32_t label = 1;
    tf_image_dataset *ds = NULL;
    ck_assert_int_eq(tf_image_dataset_from_memory(px, &label, 1, H, W, &ds), TF_OK);
    tf_image_aug_params p = tf_image_aug_default_params();
    p.shift = 0;
    float out[H * W];
    int32_t lab;
    int flipped = 0;
    for (p.hflip = 1; p.hflip >= 0; p.hflip--) {
        flipped = 0;
        for (int64_t i = 0; i < 200; i++) {
            ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 77, i, 1, out, &lab), TF_OK);
            int same = 1, mirror = 1;
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    same &= out[y * W + x] == (float)(px[y * W + x] / 255.0);
                    mirror &= out[y * W + x] == (float)(px[y * W + W - 1 - x] / 255.0);
                }
            ck_assert_msg(same != mirror, "batch %lld is neither the image nor its mirror",
                          (long long)i);
            flipped += mirror;
        }
        if (p.hflip)
            ck_assert_msg(flipped > 60 && flipped < 140, "%d of 200 flipped", flipped);
    }
    ck_assert_int_eq(flipped, 0); /* hflip = 0 */
    tf_image_dataset_free(ds);
}
END_TEST

/* Evaluation batches ignore shift and flip; a training batch without
 * augmentation holds the same pixels for the same images. */
START_TEST(test_no_augmentation_at_eval)
{
    enum { N = 40, H = 5, W = 6, B = 8 };
    tf_image_dataset *ds = indexed(N, H, W);
    tf_image_aug_params aug = tf_image_aug_default_params();
    aug.shift = 3;
    aug.hflip = 1;
    aug.mean = 0.1;
    aug.std = 2.0;
    tf_image_aug_params none = aug;
    none.shift = 0;
    none.hflip = 0;
    static float all[N * H * W], again[N * H * W], train[B * H * W];
    int32_t labels[N], lab[B];
    ck_assert_int_eq(tf_image_dataset_eval_batch(ds, &aug, 0, N, all, labels), TF_OK);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(labels[i], i);
    ck_assert_int_eq(tf_image_dataset_eval_batch(ds, &none, 0, N, again, labels), TF_OK);
    ck_assert_mem_eq(all, again, sizeof all);
    /* in pieces, as an evaluation loop does, with a short last batch */
    for (int f = 0; f < N; f += 16) {
        int n = N - f < 16 ? N - f : 16;
        ck_assert_int_eq(tf_image_dataset_eval_batch(ds, &aug, f, n, again, labels), TF_OK);
        ck_assert_mem_eq(again, all + (size_t)f * H * W, (size_t)n * H * W * sizeof(float));
    }
    for (int64_t i = 0; i < 10; i++) {
        ck_assert_int_eq(tf_image_dataset_train_batch(ds, &none, 3, i, B, train, lab), TF_OK);
        for (int b = 0; b < B; b++)
            ck_assert_mem_eq(train + (size_t)b * H * W, all + (size_t)lab[b] * H * W,
                             H * W * sizeof(float));
    }
    tf_image_dataset_free(ds);
}
END_TEST

START_TEST(test_arguments_refused_and_outputs_untouched)
{
    enum { N = 10, H = 4, W = 4 };
    tf_image_dataset *ds = indexed(N, H, W);
    float px[N * H * W];
    int32_t lab[N];
    for (int i = 0; i < N * H * W; i++)
        px[i] = -7.0f;
    for (int i = 0; i < N; i++)
        lab[i] = -7;
    tf_image_aug_params p = tf_image_aug_default_params();
    struct arg_case {
        tf_status want;
        const char *fragment;
        tf_status got;
    } cases[16];
    int n = 0;
#define CASE(want, frag, call) cases[n++] = (struct arg_case){want, frag, (call)}
    CASE(TF_ERR_ARGUMENT, "NULL", tf_image_dataset_train_batch(NULL, &p, 1, 0, 2, px, lab));
    CASE(TF_ERR_ARGUMENT, "pixels", tf_image_dataset_train_batch(ds, &p, 1, 0, 2, NULL, lab));
    CASE(TF_ERR_ARGUMENT, "labels", tf_image_dataset_eval_batch(ds, &p, 0, 2, px, NULL));
    CASE(TF_ERR_RANGE, "B = 0", tf_image_dataset_train_batch(ds, &p, 1, 0, 0, px, lab));
    CASE(TF_ERR_RANGE, "B = 11", tf_image_dataset_train_batch(ds, &p, 1, 0, 11, px, lab));
    CASE(TF_ERR_RANGE, "negative", tf_image_dataset_train_batch(ds, &p, 1, -1, 2, px, lab));
    CASE(TF_ERR_RANGE, "[8, 8 + 3)", tf_image_dataset_eval_batch(ds, &p, 8, 3, px, lab));
    CASE(TF_ERR_RANGE, "[-1", tf_image_dataset_eval_batch(ds, &p, -1, 2, px, lab));
    CASE(TF_ERR_RANGE, "+ 0)", tf_image_dataset_eval_batch(ds, &p, 0, 0, px, lab));
    p.shift = TF_IMAGE_MAX_SHIFT + 1;
    CASE(TF_ERR_ARGUMENT, "shift", tf_image_dataset_train_batch(ds, &p, 1, 0, 2, px, lab));
    p.shift = -1;
    CASE(TF_ERR_ARGUMENT, "shift -1", tf_image_dataset_eval_batch(ds, &p, 0, 2, px, lab));
    p = tf_image_aug_default_params();
    p.hflip = 2;
    CASE(TF_ERR_ARGUMENT, "hflip", tf_image_dataset_train_batch(ds, &p, 1, 0, 2, px, lab));
    p = tf_image_aug_default_params();
    p.std = 0.0;
    CASE(TF_ERR_ARGUMENT, "std", tf_image_dataset_train_batch(ds, &p, 1, 0, 2, px, lab));
    p.std = 1.0;
    p.mean = NAN;
    CASE(TF_ERR_ARGUMENT, "mean", tf_image_dataset_eval_batch(ds, &p, 0, 2, px, lab));
    p = tf_image_aug_default_params();
    p.struct_size = sizeof(size_t) + 4;
    CASE(TF_ERR_ARGUMENT, "struct_size", tf_image_dataset_train_batch(ds, &p, 1, 0, 2, px, lab));
    p.struct_size = sizeof p + 8;
    CASE(TF_ERR_ARGUMENT, "struct_size", tf_image_dataset_eval_batch(ds, &p, 0, 2, px, lab));
#undef CASE
    for (int i = 0; i < n; i++)
        ck_assert_msg(cases[i].got == cases[i].want, "case %d (%s): got %s, want %s", i,
                      cases[i].fragment, tf_status_name(cases[i].got),
                      tf_status_name(cases[i].want));
    /* messages: checked one by one, since each call overwrites the last */
    p = tf_image_aug_default_params();
    ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 1, 0, 11, px, lab), TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_image_dataset_errmsg(ds), "B = 11"));
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "B = 11"));
    p.shift = -5;
    ck_assert_int_eq(tf_image_dataset_eval_batch(ds, &p, 0, 1, px, lab), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_image_dataset_errmsg(ds), "shift -5"));
    for (int i = 0; i < N * H * W; i++)
        ck_assert_float_eq(px[i], -7.0f);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(lab[i], -7);

    /* getters on NULL, the epoch count's edges, params init */
    ck_assert_int_eq(tf_image_dataset_size(NULL), 0);
    ck_assert_int_eq(tf_image_dataset_height(NULL), 0);
    ck_assert_int_eq(tf_image_dataset_width(NULL), 0);
    ck_assert_int_eq(tf_image_dataset_num_classes(NULL), 0);
    ck_assert_int_eq(tf_image_dataset_epoch_batches(ds, 0), 0);
    ck_assert_int_eq(tf_image_dataset_epoch_batches(ds, 11), 0);
    ck_assert_int_eq(tf_image_dataset_epoch_batches(ds, 3), 3);
    ck_assert_str_eq(tf_image_dataset_errmsg(NULL), "the image dataset is NULL");
    tf_image_dataset_free(NULL);
    tf_image_aug_params d = tf_image_aug_default_params();
    ck_assert_uint_eq(d.struct_size, sizeof d);
    ck_assert_int_eq(d.shift, 2);
    ck_assert_int_eq(d.hflip, 1);
    ck_assert(d.mean == 0.0 && d.std == 1.0);
    /* an older, shorter struct is filled only as far as it goes */
    unsigned char raw[sizeof d + 8];
    memset(raw, 0xab, sizeof raw);
    tf_image_aug_params_init((tf_image_aug_params *)raw, sizeof(size_t) + 4);
    ck_assert_uint_eq(((tf_image_aug_params *)raw)->struct_size, sizeof(size_t) + 4);
    for (size_t i = sizeof(size_t) + 4; i < sizeof raw; i++)
        ck_assert_int_eq(raw[i], 0xab);
    tf_image_dataset_free(ds);
}
END_TEST

/* ---- Debian's Fashion-MNIST ----------------------------------------------------- */

static int have_fashion_mnist(void)
{
    struct stat sb;
    if (stat(FMNIST_DIR "/train-images-idx3-ubyte.gz", &sb) == 0)
        return 1;
    fprintf(stderr, "test_fashion_mnist: %s not found, skipped "
                    "(apt-get install dataset-fashion-mnist)\n", FMNIST_DIR);
    return 0;
}

static void check_fashion_split(const char *prefix, int64_t want_n)
{
    char img[256], lab[256];
    snprintf(img, sizeof img, FMNIST_DIR "/%s-images-idx3-ubyte.gz", prefix);
    snprintf(lab, sizeof lab, FMNIST_DIR "/%s-labels-idx1-ubyte.gz", prefix);
    tf_image_dataset *ds = open_ok(img, lab);
    ck_assert_int_eq(tf_image_dataset_size(ds), want_n);
    ck_assert_int_eq(tf_image_dataset_height(ds), 28);
    ck_assert_int_eq(tf_image_dataset_width(ds), 28);
    ck_assert_int_eq(tf_image_dataset_num_classes(ds), 10);

    /* balanced classes, and the pixel statistics the header quotes */
    enum { B = 1000 };
    float *px = malloc((size_t)B * 784 * sizeof *px);
    int32_t lab_b[B];
    ck_assert_ptr_nonnull(px);
    int64_t per_class[10] = {0};
    double sum = 0, sumsq = 0;
    for (int64_t f = 0; f < want_n; f += B) {
        ck_assert_int_eq(tf_image_dataset_eval_batch(ds, NULL, f, B, px, lab_b), TF_OK);
        for (int b = 0; b < B; b++) {
            ck_assert(lab_b[b] >= 0 && lab_b[b] < 10);
            per_class[lab_b[b]]++;
        }
        for (size_t j = 0; j < (size_t)B * 784; j++) {
            sum += px[j];
            sumsq += (double)px[j] * px[j];
        }
    }
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(per_class[c], want_n / 10);
    if (strcmp(prefix, "train") == 0) {
        double count = (double)want_n * 784, mean = sum / count;
        double sd = sqrt(sumsq / count - mean * mean);
        ck_assert_double_eq_tol(mean, 0.2860, 5e-5);
        ck_assert_double_eq_tol(sd, 0.3530, 5e-5);
    }
    /* a training batch of the real data: labels in range, pixels in range */
    tf_image_aug_params p = tf_image_aug_default_params();
    p.mean = 0.2860;
    p.std = 0.3530;
    ck_assert_int_eq(tf_image_dataset_train_batch(ds, &p, 1, 12345, 256, px, lab_b), TF_OK);
    for (int b = 0; b < 256; b++)
        ck_assert(lab_b[b] >= 0 && lab_b[b] < 10);
    for (size_t j = 0; j < (size_t)256 * 784; j++)
        ck_assert(px[j] >= -0.2860f / 0.3530f - 1e-5f && px[j] <= (1 - 0.2860f) / 0.3530f + 1e-5f);
    free(px);
    tf_image_dataset_free(ds);
}

START_TEST(test_fashion_mnist)
{
    if (!have_fashion_mnist())
        return;
    check_fashion_split("train", 60000);
    check_fashion_split("t10k", 10000);
}
END_TEST

Suite *images_suite(void)
{
    Suite *s = suite_create("images");

    TCase *files = tcase_create("files");
    tcase_add_unchecked_fixture(files, tt_make_basedir, tt_remove_basedir);
    tcase_add_checked_fixture(files, tt_make_tmpdir, tt_remove_tmpdir);
    tcase_set_timeout(files, 60);
    tcase_add_test(files, test_plain_and_gzip_round_trip);
    tcase_add_test(files, test_from_memory_matches_files);
    tcase_add_test(files, test_bad_headers_refused);
    tcase_add_test(files, test_huge_declared_size_refused_before_allocating);
    tcase_add_test(files, test_gzip_declaring_slightly_more);
    tcase_add_test(files, test_corrupt_gzip_refused);
    tcase_add_test(files, test_image_label_mismatch);
    tcase_add_test(files, test_non_regular_files_refused);
    suite_add_tcase(s, files);

    TCase *stream = tcase_create("stream");
    tcase_add_test(stream, test_epochs_are_permutations);
    tcase_add_test(stream, test_leftover_images_rotate);
    tcase_add_test(stream, test_batches_are_pure_functions);
    tcase_add_test(stream, test_shift_moves_pixels);
    tcase_add_test(stream, test_shift_pads_with_normalised_zero);
    tcase_add_test(stream, test_flip_mirrors);
    tcase_add_test(stream, test_no_augmentation_at_eval);
    tcase_add_test(stream, test_arguments_refused_and_outputs_untouched);
    suite_add_tcase(s, stream);

    TCase *real = tcase_create("fashion_mnist");
    tcase_set_timeout(real, 120);
    tcase_add_test(real, test_fashion_mnist);
    suite_add_tcase(s, real);
    return s;
}
