/*
 * optimizer.c -- AdamW with global-norm clipping and gradient
 * accumulation: its parameters, its state (the moments), their growth and
 * reset, and the step.  The learning-rate schedule it follows is
 * schedule.c's.
 *
 * The math is in tokenformer.h ("Optimizer"); it is torch.optim.AdamW after
 * torch.nn.utils.clip_grad_norm_, as shared/reference/tokenformer_ref.py
 * adamw_step.  The optimizer borrows the model: its slots mirror the model's
 * table of named tensors (model->refs), one per tensor, in the same order.
 *
 * A step allocates nothing.  The global gradient norm is summed in double
 * over a fixed partition of the tensors into chunks, and the chunk sums are
 * added in chunk order, so the norm (and every update) is the same from run
 * to run and for any number of threads.
 */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "kernels/arch.h"
#include "optimizer.h"

/* Elements per chunk of the norm reduction, and chunks per parallel pass
 * (the pass's table lives on the stack: no allocation in a step). */
#define NORM_CHUNK 16384
#define NORM_BLOCK 512

#define CHECK_OPT(o, fn)                                                           \
    do {                                                                           \
        if (!(o))                                                                  \
            return tfi_fail(NULL, TF_ERR_ARGUMENT, fn ": the optimizer is NULL"); \
    } while (0)

static size_t slot_size(int64_t rows, int64_t cols)
{
    return (size_t)rows * (size_t)(cols ? cols : 1);
}

/* ---- parameters --------------------------------------------------------- */

tf_optimizer_params tfi_optimizer_defaults(void)
{
    tf_optimizer_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.lr = 6e-4;
    p.min_lr = 6e-5;
    p.beta1 = 0.9;
    p.beta2 = 0.95;
    p.eps = 1e-8;
    p.weight_decay = 0.1;
    p.clip_grad = 1.0;
    p.warmup_steps = 0;
    p.decay_steps = 0;
    p.grad_accum_steps = 1;
    p.lr_restart = TF_LR_KEEP;
    p.lr_restart_factor = 1.0;
    return p;
}

TF_API void tf_optimizer_params_init(tf_optimizer_params *p, size_t size)
{
    tf_optimizer_params d = tfi_optimizer_defaults();
    tfi_params_init(p, size, &d, sizeof d);
}

/* Copies a caller's params struct: the fields an older one lacks keep
 * their defaults. */
static tf_status params_copy(tf_optimizer_params *dst, const tf_optimizer_params *src,
                             tfi_errbuf *eb, const char *fn)
{
    *dst = tf_optimizer_default_params();
    return tfi_params_in(dst, sizeof *dst, src, TFI_PARAMS_MIN(tf_optimizer_params, lr), fn,
                         "tf_optimizer_params", eb);
}

/* The meaningful range of every hyperparameter, in one place (the config
 * reader uses it too, to name the YAML key).  Every comparison is written
 * so that NaN fails it.  The bounds refuse values no AdamW run wants but
 * that would otherwise turn every weight into inf or flip its sign: a peak
 * lr above 1, or a decoupled decay factor 1 - lr * weight_decay below 0. */
