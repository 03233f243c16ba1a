/* test_optimizer.c -- AdamW: the fixtures' first step, the schedule,
 * gradient accumulation, weight-decay groups, non-finite gradients, state
 * growth, the config keys, misuse, and a model that must learn. */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "model.h"
#include "optimizer.h"
#include "testutil.h"
#include "tokenformer.h"

/* ---- helpers ----------------------------------------------------------- */

static float *st_read(tfi_st_file *f, const char *name, size_t *count)
{
    const tfi_st_tensor *t = tfi_st_find(f, name);
    ck_assert_msg(t != NULL, "fixture lacks %s", name);
    float *buf = malloc((size_t)t->numel * sizeof(float));
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(tfi_st_read_f32(f, name, buf, (size_t)t->numel, NULL), TF_OK);
    if (count)
        *count = (size_t)t->numel;
    return buf;
}

static const char *meta(tfi_st_file *f, const char *key)
{
    const char *v = tfi_st_meta(f, key);
    ck_assert_msg(v != NULL, "fixture lacks metadata %s", key);
    return v;
}

static size_t ref_count(const tfi_tensor_ref *r)
{
    return (size_t)r->rows * (size_t)(r->cols ? r->cols : 1);
}

/* A model with the fixture's config, parameters and (stored) gradients. */
static tf_model *fixture_model(tfi_st_file *f)
{
    tf_model_params mp = tf_model_default_params();
    mp.num_layers = atoi(meta(f, "num_layers"));
    mp.hidden_size = atoi(meta(f, "hidden_size"));
    mp.num_attention_heads = atoi(meta(f, "num_attention_heads"));
    mp.qkv_slot_num = atoll(meta(f, "qkv_slot_num"));
    mp.proj_slot_num = atoll(meta(f, "proj_slot_num"));
    mp.ffn_slot_num = atoll(meta(f, "ffn_slot_num"));
    mp.rotary_pct = atof(meta(f, "rotary_pct"));
    mp.rotary_emb_base = atof(meta(f, "rotary_emb_base"));
    mp.vocab_size = atoll(meta(f, "vocab_size"));
    mp.seq_length = atoll(meta(f, "seq_length"));
    mp.layernorm_epsilon = atof(meta(f, "layernorm_epsilon"));
    const char *norm = meta(f, "norm_activation_type");
    mp.norm = strcmp(norm, "softmax") == 0        ? TF_NORM_SOFTMAX
              : strcmp(norm, "gelu_l2_norm") == 0 ? TF_NORM_GELU_L2_NORM
                                                  : TF_NORM_L2_NORM_GELU;
    tf_model *m = NULL;
    ck_assert_msg(tf_model_create(&mp, &m) == TF_OK, "%s", tf_last_error());
    ck_assert_int_eq(tfi_model_ensure_grads(m), TF_OK); /* written directly below */
    char gname[128];
    for (int i = 0; i < m->nrefs; i++) {
        const tfi_tensor_ref *r = &m->refs[i];
        size_t n;
        float *p = st_read(f, r->name, &n);
        ck_assert_uint_eq(n, ref_count(r));
        ck_assert_int_eq(tf_model_set_tensor(m, r->name, p, n), TF_OK);
        free(p);
        snprintf(gname, sizeof gname, "grad.%s", r->name);
        ck_assert_int_eq(tfi_st_read_f32(f, gname, r->grad, n, NULL), TF_OK);
    }
    return m;
}

static tf_optimizer_params fixture_opt_params(tfi_st_file *f)
{
    tf_optimizer_params p = tf_optimizer_default_params();
    p.lr = atof(meta(f, "lr"));
    p.min_lr = 0.0;
    p.beta1 = atof(meta(f, "beta1"));
    p.beta2 = atof(meta(f, "beta2"));
    p.eps = atof(meta(f, "eps"));
    p.weight_decay = atof(meta(f, "weight_decay"));
    p.clip_grad = atof(meta(f, "clip_grad"));
    return p;
}

/* A small model for the learning tests. */
static tf_model *small_model(int d, int L, int64_t slots, int64_t vocab, int64_t seq,
                             uint64_t seed)
{
    tf_model_params mp = tf_model_default_params();
    mp.num_layers = L;
    mp.hidden_size = d;
    mp.num_attention_heads = 2;
    mp.qkv_slot_num = slots;
    mp.proj_slot_num = slots;
    mp.ffn_slot_num = 2 * slots;
    mp.vocab_size = vocab;
    mp.seq_length = seq;
    mp.seed = seed;
    tf_model *m = NULL;
    ck_assert_msg(tf_model_create(&mp, &m) == TF_OK, "%s", tf_last_error());
    return m;
}

static void random_tokens(int32_t *x, size_t n, int64_t vocab, uint64_t seed)
{
    tfi_rng r;
    tfi_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++)
        x[i] = (int32_t)(tfi_rng_next(&r) % (uint64_t)vocab);
}

/* All parameters of a model, concatenated in table order. */
static float *snapshot(tf_model *m, size_t *total)
{
    size_t n = 0;
    for (int i = 0; i < m->nrefs; i++)
        n += ref_count(&m->refs[i]);
    float *buf = malloc(n * sizeof(float)), *p = buf;
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < m->nrefs; i++) {
        memcpy(p, m->refs[i].data, ref_count(&m->refs[i]) * sizeof(float));
        p += ref_count(&m->refs[i]);
    }
    if (total)
        *total = n;
    return buf;
}

/* ---- (1) the fixtures' first step ---------------------------------------- */

static const char *const fixture_files[] = {"tests/data/model_tiny.safetensors",
                                            "tests/data/model_softmax.safetensors"};

