/* test_growth.c -- growing a model: the grow_tiny fixture (official and
 * pinned scale), function preservation, optimizer state across growth,
 * growth-aware loading, refusals, growth through a set handle, softmax. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "scratch.h"
#include "testutil.h"
#include "tokenformer.h"

#define GROW_FIXTURE "tests/data/grow_tiny.safetensors"


/* ---- models and tensors --------------------------------------------------- */

enum { SQ = 8, SP = 6, SF = 12 };  /* small slot numbers */
enum { GQ = 12, GP = 10, GF = 20 }; /* grown */

static tf_model_params small_params(tf_norm_type norm, uint64_t seed)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 32;
    p.num_attention_heads = 4;
    p.qkv_slot_num = SQ;
    p.proj_slot_num = SP;
    p.ffn_slot_num = SF;
    p.norm = norm;
    p.vocab_size = 64;
    p.seq_length = 16;
    p.seed = seed;
    return p;
}

static tf_model *new_model(const tf_model_params *p)
{
    tf_model *m = NULL;
    tf_status st = tf_model_create(p, &m);
    ck_assert_msg(st == TF_OK, "tf_model_create: %s", tf_last_error());
    return m;
}

static void fill_tokens(int32_t *t, size_t n, int64_t V, uint64_t seed)
{
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i] = (int32_t)((s >> 33) % (uint64_t)V);
    }
}

static tf_model_params params_of(const tf_model *m)
{
    tf_model_params p = tf_model_default_params();
    ck_assert_int_eq(tf_model_get_params(m, &p), TF_OK);
    return p;
}

static void expect_same_params(const tf_model_params *a, const tf_model_params *b)
{
    ck_assert_int_eq(a->num_layers, b->num_layers);
    ck_assert_int_eq(a->hidden_size, b->hidden_size);
    ck_assert_int_eq(a->num_attention_heads, b->num_attention_heads);
    ck_assert_int_eq(a->qkv_slot_num, b->qkv_slot_num);
    ck_assert_int_eq(a->proj_slot_num, b->proj_slot_num);
    ck_assert_int_eq(a->ffn_slot_num, b->ffn_slot_num);
    ck_assert(a->rotary_pct == b->rotary_pct);
    ck_assert_int_eq(a->norm, b->norm);
    ck_assert_int_eq(a->vocab_size, b->vocab_size);
    ck_assert_int_eq(a->seq_length, b->seq_length);
    ck_assert_uint_eq(a->seed, b->seed);
    ck_assert_int_eq(a->scale_policy, b->scale_policy);
}

static size_t tensor_count(const tf_model *m, const char *name, int64_t *rows, int64_t *cols)
{
    int64_t shape[2];
    int nd = 0;
    ck_assert_msg(tf_model_tensor_shape(m, name, shape, &nd) == TF_OK, "%s: %s", name,
                  tf_last_error());
    if (rows)
        *rows = shape[0];
    if (cols)
        *cols = nd == 2 ? shape[1] : 1;
    return (size_t)shape[0] * (size_t)(nd == 2 ? shape[1] : 1);
}

static float *get_tensor(const tf_model *m, const char *name, size_t *count)
{
    size_t n = tensor_count(m, name, NULL, NULL);
    float *buf = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(tf_model_get_tensor(m, name, buf, n), TF_OK);
    if (count)
        *count = n;
    return buf;
}

static float *get_moment(const tf_model *m, const tf_optimizer *opt, const char *name,
                         int which, size_t *count)
{
    size_t n = tensor_count(m, name, NULL, NULL);
    float *buf = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(tf_optimizer_get_moment(opt, name, which, buf, n), TF_OK);
    if (count)
        *count = n;
    return buf;
}

static float *snapshot(const tf_model *m, size_t *count)
{
    size_t total = (size_t)tf_model_num_params(m), off = 0;
    float *buf = malloc(total * sizeof(float));
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n = tensor_count(m, name, NULL, NULL);
        ck_assert_uint_le(off + n, total);
        ck_assert_int_eq(tf_model_get_tensor(m, name, buf + off, n), TF_OK);
        off += n;
    }
    ck_assert_uint_eq(off, total);
    *count = total;
    return buf;
}

static void expect_same_tensors(const tf_model *a, const tf_model *b)
{
    ck_assert_int_eq(tf_model_num_tensors(a), tf_model_num_tensors(b));
    for (int i = 0; i < tf_model_num_tensors(a); i++) {
        const char *name = tf_model_tensor_name(a, i);
        size_t na, nb;
        float *x = get_tensor(a, name, &na), *y = get_tensor(b, name, &nb);
        ck_assert_msg(na == nb, "tensor %s: %zu vs %zu elements", name, na, nb);
        ck_assert_msg(memcmp(x, y, na * sizeof(float)) == 0, "tensor %s differs", name);
        free(x);
        free(y);
    }
}

