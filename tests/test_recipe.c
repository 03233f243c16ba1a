/* test_recipe.c -- the growth recipe as the library gives it: new values
 * relative to the set's init std, the tau ramp advanced by the optimizer,
 * the reset of the moments, the schedule restart (lr_at, the step's lr),
 * all or nothing, the growth state through a checkpoint, and
 * tf_checkpoint_info on real and corrupt files. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "optimizer.h"
#include "scratch.h"
#include "tokenformer.h"

enum { SQ = 8, SP = 6, SF = 12 }; /* small slot numbers */
enum { GQ = 12, GF = 20 };        /* grown (proj stays) */
enum { B = 2, T = 8 };

static tf_model_params small_params(void)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 32;
    p.num_attention_heads = 4;
    p.qkv_slot_num = SQ;
    p.proj_slot_num = SP;
    p.ffn_slot_num = SF;
    p.vocab_size = 64;
    p.seq_length = 16;
    p.seed = 11;
    return p;
}

static tf_model *new_model(const tf_model_params *p)
{
    tf_model *m = NULL;
    ck_assert_msg(tf_model_create(p, &m) == TF_OK, "%s", tf_last_error());
    return m;
}

static tf_optimizer *new_opt(tf_model *m, const tf_optimizer_params *op)
{
    tf_optimizer *opt = NULL;
    ck_assert_msg(tf_optimizer_create(m, op, &opt) == TF_OK, "%s", tf_last_error());
    return opt;
}

/* One optimizer step on batch number i of a fixed token stream. */
static void train_step(tf_model *m, tf_optimizer *opt, int i)
{
    int32_t tok[B * T], tgt[B * T];
    uint64_t s = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
    for (int k = 0; k < B * T; k++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        tok[k] = (int32_t)((s >> 33) % 64);
        tgt[k] = (int32_t)((s >> 17) % 64);
    }
    float loss;
    ck_assert_msg(tf_model_forward(m, B, T, tok, tgt, NULL, &loss) == TF_OK, "%s",
                  tf_model_errmsg(m));
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_msg(tf_optimizer_step(opt, NULL) == TF_OK, "%s", tf_optimizer_errmsg(opt));
}

static float *get_tensor(const tf_model *m, const char *name, size_t *count)
{
    int64_t shape[2];
    int nd;
    ck_assert_int_eq(tf_model_tensor_shape(m, name, shape, &nd), TF_OK);
    size_t n = (size_t)shape[0] * (size_t)(nd == 2 ? shape[1] : 1);
    float *buf = malloc(n * sizeof(float));
    ck_assert_int_eq(tf_model_get_tensor(m, name, buf, n), TF_OK);
    *count = n;
    return buf;
}

static double tau_of(tf_model *m, int layer, tf_set_kind kind)
{
    return tf_pattention_tau(tf_model_pattention(m, layer, kind));
}

/* Parameters, moments, taus, ramps, step counts and hyperparameters of a
 * and b are the same, bit for bit. */
static void expect_same_run_state(tf_model *a, tf_optimizer *oa, tf_model *b, tf_optimizer *ob)
{
    ck_assert_int_eq(tf_model_num_tensors(a), tf_model_num_tensors(b));
    for (int i = 0; i < tf_model_num_tensors(a); i++) {
        const char *name = tf_model_tensor_name(a, i);
        size_t na, nb;
        float *x = get_tensor(a, name, &na), *y = get_tensor(b, name, &nb);
        ck_assert_msg(na == nb && memcmp(x, y, na * sizeof(float)) == 0, "%s differs", name);
        for (int which = 0; which < 2; which++) {
            ck_assert_int_eq(tf_optimizer_get_moment(oa, name, which, x, na), TF_OK);
            ck_assert_int_eq(tf_optimizer_get_moment(ob, name, which, y, nb), TF_OK);
            ck_assert_msg(memcmp(x, y, na * sizeof(float)) == 0, "moment %d of %s differs",
                          which, name);
        }
        free(x);
        free(y);
    }
    const int nsets = a->p.num_layers * TFI_SETS_PER_LAYER;
    for (int i = 0; i < nsets; i++) {
        ck_assert_msg(a->sets[i].tau == b->sets[i].tau, "set %d: tau %.17g vs %.17g", i,
                      a->sets[i].tau, b->sets[i].tau);
        ck_assert_int_eq(a->sets[i].scale_policy, b->sets[i].scale_policy);
        ck_assert_int_eq(memcmp(&a->sets[i].ramp, &b->sets[i].ramp, sizeof a->sets[i].ramp), 0);
    }
    ck_assert_int_eq(oa->step, ob->step);
    ck_assert_int_eq(oa->moments_origin, ob->moments_origin);
    ck_assert_int_eq(memcmp(&oa->p, &ob->p, sizeof oa->p), 0);
}

