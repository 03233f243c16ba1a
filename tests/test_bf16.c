/*
 * test_bf16.c -- inference models with bfloat16 weights: the kernels of
 * kernels/bf16.c (every version this CPU runs against the plain one and a
 * double reference, within bounds derived from the roundings), the
 * conversion, the fixtures' logits and greedy continuations against
 * float32's, decoding against the bfloat16 model's own forward, and the
 * refusal of every call that would train, grow, save or change weights.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "io/safetensors.h"
#include "kernels/bf16.h"
#include "testutil.h"

static const char *const fixtures[] = {"tests/data/model_tiny.safetensors",
                                       "tests/data/model_softmax.safetensors"};

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1), with now and then a tiny or a large value */
static float draw(uint64_t *s)
{
    const uint64_t r = mix(s);
    const float u = (float)((double)(r >> 11) * 0x1.0p-52 - 1.0);
    switch (r & 63) {
    case 0: return u * 1e-30f; /* near the denormals: vdpbf16ps flushes them */
    case 1: return u * 1e3f;
    default: return u;
    }
}

static tf_inference_params bf16_params(void)
{
    tf_inference_params p = tf_inference_default_params();
    p.weights = TF_DTYPE_BF16;
    return p;
}

/* ---- conversion -------------------------------------------------------- */

START_TEST(test_narrow_widen)
{
    enum { R = 37, C = 45, N = R * C };
    uint64_t s = 11;
    float *x = malloc(N * sizeof *x), *w = malloc(N * sizeof *w), *wt = malloc(N * sizeof *wt);
    uint16_t *h = malloc(N * sizeof *h), *ht = malloc(N * sizeof *ht);
    for (int i = 0; i < N; i++)
        x[i] = draw(&s);
    x[0] = NAN;
    x[1] = INFINITY;
    x[2] = 3.4e38f; /* rounds past bfloat16's largest: infinity */
    x[3] = 1.00390625f; /* 1 + 2^-8: a tie, to even (1.0) */
    x[4] = 1.01171875f; /* 1 + 3 * 2^-8: a tie, to even (1 + 2^-6) */
    tfi_bf16_narrow(h, x, N);
    for (int i = 0; i < N; i++)
        ck_assert_uint_eq(h[i], tfi_f32_to_bf16(x[i]));
    ck_assert(isnan(tfi_bf16_value(h[0])));
    ck_assert(isinf(tfi_bf16_value(h[2])));
    ck_assert(tfi_bf16_value(h[3]) == 1.0f);
    ck_assert(tfi_bf16_value(h[4]) == 1.015625f);
    /* in place: the same bits in the buffer's first half */
    memcpy(w, x, N * sizeof *w);
    tfi_bf16_narrow((uint16_t *)(void *)w, w, N);
    ck_assert(memcmp(w, h, N * sizeof *h) == 0);
    /* widening is exact, and within half a bfloat16 ulp of x (finite x) */
    tfi_bf16_widen(w, h, N);
    for (int i = 5; i < N; i++) {
        ck_assert_uint_eq(tfi_f32_to_bf16(w[i]), h[i]);
        ck_assert(fabsf(w[i] - x[i]) <= fabsf(x[i]) * 0x1p-8f);
    }
    /* the transposes */
    tfi_bf16_narrow_transpose(ht, x, R, C);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            ck_assert_uint_eq(ht[c * R + r], h[r * C + c]);
    tfi_bf16_widen_transpose(wt, R, h, C, R, C);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            ck_assert(memcmp(&wt[c * R + r], &w[r * C + c], sizeof(float)) == 0);
    free(x);
    free(w);
    free(wt);
    free(h);
    free(ht);
}
END_TEST

/* ---- the product --------------------------------------------------------- */

/* Every version against a double reference on the same (widened) weights:
 * a float32 sum of k products errs by at most about k * 2^-24 * sum|a b|
 * (bound doubled); vdpbf16ps sees each a as hi + lo, two bfloat16 (2^-17
 * |a| off), and flushes denormal products: 2^-15 * sum|a b| more, and a
 * little. */
