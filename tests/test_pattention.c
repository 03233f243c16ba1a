/* test_pattention.c -- the Pattention parameter set: fixtures, growth,
 * gradients, the fast kernels against the plain ones, and misuse. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "kernels/theta.h"
#include "testutil.h"
#include "tokenformer.h"

static const char *fixture_names[] = {"l2_norm_gelu", "gelu_l2_norm", "softmax"};
static const tf_norm_type fixture_norms[] = {TF_NORM_L2_NORM_GELU, TF_NORM_GELU_L2_NORM,
                                             TF_NORM_SOFTMAX};

static float *read_f32(tfi_st_file *f, const char *name, size_t *count)
{
    const tfi_st_tensor *t = tfi_st_find(f, name);
    ck_assert_msg(t != NULL, "fixture lacks %s", name);
    float *buf = malloc((size_t)t->numel * sizeof(float));
    ck_assert_int_eq(tfi_st_read_f32(f, name, buf, (size_t)t->numel, NULL), TF_OK);
    if (count)
        *count = (size_t)t->numel;
    return buf;
}

START_TEST(test_fixture_forward_backward)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/pattention_%s.safetensors", fixture_names[_i]);
    tfi_st_file f;
    ck_assert_msg(tfi_st_open(path, &f, NULL) == TF_OK, "%s", tf_last_error());
    int64_t N = atoll(tfi_st_meta(&f, "N")), d_in = atoll(tfi_st_meta(&f, "d_in"));
    int64_t d_out = atoll(tfi_st_meta(&f, "d_out")), n = atoll(tfi_st_meta(&f, "n"));
    ck_assert_str_eq(tfi_st_meta(&f, "norm_activation_type"), fixture_names[_i]);

    tf_pattention_params p = tf_pattention_default_params();
    p.n = n;
    p.d_in = d_in;
    p.d_out = d_out;
    p.norm = fixture_norms[_i];
    tf_pattention *set;
    ck_assert_int_eq(tf_pattention_create(&p, &set), TF_OK);
    ck_assert(fabs(tf_pattention_tau(set) - atof(tfi_st_meta(&f, "tau"))) < 1e-6);

    size_t cx, ck_, cv, cy;
    float *X = read_f32(&f, "input", &cx);
    float *K = read_f32(&f, "key_param_tokens", &ck_);
    float *V = read_f32(&f, "value_param_tokens", &cv);
    float *Yref = read_f32(&f, "output", &cy);
    float *dY = read_f32(&f, "grad_output", NULL);
    float *dXref = read_f32(&f, "grad_input", NULL);
    float *dKref = read_f32(&f, "grad_key_param_tokens", NULL);
    float *dVref = read_f32(&f, "grad_value_param_tokens", NULL);
    ck_assert_int_eq(tf_pattention_set_keys(set, K, ck_), TF_OK);
    ck_assert_int_eq(tf_pattention_set_values(set, V, cv), TF_OK);

    float *Y = calloc(cy, sizeof(float)), *dX = calloc(cx, sizeof(float));
    float *dK = calloc(ck_, sizeof(float)), *dV = calloc(cv, sizeof(float));
    ck_assert_int_eq(tf_pattention_forward(set, N, X, Y), TF_OK);
    ck_assert_msg(tt_rel_err(Y, Yref, cy) <= 2e-5, "output err %g", tt_rel_err(Y, Yref, cy));
    ck_assert_int_eq(tf_pattention_backward(set, N, X, dY, dX), TF_OK);
    tf_pattention_get_key_grad(set, dK, ck_);
    tf_pattention_get_value_grad(set, dV, cv);
    ck_assert_msg(tt_rel_err(dX, dXref, cx) <= 2e-4, "dX err %g", tt_rel_err(dX, dXref, cx));
    ck_assert_msg(tt_rel_err(dK, dKref, ck_) <= 2e-4, "dK err %g", tt_rel_err(dK, dKref, ck_));
    ck_assert_msg(tt_rel_err(dV, dVref, cv) <= 2e-4, "dV err %g", tt_rel_err(dV, dVref, cv));

    /* A second backward accumulates: gradients double; zero_grad clears. */
    ck_assert_int_eq(tf_pattention_backward(set, N, X, dY, NULL), TF_OK);
    float *dV2 = calloc(cv, sizeof(float));
    tf_pattention_get_value_grad(set, dV2, cv);
    for (size_t i = 0; i < cv; i++)
        ck_assert_float_eq_tol(dV2[i], 2.0f * dV[i], 1e-5f * (1.0f + fabsf(dV[i])));
    tf_pattention_zero_grad(set);
    tf_pattention_get_value_grad(set, dV2, cv);
    for (size_t i = 0; i < cv; i++)
        ck_assert(dV2[i] == 0.0f);

    free(X); free(K); free(V); free(Yref); free(dY); free(dXref); free(dKref); free(dVref);
    free(Y); free(dX); free(dK); free(dV); free(dV2);
    tf_pattention_free(set);
    tfi_st_close(&f);
}
END_TEST