/* Same tau and scale policy in every set. */
static void expect_same_scales(tf_model *a, tf_model *b)
{
    const int L = params_of(a).num_layers;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 5; k++) {
            tf_pattention *x = tf_model_pattention(a, l, (tf_set_kind)k);
            tf_pattention *y = tf_model_pattention(b, l, (tf_set_kind)k);
            ck_assert_msg(tf_pattention_tau(x) == tf_pattention_tau(y),
                          "layer %d kind %d: tau %.17g vs %.17g", l, k, tf_pattention_tau(x),
                          tf_pattention_tau(y));
            ck_assert_int_eq(tf_pattention_scale_policy(x), tf_pattention_scale_policy(y));
        }
}

/* State of a model (parameters and configuration) to compare after a
 * refused call. */
typedef struct model_state {
    float *params;
    size_t n;
    tf_model_params p;
    int ntensors;
} model_state;

static model_state save_state(const tf_model *m)
{
    model_state s;
    s.params = snapshot(m, &s.n);
    s.p = params_of(m);
    s.ntensors = tf_model_num_tensors(m);
    return s;
}

static void expect_state(const tf_model *m, model_state *s, const char *what)
{
    size_t n;
    float *now = snapshot(m, &n);
    ck_assert_msg(n == s->n && memcmp(now, s->params, n * sizeof(float)) == 0,
                  "%s: the parameters changed", what);
    tf_model_params p = params_of(m);
    expect_same_params(&p, &s->p);
    ck_assert_int_eq(tf_model_num_tensors(m), s->ntensors);
    free(now);
}

static float run_forward(tf_model *m, int B, int T, const int32_t *tok, const int32_t *tgt,
                         float *logits)
{
    float loss = NAN;
    tf_status st = tf_model_forward(m, B, T, tok, tgt, logits, &loss);
    ck_assert_msg(st == TF_OK, "tf_model_forward: %s", tf_model_errmsg(m));
    return loss;
}

static void train_step(tf_model *m, tf_optimizer *opt, int B, int T, const int32_t *tok,
                       const int32_t *tgt)
{
    run_forward(m, B, T, tok, tgt, NULL);
    ck_assert_msg(tf_model_backward(m) == TF_OK, "%s", tf_model_errmsg(m));
    ck_assert_msg(tf_optimizer_step(opt, NULL) == TF_OK, "%s", tf_optimizer_errmsg(opt));
}

static tf_grow_params grow_params(tf_key_init keys, tf_scale_policy policy, uint64_t seed)
{
    tf_grow_params g = tf_grow_default_params();
    g.key_init = keys;
    g.scale_policy = policy;
    g.seed = seed;
    return g;
}

static int64_t kind_n(int kind, int64_t q, int64_t p, int64_t f)
{
    return kind == TF_SET_FFN ? f : kind == TF_SET_PROJ ? p : q;
}

/* ---- fixture files ----------------------------------------------------------- */

static float *fx_f32(const tfi_st_file *f, const char *name, size_t *count)
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

static int32_t *fx_i32(const tfi_st_file *f, const char *name, size_t *count)
{
    const tfi_st_tensor *t = tfi_st_find(f, name);
    ck_assert_msg(t != NULL, "fixture lacks %s", name);
    ck_assert_int_eq(t->dtype, TFI_ST_I32);
    int32_t *buf = malloc((size_t)t->numel * sizeof(int32_t));
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, tfi_st_data(f, t), (size_t)t->numel * sizeof(int32_t));
    *count = (size_t)t->numel;
    return buf;
}

static int64_t fx_meta_int(const tfi_st_file *f, const char *key)
{
    const char *v = tfi_st_meta(f, key);
    ck_assert_msg(v != NULL, "fixture lacks metadata %s", key);
    return atoll(v);
}

/* Sets every tensor of m from the fixture's grown.<name>, after checking
 * that its first rows are the model's own (the base rows kept by growth). */
static void overwrite_with_grown(tf_model *m, const tfi_st_file *f, const tfi_st_file *base)
{
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        char gname[160];
        snprintf(gname, sizeof gname, "grown.%s", name);
        size_t n, ng, nb;
        float *ours = get_tensor(m, name, &n);
        float *grown = fx_f32(f, gname, &ng);
        float *b = fx_f32(base, name, &nb);
        ck_assert_uint_eq(n, ng);
        ck_assert_uint_le(nb, n);
        ck_assert_msg(memcmp(ours, b, nb * sizeof(float)) == 0, "%s: old rows changed", name);
        ck_assert_msg(memcmp(grown, b, nb * sizeof(float)) == 0, "%s: fixture old rows", name);
        ck_assert_int_eq(tf_model_set_tensor(m, name, grown, n), TF_OK);
        free(ours);
        free(grown);
        free(b);
    }
}

/* ---- the grow_tiny fixture ---------------------------------------------------- */