/* ---- the recipe's parameters ------------------------------------------------- */

START_TEST(test_recipe_params)
{
    tf_grow_params d = tf_grow_default_params(), r = tf_grow_recipe_params();
    /* the defaults grow and change nothing else (tf_model_grow as before) */
    ck_assert(d.value_std_scale == 1.0);
    ck_assert_int_eq(d.tau_ramp_steps, 0);
    ck_assert_int_eq(d.reset_optimizer, 0);
    ck_assert_int_eq(d.lr_schedule, TF_LR_KEEP);
    /* the recipe of experiments/scaling */
    ck_assert_int_eq(r.key_init, TF_KEYS_ZERO);
    ck_assert_int_eq(r.scale_policy, TF_SCALE_PINNED);
    ck_assert(r.value_std <= 0 && r.value_std_scale == 0.05);
    ck_assert_int_eq(r.tau_ramp_steps, 300);
    ck_assert_int_eq(r.reset_optimizer, 0);
    ck_assert_int_eq(r.lr_schedule, TF_LR_RESTART);
    ck_assert(r.lr <= 0 && r.min_lr < 0 && r.warmup_steps == 0 && r.decay_steps == 0);
    /* an older caller's struct gets only its own bytes */
    unsigned char buf[sizeof(tf_grow_params) + 8];
    memset(buf, 0xAB, sizeof buf);
    size_t old = offsetof(tf_grow_params, value_std_scale);
    tf_grow_recipe_init((tf_grow_params *)buf, old);
    ck_assert_uint_eq(((tf_grow_params *)buf)->struct_size, old);
    for (size_t i = old; i < sizeof buf; i++)
        ck_assert_int_eq(buf[i], 0xAB);
}
END_TEST

/* ---- new values relative to the set's init std ----------------------------------- */

START_TEST(test_value_std_relative)
{
    tf_model_params p = small_params();
    tf_model *a = new_model(&p), *b = new_model(&p), *c = new_model(&p);
    tf_grow_params g = tf_grow_default_params();
    g.seed = 5;
    ck_assert_int_eq(tf_model_grow(a, NULL, GQ, SP, GF, &g), TF_OK); /* scale 1: the init's */
    g.value_std_scale = 0.05;
    ck_assert_int_eq(tf_model_grow(b, NULL, GQ, SP, GF, &g), TF_OK);
    g.value_std = 0.003; /* an absolute std wins over the scale */
    ck_assert_int_eq(tf_model_grow(c, NULL, GQ, SP, GF, &g), TF_OK);
    const double init = 2.0 / p.num_layers / sqrt((double)p.hidden_size);
    size_t n;
    float *va = get_tensor(a, "layers.1.mlp.value_param_tokens", &n);
    float *vb = get_tensor(b, "layers.1.mlp.value_param_tokens", &n);
    float *vc = get_tensor(c, "layers.1.mlp.value_param_tokens", &n);
    const size_t old = (size_t)SF * 32;
    ck_assert_int_eq(memcmp(va, vb, old * sizeof(float)), 0); /* old rows kept */
    double ss_a = 0, ss_b = 0, ss_c = 0;
    for (size_t i = old; i < n; i++) {
        /* the same normal draws, scaled by 0.05 */
        ck_assert_msg(fabs(vb[i] - 0.05 * va[i]) <= 1e-6 * fabs(va[i]) + 1e-12,
                      "row %zu: %g vs 0.05 x %g", i / 32, vb[i], va[i]);
        ss_a += (double)va[i] * va[i];
        ss_b += (double)vb[i] * vb[i];
        ss_c += (double)vc[i] * vc[i];
    }
    const double cnt = (double)(n - old); /* 256 draws: std within ~15% */
    ck_assert_msg(fabs(sqrt(ss_a / cnt) / init - 1) < 0.15, "std %g, init %g", sqrt(ss_a / cnt),
                  init);
    ck_assert_msg(fabs(sqrt(ss_b / cnt) / (0.05 * init) - 1) < 0.15, "std %g", sqrt(ss_b / cnt));
    ck_assert_msg(fabs(sqrt(ss_c / cnt) / 0.003 - 1) < 0.15, "std %g", sqrt(ss_c / cnt));
    free(va);
    free(vb);
    free(vc);
    tf_model_free(a);
    tf_model_free(b);
    tf_model_free(c);
}
END_TEST