const char *tfi_optimizer_params_invalid(const tf_optimizer_params *p, char *msg, size_t cap)
{
    if (!(p->lr > 0 && p->lr <= TFI_MAX_LR)) {
        snprintf(msg, cap, "lr (%g) must be in (0, %g]", p->lr, TFI_MAX_LR);
        return "lr";
    }
    if (!(p->min_lr >= 0 && p->min_lr <= p->lr)) {
        snprintf(msg, cap, "min_lr (%g) must be in [0, lr = %g]", p->min_lr, p->lr);
        return "min_lr";
    }
    if (!(p->beta1 >= 0 && p->beta1 < 1)) {
        snprintf(msg, cap, "beta1 (%g) must be in [0, 1)", p->beta1);
        return "beta1";
    }
    if (!(p->beta2 >= 0 && p->beta2 < 1)) {
        snprintf(msg, cap, "beta2 (%g) must be in [0, 1)", p->beta2);
        return "beta2";
    }
    if (!(p->eps > 0 && p->eps <= 1)) {
        snprintf(msg, cap, "eps (%g) must be in (0, 1]", p->eps);
        return "eps";
    }
    if (!(p->weight_decay >= 0 && p->weight_decay * p->lr <= 1)) {
        snprintf(msg, cap, "weight_decay (%g) must be >= 0 with lr * weight_decay <= 1 "
                 "(lr = %g): the decoupled decay multiplies weights by 1 - lr * weight_decay",
                 p->weight_decay, p->lr);
        return "weight_decay";
    }
    if (!(p->clip_grad >= 0 && isfinite(p->clip_grad))) {
        snprintf(msg, cap, "clip_grad (%g) must be finite and >= 0 (0 disables clipping)",
                 p->clip_grad);
        return "clip_grad";
    }
    if (!(p->warmup_steps >= 0 && p->warmup_steps <= TFI_MAX_STEPS)) {
        snprintf(msg, cap, "warmup_steps (%lld) must be in [0, %lld]",
                 (long long)p->warmup_steps, (long long)TFI_MAX_STEPS);
        return "warmup_steps";
    }
    if (!(p->decay_steps >= 0 && p->decay_steps <= TFI_MAX_STEPS)) {
        snprintf(msg, cap, "decay_steps (%lld) must be in [0, %lld]", (long long)p->decay_steps,
                 (long long)TFI_MAX_STEPS);
        return "decay_steps";
    }
    if (p->grad_accum_steps < 1) {
        snprintf(msg, cap, "grad_accum_steps (%d) must be >= 1", (int)p->grad_accum_steps);
        return "grad_accum_steps";
    }
    return NULL;
}

/* The restart fields (tf_optimizer_params.lr_restart*). */
static tf_status restart_check(const tf_optimizer_params *p, tfi_errbuf *eb, const char *fn)
{
    if (p->lr_restart != TF_LR_KEEP && p->lr_restart != TF_LR_RESTART &&
        p->lr_restart != TF_LR_CONTINUE)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown lr_restart %d", fn,
                        (int)p->lr_restart);
    if (p->lr_restart_step < 0 || p->lr_restart_warmup_steps < 0 ||
        p->lr_restart_decay_steps < 0)
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "%s: lr_restart_step, lr_restart_warmup_steps and "
                        "lr_restart_decay_steps must be >= 0", fn);
    if (p->lr_restart == TF_LR_RESTART &&
        !(p->lr_restart_lr > 0 && p->lr_restart_lr <= TFI_MAX_LR && p->lr_restart_min_lr >= 0 &&
          p->lr_restart_min_lr <= p->lr_restart_lr &&
          p->weight_decay * p->lr_restart_lr <= 1))
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "%s: the restart's peak lr_restart_lr (%g) must be in (0, %g] with "
                        "lr_restart_lr * weight_decay <= 1, its end lr_restart_min_lr (%g) in "
                        "[0, peak]", fn, p->lr_restart_lr, TFI_MAX_LR, p->lr_restart_min_lr);
    if (p->lr_restart == TF_LR_CONTINUE &&
        !(p->lr_restart_factor > 0 && p->lr_restart_factor * p->lr <= TFI_MAX_LR &&
          p->weight_decay * p->lr_restart_factor * p->lr <= 1))
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "%s: lr_restart_factor (%g) must be > 0 with lr * factor in (0, %g] and "
                        "lr * factor * weight_decay <= 1", fn, p->lr_restart_factor, TFI_MAX_LR);
    return TF_OK;
}

tf_status tfi_optimizer_params_check(const tf_optimizer_params *p, tfi_errbuf *eb,
                                     const char *fn)
{
    char msg[TFI_ERRMSG_MAX / 2];
    if (tfi_optimizer_params_invalid(p, msg, sizeof msg))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: %s", fn, msg);
    return restart_check(p, eb, fn);
}

/* ---- create / free ------------------------------------------------------ */

static void free_slots(tfi_opt_slot *slots, int n)
{
    for (int i = 0; slots && i < n; i++) {
        tfi_free(slots[i].m);
        tfi_free(slots[i].v);
    }
    tfi_free(slots);
}