START_TEST(test_fixture_grow)
{
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open(GROW_FIXTURE, &f, NULL), TF_OK);
    const int64_t gq = fx_meta_int(&f, "grown_qkv_slot_num");
    const int64_t gp = fx_meta_int(&f, "grown_proj_slot_num");
    const int64_t gf = fx_meta_int(&f, "grown_ffn_slot_num");
    ck_assert_str_eq(tfi_st_meta(&f, "new_key_init"), "zero");
    size_t ntok;
    int32_t *tok = fx_i32(&f, "tokens", &ntok), *tgt = fx_i32(&f, "targets", &ntok);
    const tfi_st_tensor *tt = tfi_st_find(&f, "tokens");
    const int B = (int)tt->shape[0], T = (int)tt->shape[1];
    size_t nl;
    float *want_base = fx_f32(&f, "logits_base", &nl);
    float *want_official = fx_f32(&f, "logits_grown_official", NULL);
    float *want_pinned = fx_f32(&f, "logits_grown_pinned", NULL);
    float *loss_base = fx_f32(&f, "loss_base", NULL);
    float *loss_official = fx_f32(&f, "loss_grown_official", NULL);
    float *logits = malloc(nl * sizeof(float)), *base = malloc(nl * sizeof(float));

    for (int pass = 0; pass < 2; pass++) {
        const int pinned = pass == 1;
        tf_model *m = NULL;
        ck_assert_msg(tf_model_open(GROW_FIXTURE, &m) == TF_OK, "%s", tf_last_error());
        const tf_model_params p0 = params_of(m);
        ck_assert_uint_eq(nl, (size_t)B * T * p0.vocab_size);
        float l0 = run_forward(m, B, T, tok, tgt, base);
        double e = tt_rel_err(base, want_base, nl);
        ck_assert_msg(e <= 2e-5, "logits_base err %g", e);
        e = tt_rel_err(&l0, loss_base, 1);
        ck_assert_msg(e <= 2e-5, "loss_base err %g", e);

        tf_grow_params g = grow_params(TF_KEYS_ZERO, pinned ? TF_SCALE_PINNED : TF_SCALE_FOLLOW_N,
                                       5);
        ck_assert_msg(tf_model_grow(m, NULL, gq, gp, gf, &g) == TF_OK, "%s", tf_model_errmsg(m));
        tf_model_params p1 = params_of(m);
        ck_assert_int_eq(p1.qkv_slot_num, gq);
        ck_assert_int_eq(p1.proj_slot_num, gp);
        ck_assert_int_eq(p1.ffn_slot_num, gf);
        static const char *const tau_keys[3] = {"tau_pinned_qkv", "tau_pinned_proj",
                                                "tau_pinned_ffn"};
        for (int l = 0; l < p1.num_layers; l++)
            for (int k = 0; k < 5; k++) {
                tf_pattention *s = tf_model_pattention(m, l, (tf_set_kind)k);
                const int64_t n = kind_n(k, gq, gp, gf);
                ck_assert_int_eq(tf_pattention_n(s), n);
                double want = pinned ? strtod(tfi_st_meta(&f, tau_keys[k < 3 ? 0 : k - 2]), NULL)
                                     : sqrt((double)n);
                ck_assert_msg(tf_pattention_tau(s) == want, "tau %.17g, expected %.17g",
                              tf_pattention_tau(s), want);
                /* the new keys are zero */
                size_t nk = (size_t)n * (size_t)p1.hidden_size;
                float *keys = malloc(nk * sizeof(float));
                ck_assert_int_eq(tf_pattention_get_keys(s, keys, nk), TF_OK);
                const int64_t old = kind_n(k, p0.qkv_slot_num, p0.proj_slot_num, p0.ffn_slot_num);
                for (size_t j = (size_t)old * (size_t)p1.hidden_size; j < nk; j++)
                    ck_assert(keys[j] == 0.0f);
                free(keys);
            }
        /* the new value rows are random: take the reference's draws */
        overwrite_with_grown(m, &f, &f);
        float l1 = run_forward(m, B, T, tok, tgt, logits);
        if (pinned) {
            ck_assert_msg(memcmp(logits, base, nl * sizeof(float)) == 0,
                          "pinned growth changed the logits");
            ck_assert(l1 == l0);
            e = tt_rel_err(logits, want_pinned, nl);
            ck_assert_msg(e <= 2e-5, "logits_grown_pinned err %g", e);
        } else {
            e = tt_rel_err(logits, want_official, nl);
            ck_assert_msg(e <= 2e-5, "logits_grown_official err %g", e);
            e = tt_rel_err(&l1, loss_official, 1);
            ck_assert_msg(e <= 2e-5, "loss_grown_official err %g", e);
            /* and the official growth does change the function */
            ck_assert_double_gt(tt_rel_err(logits, base, nl), 1e-2);
        }
        tf_model_free(m);
    }
    free(logits);
    free(base);
    free(want_base);
    free(want_official);
    free(want_pinned);
    free(loss_base);
    free(loss_official);
    free(tok);
    free(tgt);
    tfi_st_close(&f);
}
END_TEST

/* ---- function preservation and training after growth ------------------------- */