START_TEST(test_abt_versions)
{
    static const int64_t ms[] = {1, 2, 3, 4, 5, 9};
    static const int64_t ks[] = {1, 7, 16, 31, 32, 33, 64, 100, 129, 768};
    const int64_t n = 19;
    uint64_t s = 5 + (uint64_t)_i;
    int checked[TFI_BF16_ISAS] = {0};
    for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            const int64_t m = ms[mi], k = ks[ki], lda = k + 3, ldb = k + 5, ldc = n + 2;
            float *A = malloc((size_t)(m * lda) * sizeof *A);
            uint16_t *B = malloc((size_t)(n * ldb) * sizeof *B);
            float *C = malloc((size_t)(m * ldc) * sizeof *C);
            float *C0 = malloc((size_t)(m * ldc) * sizeof *C0);
            for (int64_t i = 0; i < m * lda; i++)
                A[i] = draw(&s);
            for (int64_t i = 0; i < n * ldb; i++)
                B[i] = tfi_f32_to_bf16(draw(&s));
            for (int64_t i = 0; i < m * ldc; i++)
                C0[i] = draw(&s);
            const float beta = _i == 0 ? 0.0f : 1.0f;
            for (int isa = 0; isa < TFI_BF16_ISAS; isa++) {
                if (!tfi_bf16_isa_supported((tfi_bf16_isa)isa))
                    continue;
                checked[isa] = 1;
                memcpy(C, C0, (size_t)(m * ldc) * sizeof *C);
                tfi_bf16_abt_with((tfi_bf16_isa)isa, m, n, k, A, lda, B, ldb, beta, C, ldc);
                for (int64_t r = 0; r < m; r++)
                    for (int64_t j = 0; j < n; j++) {
                        double ref = beta * (double)C0[r * ldc + j], mag = fabs(ref);
                        for (int64_t c = 0; c < k; c++) {
                            double p = (double)A[r * lda + c] * tfi_bf16_value(B[j * ldb + c]);
                            ref += p;
                            mag += fabs(p);
                        }
                        double tol = 2.0 * (double)(k + 2) * 0x1p-24 * mag;
                        if (isa == TFI_BF16_AVX512BF16)
                            tol += 0x1p-15 * mag + 1e-30;
                        double got = C[r * ldc + j];
                        ck_assert_msg(fabs(got - ref) <= tol,
                                      "%s m=%lld k=%lld (%lld,%lld): %.9g vs %.9g (tol %.3g)",
                                      tfi_bf16_isa_name((tfi_bf16_isa)isa), (long long)m,
                                      (long long)k, (long long)r, (long long)j, got, ref, tol);
                    }
                /* C's padding untouched */
                for (int64_t r = 0; r < m; r++)
                    for (int64_t j = n; j < ldc; j++)
                        ck_assert(C[r * ldc + j] == C0[r * ldc + j]);
            }
            /* the threaded driver: the best version's bits, whatever the split */
            memcpy(C0, C, (size_t)(m * ldc) * sizeof *C);
            tfi_bf16_abt_with(tfi_bf16_isa_best(), m, n, k, A, lda, B, ldb, 0.0f, C0, ldc);
            tfi_bf16_abt(m, n, k, A, lda, B, ldb, 0.0f, C, ldc);
            ck_assert(memcmp(C, C0, (size_t)(m * ldc) * sizeof *C) == 0);
            free(A);
            free(B);
            free(C);
            free(C0);
        }
    ck_assert(checked[TFI_BF16_PLAIN]);
    ck_assert(checked[tfi_bf16_isa_best()]);
}
END_TEST

/* A row of a row count's outputs does not depend on the rows beside it
 * (the decoder's rows repeat the forward's), for every version; and a large
 * product split over threads equals one thread's. */