TF_API tf_status tf_optimizer_create(tf_model *model, const tf_optimizer_params *params,
                                     tf_optimizer **out)
{
    if (out)
        *out = NULL;
    if (!model || !out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_optimizer_create: %s is NULL",
                        !model ? "model" : "out");
    tf_optimizer_params p;
    tf_status st = tfi_model_need_f32(model, "tf_optimizer_create");
    if (st == TF_OK)
        st = params_copy(&p, params, NULL, "tf_optimizer_create");
    if (st == TF_OK)
        st = tfi_optimizer_params_check(&p, NULL, "tf_optimizer_create");
    if (st == TF_OK && (st = tfi_model_ensure_grads(model)) != TF_OK)
        tfi_fail(NULL, st, "tf_optimizer_create: %s", model->err.msg);
    if (st != TF_OK)
        return st;

    tf_optimizer *opt = tfi_calloc(1, sizeof *opt);
    tfi_opt_slot *slots = model->nrefs ? tfi_calloc((size_t)model->nrefs, sizeof *slots) : NULL;
    int ok = opt && (slots || !model->nrefs);
    for (int i = 0; ok && i < model->nrefs; i++) {
        const tfi_tensor_ref *r = &model->refs[i];
        tfi_opt_slot *s = &slots[i];
        memcpy(s->name, r->name, sizeof s->name);
        s->name[sizeof s->name - 1] = '\0';
        s->rows = r->rows;
        s->cols = r->cols;
        size_t n = slot_size(r->rows, r->cols);
        s->m = tfi_calloc(n ? n : 1, sizeof(float));
        s->v = tfi_calloc(n ? n : 1, sizeof(float));
        ok = s->m && s->v;
    }
    if (!ok) {
        free_slots(slots, model->nrefs);
        tfi_free(opt);
        return tfi_fail(NULL, TF_ERR_NOMEM, "tf_optimizer_create: out of memory for the moments "
                        "(%lld parameters)", (long long)tf_model_num_params(model));
    }
    opt->model = model;
    opt->p = p;
    opt->step = 0;
    opt->slots = slots;
    opt->nslots = model->nrefs;
    *out = opt;
    return TF_OK;
}

TF_API void tf_optimizer_free(tf_optimizer *opt)
{
    if (!opt)
        return;
    free_slots(opt->slots, opt->nslots);
    tfi_free(opt);
}

TF_API const char *tf_optimizer_errmsg(const tf_optimizer *opt)
{
    return opt ? opt->err.msg : "the optimizer is NULL";
}

/* ---- the params in use, the step count ---------------------------------- */

void tfi_optimizer_restart_commit(tf_optimizer *opt, const tf_optimizer_params *p, int reset)
{
    opt->p = *p;
    if (!reset)
        return;
    for (int i = 0; i < opt->nslots; i++) {
        size_t n = slot_size(opt->slots[i].rows, opt->slots[i].cols);
        memset(opt->slots[i].m, 0, n * sizeof(float));
        memset(opt->slots[i].v, 0, n * sizeof(float));
    }
    opt->moments_origin = opt->step;
}

TF_API int64_t tf_optimizer_step_count(const tf_optimizer *opt)
{
    return opt ? opt->step : 0;
}

TF_API tf_status tf_optimizer_get_params(const tf_optimizer *opt, tf_optimizer_params *out)
{
    CHECK_OPT(opt, "tf_optimizer_get_params");
    if (!out)
        return tfi_fail((tfi_errbuf *)&opt->err, TF_ERR_ARGUMENT,
                        "tf_optimizer_get_params: out is NULL");
    return tfi_params_out(out, &opt->p, sizeof opt->p, TFI_PARAMS_MIN(tf_optimizer_params, lr),
                          "tf_optimizer_get_params", "tf_optimizer_params",
                          (tfi_errbuf *)&opt->err);
}

TF_API tf_status tf_optimizer_set_params(tf_optimizer *opt, const tf_optimizer_params *params)
{
    CHECK_OPT(opt, "tf_optimizer_set_params");
    if (!params)
        return tfi_fail(&opt->err, TF_ERR_ARGUMENT, "tf_optimizer_set_params: params is NULL");
    tf_optimizer_params p;
    tf_status st = params_copy(&p, params, &opt->err, "tf_optimizer_set_params");
    if (st == TF_OK)
        st = tfi_optimizer_params_check(&p, &opt->err, "tf_optimizer_set_params");
    if (st != TF_OK)
        return st;
    opt->p = p;
    return TF_OK;
}