static tf_pattention *make_set(tf_norm_type norm, int64_t n, int64_t d_in, int64_t d_out,
                               uint64_t seed)
{
    tf_pattention_params p = tf_pattention_default_params();
    p.n = n;
    p.d_in = d_in;
    p.d_out = d_out;
    p.norm = norm;
    p.seed = seed;
    p.key_std = 1.0 / sqrt((double)d_in);
    p.value_std = 1.0 / sqrt((double)n);
    tf_pattention *set = NULL;
    ck_assert_int_eq(tf_pattention_create(&p, &set), TF_OK);
    return set;
}

static float *random_rows(int64_t rows, int64_t cols, uint64_t seed)
{
    float *x = malloc((size_t)(rows * cols) * sizeof(float));
    srand((unsigned)seed);
    for (int64_t i = 0; i < rows * cols; i++)
        x[i] = (float)((rand() / (double)RAND_MAX) * 2.0 - 1.0);
    return x;
}

/* Zero keys + pinned tau: the two GELU norms compute bit-identical outputs
 * after growth.  Under softmax the output must change (no init preserves it). */
START_TEST(test_grow_pinned_zero_is_identity)
{
    const int64_t N = 9, d_in = 16, d_out = 12, n = 20;
    tf_pattention *set = make_set(fixture_norms[_i], n, d_in, d_out, 7);
    float *X = random_rows(N, d_in, 3);
    float *Y0 = calloc((size_t)(N * d_out), sizeof(float));
    float *Y1 = calloc((size_t)(N * d_out), sizeof(float));
    ck_assert_int_eq(tf_pattention_forward(set, N, X, Y0), TF_OK);
    tf_grow_params g = tf_grow_default_params();
    g.key_init = TF_KEYS_ZERO;
    g.scale_policy = TF_SCALE_PINNED;
    double tau0 = tf_pattention_tau(set);
    ck_assert_int_eq(tf_pattention_grow(set, 37, &g), TF_OK);
    ck_assert_int_eq(tf_pattention_n(set), 37);
    ck_assert(tf_pattention_tau(set) == tau0);
    ck_assert_int_eq(tf_pattention_forward(set, N, X, Y1), TF_OK);
    if (fixture_norms[_i] == TF_NORM_SOFTMAX)
        ck_assert(memcmp(Y0, Y1, (size_t)(N * d_out) * sizeof(float)) != 0);
    else
        ck_assert_msg(memcmp(Y0, Y1, (size_t)(N * d_out) * sizeof(float)) == 0,
                      "pinned zero-key growth changed the output");
    free(X); free(Y0); free(Y1);
    tf_pattention_free(set);
}
END_TEST

/* follow_n: tau becomes default(n'); with zero keys the grown set equals the
 * old set evaluated with tau = sqrt(n') (the rescaling the official code does). */