START_TEST(test_abt_rows_independent)
{
    const int64_t m = 7, n = 300, k = 200;
    uint64_t s = 99;
    float *A = malloc((size_t)(m * k) * sizeof *A), *C = malloc((size_t)(m * n) * sizeof *C);
    float *one = malloc((size_t)n * sizeof *one);
    uint16_t *B = malloc((size_t)(n * k) * sizeof *B);
    for (int64_t i = 0; i < m * k; i++)
        A[i] = draw(&s);
    for (int64_t i = 0; i < n * k; i++)
        B[i] = tfi_f32_to_bf16(draw(&s));
    for (int isa = 0; isa < TFI_BF16_ISAS; isa++) {
        if (!tfi_bf16_isa_supported((tfi_bf16_isa)isa))
            continue;
        tfi_bf16_abt_with((tfi_bf16_isa)isa, m, n, k, A, k, B, k, 0.0f, C, n);
        for (int64_t r = 0; r < m; r++) {
            tfi_bf16_abt_with((tfi_bf16_isa)isa, 1, n, k, A + r * k, k, B, k, 0.0f, one, n);
            ck_assert_msg(memcmp(one, C + r * n, (size_t)n * sizeof *one) == 0, "%s row %lld",
                          tfi_bf16_isa_name((tfi_bf16_isa)isa), (long long)r);
        }
    }
    free(A);
    free(B);
    free(C);
    free(one);
}
END_TEST

/* ---- models ---------------------------------------------------------------- */

static tf_model *open_f32(const char *path)
{
    tf_model *m = NULL;
    ck_assert_msg(tf_model_open(path, &m) == TF_OK, "%s", tf_last_error());
    return m;
}

static tf_model *open_bf16(const char *path)
{
    tf_model *m = NULL;
    tf_inference_params p = bf16_params();
    ck_assert_msg(tf_model_open_inference(path, NULL, &p, &m) == TF_OK, "%s", tf_last_error());
    ck_assert_int_eq(tf_model_weights_dtype(m), TF_DTYPE_BF16);
    return m;
}

static void fixture_io(const char *path, int32_t *tokens, float *logits, size_t nlogits)
{
    tfi_st_file f;
    tfi_errbuf eb;
    ck_assert_msg(tfi_st_open(path, &f, &eb) == TF_OK, "%s", eb.msg);
    const tfi_st_tensor *t = tfi_st_find(&f, "tokens");
    ck_assert_ptr_nonnull(t);
    memcpy(tokens, tfi_st_data(&f, t), 32 * sizeof(int32_t));
    t = tfi_st_find(&f, "logits");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->end - t->begin, nlogits * sizeof(float));
    memcpy(logits, tfi_st_data(&f, t), nlogits * sizeof(float));
    tfi_st_close(&f);
}

/* The fixtures' logits (float64 golden values) through the bfloat16 model,
 * within the 1e-2 of the largest; and float32's, for scale. */
START_TEST(test_fixture_logits)
{
    const char *path = fixtures[_i];
    enum { B = 2, T = 16, V = 256 };
    int32_t tokens[B * T];
    float *want = malloc(B * T * V * sizeof *want), *got = malloc(B * T * V * sizeof *got);
    fixture_io(path, tokens, want, B * T * V);
    tf_model *m16 = open_bf16(path), *m32 = open_f32(path);
    ck_assert_msg(tf_model_forward(m32, B, T, tokens, NULL, got, NULL) == TF_OK, "%s",
                  tf_last_error());
    const double e32 = tt_rel_err(got, want, B * T * V);
    ck_assert_msg(tf_model_forward(m16, B, T, tokens, NULL, got, NULL) == TF_OK, "%s",
                  tf_last_error());
    const double e16 = tt_rel_err(got, want, B * T * V);
    ck_assert_msg(e16 <= 1e-2 && e16 > e32, "%s: bfloat16 err %.3g, float32 %.3g", path, e16,
                  e32);
    tf_model_free(m16);
    tf_model_free(m32);
    free(want);
    free(got);
}
END_TEST

/* Greedy continuations of the fixtures' prompts (the first P tokens of each
 * sequence, to the context's end) are float32's; and the decoder's logits
 * are the bfloat16 model's own forward's, bit for bit (fewer than 64 rows:
 * every product row by row). */