START_TEST(test_fixture_step1)
{
    tfi_st_file f;
    ck_assert_msg(tfi_st_open(fixture_files[_i], &f, NULL) == TF_OK, "%s", tf_last_error());
    tf_model *m = fixture_model(&f);
    tf_optimizer_params op = fixture_opt_params(&f);
    tf_optimizer *opt = NULL;
    ck_assert_msg(tf_optimizer_create(m, &op, &opt) == TF_OK, "%s", tf_last_error());
    ck_assert_int_eq(tf_optimizer_step_count(opt), 0);
    ck_assert(tf_optimizer_lr_at(opt, 1) == op.lr);

    float norm = -1.0f;
    ck_assert_msg(tf_optimizer_step(opt, &norm) == TF_OK, "%s", tf_optimizer_errmsg(opt));
    ck_assert_int_eq(tf_optimizer_step_count(opt), 1);
    float ref_norm;
    ck_assert_int_eq(tfi_st_read_f32(&f, "grad_norm", &ref_norm, 1, NULL), TF_OK);
    ck_assert_msg(ref_norm > op.clip_grad, "the fixture should exercise clipping");
    ck_assert_msg(fabs(norm - ref_norm) <= 2e-4 * fabs(ref_norm), "grad_norm %.9g vs %.9g", norm,
                  ref_norm);

    char name[128];
    for (int i = 0; i < m->nrefs; i++) {
        const tfi_tensor_ref *r = &m->refs[i];
        size_t n = ref_count(r);
        snprintf(name, sizeof name, "step1.%s", r->name);
        float *want = st_read(&f, name, NULL);
        double err = tt_rel_err(r->data, want, n);
        ck_assert_msg(err <= 1e-5, "%s: %s err %g", fixture_files[_i], r->name, err);
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(r->grad[j] == 0.0f, "%s: gradient not zeroed", r->name);
        /* First moments are (1 - beta1) c g: nonzero somewhere. */
        float *mom = malloc(n * sizeof(float));
        ck_assert_int_eq(tf_optimizer_get_moment(opt, r->name, 0, mom, n), TF_OK);
        int nonzero = 0;
        for (size_t j = 0; j < n; j++)
            nonzero |= mom[j] != 0.0f;
        ck_assert_msg(nonzero, "%s: first moment all zero", r->name);
        free(mom);
        free(want);
    }
    tf_optimizer_free(opt);
    tf_model_free(m);
    tfi_st_close(&f);
}
END_TEST

/* The norm and the step do not depend on the number of threads. */
START_TEST(test_deterministic_across_threads)
{
    int saved = tf_get_num_threads();
    float *result[2];
    float norms[2];
    size_t total = 0;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(tf_set_num_threads(k == 0 ? 1 : 5), TF_OK);
        tfi_st_file f;
        ck_assert_int_eq(tfi_st_open(fixture_files[0], &f, NULL), TF_OK);
        tf_model *m = fixture_model(&f);
        tf_optimizer_params op = fixture_opt_params(&f);
        tf_optimizer *opt = NULL;
        ck_assert_int_eq(tf_optimizer_create(m, &op, &opt), TF_OK);
        ck_assert_int_eq(tf_optimizer_step(opt, &norms[k]), TF_OK);
        result[k] = snapshot(m, &total);
        tf_optimizer_free(opt);
        tf_model_free(m);
        tfi_st_close(&f);
    }
    ck_assert_int_eq(tf_set_num_threads(saved), TF_OK);
    ck_assert_msg(norms[0] == norms[1], "norm %.9g vs %.9g", norms[0], norms[1]);
    ck_assert(memcmp(result[0], result[1], total * sizeof(float)) == 0);
    free(result[0]);
    free(result[1]);
}
END_TEST

/* ---- (2) the schedule ----------------------------------------------------- */

START_TEST(test_schedule)
{
    tf_model *m = small_model(16, 1, 8, 32, 8, 1);
    tf_optimizer_params p = tf_optimizer_default_params();
    p.lr = 1e-3;
    p.min_lr = 1e-4;
    p.warmup_steps = 10;
    p.decay_steps = 110;
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, &p, &opt), TF_OK);
    const double tol = 1e-15;
    /* warmup: linear from lr/10 to lr */
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 1), 1e-4, tol);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 5), 5e-4, tol);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 10), 1e-3, tol);
    /* cosine over (10, 110]: just below lr, midpoint, end, after */
    double a = tf_optimizer_lr_at(opt, 11);
    ck_assert(a < 1e-3 && a > 0.999e-3);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 60), (1e-3 + 1e-4) / 2, tol);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 35),
                            1e-4 + 0.9e-3 * 0.5 * (1 + cos(M_PI * 0.25)), tol);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 110), 1e-4, tol);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 111), 1e-4, tol);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 1000000), 1e-4, tol);
    /* monotone after warmup */
    for (int64_t t = 11; t <= 120; t++)
        ck_assert(tf_optimizer_lr_at(opt, t) <= tf_optimizer_lr_at(opt, t - 1) || t <= 10);
    /* t < 1 is not a step */
    ck_assert(tf_optimizer_lr_at(opt, 0) == 0.0);
    ck_assert(tf_optimizer_lr_at(NULL, 5) == 0.0);
    /* the schedule without an optimizer is the same function, bit for bit */
    for (int64_t t = 0; t <= 120; t++)
        ck_assert(tf_schedule_lr(&p, t) == tf_optimizer_lr_at(opt, t));
    ck_assert(isnan(tf_schedule_lr(NULL, 5)));
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "tf_schedule_lr"));
    tf_optimizer_params bad = p;
    bad.struct_size = offsetof(tf_optimizer_params, decay_steps); /* too short */
    ck_assert(isnan(tf_schedule_lr(&bad, 5)));

    /* no decay: constant after warmup */
    p.decay_steps = 0;
    ck_assert_int_eq(tf_optimizer_set_params(opt, &p), TF_OK);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 5), 5e-4, tol);
    ck_assert(tf_optimizer_lr_at(opt, 11) == 1e-3);
    ck_assert(tf_optimizer_lr_at(opt, 500000) == 1e-3);
    /* decay_steps <= warmup_steps: also constant */
    p.decay_steps = 10;
    ck_assert_int_eq(tf_optimizer_set_params(opt, &p), TF_OK);
    ck_assert(tf_optimizer_lr_at(opt, 11) == 1e-3);
    /* no warmup, cosine from step 1 */
    p.warmup_steps = 0;
    p.decay_steps = 100;
    ck_assert_int_eq(tf_optimizer_set_params(opt, &p), TF_OK);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 50), (1e-3 + 1e-4) / 2, tol);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 100), 1e-4, tol);
    tf_optimizer_params q;
    q.struct_size = sizeof q;
    ck_assert_int_eq(tf_optimizer_get_params(opt, &q), TF_OK);
    ck_assert(q.decay_steps == 100 && q.warmup_steps == 0 && q.lr == 1e-3);

    /* the step uses the schedule: with zero gradients a decayed tensor is
     * scaled by 1 - lr_t wd at lr_t = lr_at(step) */
    p.warmup_steps = 4;
    p.decay_steps = 0;
    ck_assert_int_eq(tf_optimizer_set_params(opt, &p), TF_OK);
    tf_model_zero_grad(m);
    const tfi_tensor_ref *emb = &m->refs[0];
    float before = emb->data[3];
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    double lr1 = tf_optimizer_lr_at(opt, 1);
    ck_assert_double_eq_tol(lr1, 2.5e-4, tol);
    ck_assert(emb->data[3] == (float)((double)before * (1.0 - lr1 * p.weight_decay)));
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- (3) gradient accumulation -------------------------------------------- */