START_TEST(test_grow_preserves_and_trains)
{
    const tf_norm_type norm = _i == 0 ? TF_NORM_L2_NORM_GELU : TF_NORM_GELU_L2_NORM;
    tf_model_params p = small_params(norm, 3);
    tf_model *m = new_model(&p);
    enum { B = 2, T = 16 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 1);
    fill_tokens(tgt, B * T, p.vocab_size, 2);
    const size_t nl = (size_t)B * T * p.vocab_size;
    float *before = malloc(nl * sizeof(float)), *after = malloc(nl * sizeof(float));
    float l0 = run_forward(m, B, T, tok, tgt, before);
    const int64_t np0 = tf_model_num_params(m);

    tf_grow_params g = grow_params(TF_KEYS_ZERO, TF_SCALE_PINNED, 9);
    ck_assert_int_eq(tf_model_grow(m, NULL, GQ, GP, GF, &g), TF_OK);
    ck_assert_int_eq(tf_model_num_params(m),
                     np0 + 2 * 2 * 32 * (3 * (GQ - SQ) + (GP - SP) + (GF - SF)));
    /* growth invalidates the forward: no backward until the next one */
    ck_assert_int_eq(tf_model_backward(m), TF_ERR_STATE);
    float l1 = run_forward(m, B, T, tok, tgt, after);
    ck_assert_msg(l1 == l0, "loss %.9g before growth, %.9g after", l0, l1);
    ck_assert_int_eq(memcmp(before, after, nl * sizeof(float)), 0);

    /* the new keys receive gradient: one step makes them non-zero */
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    train_step(m, opt, B, T, tok, tgt);
    for (int l = 0; l < p.num_layers; l++)
        for (int k = 0; k < 5; k++) {
            tf_pattention *s = tf_model_pattention(m, l, (tf_set_kind)k);
            const int64_t n = tf_pattention_n(s), old = kind_n(k, SQ, SP, SF);
            ck_assert_int_eq(n, kind_n(k, GQ, GP, GF));
            size_t nk = (size_t)n * 32;
            float *keys = malloc(nk * sizeof(float));
            ck_assert_int_eq(tf_pattention_get_keys(s, keys, nk), TF_OK);
            for (int64_t r = old; r < n; r++) {
                int nonzero = 0;
                for (int c = 0; c < 32; c++)
                    nonzero += keys[r * 32 + c] != 0.0f;
                ck_assert_msg(nonzero > 0, "layer %d kind %d: new key row %lld is dead", l, k,
                              (long long)r);
            }
            free(keys);
        }
    float l2 = run_forward(m, B, T, tok, tgt, NULL);
    ck_assert_msg(l2 < l1, "loss %.9g after a step, %.9g before", l2, l1);
    tf_optimizer_free(opt);
    free(before);
    free(after);
    tf_model_free(m);
}
END_TEST

START_TEST(test_grow_softmax_changes_function)
{
    tf_model_params p = small_params(TF_NORM_SOFTMAX, 4);
    p.rotary_pct = 1.0;
    tf_model *m = new_model(&p);
    enum { B = 1, T = 16 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 1);
    fill_tokens(tgt, B * T, p.vocab_size, 2);
    const size_t nl = (size_t)B * T * p.vocab_size;
    float *before = malloc(nl * sizeof(float)), *after = malloc(nl * sizeof(float));
    float l0 = run_forward(m, B, T, tok, tgt, before);
    tf_grow_params g = grow_params(TF_KEYS_ZERO, TF_SCALE_PINNED, 1);
    ck_assert_int_eq(tf_model_grow(m, NULL, GQ, GP, GF, &g), TF_OK);
    ck_assert(tf_pattention_tau(tf_model_pattention(m, 0, TF_SET_FFN)) == (double)SF);
    float l1 = run_forward(m, B, T, tok, tgt, after);
    double e = tt_rel_err(after, before, nl);
    ck_assert_msg(e > 1e-3, "softmax growth left the logits unchanged (err %g)", e);
    ck_assert(l1 != l0);
    free(before);
    free(after);
    tf_model_free(m);
}
END_TEST

/* ---- optimizer state across growth -------------------------------------------- */