START_TEST(test_fixture_greedy_and_decode)
{
    const char *path = fixtures[_i];
    enum { B = 2, T = 16, V = 256 };
    int32_t tokens[B * T];
    float *golden = malloc(B * T * V * sizeof *golden);
    fixture_io(path, tokens, golden, B * T * V);
    tf_model *m[2] = {open_f32(path), open_bf16(path)};
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = 0.0;
    for (int P = 1; P <= 8; P *= 2) {
        int32_t prompt[B * 8], out[2][B * T];
        for (int b = 0; b < B; b++)
            memcpy(prompt + b * P, tokens + b * T, (size_t)P * sizeof(int32_t));
        for (int k = 0; k < 2; k++) {
            tf_decoder *dec;
            int produced = 0;
            ck_assert_int_eq(tf_decoder_create(m[k], B, &dec), TF_OK);
            ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, NULL), TF_OK);
            ck_assert_msg(tf_decoder_generate(dec, T - P, &sp, NULL, 0, out[k], &produced, NULL,
                                              NULL) == TF_OK, "%s", tf_last_error());
            ck_assert_int_eq(produced, T - P);
            tf_decoder_free(dec);
        }
        ck_assert_msg(memcmp(out[0], out[1], (size_t)(B * (T - P)) * sizeof(int32_t)) == 0,
                      "%s: prompt of %d: the greedy continuations differ", path, P);
    }
    /* decoding token by token against the forward of the same model */
    float *fwd = malloc(B * T * V * sizeof *fwd), *step = malloc(B * V * sizeof *step);
    ck_assert_int_eq(tf_model_forward(m[1], B, T, tokens, NULL, fwd, NULL), TF_OK);
    tf_decoder *dec;
    ck_assert_int_eq(tf_decoder_create(m[1], B, &dec), TF_OK);
    for (int t = 0; t < T; t++) {
        int32_t col[B] = {tokens[t], tokens[T + t]};
        ck_assert_int_eq(tf_decoder_step(dec, col, step), TF_OK);
        for (int b = 0; b < B; b++)
            ck_assert_msg(memcmp(step + b * V, fwd + (b * T + t) * V, V * sizeof(float)) == 0,
                          "%s: position %d of sequence %d", path, t, b);
    }
    tf_decoder_free(dec);
    free(fwd);
    free(step);
    free(golden);
    tf_model_free(m[0]);
    tf_model_free(m[1]);
}
END_TEST

/* Converting a model in memory is opening it converted: the same weights
 * (the float32 ones rounded, read back widened) and the same logits; a
 * prefill of 64 rows or more (widened weights through BLIS) stays near. */