START_TEST(test_grow_follow_n_rescales)
{
    const int64_t N = 6, d_in = 10, d_out = 8, n = 16, n2 = 36;
    tf_pattention *set = make_set(TF_NORM_L2_NORM_GELU, n, d_in, d_out, 11);
    tf_pattention *ref = make_set(TF_NORM_L2_NORM_GELU, n, d_in, d_out, 11);
    float *X = random_rows(N, d_in, 5);
    float *Y = calloc((size_t)(N * d_out), sizeof(float));
    float *Yref = calloc((size_t)(N * d_out), sizeof(float));
    tf_grow_params g = tf_grow_default_params();
    g.scale_policy = TF_SCALE_FOLLOW_N;
    ck_assert_int_eq(tf_pattention_grow(set, n2, &g), TF_OK);
    ck_assert(fabs(tf_pattention_tau(set) - 6.0) < 1e-12);
    ck_assert_int_eq(tf_pattention_set_tau(ref, 6.0), TF_OK);
    ck_assert_int_eq(tf_pattention_forward(set, N, X, Y), TF_OK);
    ck_assert_int_eq(tf_pattention_forward(ref, N, X, Yref), TF_OK);
    ck_assert_msg(tt_rel_err(Y, Yref, (size_t)(N * d_out)) < 1e-6, "follow_n err %g",
                  tt_rel_err(Y, Yref, (size_t)(N * d_out)));
    /* and it differs from the un-rescaled output */
    tf_pattention_set_tau(ref, 4.0);
    tf_pattention_forward(ref, N, X, Yref);
    ck_assert(tt_rel_err(Y, Yref, (size_t)(N * d_out)) > 1e-3);
    /* random keys: old rows kept, new rows non-zero */
    float *K = calloc((size_t)(60 * d_in), sizeof(float));
    g.key_init = TF_KEYS_RANDOM;
    ck_assert_int_eq(tf_pattention_grow(set, 60, &g), TF_OK);
    tf_pattention_get_keys(set, K, (size_t)(60 * d_in));
    float *Kold = calloc((size_t)(n * d_in), sizeof(float));
    tf_pattention_get_keys(ref, Kold, (size_t)(n * d_in));
    ck_assert(memcmp(K, Kold, (size_t)(n * d_in) * sizeof(float)) == 0);
    double s = 0;
    for (int64_t i = n2 * d_in; i < 60 * d_in; i++)
        s += fabs(K[i]);
    ck_assert(s > 0.0);
    free(X); free(Y); free(Yref); free(K); free(Kold);
    tf_pattention_free(set);
    tf_pattention_free(ref);
}
END_TEST

/* L(X, K, V) = sum(Y * W): analytic gradients against central differences. */
static double objective(tf_pattention *set, int64_t N, const float *X, const float *W,
                        int64_t d_out)
{
    float *Y = calloc((size_t)(N * d_out), sizeof(float));
    tf_pattention_forward(set, N, X, Y);
    double s = 0;
    for (int64_t i = 0; i < N * d_out; i++)
        s += (double)Y[i] * W[i];
    free(Y);
    return s;
}

START_TEST(test_finite_difference)
{
    const int64_t N = 5, d_in = 8, d_out = 6, n = 11;
    tf_pattention *set = make_set(fixture_norms[_i], n, d_in, d_out, 21);
    float *X = random_rows(N, d_in, 8);
    float *W = random_rows(N, d_out, 9);
    float *dX = calloc((size_t)(N * d_in), sizeof(float));
    float *dK = calloc((size_t)(n * d_in), sizeof(float));
    float *K = calloc((size_t)(n * d_in), sizeof(float));
    float *Y = calloc((size_t)(N * d_out), sizeof(float));
    tf_pattention_forward(set, N, X, Y);
    ck_assert_int_eq(tf_pattention_backward(set, N, X, W, dX), TF_OK);
    tf_pattention_get_key_grad(set, dK, (size_t)(n * d_in));
    tf_pattention_get_keys(set, K, (size_t)(n * d_in));
    const float h = 1e-2f;
    for (int64_t i = 0; i < N * d_in; i += 3) {
        float x0 = X[i];
        X[i] = x0 + h;
        double up = objective(set, N, X, W, d_out);
        X[i] = x0 - h;
        double dn = objective(set, N, X, W, d_out);
        X[i] = x0;
        double fd = (up - dn) / (2 * h);
        ck_assert_msg(fabs(fd - dX[i]) < 2e-3 + 2e-2 * fabs(fd), "dX[%lld]: fd %g analytic %g",
                      (long long)i, fd, dX[i]);
    }
    for (int64_t i = 0; i < n * d_in; i += 5) {
        float k0 = K[i];
        K[i] = k0 + h;
        tf_pattention_set_keys(set, K, (size_t)(n * d_in));
        double up = objective(set, N, X, W, d_out);
        K[i] = k0 - h;
        tf_pattention_set_keys(set, K, (size_t)(n * d_in));
        double dn = objective(set, N, X, W, d_out);
        K[i] = k0;
        tf_pattention_set_keys(set, K, (size_t)(n * d_in));
        double fd = (up - dn) / (2 * h);
        ck_assert_msg(fabs(fd - dK[i]) < 2e-3 + 2e-2 * fabs(fd), "dK[%lld]: fd %g analytic %g",
                      (long long)i, fd, dK[i]);
    }
    free(X); free(W); free(dX); free(dK); free(K); free(Y);
    tf_pattention_free(set);
}
END_TEST

