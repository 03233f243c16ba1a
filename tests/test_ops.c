/*
 * test_ops.c -- the kernels of lib/kernels/ops.h against plain double-
 * precision references written here (naive loops, the math of SPEC.md).
 *
 * Forwards: float kernel vs double reference on the same (float-exact)
 * inputs, relative 1e-5.  Backwards: float kernel vs central finite
 * differences of the double reference for the scalar sum(out * wobj)
 * (relative 1e-4: the differences themselves are good to ~1e-9), plus,
 * for long attention, a double analytic backward.  Sizes are odd on
 * purpose, and some cross the kernels' internal block sizes.
 */
#include <check.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "kernels/ops.h"
#include "kernels/theta.h"
#include "kernels/vecmath.h"

#define FWD_RTOL 1e-5
#define GRAD_RTOL 1e-4
#define FD_STEP 1e-6

/* ---- helpers ----------------------------------------------------------- */

static float *fvec(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

static double *dvec(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void fill_normal(tfi_rng *r, float *x, size_t n, double mean, double std)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(mean + std * tfi_rng_normal(r));
}

static void fill_nan(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = NAN;
}

static double *to_double(const float *x, size_t n)
{
    double *d = dvec(n);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static double max_abs(const double *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* |got - want| <= rtol * (|want| + max|want|): relative, with an absolute
 * floor at the array's scale for entries near zero.  NaN fails. */
static void check_close(const char *what, const float *got, const double *want,
                        size_t n, double rtol)
{
    double atol = rtol * max_abs(want, n);
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= rtol * fabs(want[i]) + atol))
            ck_abort_msg("%s[%zu]: got %.9g, want %.9g (rtol %g)", what, i,
                         (double)got[i], want[i], rtol);
    }
}

/* Central differences of f with respect to each entry of p (which f reads
 * through ctx). */
typedef double (*objective_fn)(void *ctx);

static void fd_grad(double *grad, double *p, size_t n, objective_fn f, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        double save = p[i];
        p[i] = save + FD_STEP;
        double fp = f(ctx);
        p[i] = save - FD_STEP;
        double fm = f(ctx);
        p[i] = save;
        grad[i] = (fp - fm) / (2.0 * FD_STEP);
    }
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void setup(void)
{
    ck_assert_int_eq(tfi_runtime_ensure(), TF_OK);
}

/* ---- LayerNorm ----------------------------------------------------------- */

static void layernorm_ref(double *y, double *mean, double *rstd, const double *x,
                          const double *w, const double *b, int64_t N, int64_t d,
                          double eps)
{
    for (int64_t i = 0; i < N; i++) {
        const double *xi = x + i * d;
        double mu = 0.0, var = 0.0;
        for (int64_t j = 0; j < d; j++)
            mu += xi[j];
        mu /= (double)d;
        for (int64_t j = 0; j < d; j++)
            var += (xi[j] - mu) * (xi[j] - mu);
        var /= (double)d;
        double rs = 1.0 / sqrt(var + eps);
        for (int64_t j = 0; j < d; j++) {
            double xhat = (xi[j] - mu) * rs;
            y[i * d + j] = w ? xhat * w[j] + b[j] : xhat;
        }
        if (mean)
            mean[i] = mu;
        if (rstd)
            rstd[i] = rs;
    }
}

typedef struct ln_ctx {
    int64_t N, d;
    double eps;
    double *x, *w, *b; /* w, b NULL: no affine */
    const double *wobj;
    double *y;
} ln_ctx;

static double ln_objective(void *p)
{
    ln_ctx *c = p;
    layernorm_ref(c->y, NULL, NULL, c->x, c->w, c->b, c->N, c->d, c->eps);
    return dot(c->y, c->wobj, (size_t)(c->N * c->d));
}

/* d = 70 spans two of the backward's 64-column blocks. */
static void run_layernorm(int affine, double xmean, int check_backward)
{
    const int64_t N = 13, d = 70;
    const float eps = 1e-5f;
    const size_t nx = (size_t)(N * d);
    tfi_rng r;
    tfi_rng_seed(&r, 11 + (uint64_t)affine);

    float *x = fvec(nx), *y = fvec(nx), *mean = fvec(N), *rstd = fvec(N);
    float *w = fvec(d), *b = fvec(d);
    fill_normal(&r, x, nx, xmean, 1.5);
    fill_normal(&r, w, d, 1.0, 0.3);
    fill_normal(&r, b, d, 0.0, 0.3);
    double *xd = to_double(x, nx), *wd = to_double(w, d), *bd = to_double(b, d);

    double *yref = dvec(nx), *mref = dvec(N), *rref = dvec(N);
    layernorm_ref(yref, mref, rref, xd, affine ? wd : NULL, affine ? bd : NULL, N, d, eps);
    fill_nan(y, nx);
    tfi_layernorm_forward(y, mean, rstd, x, affine ? w : NULL, affine ? b : NULL, N, d, eps);
    check_close("layernorm y", y, yref, nx, FWD_RTOL);
    check_close("layernorm mean", mean, mref, N, FWD_RTOL);
    check_close("layernorm rstd", rstd, rref, N, FWD_RTOL);

    if (check_backward) {
        /* The backward accumulates: start from nonzero gradients. */
        float *dy = fvec(nx), *dx = fvec(nx), *dw = fvec(d), *db = fvec(d);
        fill_normal(&r, dy, nx, 0.0, 1.0);
        fill_normal(&r, dx, nx, 0.0, 1.0);
        fill_normal(&r, dw, d, 0.0, 1.0);
        fill_normal(&r, db, d, 0.0, 1.0);
        double *dx_want = to_double(dx, nx), *dw_want = to_double(dw, d);
        double *db_want = to_double(db, d), *wobj = to_double(dy, nx);

        ln_ctx c = {N, d, eps, xd, affine ? wd : NULL, affine ? bd : NULL, wobj, dvec(nx)};
        double *g = dvec(nx);
        fd_grad(g, xd, nx, ln_objective, &c);
        for (size_t i = 0; i < nx; i++)
            dx_want[i] += g[i];
        if (affine) {
            fd_grad(g, wd, d, ln_objective, &c);
            for (int64_t j = 0; j < d; j++)
                dw_want[j] += g[j];
            fd_grad(g, bd, d, ln_objective, &c);
            for (int64_t j = 0; j < d; j++)
                db_want[j] += g[j];
        }

        tfi_layernorm_backward(dx, affine ? dw : NULL, affine ? db : NULL, dy, x,
                               mean, rstd, affine ? w : NULL, N, d);
        check_close("layernorm dx", dx, dx_want, nx, GRAD_RTOL);
        check_close("layernorm dw", dw, dw_want, d, GRAD_RTOL);
        check_close("layernorm db", db, db_want, d, GRAD_RTOL);

        free(dy), free(dx), free(dw), free(db), free(dx_want), free(dw_want);
        free(db_want), free(wobj), free(c.y), free(g);
    }
    free(x), free(y), free(mean), free(rstd), free(w), free(b), free(xd), free(wd);
    free(bd), free(yref), free(mref), free(rref);
}

START_TEST(test_layernorm_plain)
{
    run_layernorm(0, 0.3, 1);
}
END_TEST

START_TEST(test_layernorm_affine)
{
    run_layernorm(1, -0.7, 1);
}
END_TEST

/* |mean| / std ~ 7000: the one-pass E[x^2] - E[x]^2 variance would have
 * lost every digit here. */
START_TEST(test_layernorm_large_mean)
{
    run_layernorm(1, 1.0e4, 0);
    run_layernorm(0, -1.0e4, 0);
    /* The backward recomputes xhat from the float mean: fine at |mean|/std
     * ~ 70 (see layernorm.c). */
    run_layernorm(1, 100.0, 1);
}
END_TEST

/* ---- rotary -------------------------------------------------------------- */

#define ROPE_BASE 10000.0

static void rotary_ref(double *x, int64_t B, int64_t T, int64_t H, int64_t hd,
                       int64_t ld, int r, int64_t pos0, int inverse)
{
    int half = r / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++) {
                double *p = x + (b * T + t) * ld + h * hd;
                for (int j = 0; j < half; j++) {
                    double angle = (double)(pos0 + t) * pow(ROPE_BASE, -2.0 * j / r);
                    double c = cos(angle), s = inverse ? -sin(angle) : sin(angle);
                    double x1 = p[j], x2 = p[j + half];
                    p[j] = x1 * c - x2 * s;
                    p[j + half] = x2 * c + x1 * s;
                }
            }
}

START_TEST(test_rotary_tables)
{
    const int64_t T = 300;
    const int r = 10, half = r / 2;
    float *c = fvec(T * half), *s = fvec(T * half);
    double *cw = dvec(T * half), *sw = dvec(T * half);
    tfi_rotary_tables(c, s, T, r, ROPE_BASE);
    for (int64_t t = 0; t < T; t++)
        for (int j = 0; j < half; j++) {
            double angle = (double)t * pow(ROPE_BASE, -2.0 * j / r);
            cw[t * half + j] = cos(angle);
            sw[t * half + j] = sin(angle);
        }
    /* Rounded once from double: within half an ulp of 1. */
    check_close("rotary cos", c, cw, T * half, 1e-7);
    check_close("rotary sin", s, sw, T * half, 1e-7);
    free(c), free(s), free(cw), free(sw);
}
END_TEST

typedef struct rope_ctx {
    int64_t B, T, H, hd, ld;
    int r;
    int64_t pos0;
    double *x;
    const double *wobj;
    double *y;
} rope_ctx;