/* ---- the tau ramp ------------------------------------------------------------ */

START_TEST(test_tau_ramp_values)
{
    tf_model_params p = small_params();
    tf_model *m = new_model(&p);
    tf_optimizer *opt = new_opt(m, NULL);
    train_step(m, opt, 0);
    train_step(m, opt, 1);
    const double a = sqrt((double)SQ), b = sqrt((double)GQ), proj = tau_of(m, 0, TF_SET_PROJ);
    tf_grow_params g = tf_grow_default_params();
    g.tau_ramp_steps = 4;
    ck_assert_msg(tf_model_grow(m, opt, GQ, SP, GF, &g) == TF_OK, "%s", tf_model_errmsg(m));
    /* at the growth tau stays: the function is kept */
    ck_assert(tau_of(m, 1, TF_SET_QUERY) == a);
    for (int k = 1; k <= 6; k++) {
        train_step(m, opt, 1 + k);
        double want = k >= 4 ? b : a + (b - a) * ((double)k / 4.0);
        ck_assert_msg(tau_of(m, 1, TF_SET_QUERY) == want, "after %d steps: tau %.17g, not %.17g",
                      k, tau_of(m, 1, TF_SET_QUERY), want);
        ck_assert(tau_of(m, 0, TF_SET_VALUE) == want);
        ck_assert(tau_of(m, 0, TF_SET_FFN) ==
                  (k >= 4 ? sqrt((double)GF)
                          : sqrt((double)SF) + (sqrt((double)GF) - sqrt((double)SF)) * (k / 4.0)));
        ck_assert(tau_of(m, 0, TF_SET_PROJ) == proj); /* not grown: no ramp */
        ck_assert_int_eq(tf_pattention_scale_policy(tf_model_pattention(m, 1, TF_SET_QUERY)),
                         TF_SCALE_PINNED);
    }
    /* set_tau ends a ramp: grow again with a ramp, then pin by hand */
    g.tau_ramp_steps = 10;
    ck_assert_int_eq(tf_model_grow(m, opt, GQ + 4, SP, GF, &g), TF_OK);
    tf_pattention *q = tf_model_pattention(m, 0, TF_SET_QUERY);
    ck_assert_int_eq(tf_pattention_set_tau(q, 2.5), TF_OK);
    train_step(m, opt, 20);
    ck_assert(tf_pattention_tau(q) == 2.5);
    ck_assert(tau_of(m, 0, TF_SET_KEY) > b); /* the others ramp on */
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- the schedule restart ------------------------------------------------------- */

START_TEST(test_restart_schedule)
{
    tf_model_params p = small_params();
    tf_model *m = new_model(&p);
    tf_optimizer_params op = tf_optimizer_default_params();
    op.lr = 1e-3;
    op.min_lr = 1e-4;
    op.warmup_steps = 4;
    op.decay_steps = 60;
    tf_optimizer *opt = new_opt(m, &op);
    for (int i = 0; i < 10; i++)
        train_step(m, opt, i);
    tf_grow_params g = tf_grow_recipe_params(); /* restart: peak, min_lr / 10, to the end */
    g.tau_ramp_steps = 0;
    g.reset_optimizer = 1; /* zero moments: below, only the weight decay moves embed */
    g.lr = 2e-3;
    g.warmup_steps = 5;
    ck_assert_msg(tf_model_grow(m, opt, GQ, SP, GF, &g) == TF_OK, "%s", tf_model_errmsg(m));
    tf_optimizer_params got = tf_optimizer_default_params();
    ck_assert_int_eq(tf_optimizer_get_params(opt, &got), TF_OK);
    ck_assert_int_eq(got.lr_restart, TF_LR_RESTART);
    ck_assert_int_eq(got.lr_restart_step, 10);
    ck_assert(got.lr_restart_lr == 2e-3 && got.lr_restart_min_lr == 1e-4 / 10.0);
    ck_assert_int_eq(got.lr_restart_warmup_steps, 5);
    ck_assert_int_eq(got.lr_restart_decay_steps, 50); /* ends at the optimizer's step 60 */
    for (int64_t t = 1; t <= 70; t++) {
        double want;
        if (t <= 10) {
            want = tf_schedule_lr(&op, t); /* the steps before the restart */
        } else {
            int64_t u = t - 10;
            want = u <= 5    ? 2e-3 * (double)u / 5.0
                   : u >= 50 ? 1e-5
                             : 1e-5 + (2e-3 - 1e-5) * 0.5 *
                                          (1.0 + cos(M_PI * (double)(u - 5) / 45.0));
        }
        double have = tf_optimizer_lr_at(opt, t);
        ck_assert_msg(fabs(have - want) <= 1e-15, "t=%lld: lr %.17g, not %.17g", (long long)t,
                      have, want);
        ck_assert(tf_schedule_lr(&got, t) == have); /* the params carry the restart */
    }
    /* the step uses it: with zero gradients only the weight decay acts,
     * embed *= 1 - lr_11 * weight_decay */
    size_t n;
    float *before = get_tensor(m, "embed.weight", &n);
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    float *after = get_tensor(m, "embed.weight", &n);
    double lr_used = (1.0 - (double)after[0] / (double)before[0]) / op.weight_decay;
    ck_assert_msg(fabs(lr_used / tf_optimizer_lr_at(opt, 11) - 1.0) < 0.02,
                  "the step used lr %g, the restart gives %g", lr_used,
                  tf_optimizer_lr_at(opt, 11));
    free(before);
    free(after);

    /* continue: the schedule over the step count, times the factor, warmed up */
    g.lr_schedule = TF_LR_CONTINUE;
    g.lr_factor = 0.5;
    g.warmup_steps = 4;
    ck_assert_int_eq(tf_model_grow(m, opt, GQ + 2, SP, GF, &g), TF_OK);
    for (int64_t t = 12; t <= 20; t++) {
        int64_t u = t - 11;
        double want = tf_schedule_lr(&op, t) * 0.5 * (u < 4 ? (double)u / 4.0 : 1.0);
        ck_assert_msg(tf_optimizer_lr_at(opt, t) == want, "t=%lld: %.17g vs %.17g",
                      (long long)t, tf_optimizer_lr_at(opt, t), want);
    }
    /* continue with factor 1 and no warmup is the optimizer's own schedule */
    g.lr_factor = 1.0;
    g.warmup_steps = 0;
    ck_assert_int_eq(tf_model_grow(m, opt, GQ + 4, SP, GF, &g), TF_OK);
    ck_assert_int_eq(tf_optimizer_get_params(opt, &got), TF_OK);
    ck_assert_int_eq(got.lr_restart, TF_LR_KEEP);
    for (int64_t t = 1; t <= 70; t++)
        ck_assert(tf_optimizer_lr_at(opt, t) == tf_schedule_lr(&op, t));
    /* set_params refuses a bad restart */
    got.lr_restart = TF_LR_RESTART;
    got.lr_restart_lr = 1e-3;
    got.lr_restart_min_lr = 2e-3;
    ck_assert_int_eq(tf_optimizer_set_params(opt, &got), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_optimizer_errmsg(opt), "lr_restart_min_lr"));
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- the reset of the moments ------------------------------------------------------ */

START_TEST(test_reset_moments)
{
    tf_model_params p = small_params();
    tf_model *m = new_model(&p);
    tf_optimizer_params op = tf_optimizer_default_params(); /* constant lr */
    tf_optimizer *opt = new_opt(m, &op);
    for (int i = 0; i < 3; i++)
        train_step(m, opt, i);
    tf_grow_params g = tf_grow_default_params();
    g.reset_optimizer = 1;
    ck_assert_int_eq(tf_model_grow(m, opt, GQ, SP, GF, &g), TF_OK);
    ck_assert_int_eq(tf_optimizer_step_count(opt), 3); /* the count goes on */
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        size_t n;
        const char *name = tf_model_tensor_name(m, i);
        float *x = get_tensor(m, name, &n);
        for (int which = 0; which < 2; which++) {
            ck_assert_int_eq(tf_optimizer_get_moment(opt, name, which, x, n), TF_OK);
            for (size_t k = 0; k < n; k++)
                ck_assert_msg(x[k] == 0.0f, "%s: moment %d not reset", name, which);
        }
        free(x);
    }
    /* the next step is a fresh optimizer's first step (bias correction 1):
     * the same as a new optimizer on a copy of the grown model */
    char path[512];
    tt_tmp_path(path, sizeof path, "grown.safetensors");
    ck_assert_int_eq(tf_model_save(m, NULL, path), TF_OK);
    tf_model_params gp = p;
    gp.qkv_slot_num = GQ;
    gp.ffn_slot_num = GF;
    tf_model *c = new_model(&gp);
    ck_assert_int_eq(tf_model_load(c, NULL, path), TF_OK);
    tf_optimizer *fresh = new_opt(c, &op);
    train_step(m, opt, 7);
    train_step(c, fresh, 7);
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        size_t na, nb;
        const char *name = tf_model_tensor_name(m, i);
        float *x = get_tensor(m, name, &na), *y = get_tensor(c, name, &nb);
        ck_assert_msg(memcmp(x, y, na * sizeof(float)) == 0, "%s: not a fresh first step", name);
        free(x);
        free(y);
    }
    ck_assert_int_eq(tf_optimizer_step_count(opt), 4);
    tf_optimizer_free(fresh);
    tf_optimizer_free(opt);
    tf_model_free(c);
    tf_model_free(m);
}
END_TEST