/* ---- state -------------------------------------------------------------- */

tfi_opt_slot *tfi_optimizer_find(const tf_optimizer *opt, const char *name)
{
    if (!opt || !name)
        return NULL;
    for (int i = 0; i < opt->nslots; i++)
        if (strcmp(opt->slots[i].name, name) == 0)
            return &opt->slots[i];
    return NULL;
}

TF_API tf_status tf_optimizer_get_moment(const tf_optimizer *opt, const char *name, int which,
                                         float *dst, size_t count)
{
    CHECK_OPT(opt, "tf_optimizer_get_moment");
    tfi_errbuf *eb = (tfi_errbuf *)&opt->err;
    if (!name || !dst)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tf_optimizer_get_moment: %s is NULL",
                        !name ? "name" : "dst");
    if (which != 0 && which != 1)
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "tf_optimizer_get_moment: which is %d (0: first moment, 1: second)",
                        which);
    const tfi_opt_slot *s = tfi_optimizer_find(opt, name);
    if (!s)
        return tfi_fail(eb, TF_ERR_NOT_FOUND, "tf_optimizer_get_moment: no tensor named '%s'",
                        name);
    size_t n = slot_size(s->rows, s->cols);
    if (count != n)
        return tfi_fail(eb, TF_ERR_SHAPE,
                        "tf_optimizer_get_moment: '%s' has %zu elements, the array %zu", name, n,
                        count);
    memcpy(dst, which ? s->v : s->m, n * sizeof(float));
    return TF_OK;
}

/* The model's tensors against the slots, in name, order and shape; with
 * rows_may_grow a tensor may have more rows than its slot (a growth to
 * follow), counted in *grown.  TF_ERR_STATE naming the first difference. */
static tf_status match_layout(tf_optimizer *opt, const char *fn, int rows_may_grow, int *grown)
{
    const tf_model *m = opt->model;
    if (m->nrefs != opt->nslots)
        return tfi_fail(&opt->err, TF_ERR_STATE,
                        "%s: the model has %d tensors, the optimizer state %d", fn, m->nrefs,
                        opt->nslots);
    *grown = 0;
    for (int i = 0; i < opt->nslots; i++) {
        const tfi_tensor_ref *r = &m->refs[i];
        const tfi_opt_slot *s = &opt->slots[i];
        if (strcmp(r->name, s->name) != 0)
            return tfi_fail(&opt->err, TF_ERR_STATE,
                            "%s: model tensor %d is '%s', the optimizer's slot '%s'", fn, i,
                            r->name, s->name);
        int same = r->rows == s->rows && r->cols == s->cols;
        int followable = rows_may_grow && r->cols == s->cols && r->rows > s->rows;
        if (!same && !followable)
            return tfi_fail(&opt->err, TF_ERR_STATE,
                            "%s: '%s' is [%lld, %lld] in the model but [%lld, %lld] in the "
                            "optimizer state: %s",
                            fn, r->name, (long long)r->rows, (long long)r->cols,
                            (long long)s->rows, (long long)s->cols,
                            rows_may_grow ? "only growth in rows can be followed"
                                          : "the model was resized behind the optimizer's "
                                            "back (a Pattention set grown through its own "
                                            "handle); grow through tf_model_grow(model, opt, "
                                            "...), which grows the optimizer's moments too");
        *grown += followable;
    }
    return TF_OK;
}