static double rope_objective(void *p)
{
    rope_ctx *c = p;
    size_t n = (size_t)(c->B * c->T * c->ld);
    memcpy(c->y, c->x, n * sizeof *c->y);
    rotary_ref(c->y, c->B, c->T, c->H, c->hd, c->ld, c->r, c->pos0, 0);
    return dot(c->y, c->wobj, n);
}

/* r < hd and r == hd; rows packed (ld = D) and strided (ld = 3D, as inside
 * a fused qkv buffer); positions from 0 and from an offset. */
START_TEST(test_rotary)
{
    const int64_t B = 2, T = 7, H = 3, hd = 10, D = H * hd;
    const int rs[2] = {4, 10};
    const int64_t lds[2] = {D, 3 * D}, pos0s[2] = {0, 5};
    tfi_rng rng;
    tfi_rng_seed(&rng, 21);

    for (int ir = 0; ir < 2; ir++)
        for (int il = 0; il < 2; il++) {
            int r = rs[ir];
            int64_t ld = lds[il], pos0 = pos0s[il];
            size_t n = (size_t)(B * T * ld);
            float *c = fvec((pos0 + T) * (r / 2)), *s = fvec((pos0 + T) * (r / 2));
            tfi_rotary_tables(c, s, pos0 + T, r, ROPE_BASE);

            float *x0 = fvec(n), *x = fvec(n);
            fill_normal(&rng, x0, n, 0.0, 1.0);
            memcpy(x, x0, n * sizeof *x);
            double *want = to_double(x0, n);
            rotary_ref(want, B, T, H, hd, ld, r, pos0, 0);

            tfi_rotary_apply(x, B, T, H, hd, ld, r, c, s, pos0, 0);
            check_close("rotary forward", x, want, n, FWD_RTOL);
            /* Dims >= r of each head, and the row padding beyond D, are
             * left bit-for-bit alone. */
            for (int64_t row = 0; row < B * T; row++)
                for (int64_t col = 0; col < ld; col++)
                    if (col >= D || col % hd >= r)
                        ck_assert(memcmp(&x[row * ld + col], &x0[row * ld + col],
                                         sizeof(float)) == 0);

            /* The inverse undoes the forward. */
            double *orig = to_double(x0, n);
            tfi_rotary_apply(x, B, T, H, hd, ld, r, c, s, pos0, 1);
            check_close("rotary inverse", x, orig, n, FWD_RTOL);

            /* Backward = inverse rotation of the upstream gradient, which
             * is the finite-difference gradient of sum(rot(x) * wobj). */
            float *g = fvec(n);
            fill_normal(&rng, g, n, 0.0, 1.0);
            double *wobj = to_double(g, n), *fd = dvec(n);
            rope_ctx ctx = {B, T, H, hd, ld, r, pos0, orig, wobj, dvec(n)};
            fd_grad(fd, orig, n, rope_objective, &ctx);
            tfi_rotary_apply(g, B, T, H, hd, ld, r, c, s, pos0, 1);
            check_close("rotary backward", g, fd, n, GRAD_RTOL);

            free(c), free(s), free(x0), free(x), free(want), free(orig), free(g);
            free(wobj), free(fd), free(ctx.y);
        }
}
END_TEST

/* ---- attention ----------------------------------------------------------- */

/* With causal, row i sees keys [0, i]; otherwise all T. */
static void attention_ref(double *out, double *P, const double *q, const double *k,
                          const double *v, int64_t B, int64_t T, int64_t H, int64_t hd,
                          int causal)
{
    const int64_t D = H * hd;
    const double scale = 1.0 / sqrt((double)hd);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                const int64_t seen = causal ? i + 1 : T;
                double *Pi = P + ((b * H + h) * T + i) * T;
                const double *qi = q + (b * T + i) * D + h * hd;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < seen; j++) {
                    const double *kj = k + (b * T + j) * D + h * hd;
                    double sc = 0.0;
                    for (int64_t c = 0; c < hd; c++)
                        sc += qi[c] * kj[c];
                    Pi[j] = sc * scale;
                    mx = Pi[j] > mx ? Pi[j] : mx;
                }
                for (int64_t j = 0; j < seen; j++)
                    sum += Pi[j] = exp(Pi[j] - mx);
                for (int64_t j = 0; j < T; j++)
                    Pi[j] = j < seen ? Pi[j] / sum : 0.0;
                double *oi = out + (b * T + i) * D + h * hd;
                for (int64_t c = 0; c < hd; c++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < seen; j++)
                        acc += Pi[j] * v[(b * T + j) * D + h * hd + c];
                    oi[c] = acc;
                }
            }
}

/* The analytic backward in double, element by element. */
static void attention_backward_ref(double *dq, double *dk, double *dv,
                                   const double *dout, const double *q,
                                   const double *k, const double *v,
                                   const double *P, int64_t B, int64_t T,
                                   int64_t H, int64_t hd, int causal)
{
    const int64_t D = H * hd;
    const double scale = 1.0 / sqrt((double)hd);
    size_t n = (size_t)(B * T * D);
    memset(dq, 0, n * sizeof *dq);
    memset(dk, 0, n * sizeof *dk);
    memset(dv, 0, n * sizeof *dv);
    double *dP = dvec(T);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < T; i++) {
                const int64_t seen = causal ? i + 1 : T;
                const double *Pi = P + ((b * H + h) * T + i) * T;
                int64_t ri = (b * T + i) * D + h * hd;
                double pdp = 0.0;
                for (int64_t j = 0; j < seen; j++) {
                    int64_t rj = (b * T + j) * D + h * hd;
                    dP[j] = 0.0;
                    for (int64_t c = 0; c < hd; c++)
                        dP[j] += dout[ri + c] * v[rj + c];
                    pdp += dP[j] * Pi[j];
                }
                for (int64_t j = 0; j < seen; j++) {
                    int64_t rj = (b * T + j) * D + h * hd;
                    double dS = Pi[j] * (dP[j] - pdp);
                    for (int64_t c = 0; c < hd; c++) {
                        dq[ri + c] += dS * k[rj + c] * scale;
                        dk[rj + c] += dS * q[ri + c] * scale;
                        dv[rj + c] += Pi[j] * dout[ri + c];
                    }
                }
            }
    free(dP);
}

typedef struct attn_ctx {
    int64_t B, T, H, hd;
    int causal;
    double *q, *k, *v;
    const double *wobj;
    double *out, *P;
} attn_ctx;

static double attn_objective(void *p)
{
    attn_ctx *c = p;
    attention_ref(c->out, c->P, c->q, c->k, c->v, c->B, c->T, c->H, c->hd, c->causal);
    return dot(c->out, c->wobj, (size_t)(c->B * c->T * c->H * c->hd));
}

/* Random q, k, v (std 1: softmax rows neither flat nor one-hot). */
typedef struct attn_case {
    int64_t B, T, H, hd;
    int causal;
    size_t n, np;
    float *q, *k, *v, *out, *probs, *dout;
} attn_case;

static attn_case attn_case_new(int64_t B, int64_t T, int64_t H, int64_t hd, int causal,
                               uint64_t seed)
{
    attn_case a = {B, T, H, hd, causal, (size_t)(B * T * H * hd),
                   (size_t)(B * H * T * tfi_attn_probs_width(T)), NULL, NULL, NULL, NULL, NULL,
                   NULL};
    tfi_rng r;
    tfi_rng_seed(&r, seed);
    a.q = fvec(a.n), a.k = fvec(a.n), a.v = fvec(a.n), a.dout = fvec(a.n);
    a.out = fvec(a.n), a.probs = fvec(a.np);
    fill_normal(&r, a.q, a.n, 0.0, 1.0);
    fill_normal(&r, a.k, a.n, 0.0, 1.0);
    fill_normal(&r, a.v, a.n, 0.0, 1.0);
    fill_normal(&r, a.dout, a.n, 0.0, 1.0);
    /* Poison the outputs: every entry must be written. */
    fill_nan(a.out, a.n);
    fill_nan(a.probs, a.np);
    return a;
}

static void attn_case_free(attn_case *a)
{
    free(a->q), free(a->k), free(a->v), free(a->out), free(a->probs), free(a->dout);
}

/* A whole-sequence call: queries, keys and values are the same T rows. */
static tfi_attn_shape attn_shape(const attn_case *a)
{
    tfi_attn_shape s = {a->B, a->T, a->H, a->hd, 0, a->T, a->causal};
    return s;
}

static void attn_forward(attn_case *a)
{
    tfi_attn_shape s = attn_shape(a);
    tfi_attention_forward(a->out, a->probs, 0, a->q, a->k, a->v, &s);
}

static void attn_backward(const attn_case *a, float *dq, float *dk, float *dv, float *dP)
{
    tfi_attn_shape s = attn_shape(a);
    tfi_attention_backward(dq, dk, dv, dP, a->dout, a->q, a->k, a->v, a->probs, &s);
}

/* The kernel's probs (rows tfi_attn_probs_width(T) apart, the padding
 * zero) against the reference's [B, H, T, T]; rows sum to 1 and masked
 * places are exact zeros. */