/* ---- all or nothing ---------------------------------------------------------------- */

START_TEST(test_recipe_all_or_nothing)
{
    tf_model_params p = small_params();
    tf_model *m = new_model(&p), *ref = new_model(&p);
    tf_optimizer *opt = new_opt(m, NULL), *ref_opt = new_opt(ref, NULL);
    /* ref: the same run, never offered a failing growth */
    for (int i = 0; i < 3; i++) {
        train_step(m, opt, i);
        train_step(ref, ref_opt, i);
    }
    tf_grow_params ok = tf_grow_recipe_params();
    ok.tau_ramp_steps = 5;
    ok.reset_optimizer = 1;
    ck_assert_int_eq(tf_model_grow(m, opt, GQ, SP, GF, &ok), TF_OK);
    ck_assert_int_eq(tf_model_grow(ref, ref_opt, GQ, SP, GF, &ok), TF_OK);
    train_step(m, opt, 3);
    train_step(ref, ref_opt, 3);
    expect_same_run_state(m, opt, ref, ref_opt);

    struct {
        int what;
        tf_status status;
        const char *word;
    } cases[] = {
        {0, TF_ERR_ARGUMENT, "needs the optimizer"}, /* a ramp without opt */
        {1, TF_ERR_ARGUMENT, "TF_SCALE_PINNED"},     /* a ramp from follow_n */
        {2, TF_ERR_ARGUMENT, "lr_factor"},
        {3, TF_ERR_ARGUMENT, "lr_schedule"},
        {4, TF_ERR_ARGUMENT, "value_std_scale"},
        {5, TF_ERR_NOMEM, "memory"}, /* too large to allocate: after validation */
        {6, TF_ERR_ARGUMENT, "reset_optimizer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tf_grow_params g = ok;
        int64_t q = GQ + 4;
        tf_optimizer *o = opt;
        switch (cases[i].what) {
        case 0: o = NULL; break;
        case 1: g.scale_policy = TF_SCALE_FOLLOW_N; break;
        case 2: g.lr_factor = 0; break;
        case 3: g.lr_schedule = (tf_lr_restart)7; break;
        case 4: g.value_std_scale = -1; break;
        case 5: q = (int64_t)1 << 50; break; /* beyond any address space */
        case 6: g.reset_optimizer = 2; break;
        }
        tf_status st = tf_model_grow(m, o, q, SP, GF, &g);
        ck_assert_msg(st == cases[i].status, "case %zu: %s (%s)", i, tf_status_name(st),
                      tf_model_errmsg(m));
        ck_assert_msg(strstr(tf_model_errmsg(m), cases[i].word), "case %zu: '%s'", i,
                      tf_model_errmsg(m));
        expect_same_run_state(m, opt, ref, ref_opt);
    }
    /* a set alone has no optimizer: the training fields are refused */
    tf_pattention *set = tf_model_pattention(m, 0, TF_SET_PROJ);
    ck_assert_int_eq(tf_pattention_grow(set, SP + 2, &ok), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_pattention_errmsg(set), "tf_model_grow"));
    expect_same_run_state(m, opt, ref, ref_opt);
    /* and the run goes on as the reference does, ramp and restart included */
    for (int i = 4; i < 10; i++) {
        train_step(m, opt, i);
        train_step(ref, ref_opt, i);
    }
    expect_same_run_state(m, opt, ref, ref_opt);
    tf_optimizer_free(opt);
    tf_optimizer_free(ref_opt);
    tf_model_free(m);
    tf_model_free(ref);
}
END_TEST