/* The fast Theta kernels against the plain double ones, including a zero
 * row (guarded: no NaN), huge scores (softmax must not overflow), and long
 * rows that exercise the vector loops' tails. */
START_TEST(test_fast_theta_matches_plain)
{
    const int64_t N = 6, n = 131;
    tf_norm_type norm = fixture_norms[_i % 3];
    const tfi_arch arch = (tfi_arch)(_i / 3); /* every instruction set this CPU runs */
    if (!tfi_arch_supported(arch))
        return;
    float tau = (float)(norm == TF_NORM_SOFTMAX ? n : sqrt((double)n));
    float *A = random_rows(N, n, 77);
    for (int64_t j = 0; j < n; j++) {
        A[1 * n + j] = 0.0f;            /* zero row */
        A[2 * n + j] *= 200.0f;          /* large scores */
        A[3 * n + j] = -6.0f + 0.01f * (float)j; /* gelu's far negative tail */
        /* around 0 (|z| from 0 to ~1e-3) on both sides of the cut-off where
         * the fast backward stops dividing by z */
        A[4 * n + j] = j == 0 ? 1.0f : 1e-6f * (float)(j - n / 2);
    }
    size_t sz = (size_t)(N * n);
    float *A1 = malloc(sz * 4), *A2 = malloc(sz * 4), *S1 = malloc(sz * 4), *S2 = malloc(sz * 4);
    float R1[6], R2[6];
    memcpy(A1, A, sz * 4);
    memcpy(A2, A, sz * 4);
    tfi_theta_forward_plain(norm, tau, N, n, A1, S1, R1);
    tfi_theta_forward_arch(arch, norm, tau, N, n, A2, S2, R2);
    for (size_t i = 0; i < sz; i++)
        ck_assert_msg(isfinite(S2[i]), "non-finite output at %zu", i);
    for (int64_t i = 0; i < N; i++)
        ck_assert_msg(tt_rel_err(S2 + i * n, S1 + i * n, (size_t)n) < 2e-6, "row %lld err %g",
                      (long long)i, tt_rel_err(S2 + i * n, S1 + i * n, (size_t)n));
    float *G = random_rows(N, n, 78), *G1 = malloc(sz * 4), *G2 = malloc(sz * 4);
    memcpy(G1, G, sz * 4);
    memcpy(G2, G, sz * 4);
    tfi_theta_backward_plain(norm, tau, N, n, A1, S1, R1, G1);
    tfi_theta_backward_arch(arch, norm, tau, N, n, A2, S2, R2, G2);
    for (int64_t i = 0; i < N; i++)
        ck_assert_msg(tt_rel_err(G2 + i * n, G1 + i * n, (size_t)n) < 1e-5, "grad row %lld err %g",
                      (long long)i, tt_rel_err(G2 + i * n, G1 + i * n, (size_t)n));
    for (int64_t j = 0; j < n; j++)
        ck_assert(G2[1 * n + j] == 0.0f || norm == TF_NORM_SOFTMAX);
    free(A); free(A1); free(A2); free(S1); free(S2); free(G); free(G1); free(G2);
}
END_TEST