static void check_probs(const attn_case *a, const double *want)
{
    const int64_t W = tfi_attn_probs_width(a->T), rows = a->B * a->H * a->T;
    float *packed = fvec((size_t)(rows * a->T));
    for (int64_t r = 0; r < rows; r++) {
        const float *Pi = a->probs + r * W;
        const int64_t i = r % a->T, seen = a->causal ? i + 1 : a->T;
        double sum = 0.0;
        for (int64_t j = 0; j < seen; j++)
            sum += Pi[j];
        ck_assert_msg(fabs(sum - 1.0) < 1e-6, "probs row %lld sums to %.9g", (long long)i, sum);
        for (int64_t j = seen; j < W; j++)
            ck_assert_msg(Pi[j] == 0.0f, "probs[%lld][%lld] above the diagonal is %g",
                          (long long)i, (long long)j, (double)Pi[j]);
        memcpy(packed + r * a->T, Pi, (size_t)a->T * sizeof(float));
    }
    check_close("attention probs", packed, want, (size_t)(rows * a->T), FWD_RTOL);
    free(packed);
}

/* _i: 0 causal, 1 bidirectional. */
START_TEST(test_attention_forward)
{
    attn_case a = attn_case_new(2, 7, 3, 10, _i == 0, 31);
    double *qd = to_double(a.q, a.n), *kd = to_double(a.k, a.n), *vd = to_double(a.v, a.n);
    double *out = dvec(a.n), *P = dvec((size_t)(a.B * a.H * a.T * a.T));
    attention_ref(out, P, qd, kd, vd, a.B, a.T, a.H, a.hd, a.causal);
    attn_forward(&a);
    check_close("attention out", a.out, out, a.n, FWD_RTOL);
    check_probs(&a, P);
    free(qd), free(kd), free(vd), free(out), free(P);
    attn_case_free(&a);
}
END_TEST

/* _i: 0 causal, 1 bidirectional. */
START_TEST(test_attention_backward_fd)
{
    attn_case a = attn_case_new(2, 7, 3, 10, _i == 0, 32);
    attn_forward(&a);
    float *dq = fvec(a.n), *dk = fvec(a.n), *dv = fvec(a.n), *dP = fvec(a.np);
    /* dq/dk/dv are overwritten, dprobs is scratch: poison all of them. */
    fill_nan(dq, a.n), fill_nan(dk, a.n), fill_nan(dv, a.n), fill_nan(dP, a.np);
    attn_backward(&a, dq, dk, dv, dP);

    attn_ctx c = {a.B, a.T, a.H, a.hd, a.causal, to_double(a.q, a.n), to_double(a.k, a.n),
                  to_double(a.v, a.n), to_double(a.dout, a.n), dvec(a.n),
                  dvec((size_t)(a.B * a.H * a.T * a.T))};
    double *g = dvec(a.n);
    fd_grad(g, c.q, a.n, attn_objective, &c);
    check_close("attention dq", dq, g, a.n, GRAD_RTOL);
    fd_grad(g, c.k, a.n, attn_objective, &c);
    check_close("attention dk", dk, g, a.n, GRAD_RTOL);
    fd_grad(g, c.v, a.n, attn_objective, &c);
    check_close("attention dv", dv, g, a.n, GRAD_RTOL);

    free(dq), free(dk), free(dv), free(dP), free(g);
    free(c.q), free(c.k), free(c.v), free((double *)c.wobj), free(c.out), free(c.P);
    attn_case_free(&a);
}
END_TEST

/* T = 150 crosses the kernel's 64-row blocks (64 + 64 + 22): forward and
 * backward against the double references.  Loop 1: heads of T * hd above
 * the kernel's bound for transposed copies (16384 floats), so BLIS reads K
 * and V transposed instead.  Loop 2: bidirectional, every block seeing all
 * columns. */
START_TEST(test_attention_long)
{
    attn_case a = _i == 0   ? attn_case_new(1, 150, 2, 8, 1, 33)
                : _i == 1 ? attn_case_new(1, 150, 1, 112, 1, 34)
                          : attn_case_new(1, 150, 2, 8, 0, 35);
    double *qd = to_double(a.q, a.n), *kd = to_double(a.k, a.n), *vd = to_double(a.v, a.n);
    double *dod = to_double(a.dout, a.n);
    double *out = dvec(a.n), *P = dvec((size_t)(a.B * a.H * a.T * a.T));
    double *dqw = dvec(a.n), *dkw = dvec(a.n), *dvw = dvec(a.n);
    attention_ref(out, P, qd, kd, vd, a.B, a.T, a.H, a.hd, a.causal);
    attention_backward_ref(dqw, dkw, dvw, dod, qd, kd, vd, P, a.B, a.T, a.H, a.hd, a.causal);

    attn_forward(&a);
    check_close("long attention out", a.out, out, a.n, FWD_RTOL);
    check_probs(&a, P);

    float *dq = fvec(a.n), *dk = fvec(a.n), *dv = fvec(a.n), *dP = fvec(a.np);
    fill_nan(dq, a.n), fill_nan(dk, a.n), fill_nan(dv, a.n), fill_nan(dP, a.np);
    attn_backward(&a, dq, dk, dv, dP);
    check_close("long attention dq", dq, dqw, a.n, GRAD_RTOL);
    check_close("long attention dk", dk, dkw, a.n, GRAD_RTOL);
    check_close("long attention dv", dv, dvw, a.n, GRAD_RTOL);

    free(qd), free(kd), free(vd), free(dod), free(out), free(P), free(dqw), free(dkw);
    free(dvw), free(dq), free(dk), free(dv), free(dP);
    attn_case_free(&a);
}
END_TEST

/* Rows [p0, p1) of q against the first p1 rows of keys and values, kept in
 * a store of S rows per sequence, as a decoder calls the kernel; the
 * results go to rows [p0, p1) of out [B, T, D]. */
static void attn_rows_at_offset(const attn_case *a, const float *kc, const float *vc,
                                int64_t S, int64_t p0, int64_t p1, float *out)
{
    const int64_t B = a->B, T = a->T, D = a->H * a->hd, Tc = p1 - p0;
    float *q = fvec((size_t)(B * Tc * D)), *o = fvec((size_t)(B * Tc * D));
    float *scratch = fvec((size_t)(2 * Tc * tfi_attn_probs_width(p1)));
    for (int64_t b = 0; b < B; b++)
        memcpy(q + b * Tc * D, a->q + (b * T + p0) * D, (size_t)(Tc * D) * sizeof(float));
    tfi_attn_shape s = {B, Tc, a->H, a->hd, p0, S, a->causal};
    tfi_attention_forward(o, scratch, 2, q, kc, vc, &s);
    for (int64_t b = 0; b < B; b++)
        memcpy(out + (b * T + p0) * D, o + b * Tc * D, (size_t)(Tc * D) * sizeof(float));
    free(q), free(o), free(scratch);
}

/* New rows against a cache, as a decoder runs them: a forward's rows come
 * out bit for bit the same when computed in pieces at offsets pos0, with
 * keys and values in a store longer than used (the rest poisoned: never
 * read) and the probabilities in per-thread scratch.  The pieces are those
 * of a decoder's prefill and steps: they end where the forward ends or at
 * its row blocks (64 rows), so each row's products have the forward's
 * shapes (BLIS's edge kernels sum a product's last columns in another
 * order).  _i: 0 causal, 1 bidirectional (only pieces that end at T see
 * the forward's keys). */
START_TEST(test_attention_rows_at_offset)
{
    const int64_t B = 2, T = 90, H = 2, hd = 8, D = H * hd, S = 100;
    attn_case a = attn_case_new(B, T, H, hd, _i == 0, 36);
    attn_forward(&a);
    float *kc = fvec((size_t)(B * S * D)), *vc = fvec((size_t)(B * S * D));
    float *out = fvec(a.n), *last = fvec(a.n);
    fill_nan(kc, (size_t)(B * S * D)), fill_nan(vc, (size_t)(B * S * D));
    fill_nan(out, a.n), fill_nan(last, a.n);
    for (int64_t b = 0; b < B; b++) {
        memcpy(kc + b * S * D, a.k + b * T * D, (size_t)(T * D) * sizeof(float));
        memcpy(vc + b * S * D, a.v + b * T * D, (size_t)(T * D) * sizeof(float));
    }
    attn_rows_at_offset(&a, kc, vc, S, 0, 64, out);
    attn_rows_at_offset(&a, kc, vc, S, 64, T, out);
    attn_rows_at_offset(&a, kc, vc, S, T - 1, T, last);
    for (int64_t b = 0; b < B; b++) {
        const int64_t from = a.causal ? 0 : 64;
        ck_assert(memcmp(out + (b * T + from) * D, a.out + (b * T + from) * D,
                         (size_t)((T - from) * D) * sizeof(float)) == 0);
        ck_assert(memcmp(last + (b * T + T - 1) * D, a.out + (b * T + T - 1) * D,
                         (size_t)D * sizeof(float)) == 0);
    }
    free(kc), free(vc), free(out), free(last);
    attn_case_free(&a);
}
END_TEST

/* ---- cross-entropy ------------------------------------------------------- */

/* Against (1 - eps) onehot + eps / V, written as that distribution's
 * cross-entropy -sum_j p_j log softmax_j, not as the kernel's formula. */
static double crossentropy_ref(const double *logits, const int32_t *targets,
                               int64_t N, int64_t V, double eps, double *lse)
{
    double loss = 0.0;
    for (int64_t i = 0; i < N; i++) {
        const double *row = logits + i * V;
        double mx = row[0], sum = 0.0;
        for (int64_t j = 1; j < V; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int64_t j = 0; j < V; j++)
            sum += exp(row[j] - mx);
        double l = mx + log(sum);
        if (lse)
            lse[i] = l;
        for (int64_t j = 0; j < V; j++) {
            double p = eps / (double)V + (j == targets[i] ? 1.0 - eps : 0.0);
            loss -= p * (row[j] - l);
        }
    }
    return loss / (double)N;
}