/* ---- the growth state through a checkpoint --------------------------------------------- */

START_TEST(test_growth_state_round_trip)
{
    tf_model_params p = small_params();
    tf_model *m = new_model(&p);
    tf_optimizer_params op = tf_optimizer_default_params();
    op.warmup_steps = 2;
    op.decay_steps = 30;
    tf_optimizer *opt = new_opt(m, &op);
    for (int i = 0; i < 4; i++)
        train_step(m, opt, i);
    tf_grow_params g = tf_grow_recipe_params();
    g.tau_ramp_steps = 6;
    g.reset_optimizer = 1;
    g.warmup_steps = 2;
    ck_assert_int_eq(tf_model_grow(m, opt, GQ, SP, GF, &g), TF_OK);
    train_step(m, opt, 4);
    train_step(m, opt, 5); /* mid-ramp, mid-warmup */
    char path[512];
    tt_tmp_path(path, sizeof path, "mid.safetensors");
    ck_assert_int_eq(tf_model_save(m, opt, path), TF_OK);

    /* a resumed run: the model at the checkpoint's size, the program's
     * hyperparameters, the rest from the file */
    tf_model_params have = tf_model_default_params();
    int64_t step = -2;
    ck_assert_int_eq(tf_checkpoint_info(path, &have, &step), TF_OK);
    ck_assert_int_eq(step, 6);
    ck_assert_int_eq(have.qkv_slot_num, GQ);
    ck_assert_int_eq(have.ffn_slot_num, GF);
    have.seed = 99; /* the loaded parameters replace the init */
    tf_model *r = new_model(&have);
    tf_optimizer *ropt = new_opt(r, &op);
    ck_assert_msg(tf_model_load(r, ropt, path) == TF_OK, "%s", tf_model_errmsg(r));
    expect_same_run_state(m, opt, r, ropt);
    for (int i = 6; i < 14; i++) { /* past the end of the ramp */
        train_step(m, opt, i);
        train_step(r, ropt, i);
    }
    expect_same_run_state(m, opt, r, ropt);
    ck_assert(tau_of(r, 0, TF_SET_QUERY) == sqrt((double)GQ));

    /* a file without a restart clears the optimizer's; without optimizer
     * state it leaves the optimizer alone */
    tf_model *s = new_model(&p);
    tf_optimizer *sopt = new_opt(s, &op);
    train_step(s, sopt, 0);
    char plain[512], noopt[512];
    tt_tmp_path(plain, sizeof plain, "plain.safetensors");
    tt_tmp_path(noopt, sizeof noopt, "noopt.safetensors");
    ck_assert_int_eq(tf_model_save(s, sopt, plain), TF_OK);
    ck_assert_int_eq(tf_model_save(s, NULL, noopt), TF_OK);
    ck_assert_int_eq(tf_checkpoint_info(noopt, NULL, &step), TF_OK);
    ck_assert_int_eq(step, -1);
    g.tau_ramp_steps = 0;
    ck_assert_int_eq(tf_model_grow(s, sopt, GQ, SP, GF, &g), TF_OK);
    tf_model *t = new_model(&p);
    tf_optimizer *topt = new_opt(t, &op);
    tf_optimizer_params with_restart = sopt->p;
    ck_assert_int_eq(tf_optimizer_set_params(topt, &with_restart), TF_OK);
    ck_assert_int_eq(tf_model_load(t, topt, noopt), TF_OK);
    ck_assert_int_eq(topt->p.lr_restart, TF_LR_RESTART);
    ck_assert_int_eq(tf_model_load(t, topt, plain), TF_OK);
    ck_assert_int_eq(topt->p.lr_restart, TF_LR_KEEP);
    ck_assert_int_eq(topt->step, 1);
    tf_optimizer_free(topt);
    tf_optimizer_free(sopt);
    tf_optimizer_free(ropt);
    tf_optimizer_free(opt);
    tf_model_free(t);
    tf_model_free(s);
    tf_model_free(r);
    tf_model_free(m);
}
END_TEST