START_TEST(test_convert_equals_open)
{
    const char *path = fixtures[0];
    tf_model *a = open_bf16(path), *b = open_f32(path), *f = open_f32(path);
    tf_inference_params p = bf16_params();
    ck_assert_int_eq(tf_model_make_inference(b, &p), TF_OK);
    ck_assert_int_eq(tf_model_make_inference(b, &p), TF_OK); /* again: nothing to do */
    for (int t = 0; t < tf_model_num_tensors(a); t++) {
        const char *name = tf_model_tensor_name(a, t);
        int64_t shape[2];
        int ndim;
        ck_assert_int_eq(tf_model_tensor_shape(a, name, shape, &ndim), TF_OK);
        size_t count = (size_t)shape[0] * (size_t)(ndim == 2 ? shape[1] : 1);
        float *x = malloc(count * sizeof *x), *y = malloc(count * sizeof *y),
              *z = malloc(count * sizeof *z);
        ck_assert_int_eq(tf_model_get_tensor(a, name, x, count), TF_OK);
        ck_assert_int_eq(tf_model_get_tensor(b, name, y, count), TF_OK);
        ck_assert_int_eq(tf_model_get_tensor(f, name, z, count), TF_OK);
        ck_assert(memcmp(x, y, count * sizeof *x) == 0);
        const int narrowed = strncmp(name, "final_norm", 10) != 0;
        for (size_t i = 0; i < count; i++)
            ck_assert_msg(x[i] == (narrowed ? tfi_bf16_value(tfi_f32_to_bf16(z[i])) : z[i]),
                          "%s[%zu]", name, i);
        free(x);
        free(y);
        free(z);
    }
    /* a set borrowed from the model reads back widened too */
    tf_pattention *set = tf_model_pattention(a, 1, TF_SET_FFN);
    const size_t nv = (size_t)(tf_pattention_n(set) * tf_pattention_d_out(set));
    float *v = malloc(nv * sizeof *v), *w = malloc(nv * sizeof *w);
    ck_assert_int_eq(tf_pattention_get_values(set, v, nv), TF_OK);
    ck_assert_int_eq(tf_model_get_tensor(a, "layers.1.mlp.value_param_tokens", w, nv), TF_OK);
    ck_assert(memcmp(v, w, nv * sizeof *v) == 0);
    free(v);
    free(w);
    enum { V = 256, T = 16, B = 5 }; /* 80 rows: the BLIS path of the sets */
    int32_t tokens[B * T];
    for (int i = 0; i < B * T; i++)
        tokens[i] = (i * 37 + 11) % V;
    float *la = malloc(B * T * V * sizeof *la), *lb = malloc(B * T * V * sizeof *lb),
          *lf = malloc(B * T * V * sizeof *lf);
    ck_assert_int_eq(tf_model_forward(a, B, T, tokens, NULL, la, NULL), TF_OK);
    ck_assert_int_eq(tf_model_forward(b, B, T, tokens, NULL, lb, NULL), TF_OK);
    ck_assert_int_eq(tf_model_forward(f, B, T, tokens, NULL, lf, NULL), TF_OK);
    ck_assert(memcmp(la, lb, B * T * V * sizeof *la) == 0);
    const double e = tt_rel_err(la, lf, B * T * V);
    ck_assert_msg(e <= 1e-2, "80 rows: bfloat16 against float32 %.3g", e);
    free(la);
    free(lb);
    free(lf);
    tf_model_free(a);
    tf_model_free(b);
    tf_model_free(f);
}
END_TEST

/* Everything that trains, grows, saves or changes weights is TF_ERR_STATE
 * and changes nothing: the logits after the refusals are the logits
 * before. */