typedef struct ce_ctx {
    int64_t N, V;
    double *logits;
    const int32_t *targets;
    double eps;
} ce_ctx;

static double ce_objective(void *p)
{
    ce_ctx *c = p;
    return crossentropy_ref(c->logits, c->targets, c->N, c->V, c->eps, NULL);
}

static void fill_targets(tfi_rng *r, int32_t *t, int64_t N, int64_t V)
{
    for (int64_t i = 0; i < N; i++)
        t[i] = (int32_t)(tfi_rng_next(r) % (uint64_t)V);
}

START_TEST(test_crossentropy)
{
    const int64_t N = 13, V = 37;
    const size_t n = (size_t)(N * V);
    tfi_rng r;
    tfi_rng_seed(&r, 41);
    float *logits = fvec(n), *lse = fvec(N), *dl = fvec(n);
    int32_t targets[13];
    fill_normal(&r, logits, n, 0.5, 2.0);
    fill_targets(&r, targets, N, V);
    double *ld = to_double(logits, n), *lse_want = dvec(N);

    double want = crossentropy_ref(ld, targets, N, V, 0.0, lse_want);
    double loss = tfi_crossentropy_forward(logits, targets, N, V, 0.0f, lse);
    ck_assert_double_eq_tol(loss, want, 1e-6 * fabs(want));
    check_close("crossentropy lse", lse, lse_want, N, FWD_RTOL);

    /* Gradient of the mean loss: scale = 1/N. */
    double *g = dvec(n);
    ce_ctx c = {N, V, ld, targets, 0.0};
    fd_grad(g, ld, n, ce_objective, &c);
    tfi_crossentropy_backward(dl, logits, 0.0f, lse, targets, N, V, 1.0f / (float)N);
    check_close("crossentropy dlogits", dl, g, n, GRAD_RTOL);

    /* Label smoothing: the loss and its gradient against the smoothed
     * distribution's cross-entropy; the lse does not change. */
    for (int k = 0; k < 2; k++) {
        const float eps = k == 0 ? 0.1f : 0.9f;
        float *lse_s = fvec(N), *dl_s = fvec(n);
        double want_s = crossentropy_ref(ld, targets, N, V, eps, NULL);
        double loss_s = tfi_crossentropy_forward(logits, targets, N, V, eps, lse_s);
        ck_assert_double_eq_tol(loss_s, want_s, 1e-6 * fabs(want_s));
        ck_assert_msg(fabs(loss_s - loss) > 1e-3, "eps %g changed nothing", eps);
        ck_assert(memcmp(lse_s, lse, N * sizeof *lse) == 0);
        ce_ctx cs = {N, V, ld, targets, eps};
        fd_grad(g, ld, n, ce_objective, &cs);
        tfi_crossentropy_backward(dl_s, logits, eps, lse, targets, N, V, 1.0f / (float)N);
        check_close("smoothed crossentropy dlogits", dl_s, g, n, GRAD_RTOL);
        free(lse_s), free(dl_s);
    }

    /* scale 1: each row is softmax - onehot, which sums to 0. */
    tfi_crossentropy_backward(dl, logits, 0.0f, lse, targets, N, V, 1.0f);
    for (int64_t i = 0; i < N; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < V; j++)
            s += dl[i * V + j];
        ck_assert_msg(fabs(s) < 1e-6, "gradient row %lld sums to %g", (long long)i, s);
    }

    /* In place gives the same bits as out of place. */
    tfi_crossentropy_backward(logits, logits, 0.0f, lse, targets, N, V, 1.0f);
    ck_assert(memcmp(logits, dl, n * sizeof *dl) == 0);

    free(logits), free(lse), free(dl), free(ld), free(lse_want), free(g);
}
END_TEST