/* Copies checkpoint src to dst with metadata key `key` set to value (NULL:
 * removed). */
static void rewrite_meta(const char *src, const char *dst, const char *key, const char *value)
{
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open(src, &f, NULL), TF_OK);
    tfi_st_writer *w = tfi_st_writer_new();
    for (int i = 0; i < f.ntensors; i++) {
        const tfi_st_tensor *t = &f.tensors[i];
        ck_assert_int_eq(tfi_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape,
                                           tfi_st_data(&f, t)),
                         TF_OK);
    }
    for (int i = 0; i < f.nmeta; i++)
        if (strcmp(f.meta_keys[i], key) != 0)
            ck_assert_int_eq(tfi_st_writer_meta(w, f.meta_keys[i], f.meta_values[i]), TF_OK);
    if (value)
        ck_assert_int_eq(tfi_st_writer_meta(w, key, value), TF_OK);
    ck_assert_int_eq(tfi_st_writer_write(w, dst, NULL), TF_OK);
    tfi_st_writer_free(w);
    tfi_st_close(&f);
}

START_TEST(test_growth_state_corrupt)
{
    tf_model_params p = small_params();
    tf_model *m = new_model(&p);
    tf_optimizer *opt = new_opt(m, NULL);
    train_step(m, opt, 0);
    tf_grow_params g = tf_grow_recipe_params();
    g.tau_ramp_steps = 4;
    ck_assert_int_eq(tf_model_grow(m, opt, GQ, SP, GF, &g), TF_OK);
    train_step(m, opt, 1);
    char path[512], bad[512];
    tt_tmp_path(path, sizeof path, "good.safetensors");
    tt_tmp_path(bad, sizeof bad, "bad.safetensors");
    ck_assert_int_eq(tf_model_save(m, opt, path), TF_OK);
    static const struct {
        const char *key, *value;
    } cases[] = {
        {"pattention.layers.0.attention.query.tau_ramp_from", NULL},
        {"pattention.layers.1.mlp.tau_ramp_steps", "-3"},
        {"pattention.layers.1.mlp.tau_ramp_to", "x"},
        {"optimizer.lr_restart", "sometimes"},
        {"optimizer.lr_restart_min_lr", "1"}, /* above the peak */
        {"optimizer.moments_origin", "99"},  /* after the step count */
        {"optimizer.step", "-1"},
    };
    tf_model_params gp = p;
    gp.qkv_slot_num = GQ;
    gp.ffn_slot_num = GF;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rewrite_meta(path, bad, cases[i].key, cases[i].value);
        tf_model *r = new_model(&gp), *ref = new_model(&gp);
        tf_optimizer *ropt = new_opt(r, NULL), *ref_opt = new_opt(ref, NULL);
        tf_status st = tf_model_load(r, ropt, bad);
        ck_assert_msg(st == TF_ERR_FORMAT, "case %zu: %s", i, tf_status_name(st));
        expect_same_run_state(r, ropt, ref, ref_opt); /* nothing loaded */
        tf_optimizer_free(ropt);
        tf_optimizer_free(ref_opt);
        tf_model_free(r);
        tf_model_free(ref);
    }
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- tf_checkpoint_info ------------------------------------------------------------------ */