START_TEST(test_grow_with_optimizer)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 5);
    tf_model *m = new_model(&p);
    tf_optimizer_params op = tf_optimizer_default_params();
    op.lr = 2e-3;
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, &op, &opt), TF_OK);
    enum { B = 2, T = 16 };
    int32_t tok[B * T], tgt[B * T];
    for (int s = 0; s < 2; s++) {
        fill_tokens(tok, B * T, p.vocab_size, 10 + (uint64_t)s);
        fill_tokens(tgt, B * T, p.vocab_size, 20 + (uint64_t)s);
        train_step(m, opt, B, T, tok, tgt);
    }
    const int nt = tf_model_num_tensors(m);
    float **m1 = calloc((size_t)nt, sizeof *m1), **m2 = calloc((size_t)nt, sizeof *m2);
    size_t *oldn = calloc((size_t)nt, sizeof *oldn);
    for (int i = 0; i < nt; i++) {
        const char *name = tf_model_tensor_name(m, i);
        m1[i] = get_moment(m, opt, name, 0, &oldn[i]);
        m2[i] = get_moment(m, opt, name, 1, NULL);
    }

    tf_grow_params g = grow_params(TF_KEYS_ZERO, TF_SCALE_PINNED, 3);
    ck_assert_msg(tf_model_grow(m, opt, GQ, GP, GF, &g) == TF_OK, "%s", tf_model_errmsg(m));
    ck_assert_int_eq(tf_optimizer_step_count(opt), 2);
    int grown = 0;
    for (int i = 0; i < nt; i++) {
        const char *name = tf_model_tensor_name(m, i);
        for (int which = 0; which < 2; which++) {
            size_t n;
            float *now = get_moment(m, opt, name, which, &n);
            ck_assert_uint_ge(n, oldn[i]);
            ck_assert_msg(memcmp(now, which ? m2[i] : m1[i], oldn[i] * sizeof(float)) == 0,
                          "%s: moment %d of the old rows changed", name, which);
            for (size_t k = oldn[i]; k < n; k++)
                ck_assert_msg(now[k] == 0.0f, "%s: new moment %d row not zero", name, which);
            grown += n > oldn[i];
            free(now);
        }
        free(m1[i]);
        free(m2[i]);
    }
    ck_assert_int_eq(grown, 2 * 2 * 10); /* every set tensor, both moments */
    free(m1);
    free(m2);
    free(oldn);

    char path[512];
    tt_tmp_path(path, sizeof path, "grown.safetensors");
    ck_assert_msg(tf_model_save(m, opt, path) == TF_OK, "%s", tf_model_errmsg(m));
    tf_model_params q = params_of(m);
    ck_assert_int_eq(q.qkv_slot_num, GQ);
    q.seed = 1000;
    tf_model *r = new_model(&q);
    tf_optimizer *ropt = NULL;
    ck_assert_int_eq(tf_optimizer_create(r, &op, &ropt), TF_OK);
    ck_assert_msg(tf_model_load(r, ropt, path) == TF_OK, "%s", tf_model_errmsg(r));
    ck_assert_int_eq(tf_optimizer_step_count(ropt), 2);
    expect_same_tensors(m, r);
    expect_same_scales(m, r); /* pinned taus travel with the checkpoint */

    fill_tokens(tok, B * T, p.vocab_size, 30);
    fill_tokens(tgt, B * T, p.vocab_size, 31);
    train_step(m, opt, B, T, tok, tgt);
    train_step(r, ropt, B, T, tok, tgt);
    expect_same_tensors(m, r);
    ck_assert_int_eq(tf_optimizer_step_count(ropt), 3);
    tf_optimizer_free(ropt);
    tf_optimizer_free(opt);
    tf_model_free(r);
    tf_model_free(m);
}
END_TEST

/* ---- growth-aware loading -------------------------------------------------------- */

START_TEST(test_load_grown_matches_grow)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 6);
    tf_model *small = new_model(&p);
    char path[512], gpath[512];
    tt_tmp_path(path, sizeof path, "small.safetensors");
    tt_tmp_path(gpath, sizeof gpath, "grown.safetensors");
    ck_assert_int_eq(tf_model_save(small, NULL, path), TF_OK);
    tf_model_params big = p;
    big.qkv_slot_num = GQ;
    big.proj_slot_num = GP;
    big.ffn_slot_num = GF;
    big.seed = 60;
    enum { B = 1, T = 16 };
    int32_t tok[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 3);
    const size_t nl = (size_t)B * T * p.vocab_size;
    float *la = malloc(nl * sizeof(float)), *lb = malloc(nl * sizeof(float));

    for (int keys = 0; keys < 2; keys++) {
        tf_grow_params g = grow_params(keys ? TF_KEYS_RANDOM : TF_KEYS_ZERO, TF_SCALE_PINNED, 17);
        tf_model *a = NULL;
        ck_assert_int_eq(tf_model_open(path, &a), TF_OK);
        ck_assert_int_eq(tf_model_grow(a, NULL, GQ, GP, GF, &g), TF_OK);
        tf_model *b = new_model(&big);
        ck_assert_msg(tf_model_load_grown(b, path, &g) == TF_OK, "%s", tf_model_errmsg(b));
        expect_same_tensors(a, b);
        expect_same_scales(a, b);
        for (int l = 0; l < p.num_layers; l++)
            ck_assert(tf_pattention_tau(tf_model_pattention(b, l, TF_SET_PROJ)) == sqrt(SP));
        ck_assert_int_eq(tf_model_forward(a, B, T, tok, NULL, la, NULL), TF_OK);
        ck_assert_int_eq(tf_model_forward(b, B, T, tok, NULL, lb, NULL), TF_OK);
        ck_assert_int_eq(memcmp(la, lb, nl * sizeof(float)), 0);
        if (!keys) {
            /* zero keys, pinned: the function of the small model */
            ck_assert_int_eq(tf_model_forward(small, B, T, tok, NULL, lb, NULL), TF_OK);
            ck_assert_int_eq(memcmp(la, lb, nl * sizeof(float)), 0);
            /* a pinned grown model saved and reopened keeps its taus */
            ck_assert_int_eq(tf_model_save(a, NULL, gpath), TF_OK);
            tf_model *c = NULL;
            ck_assert_msg(tf_model_open(gpath, &c) == TF_OK, "%s", tf_last_error());
            expect_same_scales(a, c);
            expect_same_tensors(a, c);
            ck_assert_int_eq(tf_model_forward(c, B, T, tok, NULL, lb, NULL), TF_OK);
            ck_assert_int_eq(memcmp(la, lb, nl * sizeof(float)), 0);
            tf_model_free(c);
        }
        tf_model_free(a);
        tf_model_free(b);
    }

    /* follow_n: the taus of the new sizes */
    tf_grow_params g = grow_params(TF_KEYS_ZERO, TF_SCALE_FOLLOW_N, 17);
    tf_model *b = new_model(&big);
    ck_assert_int_eq(tf_model_load_grown(b, path, &g), TF_OK);
    for (int l = 0; l < p.num_layers; l++)
        for (int k = 0; k < 5; k++) {
            tf_pattention *s = tf_model_pattention(b, l, (tf_set_kind)k);
            ck_assert(tf_pattention_tau(s) == sqrt((double)kind_n(k, GQ, GP, GF)));
            ck_assert_int_eq(tf_pattention_scale_policy(s), TF_SCALE_FOLLOW_N);
        }
    tf_model_free(b);

    /* a checkpoint of the model's own size: tf_model_load */
    tf_model_params same = p;
    same.seed = 61;
    tf_model *c = new_model(&same);
    ck_assert_int_eq(tf_model_load_grown(c, path, NULL), TF_OK);
    expect_same_tensors(small, c);
    expect_same_scales(small, c);
    tf_model_free(c);

    free(la);
    free(lb);
    tf_model_free(small);
}
END_TEST