tf_status tfi_optimizer_follow_model(tf_optimizer *opt)
{
    if (!opt)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tfi_optimizer_follow_model: the optimizer is NULL");
    const tf_model *m = opt->model;
    int grown;
    tf_status st = match_layout(opt, "tfi_optimizer_follow_model", 1, &grown);
    if (st != TF_OK)
        return st;
    if (!grown)
        return TF_OK;

    /* Allocate everything, then swap: a failure changes nothing. */
    float **fresh = tfi_calloc((size_t)opt->nslots * 2, sizeof *fresh);
    int ok = fresh != NULL;
    for (int i = 0; ok && i < opt->nslots; i++) {
        const tfi_tensor_ref *r = &m->refs[i];
        if (r->rows == opt->slots[i].rows)
            continue;
        size_t n = slot_size(r->rows, r->cols);
        fresh[2 * i] = tfi_calloc(n, sizeof(float));
        fresh[2 * i + 1] = tfi_calloc(n, sizeof(float));
        ok = fresh[2 * i] && fresh[2 * i + 1];
    }
    if (!ok) {
        for (int i = 0; fresh && i < 2 * opt->nslots; i++)
            tfi_free(fresh[i]);
        tfi_free(fresh);
        return tfi_fail(&opt->err, TF_ERR_NOMEM, "tfi_optimizer_follow_model: out of memory for the grown moments");
    }
    for (int i = 0; i < opt->nslots; i++) {
        tfi_opt_slot *s = &opt->slots[i];
        if (!fresh[2 * i])
            continue;
        size_t old = slot_size(s->rows, s->cols);
        /* Rows are contiguous: the old rows are the prefix; the rest stays
         * zero from calloc. */
        memcpy(fresh[2 * i], s->m, old * sizeof(float));
        memcpy(fresh[2 * i + 1], s->v, old * sizeof(float));
        tfi_free(s->m);
        tfi_free(s->v);
        s->m = fresh[2 * i];
        s->v = fresh[2 * i + 1];
        s->rows = m->refs[i].rows;
    }
    tfi_free(fresh);
    return TF_OK;
}

/* ---- the step ----------------------------------------------------------- */

/* Sums of squares of a block of chunks, in parallel, added to *total in
 * chunk order. */
typedef struct norm_block {
    const float *ptr[NORM_BLOCK];
    int64_t len[NORM_BLOCK];
    double part[NORM_BLOCK];
    int count;
} norm_block;

static void norm_chunk(void *arg, int64_t c, int worker)
{
    norm_block *b = arg;
    const float *x = b->ptr[c];
    const int64_t n = b->len[c];
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++)
        s += (double)x[j] * (double)x[j];
    b->part[c] = s;
}

static void norm_flush(norm_block *b, double *total, int nt)
{
    const int nc = b->count;
    tfi_parallel_for(nc, nt, norm_chunk, b);
    for (int c = 0; c < nc; c++)
        *total += b->part[c];
    b->count = 0;
}

/* Sum of squares of all gradients, in double.  Chunks never span tensors;
 * they are taken NORM_BLOCK at a time, each block's chunks in parallel, and
 * the chunk sums are added in chunk order: the result does not depend on
 * the number of threads or on scheduling. */
static double grad_sumsq(const tfi_tensor_ref *refs, int nrefs, int nt)
{
    norm_block b; /* ~12 KB of stack: no allocation in a step */
    b.count = 0;
    double total = 0.0;
    for (int i = 0; i < nrefs; i++) {
        const int64_t n = (int64_t)slot_size(refs[i].rows, refs[i].cols);
        for (int64_t off = 0; off < n; off += NORM_CHUNK) {
            b.ptr[b.count] = refs[i].grad + off;
            b.len[b.count] = n - off < NORM_CHUNK ? n - off : NORM_CHUNK;
            if (++b.count == NORM_BLOCK)
                norm_flush(&b, &total, nt);
        }
    }
    if (b.count)
        norm_flush(&b, &total, nt);
    return total;
}

/* The constants of one step: gscale = clip coefficient / accumulation. */
typedef struct step_consts {
    double gscale, b1, b2, decay, step_size, sqrt_bc2, eps;
} step_consts;

/* Elements per parallel work item of the update. */
#define UPDATE_CHUNK 8192

/* One element of AdamW, in double (the stored state is float): the one
 * definition of the update, used by the check and by the apply pass. */
#define ADAMW_ELEMENT(j)                                                   \
    double gj = (double)g[j] * gscale;                                     \
    double mj = b1 * (double)m[j] + (1.0 - b1) * gj;                       \
    double vj = b2 * (double)v[j] + (1.0 - b2) * gj * gj;                  \
    double pj = (double)p[j] * dec;                                        \
    pj -= step_size * mj / (sqrt(vj) / sqrt_bc2 + eps)