START_TEST(test_refusals)
{
    const char *path = fixtures[0];
    tf_model *f32 = open_f32(path);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(f32, NULL, &opt), TF_OK);
    tf_inference_params p = bf16_params();
    ck_assert_int_eq(tf_model_make_inference(f32, &p), TF_OK); /* had gradients: freed */
    tf_model *m = f32;
    enum { B = 2, T = 16, V = 256 };
    int32_t tokens[B * T];
    for (int i = 0; i < B * T; i++)
        tokens[i] = (i * 41 + 3) % V;
    float *before = malloc(B * T * V * sizeof *before), *after = malloc(B * T * V * sizeof *after);
    float loss;
    ck_assert_int_eq(tf_model_forward(m, B, T, tokens, tokens, before, &loss), TF_OK);
    ck_assert(isfinite(loss));

    char dir[] = "/tmp/tf_bf16_XXXXXX", file[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(file, sizeof file, "%s/m.safetensors", dir);
    float buf[64 * 96];
    float *gb;
    size_t gc;
    uint64_t sum;
    tf_optimizer *opt2 = NULL;
    tf_status st[] = {
        tf_model_backward(m),
        tf_optimizer_step(opt, NULL),
        tf_optimizer_create(m, NULL, &opt2),
        tf_model_grow(m, NULL, 64, 48, 128, NULL),
        tf_model_save(m, NULL, file),
        tf_model_export(m, file, TF_DTYPE_BF16),
        tf_model_load(m, NULL, path),
        tf_model_load_grown(m, path, NULL),
        tf_model_set_tensor(m, "final_norm.bias", buf, 64),
        tf_model_set_grad(m, "final_norm.bias", buf, 64),
        tf_model_grad_buffer(m, &gb, &gc),
        tf_model_checksum(m, NULL, &sum),
        tf_pattention_set_keys(tf_model_pattention(m, 0, TF_SET_QUERY), buf, 48 * 64),
        tf_pattention_set_values(tf_model_pattention(m, 0, TF_SET_QUERY), buf, 48 * 64),
        tf_pattention_backward(tf_model_pattention(m, 0, TF_SET_QUERY), 1, buf, buf, buf),
        tf_pattention_grow(tf_model_pattention(m, 0, TF_SET_QUERY), 64, NULL),
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        ck_assert_msg(st[i] == TF_ERR_STATE, "call %zu: %s", i, tf_status_name(st[i]));
    ck_assert_ptr_null(opt2);
    ck_assert(access(file, F_OK) != 0);
    ck_assert_msg(strstr(tf_model_errmsg(m), "bfloat16"), "%s", tf_model_errmsg(m));
    tf_inference_params back = tf_inference_default_params();
    ck_assert_int_eq(tf_model_make_inference(m, &back), TF_ERR_STATE);
    ck_assert_int_eq(tf_model_weights_dtype(m), TF_DTYPE_BF16);
    tf_inference_params bad = bf16_params();
    bad.weights = (tf_dtype)7;
    ck_assert_int_eq(tf_model_make_inference(m, &bad), TF_ERR_ARGUMENT);
    bad.struct_size = 1;
    ck_assert_int_eq(tf_model_make_inference(m, &bad), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_make_inference(NULL, &p), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_weights_dtype(NULL), TF_DTYPE_F32);
    ck_assert_int_eq(tf_model_forward(m, B, T, tokens, tokens, after, &loss), TF_OK);
    ck_assert(memcmp(before, after, B * T * V * sizeof *before) == 0);
    /* a vision model stays float32 */
    tf_vision_params vp = tf_vision_default_params();
    tf_model *vis = NULL;
    ck_assert_int_eq(tf_model_create_vision(&vp, &vis), TF_OK);
    ck_assert_int_eq(tf_model_make_inference(vis, &p), TF_ERR_STATE);
    ck_assert_int_eq(tf_model_weights_dtype(vis), TF_DTYPE_F32);
    tf_model_free(vis);
    /* the open's own errors */
    tf_model *none = (tf_model *)1;
    ck_assert_int_eq(tf_model_open_inference(path, NULL, &bad, &none), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(none);
    ck_assert_int_eq(tf_model_open_inference(NULL, NULL, &p, &none), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_open_inference("tests/data/vision_tiny.safetensors", NULL, &p,
                                             &none), TF_ERR_STATE);
    ck_assert_ptr_null(none);
    /* NULL params: a float32 open */
    ck_assert_int_eq(tf_model_open_inference(path, NULL, NULL, &none), TF_OK);
    ck_assert_int_eq(tf_model_weights_dtype(none), TF_DTYPE_F32);
    tf_model_free(none);
    rmdir(dir);
    tf_optimizer_free(opt);
    tf_model_free(m);
    free(before);
    free(after);
}
END_TEST

START_TEST(test_info_names_the_kernel)
{
    tf_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(tf_get_info(&info), TF_OK);
    ck_assert_ptr_nonnull(info.bf16_kernel);
    ck_assert_str_eq(info.bf16_kernel, tfi_bf16_isa_name(tfi_bf16_isa_best()));
    /* the best version is one this CPU runs, and AVX-512 implies AVX2's */
    ck_assert(tfi_bf16_isa_supported(tfi_bf16_isa_best()));
    if (tfi_bf16_isa_supported(TFI_BF16_AVX512))
        ck_assert(tfi_bf16_isa_supported(TFI_BF16_AVX2) || !info.cpu_avx2);
}
END_TEST

Suite *bf16_suite(void)
{
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_narrow_widen);
    tcase_add_loop_test(tc, test_abt_versions, 0, 2);
    tcase_add_test(tc, test_abt_rows_independent);
    tcase_add_loop_test(tc, test_fixture_logits, 0, 2);
    tcase_add_loop_test(tc, test_fixture_greedy_and_decode, 0, 2);
    tcase_add_test(tc, test_convert_equals_open);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_info_names_the_kernel);
    suite_add_tcase(s, tc);
    return s;
}