START_TEST(test_load_grown_refusals)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 7);
    tf_model *small = new_model(&p);
    char path[512];
    tt_tmp_path(path, sizeof path, "small.safetensors");
    ck_assert_int_eq(tf_model_save(small, NULL, path), TF_OK);

    /* another width */
    tf_model_params wide = p;
    wide.hidden_size = 64;
    wide.qkv_slot_num = GQ;
    tf_model *w = new_model(&wide);
    model_state s = save_state(w);
    ck_assert_int_eq(tf_model_load_grown(w, path, NULL), TF_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(w), "d=32"));
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(w), "d=64"));
    expect_state(w, &s, "load_grown of another width");
    free(s.params);
    tf_model_free(w);

    /* a checkpoint larger than the model */
    tf_model_params smaller = p;
    smaller.ffn_slot_num = SF - 2;
    smaller.qkv_slot_num = GQ;
    tf_model *m = new_model(&smaller);
    s = save_state(m);
    ck_assert_int_eq(tf_model_load_grown(m, path, NULL), TF_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "layers.0.mlp.key_param_tokens"));
    expect_state(m, &s, "load_grown of a larger checkpoint");
    /* bad grow params, a missing file */
    tf_grow_params g = tf_grow_default_params();
    g.key_init = (tf_key_init)9;
    ck_assert_int_eq(tf_model_load_grown(m, path, &g), TF_ERR_ARGUMENT);
    char missing[512];
    tt_tmp_path(missing, sizeof missing, "missing.safetensors");
    ck_assert_int_eq(tf_model_load_grown(m, missing, NULL), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "missing.safetensors"));
    expect_state(m, &s, "refused load_grown");
    free(s.params);
    tf_model_free(m);
    tf_model_free(small);
}
END_TEST

/* Sets grown one by one through their handles differ per layer: such a
 * model saves and reopens, and a checkpoint loads into it growth-aware. */
START_TEST(test_uneven_sets_checkpoints)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 12);
    tf_model *m = new_model(&p);
    tf_grow_params g = grow_params(TF_KEYS_RANDOM, TF_SCALE_FOLLOW_N, 4);
    ck_assert_int_eq(tf_pattention_grow(tf_model_pattention(m, 0, TF_SET_QUERY), SQ + 3, &g),
                     TF_OK);
    ck_assert_int_eq(tf_pattention_grow(tf_model_pattention(m, 1, TF_SET_FFN), SF + 4, NULL),
                     TF_OK);
    char path[512], spath[512];
    tt_tmp_path(path, sizeof path, "uneven.safetensors");
    tt_tmp_path(spath, sizeof spath, "small.safetensors");
    ck_assert_msg(tf_model_save(m, NULL, path) == TF_OK, "%s", tf_model_errmsg(m));
    tf_model *c = NULL;
    ck_assert_msg(tf_model_open(path, &c) == TF_OK, "%s", tf_last_error());
    expect_same_tensors(m, c);
    expect_same_scales(m, c);
    tf_model_params pm = params_of(m), pc = params_of(c);
    expect_same_params(&pm, &pc);
    enum { B = 1, T = 16 };
    int32_t tok[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 5);
    const size_t nl = (size_t)B * T * p.vocab_size;
    float *la = malloc(nl * sizeof(float)), *lb = malloc(nl * sizeof(float));
    ck_assert_int_eq(tf_model_forward(m, B, T, tok, NULL, la, NULL), TF_OK);
    ck_assert_int_eq(tf_model_forward(c, B, T, tok, NULL, lb, NULL), TF_OK);
    ck_assert_int_eq(memcmp(la, lb, nl * sizeof(float)), 0);
    tf_model_free(c);

    /* a uniform checkpoint into the uneven model: every set keeps its own
     * size, the checkpoint fills its first rows */
    tf_model_params sp = p;
    sp.seed = 13;
    tf_model *small = new_model(&sp);
    ck_assert_int_eq(tf_model_save(small, NULL, spath), TF_OK);
    tf_grow_params pinned = grow_params(TF_KEYS_ZERO, TF_SCALE_PINNED, 2);
    ck_assert_msg(tf_model_load_grown(m, spath, &pinned) == TF_OK, "%s", tf_model_errmsg(m));
    ck_assert_int_eq(tf_pattention_n(tf_model_pattention(m, 1, TF_SET_FFN)), SF + 4);
    ck_assert_int_eq(tf_pattention_n(tf_model_pattention(m, 0, TF_SET_QUERY)), SQ + 3);
    ck_assert_int_eq(tf_pattention_n(tf_model_pattention(m, 1, TF_SET_QUERY)), SQ);
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n, ns;
        float *x = get_tensor(m, name, &n), *y = get_tensor(small, name, &ns);
        ck_assert_uint_ge(n, ns);
        ck_assert_msg(memcmp(x, y, ns * sizeof(float)) == 0, "%s: checkpoint rows", name);
        if (strstr(name, ".key_param_tokens"))
            for (size_t k = ns; k < n; k++)
                ck_assert_msg(x[k] == 0.0f, "%s: new key not zero", name);
        free(x);
        free(y);
    }
    ck_assert_int_eq(tf_model_forward(m, B, T, tok, NULL, la, NULL), TF_OK);
    ck_assert_int_eq(tf_model_forward(small, B, T, tok, NULL, lb, NULL), TF_OK);
    ck_assert_int_eq(memcmp(la, lb, nl * sizeof(float)), 0);

    /* a set smaller than the checkpoint's, in layer 1 only */
    tf_model_params up = p;
    up.ffn_slot_num = SF - 2;
    tf_model *u = new_model(&up);
    ck_assert_int_eq(tf_pattention_grow(tf_model_pattention(u, 0, TF_SET_FFN), SF, NULL), TF_OK);
    ck_assert_int_eq(params_of(u).ffn_slot_num, SF);
    model_state s = save_state(u);
    ck_assert_int_eq(tf_model_load_grown(u, spath, NULL), TF_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(u), "layers.1.mlp.key_param_tokens"));
    expect_state(u, &s, "load_grown into a smaller set");
    free(s.params);
    tf_model_free(u);
    free(la);
    free(lb);
    tf_model_free(small);
    tf_model_free(m);
}
END_TEST