START_TEST(test_checkpoint_info)
{
    tf_model_params p = small_params();
    p.rotary_pct = 0.5;
    p.norm = TF_NORM_SOFTMAX;
    tf_model *m = new_model(&p);
    tf_optimizer *opt = new_opt(m, NULL);
    for (int i = 0; i < 3; i++)
        train_step(m, opt, i);
    char path[512];
    tt_tmp_path(path, sizeof path, "ckpt.safetensors");
    ck_assert_int_eq(tf_model_save(m, opt, path), TF_OK);
    tf_model_params q = tf_model_default_params();
    int64_t step = 0;
    ck_assert_msg(tf_checkpoint_info(path, &q, &step) == TF_OK, "%s", tf_last_error());
    ck_assert_int_eq(step, 3);
    ck_assert_int_eq(q.num_layers, p.num_layers);
    ck_assert_int_eq(q.hidden_size, p.hidden_size);
    ck_assert_int_eq(q.num_attention_heads, p.num_attention_heads);
    ck_assert_int_eq(q.qkv_slot_num, SQ);
    ck_assert_int_eq(q.proj_slot_num, SP);
    ck_assert_int_eq(q.ffn_slot_num, SF);
    ck_assert(q.rotary_pct == 0.5 && q.rotary_emb_base == p.rotary_emb_base);
    ck_assert_int_eq(q.norm, TF_NORM_SOFTMAX);
    ck_assert_int_eq(q.vocab_size, p.vocab_size);
    ck_assert_int_eq(q.seq_length, p.seq_length);
    ck_assert_uint_eq(q.seed, p.seed);
    /* an older caller's struct is filled up to its size only */
    unsigned char buf[sizeof(tf_model_params) + 8];
    memset(buf, 0xCD, sizeof buf);
    size_t short_size = offsetof(tf_model_params, ffn_slot_num);
    ((tf_model_params *)buf)->struct_size = short_size;
    ck_assert_int_eq(tf_checkpoint_info(path, (tf_model_params *)buf, NULL), TF_OK);
    ck_assert_int_eq(((tf_model_params *)buf)->proj_slot_num, SP);
    for (size_t i = short_size; i < sizeof buf; i++)
        ck_assert_int_eq(buf[i], 0xCD);

    /* refusals change nothing */
    char cut[512], junk[512], missing[512];
    tt_tmp_path(cut, sizeof cut, "cut.safetensors");
    tt_tmp_path(junk, sizeof junk, "junk.safetensors");
    tt_tmp_path(missing, sizeof missing, "missing.safetensors");
    FILE *in = fopen(path, "rb"), *out = fopen(cut, "wb");
    char chunk[600];
    size_t got = fread(chunk, 1, sizeof chunk, in);
    fwrite(chunk, 1, got, out);
    fclose(in);
    fclose(out);
    rewrite_meta(path, junk, "num_layers", NULL); /* valid safetensors, not a checkpoint */
    const char *bad[] = {cut, junk, missing};
    const tf_status want[] = {TF_ERR_FORMAT, TF_ERR_FORMAT, TF_ERR_IO};
    for (int i = 0; i < 3; i++) {
        tf_model_params r = tf_model_default_params();
        int64_t s = 42;
        tf_status st = tf_checkpoint_info(bad[i], &r, &s);
        ck_assert_msg(st == want[i], "%s: %s (%s)", bad[i], tf_status_name(st), tf_last_error());
        ck_assert_int_eq(s, 42);
        ck_assert_int_eq(r.qkv_slot_num, tf_model_default_params().qkv_slot_num);
        ck_assert_ptr_nonnull(strstr(tf_last_error(), bad[i]));
    }
    ck_assert_int_eq(tf_checkpoint_info(NULL, &q, &step), TF_ERR_ARGUMENT);
    q.struct_size = 0;
    ck_assert_int_eq(tf_checkpoint_info(path, &q, &step), TF_ERR_ARGUMENT);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

Suite *recipe_suite(void)
{
    Suite *s = suite_create("recipe");
    TCase *tc = tcase_create("recipe");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_recipe_params);
    tcase_add_test(tc, test_value_std_relative);
    tcase_add_test(tc, test_tau_ramp_values);
    tcase_add_test(tc, test_restart_schedule);
    tcase_add_test(tc, test_recipe_all_or_nothing);
    suite_add_tcase(s, tc);
    TCase *io = tcase_create("recipe_files");
    tcase_set_timeout(io, 120);
    tcase_add_unchecked_fixture(io, tt_make_basedir, tt_remove_basedir);
    tcase_add_checked_fixture(io, tt_make_tmpdir, tt_remove_tmpdir);
    tcase_add_test(io, test_reset_moments);
    tcase_add_test(io, test_growth_state_round_trip);
    tcase_add_test(io, test_growth_state_corrupt);
    tcase_add_test(io, test_checkpoint_info);
    suite_add_tcase(s, io);
    return s;
}