/* Logits ~ 1000: exp would overflow without the max shift. */
START_TEST(test_crossentropy_large_logits)
{
    const int64_t N = 9, V = 50;
    const size_t n = (size_t)(N * V);
    tfi_rng r;
    tfi_rng_seed(&r, 42);
    float *logits = fvec(n), *lse = fvec(N), *dl = fvec(n);
    int32_t targets[9];
    fill_normal(&r, logits, n, 1000.0, 3.0);
    fill_targets(&r, targets, N, V);
    double *ld = to_double(logits, n), *lse_want = dvec(N);

    double want = crossentropy_ref(ld, targets, N, V, 0.0, lse_want);
    double loss = tfi_crossentropy_forward(logits, targets, N, V, 0.0f, lse);
    ck_assert(isfinite(loss));
    ck_assert_double_eq_tol(loss, want, 1e-5 * fabs(want));
    check_close("large crossentropy lse", lse, lse_want, N, FWD_RTOL);

    tfi_crossentropy_backward(dl, logits, 0.0f, lse, targets, N, V, 1.0f);
    double *g = dvec(n);
    for (int64_t i = 0; i < N; i++) {
        double s = 0.0;
        for (int64_t j = 0; j < V; j++) {
            ck_assert(isfinite(dl[i * V + j]));
            s += dl[i * V + j];
            g[i * V + j] = exp(ld[i * V + j] - lse_want[i]) - (j == targets[i]);
        }
        ck_assert_msg(fabs(s) < 1e-4, "gradient row %lld sums to %g", (long long)i, s);
    }
    /* The float lse (ulp 6e-5 at 1000) bounds the softmax to ~3e-5. */
    check_close("large crossentropy dlogits", dl, g, n, 1e-4);
    free(logits), free(lse), free(dl), free(ld), free(lse_want), free(g);
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

/* Every kernel's outputs with one thread and with several.  Work is split
 * by rows / heads / column blocks, never inside a sum, so the results are
 * bit-identical; only the loss's reduction order may differ. */
typedef struct all_out {
    float *ln_y, *ln_dx, *ln_dw, *ln_db, *rope, *attn_out, *attn_probs;
    float *dq, *dk, *dv, *dP, *ce_dl, *ce_lse;
    double loss;
} all_out;

enum { TH_N = 50, TH_D = 130, TH_B = 2, TH_T = 70, TH_H = 3, TH_HD = 8, TH_V = 77 };

static all_out run_all_kernels(void)
{
    const size_t nx = TH_N * TH_D, na = TH_B * TH_T * TH_H * TH_HD;
    const size_t np = TH_B * TH_H * TH_T * TH_T, nl = TH_N * TH_V;
    tfi_rng r;
    tfi_rng_seed(&r, 51);
    all_out o;
    float *x = fvec(nx), *w = fvec(TH_D), *b = fvec(TH_D), *dy = fvec(nx);
    float *mean = fvec(TH_N), *rstd = fvec(TH_N);
    fill_normal(&r, x, nx, 0.2, 1.0);
    fill_normal(&r, w, TH_D, 1.0, 0.2);
    fill_normal(&r, b, TH_D, 0.0, 0.2);
    fill_normal(&r, dy, nx, 0.0, 1.0);
    o.ln_y = fvec(nx), o.ln_dx = fvec(nx), o.ln_dw = fvec(TH_D), o.ln_db = fvec(TH_D);
    tfi_layernorm_forward(o.ln_y, mean, rstd, x, w, b, TH_N, TH_D, 1e-5f);
    tfi_layernorm_backward(o.ln_dx, o.ln_dw, o.ln_db, dy, x, mean, rstd, w, TH_N, TH_D);

    float *c = fvec(TH_T * TH_HD / 2), *s = fvec(TH_T * TH_HD / 2);
    tfi_rotary_tables(c, s, TH_T, TH_HD, ROPE_BASE);
    o.rope = fvec(na);
    fill_normal(&r, o.rope, na, 0.0, 1.0);
    tfi_rotary_apply(o.rope, TH_B, TH_T, TH_H, TH_HD, TH_H * TH_HD, TH_HD, c, s, 0, 0);

    float *q = fvec(na), *k = fvec(na), *v = fvec(na), *dout = fvec(na);
    fill_normal(&r, q, na, 0.0, 1.0);
    fill_normal(&r, k, na, 0.0, 1.0);
    fill_normal(&r, v, na, 0.0, 1.0);
    fill_normal(&r, dout, na, 0.0, 1.0);
    o.attn_out = fvec(na), o.attn_probs = fvec(np);
    o.dq = fvec(na), o.dk = fvec(na), o.dv = fvec(na), o.dP = fvec(np);
    const tfi_attn_shape ash = {TH_B, TH_T, TH_H, TH_HD, 0, TH_T, 1};
    tfi_attention_forward(o.attn_out, o.attn_probs, 0, q, k, v, &ash);
    tfi_attention_backward(o.dq, o.dk, o.dv, o.dP, dout, q, k, v, o.attn_probs, &ash);

    float *logits = fvec(nl);
    int32_t targets[TH_N];
    fill_normal(&r, logits, nl, 0.0, 2.0);
    fill_targets(&r, targets, TH_N, TH_V);
    o.ce_lse = fvec(TH_N), o.ce_dl = fvec(nl);
    o.loss = tfi_crossentropy_forward(logits, targets, TH_N, TH_V, 0.0f, o.ce_lse);
    tfi_crossentropy_backward(o.ce_dl, logits, 0.0f, o.ce_lse, targets, TH_N, TH_V, 0.5f);

    free(x), free(w), free(b), free(dy), free(mean), free(rstd), free(c), free(s);
    free(q), free(k), free(v), free(dout), free(logits);
    return o;
}

static void all_out_free(all_out *o)
{
    free(o->ln_y), free(o->ln_dx), free(o->ln_dw), free(o->ln_db), free(o->rope);
    free(o->attn_out), free(o->attn_probs), free(o->dq), free(o->dk), free(o->dv);
    free(o->dP), free(o->ce_dl), free(o->ce_lse);
}

#define SAME_BITS(a, b, field, count)                                              \
    ck_assert_msg(memcmp((a).field, (b).field, (count) * sizeof(float)) == 0,      \
                  #field " differs between 1 and 4 threads")

/* ---- transpose ---------------------------------------------------------- */

/* Exact against the definition dst[c][r] = src[r][c], on shapes with and
 * without whole 8x8 tiles and with padded strides (untouched padding). */
START_TEST(test_transpose)
{
    static const int64_t shapes[][2] = {{1, 1}, {8, 8}, {16, 24}, {37, 53}, {128, 32}, {5, 70}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1], lds = cols + 3, ldd = rows + 5;
        float *src = fvec((size_t)(rows * lds)), *dst = fvec((size_t)(cols * ldd));
        float *ref = fvec((size_t)(cols * ldd));
        for (int64_t i = 0; i < rows * lds; i++)
            src[i] = (float)i * 0.5f - 7.0f;
        fill_nan(dst, (size_t)(cols * ldd));
        fill_nan(ref, (size_t)(cols * ldd));
        tfi_transpose(dst, ldd, src, lds, rows, cols);
        tfi_transpose_plain(ref, ldd, src, lds, rows, cols);
        for (int64_t c = 0; c < cols; c++)
            for (int64_t r = 0; r < ldd; r++) {
                float got = dst[c * ldd + r];
                if (r < rows)
                    ck_assert_msg(got == src[r * lds + c] && ref[c * ldd + r] == got,
                                  "%lldx%lld: [%lld][%lld]", (long long)rows, (long long)cols,
                                  (long long)c, (long long)r);
                else
                    ck_assert_msg(isnan(got), "padding written at [%lld][%lld]", (long long)c,
                                  (long long)r);
            }
        free(src), free(dst), free(ref);
    }
}
END_TEST

/* ---- products of few rows ----------------------------------------------- */

/* abt (C = A B^T) and ab (C = beta C + A B) for few rows: the fast kernels
 * give the plain definitions' bits at every shape (blocks, k not a
 * multiple of 16, column tails, padded strides left untouched); a row
 * comes out the same alone as among m rows, and at 1 thread as at 4 (the
 * decoder relies on both); and the results are products within float
 * rounding of a double reference.  _i: beta 0 (C poisoned), 1, 0.5. */
START_TEST(test_few_rows)
{
    static const int64_t ms[] = {1, 2, 3, 4, 5, 7, 16, 63};
    static const int64_t nk[][2] = {{1, 1}, {3, 17}, {7, 16}, {64, 100}, {130, 33}, {200, 768}};
    const float beta = _i == 0 ? 0.0f : _i == 1 ? 1.0f : 0.5f;
    tfi_rng r;
    tfi_rng_seed(&r, 61);
    for (size_t s = 0; s < sizeof nk / sizeof nk[0]; s++)
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
            const int64_t m = ms[mi], n = nk[s][0], k = nk[s][1];
            const int64_t lda = k + 3, ldbt = k + 5, ldb = n + 5, ldc = n + 2;
            float *A = fvec((size_t)(m * lda)), *Bt = fvec((size_t)(n * ldbt));
            float *B = fvec((size_t)(k * ldb)), *C0 = fvec((size_t)(m * ldc));
            fill_normal(&r, A, (size_t)(m * lda), 0.0, 1.0);
            fill_normal(&r, Bt, (size_t)(n * ldbt), 0.0, 1.0);
            fill_normal(&r, B, (size_t)(k * ldb), 0.0, 1.0);
            fill_normal(&r, C0, (size_t)(m * ldc), 0.0, 1.0);
            for (int64_t i = 0; i < m; i++) /* C's padding: never written */
                fill_nan(C0 + i * ldc + n, (size_t)(ldc - n));
            if (beta == 0.0f) /* beta 0: C is not read */
                for (int64_t i = 0; i < m; i++)
                    fill_nan(C0 + i * ldc, (size_t)n);
            const size_t nc = (size_t)(m * ldc), bytes = nc * sizeof(float);
            float *fast = fvec(nc), *plain = fvec(nc), *row = fvec((size_t)ldc), *four = fvec(nc);
            for (int prod = 0; prod < 2; prod++) {
                memcpy(fast, C0, bytes);
                memcpy(plain, C0, bytes);
                memcpy(four, C0, bytes);
                ck_assert_int_eq(tf_set_num_threads(1), TF_OK);
                if (prod == 0) {
                    tfi_few_rows_abt(m, n, k, A, lda, Bt, ldbt, fast, ldc);
                    tfi_few_rows_abt_plain(m, n, k, A, lda, Bt, ldbt, plain, ldc);
                } else {
                    tfi_few_rows_ab(m, n, k, A, lda, B, ldb, beta, fast, ldc);
                    tfi_few_rows_ab_plain(m, n, k, A, lda, B, ldb, beta, plain, ldc);
                }
                ck_assert_msg(memcmp(fast, plain, bytes) == 0, "%s m=%lld n=%lld k=%lld: fast "
                              "and plain differ", prod ? "ab" : "abt", (long long)m,
                              (long long)n, (long long)k);
                ck_assert_int_eq(tf_set_num_threads(4), TF_OK);
                if (prod == 0)
                    tfi_few_rows_abt(m, n, k, A, lda, Bt, ldbt, four, ldc);
                else
                    tfi_few_rows_ab(m, n, k, A, lda, B, ldb, beta, four, ldc);
                ck_assert(memcmp(fast, four, bytes) == 0);
                ck_assert_int_eq(tf_set_num_threads(1), TF_OK);
                double worst = 0.0, scale = 0.0;
                for (int64_t i = 0; i < m; i++) {
                    memcpy(row, C0 + i * ldc, (size_t)ldc * sizeof(float));
                    if (prod == 0)
                        tfi_few_rows_abt(1, n, k, A + i * lda, lda, Bt, ldbt, row, ldc);
                    else
                        tfi_few_rows_ab(1, n, k, A + i * lda, lda, B, ldb, beta, row, ldc);
                    ck_assert_msg(memcmp(row, fast + i * ldc, (size_t)ldc * sizeof(float)) == 0,
                                  "m=%lld: row %lld alone differs", (long long)m, (long long)i);
                    for (int64_t j = 0; j < n; j++) {
                        double want = beta == 0.0f || prod == 0 ? 0.0 : beta * C0[i * ldc + j];
                        for (int64_t c = 0; c < k; c++)
                            want += prod == 0 ? (double)A[i * lda + c] * Bt[j * ldbt + c]
                                              : (double)A[i * lda + c] * B[c * ldb + j];
                        worst = fmax(worst, fabs(fast[i * ldc + j] - want));
                        scale = fmax(scale, fabs(want));
                    }
                }
                ck_assert_msg(worst <= 1e-5 * (scale + 1.0), "m=%lld n=%lld k=%lld: error %g",
                              (long long)m, (long long)n, (long long)k, worst);
            }
            free(A), free(Bt), free(B), free(C0), free(fast), free(plain), free(row), free(four);
        }
}
END_TEST

START_TEST(test_threads_deterministic)
{
    ck_assert_int_eq(tf_set_num_threads(1), TF_OK);
    all_out one = run_all_kernels();
    ck_assert_int_eq(tf_set_num_threads(4), TF_OK);
    all_out four = run_all_kernels();

    const size_t nx = TH_N * TH_D, na = TH_B * TH_T * TH_H * TH_HD;
    const size_t np = TH_B * TH_H * TH_T * TH_T, nl = TH_N * TH_V;
    SAME_BITS(one, four, ln_y, nx);
    SAME_BITS(one, four, ln_dx, nx);
    SAME_BITS(one, four, ln_dw, TH_D);
    SAME_BITS(one, four, ln_db, TH_D);
    SAME_BITS(one, four, rope, na);
    SAME_BITS(one, four, attn_out, na);
    SAME_BITS(one, four, attn_probs, np);
    SAME_BITS(one, four, dq, na);
    SAME_BITS(one, four, dk, na);
    SAME_BITS(one, four, dv, na);
    SAME_BITS(one, four, dP, np);
    SAME_BITS(one, four, ce_lse, TH_N);
    SAME_BITS(one, four, ce_dl, nl);
    ck_assert_double_eq_tol(one.loss, four.loss, 1e-12 * fabs(one.loss));
    all_out_free(&one);
    all_out_free(&four);
}
END_TEST

/* ---- GEMM split into blocks ---------------------------------------------- */

/* tfi_sgemm cuts C into blocks (rows when m >= n, else columns), each one
 * single-threaded BLIS call: every transpose combination, with leading
 * dimensions wider than the operands and beta != 0, must match a plain
 * float64 product, and give the same bits on a second run. */