START_TEST(test_gelu_fast_accuracy)
{
    const tfi_arch arch = (tfi_arch)_i; /* every instruction set this CPU runs */
    if (!tfi_arch_supported(arch))
        return;
    enum { M = 4001 };
    float *x = malloc(M * 4), *y = malloc(M * 4), *dy = malloc(M * 4);
    for (int i = 0; i < M; i++)
        x[i] = -10.0f + 20.0f * (float)i / (M - 1);
    tfi_gelu_fast(arch, x, y, M);
    tfi_gelu_grad_fast(arch, x, dy, M);
    for (int i = 0; i < M; i++) {
        double xd = x[i];
        double cdf = 0.5 * erfc(-xd / sqrt(2.0));
        double g = xd * cdf, dg = cdf + xd * exp(-0.5 * xd * xd) / sqrt(2 * M_PI);
        ck_assert_msg(fabs(y[i] - g) <= 4e-7 * (1.0 + fabs(g)), "gelu(%g) %g vs %g", xd, y[i], g);
        ck_assert_msg(fabs(dy[i] - dg) <= 4e-7 * (1.0 + fabs(dg)), "gelu'(%g) %g vs %g", xd, dy[i], dg);
    }
    free(x); free(y); free(dy);
}
END_TEST

START_TEST(test_misuse)
{
    tf_pattention *set = NULL;
    tf_pattention_params p = tf_pattention_default_params();
    ck_assert_int_eq(tf_pattention_create(&p, NULL), TF_ERR_ARGUMENT);
    p.n = 0;
    ck_assert_int_eq(tf_pattention_create(&p, &set), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(set);
    ck_assert(strstr(tf_last_error(), "n=0") != NULL);
    p = tf_pattention_default_params();
    p.norm = (tf_norm_type)42;
    ck_assert_int_eq(tf_pattention_create(&p, &set), TF_ERR_ARGUMENT);
    p = tf_pattention_default_params();
    p.struct_size = 3;
    ck_assert_int_eq(tf_pattention_create(&p, &set), TF_ERR_ARGUMENT);
    ck_assert(strstr(tf_last_error(), "struct_size") != NULL);

    float buf[64 * 64];
    ck_assert_int_eq(tf_pattention_forward(NULL, 1, buf, buf), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_backward(NULL, 1, buf, buf, buf), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_get_keys(NULL, buf, 1), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_grow(NULL, 100, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_zero_grad(NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_n(NULL), 0);
    tf_pattention_free(NULL);

    set = make_set(TF_NORM_L2_NORM_GELU, 8, 4, 4, 1);
    float keys[32];
    tf_pattention_get_keys(set, keys, 32);
    ck_assert_int_eq(tf_pattention_forward(set, 0, buf, buf), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_forward(set, 2, NULL, buf), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_backward(set, 2, buf, buf, buf), TF_ERR_STATE);
    ck_assert(strstr(tf_pattention_errmsg(set), "forward") != NULL);
    ck_assert_int_eq(tf_pattention_set_keys(set, buf, 31), TF_ERR_SHAPE);
    ck_assert(strstr(tf_pattention_errmsg(set), "31") != NULL);
    ck_assert_int_eq(tf_pattention_grow(set, 8, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_grow(set, 4, NULL), TF_ERR_ARGUMENT);
    ck_assert(strstr(tf_pattention_errmsg(set), "exceed") != NULL);
    ck_assert_int_eq(tf_pattention_set_tau(set, -1.0), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_set_tau(set, NAN), TF_ERR_ARGUMENT);
    /* failed calls changed nothing */
    float keys2[32];
    ck_assert_int_eq(tf_pattention_n(set), 8);
    tf_pattention_get_keys(set, keys2, 32);
    ck_assert(memcmp(keys, keys2, sizeof keys) == 0);
    /* backward after forward of another N */
    float X[8] = {1, 2, 3, 4, 5, 6, 7, 8}, Y[8];
    ck_assert_int_eq(tf_pattention_forward(set, 2, X, Y), TF_OK);
    ck_assert_int_eq(tf_pattention_backward(set, 1, X, Y, NULL), TF_ERR_STATE);
    ck_assert_int_eq(tf_pattention_backward(set, 2, X, Y, NULL), TF_OK);
    tf_pattention_free(set);
}
END_TEST

/* A zero input row gives a zero output row, never NaN (the documented guard). */
/* A row's output and gradients do not depend on the batch it comes in,
 * though batches of >= 64 rows multiply through transposed copies of the
 * keys and values (pattention.c) and smaller ones let BLIS read them
 * transposed: 8 rows alone against the same 8 at the head of 80. */
START_TEST(test_batch_paths_agree)
{
    const int64_t n = 37, d_in = 19, d_out = 23, big = 80, small = 8;
    tf_pattention *a = make_set(fixture_norms[_i], n, d_in, d_out, 5);
    tf_pattention *b = make_set(fixture_norms[_i], n, d_in, d_out, 5);
    float *X = random_rows(big, d_in, 11), *dY = random_rows(big, d_out, 12);
    float *Ya = malloc(big * d_out * 4), *Yb = malloc(small * d_out * 4);
    float *dXa = malloc(big * d_in * 4), *dXb = malloc(small * d_in * 4);
    ck_assert_int_eq(tf_pattention_forward(a, big, X, Ya), TF_OK);
    ck_assert_int_eq(tf_pattention_forward(b, small, X, Yb), TF_OK);
    ck_assert_msg(tt_rel_err(Ya, Yb, (size_t)(small * d_out)) < 1e-6, "Y err %g",
                  tt_rel_err(Ya, Yb, (size_t)(small * d_out)));
    /* the gradients of the first 8 rows only: dY zero on the other 72 */
    memset(dY + small * d_out, 0, (size_t)((big - small) * d_out) * 4);
    ck_assert_int_eq(tf_pattention_backward(a, big, X, dY, dXa), TF_OK);
    ck_assert_int_eq(tf_pattention_backward(b, small, X, dY, dXb), TF_OK);
    ck_assert_msg(tt_rel_err(dXa, dXb, (size_t)(small * d_in)) < 1e-5, "dX err %g",
                  tt_rel_err(dXa, dXb, (size_t)(small * d_in)));
    float *ga = malloc(n * d_in * 4), *gb = malloc(n * d_in * 4);
    ck_assert_int_eq(tf_pattention_get_key_grad(a, ga, (size_t)(n * d_in)), TF_OK);
    ck_assert_int_eq(tf_pattention_get_key_grad(b, gb, (size_t)(n * d_in)), TF_OK);
    ck_assert_msg(tt_rel_err(ga, gb, (size_t)(n * d_in)) < 1e-5, "dK err %g",
                  tt_rel_err(ga, gb, (size_t)(n * d_in)));
    free(ga), free(gb), free(X), free(dY), free(Ya), free(Yb), free(dXa), free(dXb);
    tf_pattention_free(a);
    tf_pattention_free(b);
}
END_TEST

START_TEST(test_zero_row_guard)
{
    tf_pattention *set = make_set(fixture_norms[_i], 8, 4, 3, 2);
    float X[8] = {0, 0, 0, 0, 1, -1, 0.5f, 2}, Y[6], dY[6] = {1, 1, 1, 1, 1, 1}, dX[8];
    ck_assert_int_eq(tf_pattention_forward(set, 2, X, Y), TF_OK);
    ck_assert_int_eq(tf_pattention_backward(set, 2, X, dY, dX), TF_OK);
    for (int i = 0; i < 6; i++)
        ck_assert(isfinite(Y[i]));
    for (int i = 0; i < 8; i++)
        ck_assert(isfinite(dX[i]));
    if (fixture_norms[_i] != TF_NORM_SOFTMAX)
        for (int i = 0; i < 3; i++)
            ck_assert(Y[i] == 0.0f);
    tf_pattention_free(set);
}
END_TEST

Suite *pattention_suite(void)
{
    Suite *s = suite_create("pattention");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fixture_forward_backward, 0, 3);
    tcase_add_loop_test(tc, test_grow_pinned_zero_is_identity, 0, 3);
    tcase_add_test(tc, test_grow_follow_n_rescales);
    tcase_add_loop_test(tc, test_finite_difference, 0, 3);
    tcase_add_loop_test(tc, test_fast_theta_matches_plain, 0, 3 * TFI_ARCH_COUNT);
    tcase_add_loop_test(tc, test_gelu_fast_accuracy, 0, TFI_ARCH_COUNT);
    tcase_add_test(tc, test_misuse);
    tcase_add_loop_test(tc, test_zero_row_guard, 0, 3);
    tcase_add_loop_test(tc, test_batch_paths_agree, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}