/* Whether AdamW on elements [lo, hi) would store a value that float cannot
 * hold (or NaN): read only, so that a step can be refused whole.  Finite
 * gradients and state do not guarantee a finite result: a huge step size,
 * or moments near FLT_MAX, overflow in the conversion to float. */
static inline TFI_BODY void adamw_check_body(const float *restrict p, const float *restrict g,
                                             const float *restrict m, const float *restrict v,
                                             int64_t lo, int64_t hi, double dec,
                                             const step_consts *k, int *out)
{
    const double gscale = k->gscale, b1 = k->b1, b2 = k->b2, step_size = k->step_size;
    const double sqrt_bc2 = k->sqrt_bc2, eps = k->eps;
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t j = lo; j < hi; j++) {
        ADAMW_ELEMENT(j);
        /* written so that NaN counts as out of range */
        bad |= !(fabs(pj) <= FLT_MAX) | !(fabs(mj) <= FLT_MAX) | !(vj <= FLT_MAX);
    }
    *out = bad;
}

/* AdamW on elements [lo, hi) of one tensor; zeroes their gradient.  The
 * loop vectorises once sqrt may be a plain instruction: GCC needs
 * -fno-math-errno for that (a function attribute does not reach the
 * builtin); the results are the same either way, sqrt being correctly
 * rounded. */
static inline TFI_BODY void adamw_apply_body(float *restrict p, float *restrict g,
                                             float *restrict m, float *restrict v, int64_t lo,
                                             int64_t hi, double dec, const step_consts *k)
{
    const double gscale = k->gscale, b1 = k->b1, b2 = k->b2, step_size = k->step_size;
    const double sqrt_bc2 = k->sqrt_bc2, eps = k->eps;
#pragma omp simd
    for (int64_t j = lo; j < hi; j++) {
        ADAMW_ELEMENT(j);
        m[j] = (float)mj;
        v[j] = (float)vj;
        p[j] = (float)pj;
        g[j] = 0.0f;
    }
}

/* Both compiled per instruction set (kernels/arch.h).  The element's math
 * is the same in each; where the set has FMA the compiler fuses its
 * multiply-adds, so the double results may differ in the last bit between
 * sets, and the floats stored only when that bit decides a rounding. */
TFI_ARCH_VARIANTS(adamw_check,
                  (const float *restrict p, const float *restrict g, const float *restrict m,
                   const float *restrict v, int64_t lo, int64_t hi, double dec,
                   const step_consts *k, int *out),
                  (p, g, m, v, lo, hi, dec, k, out));
TFI_ARCH_VARIANTS(adamw_apply,
                  (float *restrict p, float *restrict g, float *restrict m, float *restrict v,
                   int64_t lo, int64_t hi, double dec, const step_consts *k),
                  (p, g, m, v, lo, hi, dec, k));

static int adamw_range_overflows(const float *p, const float *g, const float *m, const float *v,
                                 int64_t lo, int64_t hi, double dec, const step_consts *k)
{
    int bad;
    adamw_check_variants[tfi_arch_active()](p, g, m, v, lo, hi, dec, k, &bad);
    return bad;
}

static void adamw_range(float *p, float *g, float *m, float *v, int64_t lo, int64_t hi,
                        double dec, const step_consts *k)
{
    adamw_apply_variants[tfi_arch_active()](p, g, m, v, lo, hi, dec, k);
}

/* Runs AdamW over one tensor: check_only tests every element (returns 1 if
 * any would overflow) and writes nothing; otherwise it applies the update. */
typedef struct update_loop {
    float *p, *g, *m, *v;
    int64_t n;
    double dec;
    const step_consts *k;
    int check_only;
    atomic_int bad;
} update_loop;

static void update_chunk(void *arg, int64_t c, int worker)
{
    update_loop *u = arg;
    int64_t lo = c * UPDATE_CHUNK, hi = lo + UPDATE_CHUNK < u->n ? lo + UPDATE_CHUNK : u->n;
    if (!u->check_only)
        adamw_range(u->p, u->g, u->m, u->v, lo, hi, u->dec, u->k);
    else if (adamw_range_overflows(u->p, u->g, u->m, u->v, lo, hi, u->dec, u->k))
        atomic_store_explicit(&u->bad, 1, memory_order_relaxed);
}