static void gemm_split_case(int ta, int tb, int64_t m, int64_t n, int64_t k, int nthreads)
{
    const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 7;
    const int64_t arows = ta ? k : m, brows = tb ? n : k;
    float *A = fvec((size_t)(arows * lda)), *B = fvec((size_t)(brows * ldb));
    float *C0 = fvec((size_t)(m * ldc)), *C1 = fvec((size_t)(m * ldc)), *C2 = fvec((size_t)(m * ldc));
    tfi_rng r;
    tfi_rng_seed(&r, 7);
    fill_normal(&r, A, (size_t)(arows * lda), 0.0, 1.0);
    fill_normal(&r, B, (size_t)(brows * ldb), 0.0, 1.0);
    fill_normal(&r, C0, (size_t)(m * ldc), 0.0, 1.0);
    memcpy(C1, C0, sizeof(float) * (size_t)(m * ldc));
    memcpy(C2, C0, sizeof(float) * (size_t)(m * ldc));
    tfi_sgemm(ta, tb, m, n, k, 0.5f, A, lda, B, ldb, 0.25f, C1, ldc, nthreads);
    tfi_sgemm(ta, tb, m, n, k, 0.5f, A, lda, B, ldb, 0.25f, C2, ldc, nthreads);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ldc; j++) {
            float got = C1[i * ldc + j];
            ck_assert_msg(memcmp(&got, &C2[i * ldc + j], sizeof got) == 0,
                          "ta=%d tb=%d: run-to-run difference at (%ld, %ld)", ta, tb, (long)i, (long)j);
            if (j >= n) { /* outside C: untouched */
                ck_assert_msg(got == C0[i * ldc + j], "ta=%d tb=%d: wrote past column n", ta, tb);
                continue;
            }
            double want = 0.25 * C0[i * ldc + j];
            for (int64_t p = 0; p < k; p++)
                want += 0.5 * (double)(ta ? A[p * lda + i] : A[i * lda + p]) *
                        (double)(tb ? B[j * ldb + p] : B[p * ldb + j]);
            ck_assert_msg(fabs(got - want) <= 1e-4 * (1.0 + sqrt((double)k)),
                          "ta=%d tb=%d m=%ld n=%ld: C(%ld, %ld) = %g, want %g", ta, tb, (long)m,
                          (long)n, (long)i, (long)j, got, want);
        }
    free(A), free(B), free(C0), free(C1), free(C2);
}

/* C = 0.5 op(A) op(B) + 0.25 C0 at `threads` (0: the count in effect). */
static float *gemm_at(int ta, int tb, int64_t m, int64_t n, int64_t k, int threads)
{
    const int64_t lda = ta ? m : k, ldb = tb ? k : n;
    float *A = fvec((size_t)(m * k)), *B = fvec((size_t)(k * n)), *C = fvec((size_t)(m * n));
    tfi_rng r;
    tfi_rng_seed(&r, 8);
    fill_normal(&r, A, (size_t)(m * k), 0.0, 1.0);
    fill_normal(&r, B, (size_t)(k * n), 0.0, 1.0);
    fill_normal(&r, C, (size_t)(m * n), 0.0, 1.0);
    tfi_sgemm(ta, tb, m, n, k, 0.5f, A, lda, B, ldb, 0.25f, C, n, threads);
    free(A), free(B);
    return C;
}

START_TEST(test_gemm_split)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            gemm_split_case(ta, tb, 500, 130, 37, 3); /* rows */
            gemm_split_case(ta, tb, 70, 701, 33, 2);  /* columns */
            gemm_split_case(ta, tb, 500, 130, 37, 1); /* one call */
            gemm_split_case(ta, tb, 64, 80, 1500, 2); /* thin blocks of a deep product */
            /* split into 2, 3 or 4 threads' blocks: the same bits */
            float *two = gemm_at(ta, tb, 500, 130, 37, 2);
            for (int t = 3; t <= 4; t++) {
                float *more = gemm_at(ta, tb, 500, 130, 37, t);
                ck_assert_msg(memcmp(two, more, 500 * 130 * sizeof(float)) == 0,
                              "ta=%d tb=%d: 2 and %d threads' blocks differ", ta, tb, t);
                free(more);
            }
            free(two);
            /* a large product, at 1 (one call), 2 and 3 threads: the same bits */
            const int saved = tf_get_num_threads();
            /* the last: a small, deep C (a weight gradient), in thin blocks */
            const int64_t shapes[3][3] = {{1000, 200, 300}, {150, 1100, 290}, {64, 64, 2000}};
            for (int s = 0; s < 3; s++) {
                const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                ck_assert_int_eq(tf_set_num_threads(1), TF_OK);
                float *one = gemm_at(ta, tb, m, n, k, 0);
                for (int t = 2; t <= 3; t++) {
                    ck_assert_int_eq(tf_set_num_threads(t), TF_OK);
                    float *more = gemm_at(ta, tb, m, n, k, 0);
                    ck_assert_msg(memcmp(one, more, (size_t)(m * n) * sizeof(float)) == 0,
                                  "ta=%d tb=%d m=%ld n=%ld: 1 and %d threads differ", ta, tb,
                                  (long)m, (long)n, t);
                    free(more);
                }
                free(one);
            }
            ck_assert_int_eq(tf_set_num_threads(saved), TF_OK);
        }
}
END_TEST

/* ---- non-finite activations ------------------------------------------------ */

/* A row of 37 values (two 16-wide vectors and a tail) with NaN, -NaN and
 * both infinities among ordinary and huge values. */
#define NF_N 37
static void fill_nonfinite(float *x)
{
    static const float special[] = {NAN, -NAN, INFINITY, -INFINITY, 1e30f, -1e30f,
                                    88.5f, -88.5f, 0.0f, -0.0f};
    for (int j = 0; j < NF_N; j++)
        x[j] = j % 4 == 1 ? special[(j / 4) % 10] : (float)(j - 18) * 0.37f;
}

/* The instruction set of loop test _i, or 0 (the test says why) if this
 * CPU cannot run it: every variant the CPU runs is tested. */
static int arch_runs(int i)
{
    if (tfi_arch_supported((tfi_arch)i))
        return 1;
    fprintf(stderr, "note: this CPU does not run the %s kernels; not tested here\n",
            tfi_arch_name((tfi_arch)i));
    return 0;
}

/* The vectorised exp/gelu and the softmax rows of every instruction set run
 * on NaN and infinities without undefined behaviour (exp_poly once cast NaN
 * to int32 and shifted the negative result: the sanitizer build of this
 * test catches it), and NaN comes out as NaN, never as a finite value. */
START_TEST(test_nonfinite_elementwise)
{
    if (!arch_runs(_i))
        return;
    const tfi_arch arch = (tfi_arch)_i;
    float x[NF_N], e[NF_N], g[NF_N], dg[NF_N];
    fill_nonfinite(x);
    tfi_exp_fast(arch, x, e, NF_N);
    tfi_gelu_fast(arch, x, g, NF_N);
    tfi_gelu_grad_fast(arch, x, dg, NF_N);
    for (int j = 0; j < NF_N; j++) {
        if (isnan(x[j])) {
            ck_assert_msg(isnan(e[j]) && isnan(g[j]) && isnan(dg[j]),
                          "NaN in at %d: exp %g gelu %g gelu' %g", j, e[j], g[j], dg[j]);
            continue;
        }
        /* documented clamp of the exponent to [-87, 88] */
        double xc = x[j] < -87.0f ? -87.0 : x[j] > 88.0f ? 88.0 : x[j];
        double want = exp(xc);
        ck_assert_msg(fabs(e[j] - want) <= 1e-6 * want, "exp(%g) = %g, want %g", x[j], e[j],
                      want);
        if (isfinite(x[j])) {
            double gw = x[j] * 0.5 * erfc(-x[j] / sqrt(2.0));
            ck_assert_msg(fabs(g[j] - gw) <= 1e-5 * fabs(gw) + 1e-30, "gelu(%g) = %g, want %g",
                          x[j], g[j], gw);
            ck_assert_msg(isfinite(dg[j]), "gelu'(%g) = %g", x[j], dg[j]);
        }
    }
    ck_assert(isinf(g[9]) && g[9] > 0); /* gelu(+inf) = +inf (x[9] = +inf) */

    /* causal softmax rows: len 21 of T = 24 */
    enum { LEN = 21, T = 24 };
    float row[T];
    /* a NaN anywhere makes the whole row NaN; the masked tail stays 0 */
    for (int j = 0; j < T; j++)
        row[j] = (float)j * 0.1f;
    row[5] = NAN;
    tfi_row_softmax_masked_arch(arch, row, LEN, T);
    for (int j = 0; j < T; j++)
        ck_assert_msg(j < LEN ? isnan(row[j]) : row[j] == 0.0f, "NaN row [%d] = %g", j, row[j]);
    /* +inf: inf - inf is NaN, so the row is NaN rather than a wrong one-hot */
    for (int j = 0; j < T; j++)
        row[j] = (float)j * 0.1f;
    row[4] = INFINITY;
    tfi_row_softmax_masked_arch(arch, row, LEN, T);
    for (int j = 0; j < LEN; j++)
        ck_assert_msg(isnan(row[j]), "+inf row [%d] = %g", j, row[j]);
    /* -inf entries (a mask) get probability ~0, the rest the softmax of the
     * finite entries */
    double ref[LEN], sum = 0.0;
    for (int j = 0; j < T; j++)
        row[j] = (float)((j * 7) % 5) * 0.3f;
    row[2] = row[11] = -INFINITY;
    for (int j = 0; j < LEN; j++)
        sum += ref[j] = isinf(row[j]) ? 0.0 : exp(row[j]);
    tfi_row_softmax_masked_arch(arch, row, LEN, T);
    for (int j = 0; j < LEN; j++)
        ck_assert_msg(fabs(row[j] - ref[j] / sum) <= 1e-6, "-inf row [%d] = %g, want %g", j,
                      row[j], ref[j] / sum);
}
END_TEST