/* ---- refused growth ---------------------------------------------------------------- */

START_TEST(test_grow_refusals)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 8);
    tf_model *m = new_model(&p), *other = new_model(&p);
    tf_optimizer *opt = NULL, *other_opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    ck_assert_int_eq(tf_optimizer_create(other, NULL, &other_opt), TF_OK);
    enum { B = 1, T = 16 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 1);
    fill_tokens(tgt, B * T, p.vocab_size, 2);
    train_step(m, opt, B, T, tok, tgt);
    model_state s = save_state(m);
    size_t nm;
    float *mom = get_moment(m, opt, "layers.0.mlp.key_param_tokens", 1, &nm);

    tf_grow_params good = grow_params(TF_KEYS_ZERO, TF_SCALE_PINNED, 1);
    struct {
        int64_t q, p, f;
        int use_other_opt;
        int bad_params;
        tf_status status;
        const char *word;
    } cases[] = {
        {GQ, SP - 1, GF, 0, 0, TF_ERR_ARGUMENT, "proj_slot_num"},
        {SQ - 1, SP, SF, 0, 0, TF_ERR_ARGUMENT, "qkv_slot_num"},
        {SQ, SP, SF, 0, 0, TF_ERR_ARGUMENT, "grow nothing"},
        {GQ, GP, GF, 1, 0, TF_ERR_ARGUMENT, "another model"},
        {GQ, GP, GF, 0, 1, TF_ERR_ARGUMENT, "key_init"},
        {GQ, GP, GF, 0, 2, TF_ERR_ARGUMENT, "struct_size"},
        {GQ, GP, GF, 0, 3, TF_ERR_ARGUMENT, "scale policy"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tf_grow_params g = good;
        if (cases[i].bad_params == 1)
            g.key_init = (tf_key_init)5;
        else if (cases[i].bad_params == 2)
            g.struct_size = 0;
        else if (cases[i].bad_params == 3)
            g.scale_policy = (tf_scale_policy)3;
        tf_status st = tf_model_grow(m, cases[i].use_other_opt ? other_opt : opt, cases[i].q,
                                     cases[i].p, cases[i].f, &g);
        ck_assert_msg(st == cases[i].status, "case %zu: %s (%s)", i, tf_status_name(st),
                      tf_model_errmsg(m));
        ck_assert_msg(strstr(tf_model_errmsg(m), cases[i].word) != NULL, "case %zu: '%s'", i,
                      tf_model_errmsg(m));
        expect_state(m, &s, "refused growth");
        float *now = get_moment(m, opt, "layers.0.mlp.key_param_tokens", 1, NULL);
        ck_assert_int_eq(memcmp(now, mom, nm * sizeof(float)), 0);
        free(now);
    }
    ck_assert_int_eq(tf_optimizer_step_count(opt), 1);
    /* the model still trains with its optimizer */
    train_step(m, opt, B, T, tok, tgt);

    /* a set refuses n' <= n and stays as it was */
    tf_pattention *set = tf_model_pattention(m, 0, TF_SET_PROJ);
    float keys[SP * 32], keys2[SP * 32];
    ck_assert_int_eq(tf_pattention_get_keys(set, keys, SP * 32), TF_OK);
    ck_assert_int_eq(tf_pattention_grow(set, SP, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_pattention_grow(set, SP - 1, NULL), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_pattention_errmsg(set), "must exceed"));
    ck_assert_int_eq(tf_pattention_n(set), SP);
    ck_assert_int_eq(tf_pattention_get_keys(set, keys2, SP * 32), TF_OK);
    ck_assert_int_eq(memcmp(keys, keys2, sizeof keys), 0);
    ck_assert_int_eq(tf_model_num_params(m), (int64_t)s.n);

    free(mom);
    free(s.params);
    tf_optimizer_free(opt);
    tf_optimizer_free(other_opt);
    tf_model_free(m);
    tf_model_free(other);
}
END_TEST