START_TEST(test_grad_accumulation)
{
    const int k = 3, B = 2, T = 8;
    const int64_t V = 48;
    tf_model *ma = small_model(32, 1, 16, V, T, 11);
    tf_model *mb = small_model(32, 1, 16, V, T, 11);
    int32_t tokens[6 * 8], targets[6 * 8];
    random_tokens(tokens, sizeof tokens / sizeof tokens[0], V, 5);
    random_tokens(targets, sizeof targets / sizeof targets[0], V, 6);

    tf_optimizer_params p = tf_optimizer_default_params();
    p.lr = 1e-3;
    p.grad_accum_steps = k;
    tf_optimizer *oa = NULL, *ob = NULL;
    ck_assert_int_eq(tf_optimizer_create(ma, &p, &oa), TF_OK);
    p.grad_accum_steps = 1;
    ck_assert_int_eq(tf_optimizer_create(mb, &p, &ob), TF_OK);

    float loss;
    for (int i = 0; i < k; i++) {
        ck_assert_int_eq(tf_model_forward(ma, B, T, tokens + i * B * T, targets + i * B * T,
                                          NULL, &loss), TF_OK);
        ck_assert_int_eq(tf_model_backward(ma), TF_OK);
    }
    ck_assert_int_eq(tf_model_forward(mb, k * B, T, tokens, targets, NULL, &loss), TF_OK);
    ck_assert_int_eq(tf_model_backward(mb), TF_OK);

    /* mean of the micro-batch gradients == the big batch's gradient */
    ck_assert_int_eq(ma->nrefs, mb->nrefs);
    for (int i = 0; i < ma->nrefs; i++) {
        size_t n = ref_count(&ma->refs[i]);
        float *avg = malloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++)
            avg[j] = ma->refs[i].grad[j] / (float)k;
        double err = tt_rel_err(avg, mb->refs[i].grad, n);
        ck_assert_msg(err <= 1e-5, "%s: accumulated gradient err %g", ma->refs[i].name, err);
        free(avg);
    }
    float *gb = snapshot(mb, NULL); /* for the small-gradient mask below */
    {
        size_t off = 0;
        for (int i = 0; i < mb->nrefs; i++) {
            memcpy(gb + off, mb->refs[i].grad, ref_count(&mb->refs[i]) * sizeof(float));
            off += ref_count(&mb->refs[i]);
        }
    }

    float na, nb;
    ck_assert_int_eq(tf_optimizer_step(oa, &na), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(ob, &nb), TF_OK);
    ck_assert_msg(fabsf(na - nb) <= 1e-5f * nb, "norms %.9g vs %.9g", na, nb);

    /* Parameters agree; Adam's first update is ~ lr sign(g), so where |g|
     * is near eps float noise may move it by up to 2 lr: those entries are
     * only held to that bound. */
    size_t total;
    float *pa = snapshot(ma, &total), *pb = snapshot(mb, NULL);
    double scale = 0;
    for (size_t j = 0; j < total; j++)
        scale = fmax(scale, fabs(pb[j]));
    for (size_t j = 0; j < total; j++) {
        double d = fabs((double)pa[j] - (double)pb[j]);
        if (fabsf(gb[j]) >= 1e-6f)
            ck_assert_msg(d <= 1e-6 * scale, "entry %zu: %.9g vs %.9g (g %g)", j, pa[j], pb[j],
                          gb[j]);
        else
            ck_assert(d <= 2.01 * p.lr);
    }
    free(pa);
    free(pb);
    free(gb);
    tf_optimizer_free(oa);
    tf_optimizer_free(ob);
    tf_model_free(ma);
    tf_model_free(mb);
}
END_TEST

/* ---- (4) weight decay groups ---------------------------------------------- */

START_TEST(test_weight_decay_groups)
{
    tf_model *m = small_model(32, 2, 16, 64, 8, 3);
    /* a randomised final norm, so that "unchanged" means something */
    float w[32], b[32];
    for (int i = 0; i < 32; i++) {
        w[i] = 1.0f + 0.01f * (float)i;
        b[i] = 0.05f * (float)(i - 16);
    }
    ck_assert_int_eq(tf_model_set_tensor(m, "final_norm.weight", w, 32), TF_OK);
    ck_assert_int_eq(tf_model_set_tensor(m, "final_norm.bias", b, 32), TF_OK);
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    size_t total;
    float *before = snapshot(m, &total);

    tf_optimizer_params p = tf_optimizer_default_params();
    p.lr = 0.01;
    p.weight_decay = 0.1;
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, &p, &opt), TF_OK);
    float norm = -1;
    ck_assert_int_eq(tf_optimizer_step(opt, &norm), TF_OK);
    ck_assert(norm == 0.0f);
    const double factor = 1.0 - 0.01 * 0.1;
    size_t off = 0;
    int decayed = 0, kept = 0;
    for (int i = 0; i < m->nrefs; i++) {
        const tfi_tensor_ref *r = &m->refs[i];
        int is_norm = strncmp(r->name, "final_norm.", 11) == 0;
        ck_assert_int_eq(r->decay, !is_norm);
        for (size_t j = 0; j < ref_count(r); j++) {
            float old = before[off + j];
            if (is_norm)
                ck_assert_msg(r->data[j] == old, "%s changed", r->name);
            else
                ck_assert_msg(r->data[j] == (float)((double)old * factor),
                              "%s[%zu]: %.9g, want %.9g", r->name, j, r->data[j],
                              (float)((double)old * factor));
        }
        decayed += !is_norm;
        kept += is_norm;
        off += ref_count(r);
    }
    ck_assert_int_eq(kept, 2);
    ck_assert_int_eq(decayed, m->nrefs - 2);

    /* weight_decay 0: nothing moves at all */
    p.weight_decay = 0;
    ck_assert_int_eq(tf_optimizer_set_params(opt, &p), TF_OK);
    float *mid = snapshot(m, NULL);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    float *after = snapshot(m, NULL);
    ck_assert(memcmp(mid, after, total * sizeof(float)) == 0);
    ck_assert_int_eq(tf_optimizer_step_count(opt), 2);
    free(before);
    free(mid);
    free(after);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- (5) non-finite gradients --------------------------------------------- */