/* exp, gelu and gelu' of every instruction set against float64 libm over
 * the whole float range: every 4097th bit pattern of each sign (all
 * exponents, subnormals to FLT_MAX), and the special values.  Bounds, each
 * a few times what was measured (1.2 ulp of 1 for gelu):
 *   gelu   |err| <= 1.5e-7 (1 + |gelu(x)|)
 *   gelu'  |err| <= 2.5e-7 (1 + |gelu'(x)|)  (its zero near -0.75 rules out
 *          a relative bound)
 *   exp    |err| <= 1.5e-7 e^x' with x' = x clamped to [-87, 88] (the
 *          documented clamp)
 * and relatively, for gelu where |gelu(x)| > 1e-30: 4e-5.  In the far
 * negative tail the argument -x^2/2 of exp is rounded to float, an error
 * of ~x^2 2^-25 that e^ turns into a relative one (1.7e-5 measured at x
 * = -11.5, where gelu is 1e-29). */
START_TEST(test_vecmath_whole_range)
{
    if (!arch_runs(_i))
        return;
    const tfi_arch arch = (tfi_arch)_i;
    const uint32_t stride = 4097, top = 0x7f800000u; /* top: +inf's bits */
    const size_t M = 2 * (top / stride + 1) + 4;
    float *x = fvec(M), *e = fvec(M), *g = fvec(M), *dg = fvec(M);
    size_t n = 0;
    for (uint32_t u = 0; u < top; u += stride)
        for (uint32_t sign = 0; sign < 2; sign++) {
            uint32_t bits = u | sign << 31;
            memcpy(&x[n++], &bits, sizeof bits);
        }
    x[n++] = INFINITY, x[n++] = -INFINITY, x[n++] = NAN, x[n++] = FLT_MAX;
    ck_assert_uint_le(n, M);
    tfi_exp_fast(arch, x, e, (int64_t)n);
    tfi_gelu_fast(arch, x, g, (int64_t)n);
    tfi_gelu_grad_fast(arch, x, dg, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        double xd = x[i];
        if (isnan(xd)) {
            ck_assert(isnan(e[i]) && isnan(g[i]) && isnan(dg[i]));
            continue;
        }
        double xc = xd < -87.0 ? -87.0 : xd > 88.0 ? 88.0 : xd;
        ck_assert_msg(fabs(e[i] - exp(xc)) <= 1.5e-7 * exp(xc), "%s exp(%a) = %a, want %a",
                      tfi_arch_name(arch), x[i], e[i], exp(xc));
        double cdf = 0.5 * erfc(-xd / sqrt(2.0));
        double dgw = cdf + (isinf(xd) ? 0.0 : xd * exp(-0.5 * xd * xd) / sqrt(2.0 * M_PI));
        ck_assert_msg(fabs(dg[i] - dgw) <= 2.5e-7 * (1.0 + fabs(dgw)),
                      "%s gelu'(%a) = %a, want %a", tfi_arch_name(arch), x[i], dg[i], dgw);
        if (isinf(xd)) { /* -inf * Phi(-inf) is NaN, as in the plain rows */
            ck_assert(xd > 0 ? g[i] == INFINITY : isnan(g[i]));
            continue;
        }
        double gw = xd * cdf;
        ck_assert_msg(fabs(g[i] - gw) <= 1.5e-7 * (1.0 + fabs(gw)), "%s gelu(%a) = %a, want %a",
                      tfi_arch_name(arch), x[i], g[i], gw);
        ck_assert_msg(fabs(gw) <= 1e-30 || fabs(g[i] - gw) <= 4e-5 * fabs(gw),
                      "%s gelu(%a) = %a, want %a", tfi_arch_name(arch), x[i], g[i], gw);
    }
    free(x), free(e), free(g), free(dg);
}
END_TEST

/* tf_get_info names the set the kernels run, one the CPU runs; unless
 * TF_ARCH chose it, the best the CPU runs (the CPU flags of the same call). */
START_TEST(test_kernel_arch_info)
{
    tf_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(tf_get_info(&info), TF_OK);
    const tfi_arch active = tfi_arch_active();
    ck_assert(tfi_arch_supported(active));
    ck_assert_str_eq(info.kernel_arch, tfi_arch_name(active));
    ck_assert_ptr_nonnull(info.kernel_arch_source);
    if (strcmp(info.kernel_arch_source, "auto") == 0) {
        const char *best = info.cpu_avx512 ? "avx512" : info.cpu_avx2 ? "avx2" : "generic";
        ck_assert_str_eq(info.kernel_arch, best);
    }
    /* a caller compiled before the fields existed gets the rest unchanged */
    tf_info old = {.struct_size = offsetof(tf_info, kernel_arch)};
    old.kernel_arch = "untouched";
    ck_assert_int_eq(tf_get_info(&old), TF_OK);
    ck_assert_str_eq(old.kernel_arch, "untouched");
    ck_assert_int_eq(old.num_threads, info.num_threads);
}
END_TEST

/* The attention softmax rows (forward, backward) and the LayerNorm row of
 * every instruction set against double references: odd lengths that leave
 * vector tails, a causal row shorter than its width, a LayerNorm row with
 * |mean| / std ~ 1e4. */
START_TEST(test_row_kernels_every_arch)
{
    if (!arch_runs(_i))
        return;
    const tfi_arch arch = (tfi_arch)_i;
    enum { W = 77 };
    tfi_rng r;
    tfi_rng_seed(&r, 404);
    float row[W], p[W], ds[W];
    double want[W], dwant[W];
    for (int len = 1; len <= W; len += 19) {
        fill_normal(&r, row, W, 0.5, 3.0);
        fill_normal(&r, ds, W, 0.0, 1.0);
        double mx = row[0], sum = 0.0, dot = 0.0;
        for (int j = 1; j < len; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < len; j++)
            sum += want[j] = exp((double)row[j] - mx);
        for (int j = 0; j < W; j++)
            want[j] = j < len ? want[j] / sum : 0.0;
        for (int j = 0; j < len; j++)
            dot += (double)ds[j] * want[j];
        for (int j = 0; j < W; j++)
            dwant[j] = j < len ? want[j] * (ds[j] - dot) : 0.0;
        tfi_row_softmax_masked_arch(arch, row, len, W);
        check_close("softmax row", row, want, W, FWD_RTOL);
        memcpy(p, row, sizeof p);
        tfi_row_softmax_masked_backward_arch(arch, ds, p, len, W);
        check_close("softmax backward row", ds, dwant, W, FWD_RTOL);
    }
    enum { D = 131 };
    float x[D], w[D], b[D], y[D], mean, rstd;
    double xd[D], wd[D], bd[D], yref[D], mref, rref;
    for (int k = 0; k < 4; k++) {
        fill_normal(&r, x, D, k < 2 ? 0.3 : 1.0e4, 1.5);
        fill_normal(&r, w, D, 1.0, 0.3);
        fill_normal(&r, b, D, 0.0, 0.3);
        for (int j = 0; j < D; j++)
            xd[j] = x[j], wd[j] = w[j], bd[j] = b[j];
        const int affine = k % 2;
        layernorm_ref(yref, &mref, &rref, xd, affine ? wd : NULL, affine ? bd : NULL, 1, D,
                      1e-5f);
        tfi_row_layernorm_arch(arch, y, &mean, &rstd, x, affine ? w : NULL, affine ? b : NULL,
                               D, 1e-5f);
        check_close("layernorm row", y, yref, D, FWD_RTOL);
        check_close("layernorm mean", &mean, &mref, 1, FWD_RTOL);
        check_close("layernorm rstd", &rstd, &rref, 1, FWD_RTOL);
    }
}
END_TEST

/* Theta's fast rows of every instruction set put NaN exactly where the
 * plain (libm, double) rows do, forward and backward, for every norm; the
 * finite entries agree. */
START_TEST(test_nonfinite_theta)
{
    if (!arch_runs(_i))
        return;
    const tfi_arch arch = (tfi_arch)_i;
    enum { N = 4 };
    const tf_norm_type norms[] = {TF_NORM_L2_NORM_GELU, TF_NORM_GELU_L2_NORM, TF_NORM_SOFTMAX};
    const float specials[N] = {NAN, INFINITY, -INFINITY, 1.0f};
    float A1[N * NF_N], A2[N * NF_N], S1[N * NF_N], S2[N * NF_N], R1[N], R2[N];
    float G1[N * NF_N], G2[N * NF_N];
    for (int k = 0; k < 3; k++) {
        tf_norm_type norm = norms[k];
        float tau = norm == TF_NORM_SOFTMAX ? (float)NF_N : sqrtf((float)NF_N);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < NF_N; j++)
                A1[i * NF_N + j] = j == 7 ? specials[i] : (float)((j * 5) % 11 - 5) * 0.4f;
        memcpy(A2, A1, sizeof A1);
        tfi_theta_forward_plain(norm, tau, N, NF_N, A1, S1, R1);
        tfi_theta_forward_arch(arch, norm, tau, N, NF_N, A2, S2, R2);
        for (int i = 0; i < N * NF_N; i++)
            G1[i] = G2[i] = (float)(i % 3) - 1.0f;
        tfi_theta_backward_plain(norm, tau, N, NF_N, A1, S1, R1, G1);
        tfi_theta_backward_arch(arch, norm, tau, N, NF_N, A2, S2, R2, G2);
        for (int i = 0; i < N * NF_N; i++) {
            ck_assert_msg(isnan(S1[i]) == isnan(S2[i]) && isnan(G1[i]) == isnan(G2[i]),
                          "%s row %d [%d]: plain S %g dA %g, fast S %g dA %g",
                          tf_norm_type_name(norm), i / NF_N, i % NF_N, S1[i], G1[i], S2[i],
                          G2[i]);
            if (!isnan(S1[i]))
                ck_assert_msg(fabsf(S1[i] - S2[i]) <= 1e-5f * (1.0f + fabsf(S1[i])),
                              "%s [%d]: S %g vs %g", tf_norm_type_name(norm), i, S1[i], S2[i]);
            if (!isnan(G1[i]))
                ck_assert_msg(fabsf(G1[i] - G2[i]) <= 1e-4f * (1.0f + fabsf(G1[i])),
                              "%s [%d]: dA %g vs %g", tf_norm_type_name(norm), i, G1[i], G2[i]);
        }
        /* the NaN row never comes out entirely finite */
        int nan_seen = 0;
        for (int j = 0; j < NF_N; j++)
            nan_seen |= isnan(S2[j]);
        ck_assert_msg(nan_seen, "%s: a NaN score row gave a finite output",
                      tf_norm_type_name(norm));
    }
}
END_TEST