static int update_tensor(float *p, float *g, float *m, float *v, int64_t n, int decay,
                         const step_consts *k, int nt, int check_only)
{
    update_loop u = {p, g, m, v, n, decay ? k->decay : 1.0, k, check_only, 0};
    tfi_parallel_for((n + UPDATE_CHUNK - 1) / UPDATE_CHUNK, nt, update_chunk, &u);
    return atomic_load(&u.bad);
}

TF_API tf_status tf_optimizer_step(tf_optimizer *opt, float *grad_norm)
{
    CHECK_OPT(opt, "tf_optimizer_step");
    int grown;
    tf_status st = tfi_model_need_f32(opt->model, "tf_optimizer_step");
    if (st != TF_OK)
        return tfi_fail(&opt->err, st, "%s", opt->model->err.msg);
    st = match_layout(opt, "tf_optimizer_step", 0, &grown);
    /* allocated by tf_optimizer_create already: a no-op that keeps the
     * loops below free of NULL checks */
    if (st == TF_OK && (st = tfi_model_ensure_grads(opt->model)) != TF_OK)
        tfi_fail(&opt->err, st, "tf_optimizer_step: %s", opt->model->err.msg);
    if (st != TF_OK)
        return st;
    const tf_model *model = opt->model;
    const tf_optimizer_params *p = &opt->p;
    const int nt = tfi_num_threads();

    if (opt->step >= TFI_MAX_STEPS)
        return tfi_fail(&opt->err, TF_ERR_RANGE,
                        "tf_optimizer_step: the step count (%lld) is at its bound %lld",
                        (long long)opt->step, (long long)TFI_MAX_STEPS);

    const double accum = (double)p->grad_accum_steps;
    double norm = sqrt(grad_sumsq(model->refs, model->nrefs, nt)) / accum;
    if (!(norm <= FLT_MAX))
        return tfi_fail(&opt->err, TF_ERR_NONFINITE,
                        "tf_optimizer_step: the gradient norm is not finite in float (%g): "
                        "a NaN, an infinity or an overflow in the gradients; nothing was "
                        "changed and the gradients are kept", norm);
    double coef = 1.0;
    if (p->clip_grad > 0) {
        coef = p->clip_grad / (norm + 1e-6);
        if (coef > 1.0)
            coef = 1.0;
    }

    const int64_t t = opt->step + 1, k_bc = t - opt->moments_origin;
    const double lr = tfi_lr_at(p, t);
    const double bc1 = 1.0 - pow(p->beta1, (double)k_bc);
    const double bc2 = 1.0 - pow(p->beta2, (double)k_bc);
    step_consts k = {
        .gscale = coef / accum,
        .b1 = p->beta1,
        .b2 = p->beta2,
        .decay = 1.0 - lr * p->weight_decay,
        .step_size = lr / bc1,
        .sqrt_bc2 = sqrt(bc2),
        .eps = p->eps,
    };
    /* Two passes: the first only checks, so that an update that would
     * leave a non-finite weight or moment is refused with nothing changed. */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < model->nrefs; i++) {
            const tfi_tensor_ref *r = &model->refs[i];
            tfi_opt_slot *s = &opt->slots[i];
            if (update_tensor(r->data, r->grad, s->m, s->v,
                              (int64_t)slot_size(r->rows, r->cols), r->decay, &k, nt,
                              pass == 0))
                return tfi_fail(&opt->err, TF_ERR_NONFINITE,
                                "tf_optimizer_step: step %lld would make '%s' (or its "
                                "moments) non-finite (lr %g, gradient norm %g); nothing was "
                                "changed and the gradients are kept",
                                (long long)t, r->name, lr, norm);
        }
    opt->step = t;
    for (int i = 0; i < opt->model->p.num_layers * TFI_SETS_PER_LAYER; i++)
        tfi_pattention_ramp_advance(&opt->model->sets[i], t);
    if (grad_norm)
        *grad_norm = (float)norm;
    return TF_OK;
}