/* ---- growth through a set handle ------------------------------------------------------ */

START_TEST(test_grow_through_set_handle)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 9);
    tf_model *m = new_model(&p);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    enum { B = 2, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 1);
    fill_tokens(tgt, B * T, p.vocab_size, 2);
    const size_t nl = (size_t)B * T * p.vocab_size;
    float *before = malloc(nl * sizeof(float)), *after = malloc(nl * sizeof(float));
    float l0 = run_forward(m, B, T, tok, tgt, before);
    const int64_t np0 = tf_model_num_params(m);

    tf_pattention *set = tf_model_pattention(m, 1, TF_SET_FFN);
    ck_assert_int_eq(tf_pattention_grow(set, SF + 4, NULL), TF_OK);
    ck_assert_int_eq(tf_model_num_params(m), np0 + 2 * 4 * 32);
    int64_t shape[2];
    int nd;
    ck_assert_int_eq(tf_model_tensor_shape(m, "layers.1.mlp.value_param_tokens", shape, &nd),
                     TF_OK);
    ck_assert_int_eq(shape[0], SF + 4);
    ck_assert_int_eq(shape[1], 32);
    ck_assert_int_eq(tf_model_tensor_shape(m, "layers.0.mlp.value_param_tokens", shape, &nd),
                     TF_OK);
    ck_assert_int_eq(shape[0], SF);
    /* the named tensor is the grown set's storage */
    float keys[(SF + 4) * 32], named[(SF + 4) * 32];
    ck_assert_int_eq(tf_pattention_get_keys(set, keys, (SF + 4) * 32), TF_OK);
    ck_assert_int_eq(tf_model_get_tensor(m, "layers.1.mlp.key_param_tokens", named,
                                         (SF + 4) * 32),
                     TF_OK);
    ck_assert_int_eq(memcmp(keys, named, sizeof keys), 0);

    /* the cached forward belongs to the old size */
    ck_assert_int_eq(tf_model_backward(m), TF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "forward"));
    float l1 = run_forward(m, B, T, tok, tgt, after);
    ck_assert(l1 == l0); /* default growth: zero keys, pinned tau */
    ck_assert_int_eq(memcmp(before, after, nl * sizeof(float)), 0);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    float grad[(SF + 4) * 32];
    ck_assert_int_eq(tf_model_get_grad(m, "layers.1.mlp.key_param_tokens", grad, (SF + 4) * 32),
                     TF_OK);
    int nonzero = 0;
    for (int i = SF * 32; i < (SF + 4) * 32; i++)
        nonzero += grad[i] != 0.0f;
    ck_assert_int_gt(nonzero, 0);
    /* the optimizer was not told: it refuses rather than mis-step */
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tf_optimizer_errmsg(opt), "layers.1.mlp"));
    /* growing the model to the set's size brings the optimizer along */
    ck_assert_msg(tf_model_grow(m, opt, SQ, SP, SF + 4, NULL) == TF_OK, "%s",
                  tf_model_errmsg(m));
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    ck_assert_int_eq(tf_model_tensor_shape(m, "layers.0.mlp.value_param_tokens", shape, &nd),
                     TF_OK);
    ck_assert_int_eq(shape[0], SF + 4);
    ck_assert_int_eq(params_of(m).ffn_slot_num, SF + 4);
    tf_optimizer_free(opt);
    free(before);
    free(after);
    tf_model_free(m);
}
END_TEST

Suite *growth_suite(void)
{
    Suite *s = suite_create("growth");
    TCase *tc = tcase_create("grow");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fixture_grow);
    tcase_add_loop_test(tc, test_grow_preserves_and_trains, 0, 2);
    tcase_add_test(tc, test_grow_softmax_changes_function);
    tcase_add_test(tc, test_grow_refusals);
    tcase_add_test(tc, test_grow_through_set_handle);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, tt_make_basedir, tt_remove_basedir);
    tcase_add_checked_fixture(tc, tt_make_tmpdir, tt_remove_tmpdir);
    tcase_add_test(tc, test_grow_with_optimizer);
    tcase_add_test(tc, test_load_grown_matches_grow);
    tcase_add_test(tc, test_load_grown_refusals);
    tcase_add_test(tc, test_uneven_sets_checkpoints);
    suite_add_tcase(s, tc);
    return s;
}