START_TEST(test_nonfinite_gradient)
{
    tf_model *m = small_model(32, 1, 16, 64, 8, 4);
    int32_t tok[16], tgt[16];
    random_tokens(tok, 16, 64, 1);
    random_tokens(tgt, 16, 64, 2);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(tf_model_forward(m, 2, 8, tok, tgt, NULL, NULL), TF_OK);
        ck_assert_int_eq(tf_model_backward(m), TF_OK);
        size_t total;
        float *before = snapshot(m, &total);
        tfi_tensor_ref *r = &m->refs[1 + k];
        r->grad[5] = bad[k];
        float g6 = r->grad[6];
        float norm = 123.0f;
        ck_assert_int_eq(tf_optimizer_step(opt, &norm), TF_ERR_NONFINITE);
        ck_assert(norm == 123.0f);
        ck_assert_ptr_nonnull(strstr(tf_optimizer_errmsg(opt), "finite"));
        ck_assert_str_eq(tf_last_error(), tf_optimizer_errmsg(opt));
        float *after = snapshot(m, NULL);
        ck_assert(memcmp(before, after, total * sizeof(float)) == 0);
        /* the gradients are kept for inspection, the state is untouched */
        ck_assert(!isfinite(r->grad[5]) && r->grad[6] == g6);
        ck_assert_int_eq(tf_optimizer_step_count(opt), 0);
        size_t n = ref_count(r);
        float *mom = malloc(n * sizeof(float));
        for (int which = 0; which < 2; which++) {
            ck_assert_int_eq(tf_optimizer_get_moment(opt, r->name, which, mom, n), TF_OK);
            for (size_t j = 0; j < n; j++)
                ck_assert(mom[j] == 0.0f);
        }
        free(mom);
        free(before);
        free(after);
        ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    }
    /* after zeroing, steps work again */
    ck_assert_int_eq(tf_model_forward(m, 2, 8, tok, tgt, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    ck_assert_int_eq(tf_optimizer_step_count(opt), 1);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* An update that overflows float is refused whole, even with finite
 * gradients: here the second moments are near FLT_MAX, so v' = b2 v + ...
 * does not fit; and a gradient norm beyond FLT_MAX is non-finite too. */
START_TEST(test_nonfinite_update_refused)
{
    tf_model *m = small_model(32, 1, 16, 64, 8, 4);
    int32_t tok[16], tgt[16];
    random_tokens(tok, 16, 64, 1);
    random_tokens(tgt, 16, 64, 2);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    ck_assert_int_eq(tf_model_forward(m, 2, 8, tok, tgt, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    /* the last tensor's moments, so that the refusal comes after earlier
     * tensors were checked: nothing may have been written to them */
    tfi_tensor_ref *last = &m->refs[m->nrefs - 1];
    tfi_opt_slot *sl = &opt->slots[m->nrefs - 1];
    last->grad[0] = 1e20f; /* finite; (1 - beta2) times its square is not a float */
    size_t total;
    float *before = snapshot(m, &total);
    float *g0 = malloc(ref_count(&m->refs[0]) * sizeof(float));
    memcpy(g0, m->refs[0].grad, ref_count(&m->refs[0]) * sizeof(float));
    opt->p.clip_grad = 0; /* no clipping: the gradient reaches the moments as it is */
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_ERR_NONFINITE);
    ck_assert_msg(strstr(tf_optimizer_errmsg(opt), last->name) != NULL, "%s",
                  tf_optimizer_errmsg(opt));
    float *after = snapshot(m, NULL);
    ck_assert(memcmp(before, after, total * sizeof(float)) == 0);
    ck_assert(memcmp(g0, m->refs[0].grad, ref_count(&m->refs[0]) * sizeof(float)) == 0);
    ck_assert_int_eq(tf_optimizer_step_count(opt), 0);
    ck_assert(sl->v[0] == 0.0f && sl->m[0] == 0.0f);

    /* a norm that is finite in double but not in float */
    last->grad[0] = 3e38f;
    last->grad[1] = 3e38f;
    float norm = 5.0f;
    ck_assert_int_eq(tf_optimizer_step(opt, &norm), TF_ERR_NONFINITE);
    ck_assert(norm == 5.0f);
    ck_assert_int_eq(tf_optimizer_step_count(opt), 0);
    free(before);
    free(after);
    free(g0);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* The step count stops at its bound instead of overflowing. */
START_TEST(test_step_count_bound)
{
    tf_model *m = small_model(16, 1, 8, 32, 8, 1);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    opt->step = INT64_MAX;
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_ERR_RANGE);
    ck_assert_int_eq(tf_optimizer_step_count(opt), INT64_MAX);
    opt->step = TFI_MAX_STEPS - 1;
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    ck_assert_int_eq(tf_optimizer_step_count(opt), TFI_MAX_STEPS);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_ERR_RANGE);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- (6) following growth ------------------------------------------------- */

/* The model's table of named tensors is right at the moment a borrowed set
 * grows, before any call on the model: nothing refreshes it later. */
START_TEST(test_table_follows_set_growth)
{
    tf_model *m = small_model(16, 2, 8, 32, 8, 3);
    const tfi_tensor_ref before = *tfi_model_set_ref(m, 1 * TFI_SETS_PER_LAYER + TF_SET_PROJ);
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < TFI_SETS_PER_LAYER; k++) {
            tf_pattention *set = tf_model_pattention(m, l, (tf_set_kind)k);
            ck_assert_int_eq(tf_pattention_grow(set, tf_pattention_n(set) + 1 + k + l, NULL),
                             TF_OK);
            const int i = l * TFI_SETS_PER_LAYER + k;
            const tfi_tensor_ref *kr = tfi_model_set_ref(m, i), *vr = kr + 1;
            ck_assert_ptr_eq(kr->data, set->keys);
            ck_assert_ptr_eq(kr->grad, set->key_grad);
            ck_assert_ptr_eq(vr->data, set->values);
            ck_assert_ptr_eq(vr->grad, set->value_grad);
            ck_assert_int_eq(kr->rows, set->n);
            ck_assert_int_eq(vr->rows, set->n);
            ck_assert_ptr_nonnull(strstr(kr->name, ".key_param_tokens"));
            ck_assert_ptr_nonnull(strstr(vr->name, ".value_param_tokens"));
        }
    ck_assert(tfi_model_set_ref(m, TFI_SETS_PER_LAYER + TF_SET_PROJ)->data != before.data);
    /* the slot numbers follow the layer-0 sets */
    ck_assert_int_eq(m->p.qkv_slot_num, 8 + 1);
    ck_assert_int_eq(m->p.proj_slot_num, 8 + 1 + TF_SET_PROJ);
    ck_assert_int_eq(m->p.ffn_slot_num, 16 + 1 + TF_SET_FFN);
    tf_model_free(m);
}
END_TEST

START_TEST(test_follow_model_growth)
{
    const int L = 2;
    tf_model *m = small_model(32, L, 12, 64, 8, 7);
    int32_t tok[16], tgt[16];
    random_tokens(tok, 16, 64, 3);
    random_tokens(tgt, 16, 64, 4);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    for (int s = 0; s < 2; s++) {
        ck_assert_int_eq(tf_model_forward(m, 2, 8, tok, tgt, NULL, NULL), TF_OK);
        ck_assert_int_eq(tf_model_backward(m), TF_OK);
        ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    }
    /* nothing grew: a no-op */
    ck_assert_int_eq(tfi_optimizer_follow_model(opt), TF_OK);

    /* the moments before growth */
    const int nt = m->nrefs;
    float **mom = calloc((size_t)nt * 2, sizeof *mom);
    int64_t *rows = calloc((size_t)nt, sizeof *rows);
    for (int i = 0; i < nt; i++) {
        const tfi_opt_slot *s = &opt->slots[i];
        size_t n = (size_t)s->rows * (size_t)(s->cols ? s->cols : 1);
        rows[i] = s->rows;
        mom[2 * i] = malloc(n * sizeof(float));
        mom[2 * i + 1] = malloc(n * sizeof(float));
        memcpy(mom[2 * i], s->m, n * sizeof(float));
        memcpy(mom[2 * i + 1], s->v, n * sizeof(float));
    }

    for (int l = 0; l < L; l++)
        for (int k = 0; k < 5; k++) {
            tf_pattention *set = tf_model_pattention(m, l, (tf_set_kind)k);
            ck_assert_ptr_nonnull(set);
            ck_assert_int_eq(tf_pattention_grow(set, tf_pattention_n(set) + 4 + k, NULL), TF_OK);
        }
    /* the optimizer notices and refuses to step */
    ck_assert_int_eq(tf_model_forward(m, 2, 8, tok, tgt, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tf_optimizer_errmsg(opt), "grow"));
    ck_assert_int_eq(tf_optimizer_step_count(opt), 2);

    ck_assert_msg(tfi_optimizer_follow_model(opt) == TF_OK, "%s", tf_optimizer_errmsg(opt));
    ck_assert_int_eq(tf_optimizer_step_count(opt), 2);
    ck_assert_int_eq(opt->nslots, m->nrefs);
    for (int i = 0; i < nt; i++) {
        const tfi_opt_slot *s = &opt->slots[i];
        const tfi_tensor_ref *r = &m->refs[i];
        ck_assert_str_eq(s->name, r->name);
        ck_assert(s->rows == r->rows && s->cols == r->cols);
        int is_set = strncmp(r->name, "layers.", 7) == 0;
        ck_assert_msg(is_set ? s->rows > rows[i] : s->rows == rows[i], "%s rows", r->name);
        size_t cols = (size_t)(s->cols ? s->cols : 1);
        size_t old = (size_t)rows[i] * cols, n = (size_t)s->rows * cols;
        ck_assert(memcmp(s->m, mom[2 * i], old * sizeof(float)) == 0);
        ck_assert(memcmp(s->v, mom[2 * i + 1], old * sizeof(float)) == 0);
        for (size_t j = old; j < n; j++)
            ck_assert(s->m[j] == 0.0f && s->v[j] == 0.0f);
        /* get_moment sees the grown size */
        float *buf = malloc(n * sizeof(float));
        ck_assert_int_eq(tf_optimizer_get_moment(opt, r->name, 1, buf, n), TF_OK);
        ck_assert_int_eq(tf_optimizer_get_moment(opt, r->name, 1, buf, n - 1), TF_ERR_SHAPE);
        free(buf);
    }
    /* training continues on the grown model (the gradients computed before
     * the refusal are still there, of the grown shape) */
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    ck_assert_int_eq(tf_optimizer_step_count(opt), 3);
    ck_assert_int_eq(tf_model_forward(m, 2, 8, tok, tgt, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);

    for (int i = 0; i < 2 * nt; i++)
        free(mom[i]);
    free(mom);
    free(rows);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* Growth through the model API carries the optimizer along. */
START_TEST(test_model_grow_with_optimizer)
{
    tf_model *m = small_model(32, 1, 12, 64, 8, 9);
    int32_t tok[16], tgt[16];
    random_tokens(tok, 16, 64, 5);
    random_tokens(tgt, 16, 64, 6);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    ck_assert_int_eq(tf_model_forward(m, 2, 8, tok, tgt, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    const char *name = "layers.0.mlp.value_param_tokens";
    float before[24 * 32], after[32 * 32];
    ck_assert_int_eq(tf_optimizer_get_moment(opt, name, 1, before, 24 * 32), TF_OK);
    ck_assert_msg(tf_model_grow(m, opt, 16, 12, 32, NULL) == TF_OK, "%s", tf_model_errmsg(m));
    ck_assert_int_eq(tf_optimizer_step_count(opt), 1);
    ck_assert_int_eq(tf_optimizer_get_moment(opt, name, 1, after, 32 * 32), TF_OK);
    ck_assert(memcmp(before, after, sizeof before) == 0);
    for (int j = 24 * 32; j < 32 * 32; j++)
        ck_assert(after[j] == 0.0f);
    ck_assert_int_eq(tf_model_forward(m, 2, 8, tok, tgt, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_msg(tf_optimizer_step(opt, NULL) == TF_OK, "%s", tf_optimizer_errmsg(opt));
    ck_assert_int_eq(tf_optimizer_step_count(opt), 2);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* A slot that does not match the model's tensor (name or shrunken rows) is
 * refused without changes. */
START_TEST(test_follow_model_mismatch)
{
    tf_model *m = small_model(16, 1, 8, 32, 8, 8);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    tfi_opt_slot *s = tfi_optimizer_find(opt, "layers.0.mlp.key_param_tokens");
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_null(tfi_optimizer_find(opt, "no.such.tensor"));
    ck_assert_ptr_null(tfi_optimizer_find(NULL, "embed.weight"));
    ck_assert_ptr_eq(tfi_optimizer_find(opt, "embed.weight"), &opt->slots[0]);

    /* pretend the optimizer saw more rows than the model has: shrinking */
    s->rows += 1;
    float *mp = s->m;
    ck_assert_int_eq(tfi_optimizer_follow_model(opt), TF_ERR_STATE);
    ck_assert_ptr_eq(s->m, mp);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_ERR_STATE);
    s->rows -= 1;
    /* a renamed slot */
    s->name[0] = 'X';
    ck_assert_int_eq(tfi_optimizer_follow_model(opt), TF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tf_optimizer_errmsg(opt), "Xayers.0.mlp"));
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_ERR_STATE);
    s->name[0] = 'l';
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    ck_assert_int_eq(tfi_optimizer_follow_model(NULL), TF_ERR_ARGUMENT);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- (7) configs ----------------------------------------------------------- */

START_TEST(test_config_150m)
{
    tf_config *cfg = NULL;
    ck_assert_int_eq(tf_config_load("tests/data/configs/150M_train_pile.yml", &cfg), TF_OK);
    tf_optimizer_params p = tf_optimizer_default_params();
    p.struct_size = sizeof p;
    ck_assert_msg(tf_config_optimizer_params(cfg, &p) == TF_OK, "%s", tf_last_error());
    ck_assert_uint_eq(p.struct_size, sizeof p);
    ck_assert(p.lr == 0.0006);
    ck_assert(p.min_lr == 0.00006);
    ck_assert(p.beta1 == 0.9 && p.beta2 == 0.95);
    ck_assert(p.eps == 1.0e-8);
    ck_assert(p.weight_decay == 0.1);
    ck_assert(p.clip_grad == 1.0);
    ck_assert_int_eq(p.warmup_steps, 1430);
    ck_assert_int_eq(p.decay_steps, 143000);
    ck_assert_int_eq(p.grad_accum_steps, 4);
    tf_config_free(cfg);

    /* the parameters are usable as they are */
    tf_model *m = small_model(16, 1, 8, 32, 8, 1);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, &p, &opt), TF_OK);
    ck_assert_double_eq_tol(tf_optimizer_lr_at(opt, 715), 0.0003, 1e-15);
    ck_assert(tf_optimizer_lr_at(opt, 143000) == 0.00006);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

static tf_status parse_opt(const char *text, tf_optimizer_params *p)
{
    tf_config *cfg = NULL;
    ck_assert_msg(tf_config_parse(text, strlen(text), &cfg) == TF_OK, "%s", tf_last_error());
    p->struct_size = sizeof *p;
    tf_status st = tf_config_optimizer_params(cfg, p);
    tf_config_free(cfg);
    return st;
}

START_TEST(test_config_good_variants)
{
    tf_optimizer_params p, d = tf_optimizer_default_params();
    /* empty: the defaults */
    ck_assert_int_eq(parse_opt("{}", &p), TF_OK);
    ck_assert(memcmp(&p, &d, sizeof p) == 0);
    /* constant: no decay, warmup of lr_decay_iters (GPT-NeoX: of the schedule length) */
    ck_assert_int_eq(parse_opt("{\"lr_decay_style\": \"constant\", \"train_iters\": 1000,\n"
                               " \"warmup\": 0.05, \"optimizer\": {\"type\": \"adamw\"}}", &p),
                     TF_OK);
    ck_assert_int_eq(p.decay_steps, 0);
    ck_assert_int_eq(p.warmup_steps, 50);
    /* lr_decay_iters null: train_iters; warmup_steps wins over warmup */
    ck_assert_int_eq(parse_opt("{\"train_iters\": 500, \"lr_decay_iters\": null,\n"
                               " \"warmup\": 0.5, \"warmup_steps\": 7, \"lr-decay-style\": "
                               "\"cosine\"}", &p), TF_OK);
    ck_assert_int_eq(p.decay_steps, 500);
    ck_assert_int_eq(p.warmup_steps, 7);
    /* lr_decay_iters given: the schedule length */
    ck_assert_int_eq(parse_opt("{\"train_iters\": 500, \"lr_decay_iters\": 400, "
                               "\"warmup\": 0.1}", &p), TF_OK);
    ck_assert_int_eq(p.decay_steps, 400);
    ck_assert_int_eq(p.warmup_steps, 40);
    /* integers read as numbers, clipping disabled, a small lr clamps the
     * default min_lr */
    ck_assert_int_eq(parse_opt("{\"optimizer\": {\"params\": {\"lr\": 1, \"betas\": [0, 0.5],"
                               " \"eps\": 1}}, \"gradient_clipping\": 0}", &p), TF_OK);
    ck_assert(p.lr == 1.0 && p.beta1 == 0.0 && p.beta2 == 0.5 && p.eps == 1.0);
    ck_assert(p.clip_grad == 0.0);
    ck_assert_int_eq(parse_opt("{\"optimizer\": {\"params\": {\"lr\": 1.0e-5}}}", &p), TF_OK);
    ck_assert(p.min_lr == 1.0e-5);
    /* an older, shorter output struct is filled up to its size */
    tf_optimizer_params old;
    memset(&old, 0xA5, sizeof old);
    old.struct_size = offsetof(tf_optimizer_params, grad_accum_steps);
    tf_config *cfg = NULL;
    ck_assert_int_eq(tf_config_parse("{\"gradient_accumulation_steps\": 8}", 34, &cfg), TF_OK);
    ck_assert_int_eq(tf_config_optimizer_params(cfg, &old), TF_OK);
    ck_assert_uint_eq(old.struct_size, offsetof(tf_optimizer_params, grad_accum_steps));
    ck_assert(old.lr == d.lr);
    tf_optimizer_params full;
    full.struct_size = sizeof full;
    ck_assert_int_eq(tf_config_optimizer_params(cfg, &full), TF_OK);
    ck_assert_int_eq(full.grad_accum_steps, 8);
    tf_config_free(cfg);
}
END_TEST

static const struct bad_cfg {
    const char *text;
    const char *key;  /* must appear in the message */
    const char *where; /* "<string>:N:" */
} bad_cfgs[] = {
    {"{\n\"optimizer\": {\n\"params\": {\n\"betas\": [0.9]}}}", "betas", "<string>:4:"},
    {"{\n\"optimizer\": {\"params\": {\"betas\": [0.9, 0.95, 0.99]}}}", "betas", "<string>:2:"},
    {"{\n\"optimizer\": {\"params\": {\"betas\": 0.9}}}", "betas", "<string>:2:"},
    {"{\n\"optimizer\": {\"params\": {\"betas\": [0.9, 1.0]}}}", "betas", "<string>:2:"},
    {"{\n\"optimizer\": {\n\"type\": \"SGD\"}}", "type", "<string>:3:"},
    {"{\"optimizer\":\n {\"params\": {\"lr\": \"abc\"}}}", "lr", "<string>:2:"},
    {"{\"optimizer\":\n {\"params\": {\"lr\": -0.1}}}", "lr", "<string>:2:"},
    {"{\"optimizer\":\n {\"params\": {\"lr\": 0}}}", "lr", "<string>:2:"},
    {"{\"optimizer\":\n {\"params\": {\"lr\": .inf}}}", "lr", "<string>:2:"},
    {"{\"optimizer\":\n {\"params\": {\"eps\": 0}}}", "eps", "<string>:2:"},
    {"{\n\n\"lr_decay_style\": \"linear\"}", "lr_decay_style", "<string>:3:"},
    {"{\n\n\"lr_decay_style\": \"exponential\"}", "unsupported", "<string>:3:"},
    {"{\n\"lr_decay_style\": \"wobbly\"}", "lr_decay_style", "<string>:2:"},
    {"{\n\"min_lr\": 0.1}", "min_lr", "<string>:2:"},
    {"{\n\"min_lr\": -0.1}", "min_lr", "<string>:2:"},
    {"{\n\"weight_decay\": -1}", "weight_decay", "<string>:2:"},
    {"{\n\"gradient_clipping\": -1}", "gradient_clipping", "<string>:2:"},
    {"{\n\"gradient_accumulation_steps\": 0}", "gradient_accumulation_steps", "<string>:2:"},
    {"{\n\"gradient_accumulation_steps\": 1.5}", "gradient_accumulation_steps", "<string>:2:"},
    {"{\"train_iters\": 100,\n\"warmup\": 2}", "warmup", "<string>:2:"},
    {"{\n\"warmup\": 0.1}", "warmup", "<string>:2:"},
    {"{\n\"train_iters\": -5}", "train_iters", "<string>:2:"},
    {"{\n\"lr_decay_iters\": \"many\"}", "lr_decay_iters", "<string>:2:"},
    {"{\n\"optimizer\": \"Adam\"}", "optimizer", "<string>:2:"},
    /* absurd values, refused by the ranges the optimizer itself enforces */
    {"{\"optimizer\":\n {\"params\": {\"lr\": 1.0e300}}}", "optimizer.params.lr", "<string>:2:"},
    {"{\"optimizer\":\n {\"params\": {\"lr\": 2}}}", "optimizer.params.lr", "<string>:2:"},
    {"{\"optimizer\":\n {\"params\": {\"eps\": 10}}}", "optimizer.params.eps", "<string>:2:"},
    {"{\n\"weight_decay\": 1.0e6}", "weight_decay", "<string>:2:"},
    {"{\"optimizer\": {\"params\": {\"lr\": 0.5}},\n\"weight_decay\": 3}", "weight_decay",
     "<string>:2:"},
};
#define NUM_BAD_CFGS ((int)(sizeof bad_cfgs / sizeof bad_cfgs[0]))

START_TEST(test_config_bad)
{
    const struct bad_cfg *b = &bad_cfgs[_i];
    tf_optimizer_params p = tf_optimizer_default_params();
    memset(&p, 0x5A, sizeof p);
    tf_optimizer_params keep = p;
    tf_config *cfg = NULL;
    ck_assert_msg(tf_config_parse(b->text, strlen(b->text), &cfg) == TF_OK, "%s",
                  tf_last_error());
    tf_status st = tf_config_optimizer_params(cfg, &p);
    const char *msg = tf_last_error();
    ck_assert_msg(st == TF_ERR_CONFIG, "case %d: status %s (%s)", _i, tf_status_name(st), msg);
    if (strcmp(b->key, "unsupported") == 0)
        ck_assert_msg(strstr(msg, "support") != NULL, "case %d: %s", _i, msg);
    else
        ck_assert_msg(strstr(msg, b->key) != NULL, "case %d: '%s' not in: %s", _i, b->key, msg);
    ck_assert_msg(strstr(msg, b->where) != NULL, "case %d: '%s' not in: %s", _i, b->where, msg);
    ck_assert_msg(memcmp(&p, &keep, sizeof p) == 0, "case %d: output changed", _i);
    tf_config_free(cfg);
}
END_TEST

/* ---- (8) misuse -------------------------------------------------------------- */

START_TEST(test_null_and_bad_params)
{
    tf_model *m = small_model(16, 1, 8, 32, 8, 1);
    tf_optimizer *opt = (tf_optimizer *)&opt;
    ck_assert_int_eq(tf_optimizer_create(NULL, NULL, &opt), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(opt);
    ck_assert_int_eq(tf_optimizer_create(m, NULL, NULL), TF_ERR_ARGUMENT);
    tf_optimizer_free(NULL);
    ck_assert_ptr_nonnull(tf_optimizer_errmsg(NULL));
    ck_assert_int_eq(tf_optimizer_step(NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_optimizer_step_count(NULL), 0);
    tf_optimizer_params p = tf_optimizer_default_params();
    ck_assert_int_eq(tf_optimizer_get_params(NULL, &p), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_optimizer_set_params(NULL, &p), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_optimizer_get_moment(NULL, "embed.weight", 0, NULL, 0), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_config_optimizer_params(NULL, &p), TF_ERR_ARGUMENT);
    tf_config *cfg = NULL;
    ck_assert_int_eq(tf_config_parse("{}", 2, &cfg), TF_OK);
    ck_assert_int_eq(tf_config_optimizer_params(cfg, NULL), TF_ERR_ARGUMENT);
    tf_config_free(cfg);

    /* the defaults */
    ck_assert_uint_eq(p.struct_size, sizeof p);
    ck_assert(p.lr == 6e-4 && p.min_lr == 6e-5 && p.beta1 == 0.9 && p.beta2 == 0.95);
    ck_assert(p.eps == 1e-8 && p.weight_decay == 0.1 && p.clip_grad == 1.0);
    ck_assert(p.warmup_steps == 0 && p.decay_steps == 0 && p.grad_accum_steps == 1);

    /* each bad field is refused and named */
    tf_optimizer_params q;
    const char *fields[] = {"lr", "lr", "lr", "min_lr", "min_lr", "beta1", "beta2",
                            "beta2", "eps", "weight_decay", "clip_grad", "warmup_steps",
                            "decay_steps", "grad_accum_steps", "lr", "lr", "eps",
                            "weight_decay", "weight_decay", "warmup_steps"};
    for (int k = 0; k < (int)(sizeof fields / sizeof fields[0]); k++) {
        q = tf_optimizer_default_params();
        switch (k) {
        case 0: q.lr = 0; break;
        case 1: q.lr = NAN; break;
        case 2: q.lr = INFINITY; break;
        case 3: q.min_lr = 1e-3; break;
        case 4: q.min_lr = -1e-9; break;
        case 5: q.beta1 = 1.0; break;
        case 6: q.beta2 = -0.1; break;
        case 7: q.beta2 = NAN; break;
        case 8: q.eps = 0; break;
        case 9: q.weight_decay = -0.1; break;
        case 10: q.clip_grad = -1; break;
        case 11: q.warmup_steps = -1; break;
        case 12: q.decay_steps = -1; break;
        case 13: q.grad_accum_steps = 0; break;
        case 14: q.lr = 1e300; break;
        case 15: q.lr = 1.5; break;
        case 16: q.eps = 2.0; break;
        case 17: q.weight_decay = 1e6; break;
        case 18: q.weight_decay = 1.0 / 0.0; break;
        case 19: q.warmup_steps = INT64_MAX; break;
        }
        tf_optimizer *o = NULL;
        ck_assert_int_eq(tf_optimizer_create(m, &q, &o), TF_ERR_ARGUMENT);
        ck_assert_ptr_null(o);
        ck_assert_msg(strstr(tf_last_error(), fields[k]) != NULL, "case %d: %s", k,
                      tf_last_error());
    }
    /* struct_size */
    q = tf_optimizer_default_params();
    q.struct_size = 4;
    ck_assert_int_eq(tf_optimizer_create(m, &q, &opt), TF_ERR_ARGUMENT);
    q.struct_size = sizeof q + 8;
    ck_assert_int_eq(tf_optimizer_create(m, &q, &opt), TF_ERR_ARGUMENT);
    /* an older, shorter struct: the missing fields keep their defaults */
    q = tf_optimizer_default_params();
    q.struct_size = offsetof(tf_optimizer_params, grad_accum_steps);
    q.grad_accum_steps = 0; /* beyond the struct: not read */
    q.lr = 2e-3;
    ck_assert_int_eq(tf_optimizer_create(m, &q, &opt), TF_OK);
    tf_optimizer_params r;
    r.struct_size = sizeof r;
    ck_assert_int_eq(tf_optimizer_get_params(opt, &r), TF_OK);
    ck_assert(r.lr == 2e-3 && r.grad_accum_steps == 1 && r.struct_size == sizeof r);
    ck_assert_int_eq(tf_optimizer_get_params(opt, NULL), TF_ERR_ARGUMENT);

    /* set_params: refused values leave everything as it was */
    q = tf_optimizer_default_params();
    q.beta1 = 2;
    ck_assert_int_eq(tf_optimizer_set_params(opt, &q), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_optimizer_errmsg(opt), "beta1"));
    ck_assert_int_eq(tf_optimizer_set_params(opt, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_optimizer_get_params(opt, &r), TF_OK);
    ck_assert(r.lr == 2e-3 && r.beta1 == 0.9);

    /* get_moment */
    float buf[16 * 32];
    size_t n = 32 * 16;
    ck_assert_int_eq(tf_optimizer_get_moment(opt, "embed.weight", 0, buf, n), TF_OK);
    ck_assert_int_eq(tf_optimizer_get_moment(opt, "embed.weight", 2, buf, n), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_optimizer_get_moment(opt, "embed.weight", -1, buf, n), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_optimizer_get_moment(opt, "embed.weight", 0, buf, n - 1), TF_ERR_SHAPE);
    ck_assert_int_eq(tf_optimizer_get_moment(opt, "embed.weight", 0, NULL, n), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_optimizer_get_moment(opt, NULL, 0, buf, n), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_optimizer_get_moment(opt, "nope", 0, buf, n), TF_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(tf_optimizer_errmsg(opt), "nope"));
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "nope"));
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- (9) it learns ----------------------------------------------------------- */

START_TEST(test_overfit_one_batch)
{
    const int B = 4, T = 16;
    const int64_t V = 64;
    tf_model *m = small_model(32, 1, 32, V, T, 21);
    int32_t tok[4 * 16], tgt[4 * 16];
    random_tokens(tok, (size_t)(B * T), V, 31);
    random_tokens(tgt, (size_t)(B * T), V, 32);
    tf_optimizer_params p = tf_optimizer_default_params();
    p.lr = 1e-2;
    p.min_lr = 1e-3;
    p.warmup_steps = 10;
    p.decay_steps = 150;
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, &p, &opt), TF_OK);
    float first = 0, loss = 0;
    for (int s = 0; s < 150; s++) {
        ck_assert_int_eq(tf_model_forward(m, B, T, tok, tgt, NULL, &loss), TF_OK);
        if (s == 0)
            first = loss;
        ck_assert_int_eq(tf_model_backward(m), TF_OK);
        ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    }
    ck_assert_int_eq(tf_model_forward(m, B, T, tok, tgt, NULL, &loss), TF_OK);
    ck_assert_msg(first > 3.5f, "initial loss %g should be near ln(64)", first);
    ck_assert_msg(loss < 0.1f * first, "loss %g -> %g after 150 steps", first, loss);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

Suite *optimizer_suite(void)
{
    Suite *s = suite_create("optimizer");
    TCase *tc = tcase_create("step");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fixture_step1, 0, 2);
    tcase_add_test(tc, test_deterministic_across_threads);
    tcase_add_test(tc, test_schedule);
    tcase_add_test(tc, test_grad_accumulation);
    tcase_add_test(tc, test_weight_decay_groups);
    tcase_add_test(tc, test_nonfinite_gradient);
    tcase_add_test(tc, test_nonfinite_update_refused);
    tcase_add_test(tc, test_step_count_bound);
    tcase_add_test(tc, test_overfit_one_batch);
    suite_add_tcase(s, tc);

    tc = tcase_create("state");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_table_follows_set_growth);
    tcase_add_test(tc, test_follow_model_growth);
    tcase_add_test(tc, test_follow_model_mismatch);
    tcase_add_test(tc, test_model_grow_with_optimizer);
    tcase_add_test(tc, test_null_and_bad_params);
    suite_add_tcase(s, tc);

    tc = tcase_create("config");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_config_150m);
    tcase_add_test(tc, test_config_good_variants);
    tcase_add_loop_test(tc, test_config_bad, 0, NUM_BAD_CFGS);
    suite_add_tcase(s, tc);
    return s;
}