/* ---- threads --------------------------------------------------------------- */

START_TEST(test_threads_bounded)
{
    const int saved = tf_get_num_threads();
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int bound = 4 * (int)(cpus >= 1 ? (cpus < 1024 ? cpus : 1024) : 1);
    bound = bound < 1024 ? bound : 1024;
    ck_assert_int_eq(tf_set_num_threads(500), TF_OK);
    ck_assert_int_eq(tf_get_num_threads(), 500 < bound ? 500 : bound);
    ck_assert_int_eq(tf_set_num_threads(INT_MAX), TF_OK);
    ck_assert_int_eq(tf_get_num_threads(), bound);
    tf_info info = {.struct_size = sizeof info};
    ck_assert_int_eq(tf_get_info(&info), TF_OK);
    ck_assert_int_eq(info.num_threads, bound);
    ck_assert_int_eq(tf_set_num_threads(bound - 1 > 0 ? bound - 1 : 1), TF_OK);
    ck_assert_int_eq(tf_get_num_threads(), bound - 1 > 0 ? bound - 1 : 1);
    ck_assert_int_eq(tf_set_num_threads(0), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_set_num_threads(INT_MIN), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_get_num_threads(), bound - 1 > 0 ? bound - 1 : 1);
    ck_assert_int_eq(tf_set_num_threads(saved), TF_OK);
}
END_TEST

/* Kernels big enough for parallel teams (LayerNorm N*d, GEMM m*n*k and
 * Theta N*n above their thresholds); their outputs go to out. */
enum { BK_N = 256, BK_D = 256, BK_M = 128, BK_K = 256, BK_TN = 64, BK_TS = 1024 };
#define BK_OUT (BK_N * BK_D + BK_M * BK_M + BK_TN * BK_TS)

static void big_kernels(float *out)
{
    tfi_rng r;
    tfi_rng_seed(&r, 99);
    float *x = fvec(BK_N * BK_D), *mean = fvec(BK_N), *rstd = fvec(BK_N), *R = fvec(BK_TN);
    float *A = fvec(BK_TN * BK_TS);
    fill_normal(&r, x, BK_N * BK_D, 0.1, 1.0);
    fill_normal(&r, A, BK_TN * BK_TS, 0.0, 1.0);
    tfi_layernorm_forward(out, mean, rstd, x, NULL, NULL, BK_N, BK_D, 1e-5f);
    tfi_sgemm(0, 1, BK_M, BK_M, BK_K, 1.0f, x, BK_K, x + BK_M * BK_K, BK_K, 0.0f,
              out + BK_N * BK_D, BK_M, 0);
    tfi_theta_forward(TF_NORM_L2_NORM_GELU, 32.0f, BK_TN, BK_TS, A,
                      out + BK_N * BK_D + BK_M * BK_M, R);
    free(x), free(mean), free(rstd), free(R), free(A);
}

typedef struct limited_job {
    int gate; /* read end of a pipe: the job starts when it is closed */
    float *out, *gemm3;
} limited_job;

/* Runs big_kernels, then big_kernels' GEMM asking for 3 threads, which the
 * pool must try to create there and then (the count in effect is 1). */
static void *limited_worker(void *arg)
{
    limited_job *job = arg;
    char c;
    while (read(job->gate, &c, 1) > 0)
        ;
    big_kernels(job->out);
    tfi_rng r;
    tfi_rng_seed(&r, 99);
    float *x = fvec(BK_N * BK_D);
    fill_normal(&r, x, BK_N * BK_D, 0.1, 1.0);
    tfi_sgemm(0, 1, BK_M, BK_M, BK_K, 1.0f, x, BK_K, x + BK_M * BK_K, BK_K, 0.0f, job->gemm3,
              BK_M, 3);
    free(x);
    return NULL;
}

static void *noop_thread(void *arg)
{
    return arg;
}

/* The child of test_threads_refused: exits 0 when, under a process limit
 * that refuses every new thread, tf_set_num_threads failed with a clear
 * status and changed nothing, and the kernels (and a loop asking the pool
 * for threads it cannot make) gave the one-thread results; 77 when the
 * limit cannot be applied here. */
static void refused_child(void)
{
    float *want = fvec(BK_OUT), *got = fvec(BK_OUT), *gemm3 = fvec(BK_M * BK_M);
    tf_set_num_threads(1);
    big_kernels(want);
    /* RLIMIT_NPROC does not bind root: run as nobody if we are root */
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
        _exit(77);
    /* a calling thread made before the limit; it waits for it */
    int gate[2];
    pthread_t worker, extra;
    limited_job job = {0, got, gemm3};
    if (pipe(gate) != 0)
        _exit(3);
    job.gate = gate[0];
    if (pthread_create(&worker, NULL, limited_worker, &job) != 0)
        _exit(3);
    struct rlimit rl = {1, 1};
    if (setrlimit(RLIMIT_NPROC, &rl) != 0)
        _exit(77);
    if (pthread_create(&extra, NULL, noop_thread, NULL) == 0) { /* the limit does not bite */
        pthread_join(extra, NULL);
        _exit(77);
    }
    if (tf_set_num_threads(500) != TF_ERR_NOMEM)
        _exit(4);
    if (!strstr(tf_last_error(), "refused") || tf_get_num_threads() != 1)
        _exit(5);
    close(gate[1]);
    pthread_join(worker, NULL);
    if (memcmp(want + BK_N * BK_D, gemm3, BK_M * BK_M * sizeof *gemm3) != 0)
        _exit(6);
    _exit(memcmp(want, got, BK_OUT * sizeof *got) == 0 ? 0 : 2);
}

/* Under a process limit that refuses threads, a thread count the system
 * cannot give is a status, never the end of the process (as libgomp's
 * "Thread creation failed" and exit(1) was), and the kernels still run. */
START_TEST(test_threads_refused_by_system)
{
    int errpipe[2];
    ck_assert_int_eq(pipe(errpipe), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(errpipe[1], 2);
        close(errpipe[0]);
        refused_child();
    }
    close(errpipe[1]);
    char err[4096];
    size_t len = 0;
    ssize_t got;
    while ((got = read(errpipe[0], err + len, sizeof err - 1 - len)) > 0)
        len += (size_t)got;
    err[len] = '\0';
    close(errpipe[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        fprintf(stderr, "test_threads_refused_by_system: RLIMIT_NPROC cannot refuse threads "
                        "here, skipped\n");
        return;
    }
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child %s %d; its stderr: %s", WIFEXITED(status) ? "exited" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), err);
    ck_assert_msg(strstr(err, "Thread creation failed") == NULL, "stderr: %s", err);
}
END_TEST

Suite *ops_suite(void)
{
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("kernels");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_layernorm_plain);
    tcase_add_test(tc, test_layernorm_affine);
    tcase_add_test(tc, test_layernorm_large_mean);
    tcase_add_test(tc, test_rotary_tables);
    tcase_add_test(tc, test_rotary);
    tcase_add_loop_test(tc, test_attention_forward, 0, 2);
    tcase_add_loop_test(tc, test_attention_backward_fd, 0, 2);
    tcase_add_loop_test(tc, test_attention_long, 0, 3);
    tcase_add_loop_test(tc, test_attention_rows_at_offset, 0, 2);
    tcase_add_test(tc, test_crossentropy);
    tcase_add_test(tc, test_crossentropy_large_logits);
    tcase_add_test(tc, test_threads_deterministic);
    tcase_add_test(tc, test_gemm_split);
    tcase_add_test(tc, test_transpose);
    tcase_add_loop_test(tc, test_nonfinite_elementwise, 0, TFI_ARCH_COUNT);
    tcase_add_loop_test(tc, test_nonfinite_theta, 0, TFI_ARCH_COUNT);
    tcase_add_loop_test(tc, test_vecmath_whole_range, 0, TFI_ARCH_COUNT);
    tcase_add_test(tc, test_kernel_arch_info);
    tcase_add_loop_test(tc, test_row_kernels_every_arch, 0, TFI_ARCH_COUNT);
    tcase_add_test(tc, test_threads_bounded);
    tcase_add_test(tc, test_threads_refused_by_system);
    tcase_add_loop_test(tc, test_few_rows, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}
