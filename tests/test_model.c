/* test_model.c -- the language model: the golden fixtures, finite
 * differences, checkpoints (round trips, official names, refusals, atomic
 * saves), API misuse, threads and gradient accumulation. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "scratch.h"
#include "testutil.h"
#include "tokenformer.h"


static int count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static unsigned char *read_all(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
    long n = ftell(fp);
    ck_assert_int_ge(n, 0);
    rewind(fp);
    unsigned char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *size = (size_t)n;
    return buf;
}

static void write_bytes_to(const char *path, const void *bytes, size_t n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(bytes, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
}

/* ---- models and tensors --------------------------------------------------- */

/* The small model of the finite-difference and checkpoint tests. */
static tf_model_params small_params(tf_norm_type norm, double rotary_pct, uint64_t seed)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 16;
    p.num_attention_heads = 2;
    p.qkv_slot_num = 6;
    p.proj_slot_num = 5;
    p.ffn_slot_num = 10;
    p.rotary_pct = rotary_pct;
    p.norm = norm;
    p.vocab_size = 32;
    p.seq_length = 8;
    p.seed = seed;
    return p;
}

static tf_model *new_model(const tf_model_params *p)
{
    tf_model *m = NULL;
    tf_status st = tf_model_create(p, &m);
    ck_assert_msg(st == TF_OK, "tf_model_create: %s", tf_last_error());
    ck_assert_ptr_nonnull(m);
    return m;
}

/* Deterministic ids in [0, V). */
static void fill_tokens(int32_t *t, size_t n, int64_t V, uint64_t seed)
{
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i] = (int32_t)((s >> 33) % (uint64_t)V);
    }
}

static size_t tensor_count(const tf_model *m, const char *name)
{
    int64_t shape[2];
    int nd = 0;
    ck_assert_msg(tf_model_tensor_shape(m, name, shape, &nd) == TF_OK, "%s: %s", name,
                  tf_last_error());
    return (size_t)shape[0] * (size_t)(nd == 2 ? shape[1] : 1);
}

static float *get_tensor(const tf_model *m, const char *name, size_t *count)
{
    size_t n = tensor_count(m, name);
    float *buf = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(tf_model_get_tensor(m, name, buf, n), TF_OK);
    if (count)
        *count = n;
    return buf;
}

static float *get_grad(const tf_model *m, const char *name, size_t *count)
{
    size_t n = tensor_count(m, name);
    float *buf = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(tf_model_get_grad(m, name, buf, n), TF_OK);
    if (count)
        *count = n;
    return buf;
}

/* Every parameter, concatenated in canonical tensor order. */
static float *snapshot(const tf_model *m, size_t *count)
{
    size_t total = (size_t)tf_model_num_params(m), off = 0;
    float *buf = malloc(total * sizeof(float));
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n = tensor_count(m, name);
        ck_assert_uint_le(off + n, total);
        ck_assert_int_eq(tf_model_get_tensor(m, name, buf + off, n), TF_OK);
        off += n;
    }
    ck_assert_uint_eq(off, total);
    *count = total;
    return buf;
}

static void expect_snapshot(const tf_model *m, const float *snap, size_t count, const char *what)
{
    size_t n;
    float *now = snapshot(m, &n);
    ck_assert_msg(n == count && memcmp(now, snap, n * sizeof(float)) == 0,
                  "%s: the model's parameters changed", what);
    free(now);
}

/* Every tensor of a is bit-identical to b's tensor of the same name. */
static void expect_same_tensors(const tf_model *a, const tf_model *b)
{
    ck_assert_int_eq(tf_model_num_tensors(a), tf_model_num_tensors(b));
    for (int i = 0; i < tf_model_num_tensors(a); i++) {
        const char *name = tf_model_tensor_name(a, i);
        ck_assert_str_eq(name, tf_model_tensor_name(b, i));
        size_t na, nb;
        float *x = get_tensor(a, name, &na), *y = get_tensor(b, name, &nb);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(x, y, na * sizeof(float)) == 0, "tensor %s differs", name);
        free(x);
        free(y);
    }
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
    ck_assert(a->rotary_emb_base == b->rotary_emb_base);
    ck_assert_int_eq(a->norm, b->norm);
    ck_assert_int_eq(a->vocab_size, b->vocab_size);
    ck_assert_int_eq(a->seq_length, b->seq_length);
    ck_assert(a->layernorm_epsilon == b->layernorm_epsilon);
    ck_assert(a->init_method_std == b->init_method_std);
    ck_assert_uint_eq(a->seed, b->seed);
    ck_assert_int_eq(a->scale_policy, b->scale_policy);
}

static tf_model_params params_of(const tf_model *m)
{
    tf_model_params p = tf_model_default_params();
    ck_assert_int_eq(tf_model_get_params(m, &p), TF_OK);
    return p;
}

/* Forward with targets, returning the loss (and logits if asked). */
static float run_forward(tf_model *m, int B, int T, const int32_t *tok, const int32_t *tgt,
                         float *logits)
{
    float loss = NAN;
    tf_status st = tf_model_forward(m, B, T, tok, tgt, logits, &loss);
    ck_assert_msg(st == TF_OK, "tf_model_forward: %s", tf_model_errmsg(m));
    return loss;
}

/* One full training step on a batch. */
static void train_step(tf_model *m, tf_optimizer *opt, int B, int T, const int32_t *tok,
                       const int32_t *tgt)
{
    run_forward(m, B, T, tok, tgt, NULL);
    ck_assert_msg(tf_model_backward(m) == TF_OK, "%s", tf_model_errmsg(m));
    ck_assert_msg(tf_optimizer_step(opt, NULL) == TF_OK, "%s", tf_optimizer_errmsg(opt));
}

/* ---- fixture files --------------------------------------------------------- */

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

/* ---- golden fixtures -------------------------------------------------------- */

static const char *const model_fixtures[] = {"tests/data/model_tiny.safetensors",
                                             "tests/data/model_softmax.safetensors"};

START_TEST(test_fixture_forward_backward)
{
    const char *path = model_fixtures[_i];
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open(path, &f, NULL), TF_OK);
    tf_model *m = NULL;
    ck_assert_msg(tf_model_open(path, &m) == TF_OK, "%s", tf_last_error());
    tf_model_params p = params_of(m);
    ck_assert_int_eq(p.hidden_size, atoi(tfi_st_meta(&f, "hidden_size")));
    ck_assert_int_eq(p.num_layers, atoi(tfi_st_meta(&f, "num_layers")));
    ck_assert_int_eq(p.norm, strcmp(tfi_st_meta(&f, "norm_activation_type"), "softmax") == 0
                                 ? TF_NORM_SOFTMAX
                                 : TF_NORM_L2_NORM_GELU);

    size_t ntok, ntgt;
    int32_t *tok = fx_i32(&f, "tokens", &ntok), *tgt = fx_i32(&f, "targets", &ntgt);
    const tfi_st_tensor *tt = tfi_st_find(&f, "tokens");
    const int B = (int)tt->shape[0], T = (int)tt->shape[1];
    ck_assert_uint_eq(ntok, (size_t)B * T);
    size_t nlog;
    float *want_logits = fx_f32(&f, "logits", &nlog);
    float *want_loss = fx_f32(&f, "loss", NULL);
    ck_assert_uint_eq(nlog, (size_t)B * T * p.vocab_size);
    float *logits = malloc(nlog * sizeof(float));
    float loss = run_forward(m, B, T, tok, tgt, logits);
    double e = tt_rel_err(logits, want_logits, nlog);
    ck_assert_msg(e <= 2e-5, "%s: logits err %g", path, e);
    e = tt_rel_err(&loss, want_loss, 1);
    ck_assert_msg(e <= 2e-5, "%s: loss %.9g, expected %.9g", path, loss, want_loss[0]);

    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    int checked = 0;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        char gname[160];
        snprintf(gname, sizeof gname, "grad.%s", name);
        size_t n, nw;
        float *g = get_grad(m, name, &n), *w = fx_f32(&f, gname, &nw);
        ck_assert_uint_eq(n, nw);
        e = tt_rel_err(g, w, n);
        ck_assert_msg(e <= 2e-4, "%s: %s err %g", path, gname, e);
        checked++;
        free(g);
        free(w);
    }
    ck_assert_int_eq(checked, 1 + 10 * p.num_layers + 2);
    free(logits);
    free(want_logits);
    free(want_loss);
    free(tok);
    free(tgt);
    tf_model_free(m);
    tfi_st_close(&f);
}
END_TEST

/* ---- finite differences ------------------------------------------------------ */

typedef struct fd_case {
    tf_norm_type norm;
    double rotary_pct;
} fd_case;

static const fd_case fd_cases[] = {
    {TF_NORM_L2_NORM_GELU, 0.25},
    {TF_NORM_SOFTMAX, 1.0},
    {TF_NORM_GELU_L2_NORM, 0.5},
};

#ifndef FD_SCALE
#define FD_SCALE 1.0
#endif

/* Central difference of the mean CE in one entry of a tensor. */
static double fd_entry(tf_model *m, const char *name, size_t idx, float h, int B, int T,
                       const int32_t *tok, const int32_t *tgt)
{
    size_t n;
    float *p = get_tensor(m, name, &n);
    const float orig = p[idx];
    p[idx] = orig + h;
    ck_assert_int_eq(tf_model_set_tensor(m, name, p, n), TF_OK);
    double lp = run_forward(m, B, T, tok, tgt, NULL);
    p[idx] = orig - h;
    ck_assert_int_eq(tf_model_set_tensor(m, name, p, n), TF_OK);
    double lm = run_forward(m, B, T, tok, tgt, NULL);
    p[idx] = orig;
    ck_assert_int_eq(tf_model_set_tensor(m, name, p, n), TF_OK);
    free(p);
    /* the step actually taken, in float */
    return (lp - lm) / ((double)(orig + h) - (double)(orig - h));
}

START_TEST(test_finite_differences)
{
    const fd_case *c = &fd_cases[_i];
    tf_model_params p = small_params(c->norm, c->rotary_pct, 11 + (uint64_t)_i);
    p.init_method_std = 0.3; /* parameters well above h, curvature moderate */
    tf_model *m = new_model(&p);
    /* a final norm that is not the identity, so that its gradient is tested */
    float w[16], b[16];
    for (int i = 0; i < 16; i++) {
        w[i] = 1.0f + 0.05f * (float)((i * 7) % 5 - 2);
        b[i] = 0.03f * (float)((i * 3) % 7 - 3);
    }
    ck_assert_int_eq(tf_model_set_tensor(m, "final_norm.weight", w, 16), TF_OK);
    ck_assert_int_eq(tf_model_set_tensor(m, "final_norm.bias", b, 16), TF_OK);

    enum { B = 2, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 5);
    fill_tokens(tgt, B * T, p.vocab_size, 6);
    run_forward(m, B, T, tok, tgt, NULL);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);

    int checked = 0;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n;
        float *g = get_grad(m, name, &n);
        int64_t shape[2];
        int nd;
        ck_assert_int_eq(tf_model_tensor_shape(m, name, shape, &nd), TF_OK);
        const size_t cols = nd == 2 ? (size_t)shape[1] : 1;
        /* the entry with the largest analytic gradient (for the embedding:
         * among the rows the tokens look up), and one fixed entry */
        size_t best = 0;
        for (size_t k = 0; k < n; k++) {
            if (strcmp(name, "embed.weight") == 0) {
                int used = 0;
                for (int t = 0; t < B * T; t++)
                    used |= (size_t)tok[t] == k / cols;
                if (!used)
                    continue;
            }
            if (fabsf(g[k]) > fabsf(g[best]))
                best = k;
        }
        size_t picks[2] = {best, strcmp(name, "embed.weight") == 0
                                     ? (size_t)tok[3] * cols + 1
                                     : (n * 2) / 3};
        for (int s = 0; s < 2; s++) {
            size_t k = picks[s];
            double an = g[k];
            double num = fd_entry(m, name, k, 3e-3f, B, T, tok, tgt);
            double err = fabs(num - an);
            double tol = FD_SCALE * (2e-2 * fabs(an) + 2e-4);
            ck_assert_msg(err <= tol, "%s [%zu]: analytic %.6g, numeric %.6g", name, k, an, num);
            if (s == 0)
                ck_assert_msg(fabs(an) > 4e-4, "%s: largest gradient %.3g is too small to test",
                              name, an);
            checked++;
        }
        free(g);
    }
    ck_assert_int_eq(checked, 2 * (1 + 10 * p.num_layers + 2));
    tf_model_free(m);
}
END_TEST

/* ---- checkpoints: round trips ---------------------------------------------- */

START_TEST(test_save_load_roundtrip)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 3);
    p.rotary_emb_base = 5000.0;
    p.layernorm_epsilon = 1e-6;
    p.init_method_std = 0.05;
    tf_model *a = new_model(&p);
    char path[512];
    tt_tmp_path(path, sizeof path, "a.safetensors");
    ck_assert_msg(tf_model_save(a, NULL, path) == TF_OK, "%s", tf_model_errmsg(a));
    ck_assert_int_eq(count_dir_entries(tt_tmpdir), 1); /* no temporary file left */

    tf_model_params q = p;
    q.seed = 99;
    tf_model *b = new_model(&q);
    ck_assert_msg(tf_model_load(b, NULL, path) == TF_OK, "%s", tf_model_errmsg(b));
    expect_same_tensors(a, b);

    enum { B = 2, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 1);
    fill_tokens(tgt, B * T, p.vocab_size, 2);
    const size_t nl = (size_t)B * T * p.vocab_size;
    float *la = malloc(nl * sizeof(float)), *lb = malloc(nl * sizeof(float));
    float *lc = malloc(nl * sizeof(float));
    float lossa = run_forward(a, B, T, tok, tgt, la);
    float lossb = run_forward(b, B, T, tok, tgt, lb);
    ck_assert_int_eq(memcmp(la, lb, nl * sizeof(float)), 0);
    ck_assert(lossa == lossb);

    /* a model from the file alone: same config, same function */
    tf_model *c = NULL;
    ck_assert_msg(tf_model_open(path, &c) == TF_OK, "%s", tf_last_error());
    tf_model_params pc = params_of(c), pa = params_of(a);
    expect_same_params(&pc, &pa);
    expect_same_tensors(a, c);
    run_forward(c, B, T, tok, tgt, lc);
    ck_assert_int_eq(memcmp(la, lc, nl * sizeof(float)), 0);
    free(la);
    free(lb);
    free(lc);
    tf_model_free(a);
    tf_model_free(b);
    tf_model_free(c);
}
END_TEST

/* Every moment of two optimizers, bit for bit. */
static void expect_same_moments(const tf_model *m, const tf_optimizer *x, const tf_optimizer *y)
{
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n = tensor_count(m, name);
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        for (int which = 0; which < 2; which++) {
            ck_assert_int_eq(tf_optimizer_get_moment(x, name, which, a, n), TF_OK);
            ck_assert_int_eq(tf_optimizer_get_moment(y, name, which, b, n), TF_OK);
            ck_assert_msg(memcmp(a, b, n * sizeof(float)) == 0, "moment %d of %s differs", which,
                          name);
        }
        free(a);
        free(b);
    }
}

START_TEST(test_save_load_optimizer)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 4);
    tf_model *a = new_model(&p);
    tf_optimizer_params op = tf_optimizer_default_params();
    op.lr = 3e-3;
    op.warmup_steps = 2;
    op.decay_steps = 10;
    tf_optimizer *oa = NULL;
    ck_assert_int_eq(tf_optimizer_create(a, &op, &oa), TF_OK);
    enum { B = 2, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 7);
    fill_tokens(tgt, B * T, p.vocab_size, 8);
    train_step(a, oa, B, T, tok, tgt);
    char path[512];
    tt_tmp_path(path, sizeof path, "opt.safetensors");
    ck_assert_msg(tf_model_save(a, oa, path) == TF_OK, "%s", tf_model_errmsg(a));

    tf_model_params q = p;
    q.seed = 1234;
    tf_model *b = new_model(&q);
    tf_optimizer *ob = NULL;
    ck_assert_int_eq(tf_optimizer_create(b, &op, &ob), TF_OK);
    ck_assert_msg(tf_model_load(b, ob, path) == TF_OK, "%s", tf_model_errmsg(b));
    ck_assert_int_eq(tf_optimizer_step_count(ob), 1);
    expect_same_tensors(a, b);
    expect_same_moments(a, oa, ob);
    /* the moments are not trivially equal: the step made them non-zero */
    size_t n = tensor_count(a, "embed.weight");
    float *mom = malloc(n * sizeof(float));
    ck_assert_int_eq(tf_optimizer_get_moment(ob, "embed.weight", 1, mom, n), TF_OK);
    int nonzero = 0;
    for (size_t i = 0; i < n; i++)
        nonzero += mom[i] != 0.0f;
    ck_assert_int_gt(nonzero, 0);
    free(mom);

    for (int s = 0; s < 2; s++) {
        fill_tokens(tok, B * T, p.vocab_size, 20 + (uint64_t)s);
        fill_tokens(tgt, B * T, p.vocab_size, 30 + (uint64_t)s);
        train_step(a, oa, B, T, tok, tgt);
        train_step(b, ob, B, T, tok, tgt);
    }
    ck_assert_int_eq(tf_optimizer_step_count(oa), 3);
    ck_assert_int_eq(tf_optimizer_step_count(ob), 3);
    expect_same_tensors(a, b);
    expect_same_moments(a, oa, ob);

    /* a file without optimizer state leaves the optimizer's state alone */
    char plain[512];
    tt_tmp_path(plain, sizeof plain, "plain.safetensors");
    ck_assert_int_eq(tf_model_save(a, NULL, plain), TF_OK);
    ck_assert_int_eq(tf_model_load(b, ob, plain), TF_OK);
    ck_assert_int_eq(tf_optimizer_step_count(ob), 3);
    tf_optimizer_free(oa);
    tf_optimizer_free(ob);
    tf_model_free(a);
    tf_model_free(b);
}
END_TEST

/* The official GPT-NeoX name of layer-i set tensors etc., built here
 * independently of the library's mapping. */
static void official_name(int L, const char *spec, char *out, size_t cap)
{
    int layer, used = 0;
    if (strcmp(spec, "embed.weight") == 0)
        snprintf(out, cap, "sequential.0.word_embeddings.weight");
    else if (strcmp(spec, "final_norm.weight") == 0)
        snprintf(out, cap, "sequential.%d.norm.weight", L + 3);
    else if (strcmp(spec, "final_norm.bias") == 0)
        snprintf(out, cap, "sequential.%d.norm.bias", L + 3);
    else {
        ck_assert_int_eq(sscanf(spec, "layers.%d.%n", &layer, &used), 1);
        snprintf(out, cap, "sequential.%d.%s", layer + 2, spec + used);
    }
}

START_TEST(test_load_official_names)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 5);
    tf_model *a = new_model(&p);
    const int nt = tf_model_num_tensors(a);
    float **data = calloc((size_t)nt, sizeof *data);
    tfi_st_writer *w = tfi_st_writer_new();
    ck_assert_ptr_nonnull(w);
    int saw_mlp = 0, saw_norm = 0;
    for (int i = 0; i < nt; i++) {
        const char *name = tf_model_tensor_name(a, i);
        char off[160];
        official_name(p.num_layers, name, off, sizeof off);
        saw_mlp |= strcmp(off, "sequential.3.mlp.value_param_tokens") == 0;
        saw_norm |= strcmp(off, "sequential.5.norm.bias") == 0;
        int64_t shape[2];
        int nd;
        ck_assert_int_eq(tf_model_tensor_shape(a, name, shape, &nd), TF_OK);
        data[i] = get_tensor(a, name, NULL);
        ck_assert_int_eq(tfi_st_writer_add(w, off, TFI_ST_F32, nd, shape, data[i]), TF_OK);
    }
    ck_assert(saw_mlp && saw_norm);
    static const float inv_freq[2] = {1.0f, 0.01f};
    const int64_t fshape[1] = {2};
    ck_assert_int_eq(tfi_st_writer_add(w, "sequential.2.attention.rotary_emb.inv_freq",
                                       TFI_ST_F32, 1, fshape, inv_freq),
                     TF_OK);
    char path[512];
    tt_tmp_path(path, sizeof path, "official.safetensors");
    ck_assert_int_eq(tfi_st_writer_write(w, path, NULL), TF_OK);
    tfi_st_writer_free(w);

    tf_model_params q = p;
    q.seed = 77;
    tf_model *b = new_model(&q);
    ck_assert_msg(tf_model_load(b, NULL, path) == TF_OK, "%s", tf_model_errmsg(b));
    expect_same_tensors(a, b);
    /* no configuration in the file: tf_model_open cannot build a model */
    tf_model *c = (tf_model *)1;
    ck_assert_int_eq(tf_model_open(path, &c), TF_ERR_FORMAT);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "no configuration in the metadata"));
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "tf_model_open_config"));
    for (int i = 0; i < nt; i++)
        free(data[i]);
    free(data);
    tf_model_free(a);
    tf_model_free(b);
}
END_TEST

/* ---- checkpoints: refusals ---------------------------------------------------- */

/* Copies src to dst through the writer with one change: the tensor `drop`
 * left out, or `retype` stored as I32, or `reshape` stored as shape
 * new_shape (a prefix of its data), and metadata key `meta_key` set to
 * `meta_value`. */
typedef struct rewrite_spec {
    const char *drop, *retype, *reshape;
    int64_t new_shape[2];
    int new_nd;
    const char *meta_key, *meta_value;
} rewrite_spec;

static void rewrite(const char *src, const char *dst, const rewrite_spec *r)
{
    tfi_st_file f;
    ck_assert_int_eq(tfi_st_open(src, &f, NULL), TF_OK);
    tfi_st_writer *w = tfi_st_writer_new();
    int hit = 0;
    for (int i = 0; i < f.ntensors; i++) {
        const tfi_st_tensor *t = &f.tensors[i];
        const void *d = tfi_st_data(&f, t);
        if (r->drop && strcmp(t->name, r->drop) == 0) {
            hit++;
            continue;
        }
        if (r->retype && strcmp(t->name, r->retype) == 0) {
            hit++;
            ck_assert_int_eq(tfi_st_writer_add(w, t->name, TFI_ST_I32, t->ndim, t->shape, d),
                             TF_OK);
        } else if (r->reshape && strcmp(t->name, r->reshape) == 0) {
            hit++;
            int64_t want = r->new_shape[0] * (r->new_nd == 2 ? r->new_shape[1] : 1);
            ck_assert_int_le(want, t->numel);
            ck_assert_int_eq(tfi_st_writer_add(w, t->name, TFI_ST_F32, r->new_nd, r->new_shape,
                                               d),
                             TF_OK);
        } else {
            ck_assert_int_eq(tfi_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, d),
                             TF_OK);
        }
    }
    ck_assert_int_eq(hit, (r->drop != NULL) + (r->retype != NULL) + (r->reshape != NULL));
    for (int i = 0; i < f.nmeta; i++)
        ck_assert_int_eq(tfi_st_writer_meta(w, f.meta_keys[i], f.meta_values[i]), TF_OK);
    if (r->meta_key)
        ck_assert_int_eq(tfi_st_writer_meta(w, r->meta_key, r->meta_value), TF_OK);
    ck_assert_int_eq(tfi_st_writer_write(w, dst, NULL), TF_OK);
    tfi_st_writer_free(w);
    tfi_st_close(&f);
}

/* tf_model_load(m, opt, path) must fail with status, a message containing
 * the words, and leave model (and optimizer) unchanged. */
static void expect_load_refused(tf_model *m, tf_optimizer *opt, const char *path,
                                tf_status status, const char *w1, const char *w2,
                                const char *w3)
{
    size_t n;
    float *before = snapshot(m, &n);
    int64_t step = opt ? tf_optimizer_step_count(opt) : 0;
    size_t ne = tensor_count(m, "embed.weight");
    float *mom = NULL, *mom2 = NULL;
    if (opt) {
        mom = malloc(ne * sizeof(float));
        mom2 = malloc(ne * sizeof(float));
        ck_assert_int_eq(tf_optimizer_get_moment(opt, "embed.weight", 0, mom, ne), TF_OK);
    }
    tf_status st = tf_model_load(m, opt, path);
    ck_assert_msg(st == status, "%s: status %s, expected %s (%s)", path, tf_status_name(st),
                  tf_status_name(status), tf_model_errmsg(m));
    const char *msg = tf_model_errmsg(m);
    const char *words[3] = {w1, w2, w3};
    for (int i = 0; i < 3; i++)
        if (words[i])
            ck_assert_msg(strstr(msg, words[i]) != NULL, "message '%s' lacks '%s'", msg,
                          words[i]);
    ck_assert_str_eq(tf_last_error(), msg);
    expect_snapshot(m, before, n, path);
    if (opt) {
        ck_assert_int_eq(tf_optimizer_step_count(opt), step);
        ck_assert_int_eq(tf_optimizer_get_moment(opt, "embed.weight", 0, mom2, ne), TF_OK);
        ck_assert_int_eq(memcmp(mom, mom2, ne * sizeof(float)), 0);
    }
    free(mom);
    free(mom2);
    free(before);
}

START_TEST(test_bad_checkpoints)
{
    /* d = 64 so that the shapes are those of the fixtures */
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 6);
    p.hidden_size = 64;
    p.num_attention_heads = 4;
    p.qkv_slot_num = 48;
    p.proj_slot_num = 40;
    tf_model *m = new_model(&p);
    tf_model_params q = p;
    q.qkv_slot_num = 40;
    q.seed = 8;
    tf_model *other = new_model(&q);
    char good[512], bad[512];
    tt_tmp_path(good, sizeof good, "good.safetensors");
    tt_tmp_path(bad, sizeof bad, "bad.safetensors");

    /* the file's query keys are [40, 64], the model's [48, 64] */
    ck_assert_int_eq(tf_model_save(other, NULL, bad), TF_OK);
    expect_load_refused(m, NULL, bad, TF_ERR_SHAPE, "layers.0.attention.query.key_param_tokens",
                        "[40, 64]", "[48, 64]");

    /* every check comes before any copy: faults in the last tensor */
    tf_model_params r = p;
    r.seed = 9;
    tf_model *src = new_model(&r);
    tf_optimizer *opt_src = NULL, *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(src, NULL, &opt_src), TF_OK);
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    enum { B = 1, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 1);
    fill_tokens(tgt, B * T, p.vocab_size, 2);
    train_step(src, opt_src, B, T, tok, tgt);
    ck_assert_int_eq(tf_model_save(src, opt_src, good), TF_OK);

    rewrite_spec sp = {0};
    sp.reshape = "final_norm.bias";
    sp.new_shape[0] = 60;
    sp.new_nd = 1;
    rewrite(good, bad, &sp);
    expect_load_refused(m, opt, bad, TF_ERR_SHAPE, "final_norm.bias", "[60]", "[64]");

    sp = (rewrite_spec){0};
    sp.reshape = "layers.1.mlp.value_param_tokens";
    sp.new_shape[0] = 10 * 64;
    sp.new_nd = 1;
    rewrite(good, bad, &sp);
    expect_load_refused(m, opt, bad, TF_ERR_SHAPE, "layers.1.mlp.value_param_tokens", "[640]",
                        "[10, 64]");

    sp = (rewrite_spec){0};
    sp.drop = "final_norm.bias";
    rewrite(good, bad, &sp);
    expect_load_refused(m, opt, bad, TF_ERR_FORMAT, "final_norm.bias", NULL, NULL);

    sp = (rewrite_spec){0};
    sp.retype = "final_norm.weight";
    rewrite(good, bad, &sp);
    expect_load_refused(m, opt, bad, TF_ERR_FORMAT, "final_norm.weight", "I32", "F32");

    /* a fault in the optimizer state: the model is not touched either */
    sp = (rewrite_spec){0};
    sp.drop = "optimizer.exp_avg_sq.final_norm.bias";
    rewrite(good, bad, &sp);
    expect_load_refused(m, opt, bad, TF_ERR_FORMAT, "optimizer.exp_avg_sq.final_norm.bias",
                        NULL, NULL);
    sp = (rewrite_spec){0};
    sp.meta_key = "optimizer.step";
    sp.meta_value = "-3";
    rewrite(good, bad, &sp);
    expect_load_refused(m, opt, bad, TF_ERR_FORMAT, "optimizer.step", NULL, NULL);
    /* a step count the next step would overflow */
    sp.meta_value = "9223372036854775807";
    rewrite(good, bad, &sp);
    expect_load_refused(m, opt, bad, TF_ERR_FORMAT, "optimizer.step", "9223372036854775807",
                        NULL);

    /* a malformed per-set scale */
    sp = (rewrite_spec){0};
    sp.meta_key = "pattention.layers.1.mlp.tau";
    sp.meta_value = "-1";
    rewrite(good, bad, &sp);
    expect_load_refused(m, opt, bad, TF_ERR_FORMAT, "pattention.layers.1.mlp.tau", NULL, NULL);
    ck_assert(tf_pattention_tau(tf_model_pattention(m, 1, TF_SET_FFN)) == sqrt(10.0));

    /* truncated: the data area cut short */
    size_t size;
    unsigned char *bytes = read_all(good, &size);
    write_bytes_to(bad, bytes, size - 100);
    expect_load_refused(m, opt, bad, TF_ERR_FORMAT, "bad.safetensors", NULL, NULL);
    write_bytes_to(bad, bytes, 5); /* not even the header length */
    expect_load_refused(m, opt, bad, TF_ERR_FORMAT, NULL, NULL, NULL);
    free(bytes);

    char missing[512];
    tt_tmp_path(missing, sizeof missing, "no_such_file.safetensors");
    expect_load_refused(m, opt, missing, TF_ERR_IO, "no_such_file.safetensors", NULL, NULL);
    tf_model *none = (tf_model *)1;
    ck_assert_int_eq(tf_model_open(missing, &none), TF_ERR_IO);
    ck_assert_ptr_null(none);
    ck_assert_int_eq(tf_model_open(bad, &none), TF_ERR_FORMAT);
    ck_assert_ptr_null(none);

    /* an optimizer of another model */
    expect_load_refused(m, opt_src, good, TF_ERR_ARGUMENT, "another model", NULL, NULL);

    /* and the good file loads (model and optimizer) */
    ck_assert_int_eq(tf_model_load(m, opt, good), TF_OK);
    expect_same_tensors(src, m);
    expect_same_moments(m, opt_src, opt);
    ck_assert_int_eq(tf_optimizer_step_count(opt), 1);

    tf_optimizer_free(opt);
    tf_optimizer_free(opt_src);
    tf_model_free(src);
    tf_model_free(m);
    tf_model_free(other);
}
END_TEST

/* ---- checkpoints: atomic save ----------------------------------------------------- */

START_TEST(test_save_into_missing_directory)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 1);
    tf_model *m = new_model(&p);
    char path[512];
    tt_tmp_path(path, sizeof path, "no/such/dir/model.safetensors");
    ck_assert_int_eq(tf_model_save(m, NULL, path), TF_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), path));
    ck_assert_int_eq(count_dir_entries(tt_tmpdir), 0);

    /* an optimizer of another model: refused before anything is written */
    tf_model *other = new_model(&p);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(other, NULL, &opt), TF_OK);
    tt_tmp_path(path, sizeof path, "m.safetensors");
    ck_assert_int_eq(tf_model_save(m, opt, path), TF_ERR_ARGUMENT);
    ck_assert_int_eq(count_dir_entries(tt_tmpdir), 0);
    tf_optimizer_free(opt);
    tf_model_free(other);
    tf_model_free(m);
}
END_TEST

START_TEST(test_failed_save_keeps_old_file)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 1);
    tf_model *m = new_model(&p);
    char path[512];
    tt_tmp_path(path, sizeof path, "model.safetensors");
    ck_assert_int_eq(tf_model_save(m, NULL, path), TF_OK);
    size_t old_size;
    unsigned char *old = read_all(path, &old_size);
    ck_assert_uint_gt(old_size, 8192);

    tf_model_params q = p;
    q.seed = 2;
    tf_model *n = new_model(&q);
    struct rlimit saved, low;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    low = saved;
    low.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &low), 0);
    tf_status st = tf_model_save(n, NULL, path);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);

    ck_assert_msg(st == TF_ERR_IO, "status %d: %s", (int)st, tf_model_errmsg(n));
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(n), path));
    size_t now_size;
    unsigned char *now = read_all(path, &now_size);
    ck_assert_uint_eq(now_size, old_size);
    ck_assert_int_eq(memcmp(now, old, old_size), 0);
    ck_assert_int_eq(count_dir_entries(tt_tmpdir), 1); /* the temporary file is gone */
    /* and the old checkpoint still loads as the first model */
    ck_assert_int_eq(tf_model_load(n, NULL, path), TF_OK);
    expect_same_tensors(m, n);
    free(now);
    free(old);
    tf_model_free(n);
    tf_model_free(m);
}
END_TEST

/* ---- API misuse ----------------------------------------------------------------- */

START_TEST(test_null_model)
{
    float buf[4];
    int64_t shape[2];
    int nd;
    int32_t tok[2] = {0, 1};
    tf_model_params p = tf_model_default_params();
    tf_model_free(NULL);
    ck_assert_ptr_nonnull(tf_model_errmsg(NULL));
    ck_assert_int_eq(tf_model_get_params(NULL, &p), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "tf_model_get_params"));
    ck_assert_int_eq(tf_model_num_params(NULL), 0);
    ck_assert_ptr_null(tf_model_pattention(NULL, 0, TF_SET_QUERY));
    ck_assert_int_eq(tf_model_num_tensors(NULL), 0);
    ck_assert_ptr_null(tf_model_tensor_name(NULL, 0));
    ck_assert_int_eq(tf_model_tensor_shape(NULL, "embed.weight", shape, &nd), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_get_tensor(NULL, "embed.weight", buf, 4), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_set_tensor(NULL, "embed.weight", buf, 4), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_get_grad(NULL, "embed.weight", buf, 4), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_forward(NULL, 1, 2, tok, tok, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "tf_model_forward"));
    ck_assert_int_eq(tf_model_backward(NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_zero_grad(NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_grow(NULL, NULL, 8, 8, 8, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_save(NULL, NULL, "/tmp/x.safetensors"), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_load(NULL, NULL, "tests/data/model_tiny.safetensors"),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_load_grown(NULL, "tests/data/model_tiny.safetensors", NULL),
                     TF_ERR_ARGUMENT);
    tf_model *m = (tf_model *)1;
    ck_assert_int_eq(tf_model_open(NULL, &m), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_open("tests/data/model_tiny.safetensors", NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_create(&p, NULL), TF_ERR_ARGUMENT);

    /* NULL pointers next to a real model */
    tf_model_params sp = small_params(TF_NORM_L2_NORM_GELU, 0.25, 1);
    m = new_model(&sp);
    ck_assert_int_eq(tf_model_get_params(m, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_tensor_shape(m, NULL, shape, &nd), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_tensor_shape(m, "final_norm.bias", NULL, &nd), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_get_tensor(m, "final_norm.bias", NULL, 16), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_set_tensor(m, "final_norm.bias", NULL, 16), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_forward(m, 1, 2, NULL, NULL, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_save(m, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_load(m, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_load_grown(m, NULL, NULL), TF_ERR_ARGUMENT);
    tf_model_free(m);
}
END_TEST

START_TEST(test_forward_arguments)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 1);
    tf_model *m = new_model(&p);
    enum { B = 2, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 1);
    fill_tokens(tgt, B * T, p.vocab_size, 2);
    const size_t nl = (size_t)B * T * p.vocab_size;
    float *logits = malloc(nl * sizeof(float));
    float loss = 0.0f;

    ck_assert_int_eq(tf_model_forward(m, 0, T, tok, tgt, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_forward(m, B, 0, tok, tgt, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_forward(m, -1, T, tok, tgt, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_forward(m, 1, 9, tok, tgt, NULL, NULL), TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "seq_length"));

    /* a good forward, then refused ones: the state of the good one stays */
    float good_loss = run_forward(m, B, T, tok, tgt, logits);
    int32_t bad[B * T];
    memcpy(bad, tok, sizeof bad);
    bad[5] = (int32_t)p.vocab_size;
    loss = 123.0f;
    ck_assert_int_eq(tf_model_forward(m, B, T, bad, tgt, logits, &loss), TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "tokens[5]"));
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "32"));
    ck_assert(loss == 123.0f);
    bad[5] = tok[5];
    bad[11] = -1;
    ck_assert_int_eq(tf_model_forward(m, B, T, bad, tgt, NULL, NULL), TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "tokens[11]"));
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "-1"));
    memcpy(bad, tgt, sizeof bad);
    bad[15] = 1000;
    ck_assert_int_eq(tf_model_forward(m, B, T, tok, bad, NULL, NULL), TF_ERR_RANGE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "targets[15]"));
    ck_assert_int_eq(tf_model_forward(m, 1, 9, tok, tgt, NULL, NULL), TF_ERR_RANGE);
    /* backward still belongs to the good forward */
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    size_t ng;
    float *g1 = get_grad(m, "embed.weight", &ng);
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    ck_assert(run_forward(m, B, T, tok, tgt, NULL) == good_loss);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    float *g2 = get_grad(m, "embed.weight", NULL);
    ck_assert_int_eq(memcmp(g1, g2, ng * sizeof(float)), 0);

    /* T < seq_length and a smaller batch after a larger one */
    float *small_logits = malloc((size_t)3 * p.vocab_size * sizeof(float));
    ck_assert_int_eq(tf_model_forward(m, 1, 3, tok, NULL, small_logits, NULL), TF_OK);
    /* causal: the first 3 positions of sequence 0 match the long run */
    for (int i = 0; i < 3 * p.vocab_size; i++)
        ck_assert_msg(fabsf(small_logits[i] - logits[i]) <= 1e-5f * (1.0f + fabsf(logits[i])),
                      "logit %d: %g vs %g", i, small_logits[i], logits[i]);
    free(small_logits);
    free(g1);
    free(g2);
    free(logits);
    tf_model_free(m);
}
END_TEST

START_TEST(test_backward_state)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 1);
    tf_model *m = new_model(&p);
    enum { B = 1, T = 8 };
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, p.vocab_size, 1);
    fill_tokens(tgt, B * T, p.vocab_size, 2);
    ck_assert_int_eq(tf_model_backward(m), TF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "tf_model_backward"));
    ck_assert_str_eq(tf_last_error(), tf_model_errmsg(m));
    run_forward(m, B, T, tok, tgt, NULL);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_ERR_STATE);
    /* a forward without targets allows no backward */
    run_forward(m, B, T, tok, tgt, NULL);
    ck_assert_int_eq(tf_model_forward(m, B, T, tok, NULL, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_ERR_STATE);
    tf_model_free(m);
}
END_TEST

/* Label smoothing on the language model: the loss from the logits, and the
 * gradient linear in the target distribution ((1 - eps) of the targets'
 * plus eps / V of the sum over "every target is v"). */
START_TEST(test_label_smoothing)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 3);
    tf_model *m = new_model(&p);
    enum { B = 2, T = 8, V = 32 };
    int32_t tok[B * T], tgt[B * T], all_v[B * T];
    fill_tokens(tok, B * T, V, 5);
    fill_tokens(tgt, B * T, V, 6);
    static float logits[B * T * V];
    float loss;
    const double eps = 0.125;
    ck_assert_int_eq(tf_model_set_label_smoothing(m, eps), TF_OK);
    ck_assert_int_eq(tf_model_forward(m, B, T, tok, tgt, logits, &loss), TF_OK);
    const double want = tt_smoothed_ce(logits, tgt, B * T, V, eps);
    ck_assert_msg(fabs(loss - want) <= 1e-5 * fabs(want), "loss %g, want %g", loss, want);
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    float *buf;
    size_t n;
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, &n), TF_OK);
    float *got = malloc(n * sizeof *got), *want_g = calloc(n, sizeof *want_g);
    memcpy(got, buf, n * sizeof *got);
    ck_assert_int_eq(tf_model_set_label_smoothing(m, 0.0), TF_OK);
    for (int v = -1; v < V; v++) {
        for (int i = 0; i < B * T; i++)
            all_v[i] = v < 0 ? tgt[i] : v;
        ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
        ck_assert_int_eq(tf_model_forward(m, B, T, tok, all_v, NULL, NULL), TF_OK);
        ck_assert_int_eq(tf_model_backward(m), TF_OK);
        const float w = v < 0 ? (float)(1.0 - eps) : (float)(eps / V);
        for (size_t i = 0; i < n; i++)
            want_g[i] += w * buf[i];
    }
    double gmax = 0.0;
    for (size_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(want_g[i]));
    ck_assert(gmax > 0.0);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want_g[i]) <= 1e-5 * gmax, "grad[%zu] = %g, want %g", i,
                      got[i], want_g[i]);
    free(got), free(want_g);
    tf_model_free(m);
}
END_TEST

START_TEST(test_tensor_access_errors)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 1);
    tf_model *m = new_model(&p);
    float buf[16 * 32];
    int64_t shape[2] = {-1, -1};
    int nd = -1;
    ck_assert_int_eq(tf_model_num_tensors(m), 1 + 10 * 2 + 2);
    ck_assert_str_eq(tf_model_tensor_name(m, 0), "embed.weight");
    ck_assert_str_eq(tf_model_tensor_name(m, 1), "layers.0.attention.query.key_param_tokens");
    ck_assert_str_eq(tf_model_tensor_name(m, 20), "layers.1.mlp.value_param_tokens");
    ck_assert_str_eq(tf_model_tensor_name(m, 22), "final_norm.bias");
    ck_assert_ptr_null(tf_model_tensor_name(m, 23));
    ck_assert_ptr_null(tf_model_tensor_name(m, -1));
    ck_assert_int_eq(tf_model_num_params(m), 32 * 16 + 2 * 2 * 16 * (3 * 6 + 5 + 10) + 2 * 16);

    static const char *const missing[] = {"embed", "layers.2.mlp.key_param_tokens",
                                          "layers.0.attention.query", "final_norm.weight ", ""};
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        ck_assert_int_eq(tf_model_tensor_shape(m, missing[i], shape, &nd), TF_ERR_NOT_FOUND);
        ck_assert_int_eq(tf_model_get_tensor(m, missing[i], buf, 16), TF_ERR_NOT_FOUND);
        ck_assert_int_eq(tf_model_set_tensor(m, missing[i], buf, 16), TF_ERR_NOT_FOUND);
        ck_assert_int_eq(tf_model_get_grad(m, missing[i], buf, 16), TF_ERR_NOT_FOUND);
        ck_assert_msg(strstr(tf_model_errmsg(m), "no tensor") != NULL, "%s",
                      tf_model_errmsg(m));
    }
    ck_assert_int_eq(tf_model_tensor_shape(m, "layers.1.attention.proj.value_param_tokens",
                                           shape, &nd),
                     TF_OK);
    ck_assert_int_eq(nd, 2);
    ck_assert_int_eq(shape[0], 5);
    ck_assert_int_eq(shape[1], 16);
    ck_assert_int_eq(tf_model_tensor_shape(m, "final_norm.weight", shape, &nd), TF_OK);
    ck_assert_int_eq(nd, 1);
    ck_assert_int_eq(shape[0], 16);

    size_t n;
    float *before = snapshot(m, &n);
    ck_assert_int_eq(tf_model_get_tensor(m, "final_norm.weight", buf, 15), TF_ERR_SHAPE);
    ck_assert_int_eq(tf_model_set_tensor(m, "final_norm.weight", buf, 17), TF_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(m), "final_norm.weight"));
    ck_assert_int_eq(tf_model_get_grad(m, "embed.weight", buf, 16 * 31), TF_ERR_SHAPE);
    ck_assert_int_eq(tf_model_set_tensor(m, "embed.weight", buf, 0), TF_ERR_SHAPE);
    expect_snapshot(m, before, n, "refused set_tensor");
    free(before);

    /* set then get round trips */
    for (int i = 0; i < 16; i++)
        buf[i] = (float)i * 0.5f;
    float back[16];
    ck_assert_int_eq(tf_model_set_tensor(m, "final_norm.bias", buf, 16), TF_OK);
    ck_assert_int_eq(tf_model_get_tensor(m, "final_norm.bias", back, 16), TF_OK);
    ck_assert_int_eq(memcmp(buf, back, sizeof back), 0);

    /* set handles */
    ck_assert_ptr_null(tf_model_pattention(m, -1, TF_SET_QUERY));
    ck_assert_ptr_null(tf_model_pattention(m, 2, TF_SET_QUERY));
    ck_assert_ptr_null(tf_model_pattention(m, 0, (tf_set_kind)5));
    ck_assert_ptr_null(tf_model_pattention(m, 0, (tf_set_kind)-1));
    tf_pattention *s = tf_model_pattention(m, 1, TF_SET_PROJ);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(tf_pattention_n(s), 5);
    ck_assert_int_eq(tf_pattention_d_in(s), 16);
    ck_assert_int_eq(tf_pattention_n(tf_model_pattention(m, 0, TF_SET_FFN)), 10);
    /* the handle and the named tensor are the same storage */
    float keys[5 * 16];
    ck_assert_int_eq(tf_pattention_get_keys(s, keys, 5 * 16), TF_OK);
    float named[5 * 16];
    ck_assert_int_eq(tf_model_get_tensor(m, "layers.1.attention.proj.key_param_tokens", named,
                                         5 * 16),
                     TF_OK);
    ck_assert_int_eq(memcmp(keys, named, sizeof keys), 0);
    tf_model_free(m);
}
END_TEST

START_TEST(test_bad_params)
{
    struct {
        const char *what;
        tf_status status;
        const char *word;
    } cases[] = {
        {"heads", TF_ERR_CONFIG, "divisible"},      {"rotary", TF_ERR_CONFIG, "even"},
        {"qkv", TF_ERR_CONFIG, "slot"},             {"ffn", TF_ERR_CONFIG, "slot"},
        {"layers", TF_ERR_CONFIG, "num_layers"},    {"vocab", TF_ERR_CONFIG, "vocab_size"},
        {"seq", TF_ERR_CONFIG, "seq_length"},       {"norm", TF_ERR_CONFIG, "norm"},
        {"eps", TF_ERR_CONFIG, "layernorm_epsilon"}, {"rotary_pct", TF_ERR_CONFIG, "rotary_pct"},
        {"size0", TF_ERR_ARGUMENT, "struct_size"},  {"size_big", TF_ERR_ARGUMENT, "struct_size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 1);
        const char *w = cases[i].what;
        if (strcmp(w, "heads") == 0)
            p.num_attention_heads = 3;
        else if (strcmp(w, "rotary") == 0)
            p.rotary_pct = 0.375; /* head_dim 8: 3 rotary dims */
        else if (strcmp(w, "qkv") == 0)
            p.qkv_slot_num = 0;
        else if (strcmp(w, "ffn") == 0)
            p.ffn_slot_num = -4;
        else if (strcmp(w, "layers") == 0)
            p.num_layers = 0;
        else if (strcmp(w, "vocab") == 0)
            p.vocab_size = 0;
        else if (strcmp(w, "seq") == 0)
            p.seq_length = 0;
        else if (strcmp(w, "norm") == 0)
            p.norm = (tf_norm_type)7;
        else if (strcmp(w, "eps") == 0)
            p.layernorm_epsilon = 0.0;
        else if (strcmp(w, "rotary_pct") == 0)
            p.rotary_pct = 1.5;
        else if (strcmp(w, "size0") == 0)
            p.struct_size = 0;
        else
            p.struct_size = sizeof p + 8;
        tf_model *m = (tf_model *)1;
        tf_status st = tf_model_create(&p, &m);
        ck_assert_msg(st == cases[i].status, "%s: status %s (%s)", w, tf_status_name(st),
                      tf_last_error());
        ck_assert_ptr_null(m);
        ck_assert_msg(strstr(tf_last_error(), cases[i].word) != NULL, "%s: message '%s'", w,
                      tf_last_error());
    }
    /* an older, shorter params struct is accepted (appended fields default) */
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 1);
    p.scale_policy = (tf_scale_policy)42; /* would be refused if it were read */
    p.struct_size = offsetof(tf_model_params, scale_policy);
    tf_model *m = NULL;
    ck_assert_msg(tf_model_create(&p, &m) == TF_OK, "%s", tf_last_error());
    tf_model_params got = params_of(m);
    ck_assert_int_eq(got.scale_policy, TF_SCALE_FOLLOW_N);
    ck_assert_int_eq(got.qkv_slot_num, 6);
    tf_model_free(m);
}
END_TEST

/* ---- threads and accumulation --------------------------------------------------- */

static float loss_and_grads(tf_model *m, int B, int T, const int32_t *tok, const int32_t *tgt,
                            float **grads)
{
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    float loss = run_forward(m, B, T, tok, tgt, NULL);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    for (int i = 0; i < tf_model_num_tensors(m); i++)
        grads[i] = get_grad(m, tf_model_tensor_name(m, i), NULL);
    return loss;
}

/* What a run at one thread count produced: the losses and the parameters
 * after two training steps, and a decoder's logits after a prefill (BLIS
 * products) and steps (few-row products). */
enum { TA_B = 2, TA_T = 96, TA_STEPS = 2, TA_P = 70, TA_DEC = 3 };
typedef struct thread_run {
    float loss[TA_STEPS];
    float *params;
    size_t nparams;
    float *logits; /* [TA_DEC + 1][TA_B * V] */
} thread_run;

/* Trains a fresh model and decodes with it at the thread count in effect
 * (check-free: it may run on a thread of its own); returns 0 on success. */
static int train_and_decode(thread_run *out)
{
    /* big enough that every kind of parallel loop runs on the pool: split
     * GEMMs (the head's columns, the projections' rows), attention heads,
     * Theta rows, the loss, the optimizer's chunks, few-row products */
    tf_model_params p = tf_model_default_params();
    p.hidden_size = 128;
    p.qkv_slot_num = 256;
    p.proj_slot_num = 256;
    p.ffn_slot_num = 512;
    p.vocab_size = 4096;
    p.seq_length = TA_T;
    p.seed = 5;
    tf_model *m = NULL;
    tf_optimizer *opt = NULL;
    tf_optimizer_params op = tf_optimizer_default_params();
    if (tf_model_create(&p, &m) != TF_OK || tf_optimizer_create(m, &op, &opt) != TF_OK)
        return -1;
    int32_t tok[TA_B * TA_T], tgt[TA_B * TA_T];
    fill_tokens(tok, TA_B * TA_T, p.vocab_size, 3);
    fill_tokens(tgt, TA_B * TA_T, p.vocab_size, 4);
    for (int i = 0; i < TA_STEPS; i++)
        if (tf_model_forward(m, TA_B, TA_T, tok, tgt, NULL, &out->loss[i]) != TF_OK ||
            tf_model_backward(m) != TF_OK || tf_optimizer_step(opt, NULL) != TF_OK)
            return -1;
    out->nparams = (size_t)tf_model_num_params(m);
    out->params = malloc(out->nparams * sizeof(float));
    size_t off = 0;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n = tensor_count(m, name);
        if (off + n > out->nparams || tf_model_get_tensor(m, name, out->params + off, n) != TF_OK)
            return -1;
        off += n;
    }
    const size_t V = (size_t)p.vocab_size;
    out->logits = malloc((TA_DEC + 1) * TA_B * V * sizeof(float));
    tf_decoder *dec = NULL;
    if (tf_decoder_create(m, TA_B, &dec) != TF_OK)
        return -1;
    int32_t prompt[TA_B * TA_P];
    for (int b = 0; b < TA_B; b++)
        memcpy(prompt + b * TA_P, tok + b * TA_T, TA_P * sizeof(int32_t));
    if (tf_decoder_prefill(dec, TA_P, prompt, out->logits) != TF_OK)
        return -1;
    for (int i = 1; i <= TA_DEC; i++) {
        int32_t step[TA_B];
        for (int b = 0; b < TA_B; b++)
            step[b] = tok[b * TA_T + TA_P + i - 1];
        if (tf_decoder_step(dec, step, out->logits + (size_t)i * TA_B * V) != TF_OK)
            return -1;
    }
    tf_decoder_free(dec);
    tf_optimizer_free(opt);
    tf_model_free(m);
    return 0;
}

static void run_at(int threads, thread_run *out)
{
    ck_assert_int_eq(tf_set_num_threads(threads), TF_OK);
    ck_assert_int_eq(tf_get_num_threads(), threads);
    ck_assert_msg(train_and_decode(out) == 0, "%s", tf_last_error());
}

static void expect_same_run(const thread_run *want, const thread_run *got, const char *what)
{
    ck_assert_msg(memcmp(want->loss, got->loss, sizeof want->loss) == 0,
                  "%s: losses %.9g %.9g, want %.9g %.9g", what, got->loss[0], got->loss[1],
                  want->loss[0], want->loss[1]);
    ck_assert_uint_eq(want->nparams, got->nparams);
    ck_assert_msg(memcmp(want->params, got->params, want->nparams * sizeof(float)) == 0,
                  "%s: parameters after training differ", what);
    ck_assert_msg(memcmp(want->logits, got->logits, (TA_DEC + 1) * TA_B * 4096 * sizeof(float)) == 0,
                  "%s: decoder logits differ", what);
}

/* Training and decoding give the same bits at 1, 2 and 3 threads: no task
 * of a parallel loop depends on the thread that runs it or on how many
 * there are (large GEMMs take BLIS's packing path, whose elements do not
 * depend on the cut; sums across rows are taken in fixed parts). */
START_TEST(test_threads_same_bits)
{
    const int saved = tf_get_num_threads();
    thread_run one, other;
    run_at(1, &one);
    for (int threads = 2; threads <= 3; threads++) {
        char what[32];
        snprintf(what, sizeof what, "%d threads", threads);
        run_at(threads, &other);
        expect_same_run(&one, &other, what);
        free(other.params);
        free(other.logits);
    }
    free(one.params);
    free(one.logits);
    ck_assert_int_eq(tf_set_num_threads(saved), TF_OK);
    ck_assert_int_eq(tf_set_num_threads(0), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_get_num_threads(), saved);
}
END_TEST

START_TEST(test_grad_accumulation)
{
    tf_model_params p = small_params(TF_NORM_L2_NORM_GELU, 0.25, 2);
    tf_model *m = new_model(&p);
    enum { B = 2, T = 8 };
    int32_t tok1[B * T], tgt1[B * T], tok2[B * T], tgt2[B * T];
    fill_tokens(tok1, B * T, p.vocab_size, 1);
    fill_tokens(tgt1, B * T, p.vocab_size, 2);
    fill_tokens(tok2, B * T, p.vocab_size, 3);
    fill_tokens(tgt2, B * T, p.vocab_size, 4);
    const int nt = tf_model_num_tensors(m);
    float **ga = calloc((size_t)nt, sizeof *ga), **gb = calloc((size_t)nt, sizeof *gb);
    loss_and_grads(m, B, T, tok1, tgt1, ga);
    loss_and_grads(m, B, T, tok2, tgt2, gb);

    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    run_forward(m, B, T, tok1, tgt1, NULL);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    run_forward(m, B, T, tok2, tgt2, NULL);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    for (int i = 0; i < nt; i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n;
        float *g = get_grad(m, name, &n);
        double num = 0.0, den = 0.0, diff = 0.0;
        for (size_t k = 0; k < n; k++) {
            double sum = (double)ga[i][k] + (double)gb[i][k];
            num = fmax(num, fabs((double)g[k] - sum));
            den = fmax(den, fabs(sum));
            diff = fmax(diff, fabs((double)g[k] - (double)ga[i][k]));
        }
        ck_assert_msg(num <= 1e-5 * (den + 1e-6), "%s: accumulated err %g (max %g)", name, num,
                      den);
        ck_assert_msg(diff > 0.0, "%s: the second batch added nothing", name);
        free(g);
    }
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    for (int i = 0; i < nt; i++) {
        size_t n;
        float *g = get_grad(m, tf_model_tensor_name(m, i), &n);
        for (size_t k = 0; k < n; k++)
            ck_assert_msg(g[k] == 0.0f, "%s[%zu] = %g after zero_grad",
                          tf_model_tensor_name(m, i), k, g[k]);
        free(g);
        free(ga[i]);
        free(gb[i]);
    }
    free(ga);
    free(gb);
    tf_model_free(m);
}
END_TEST

typedef struct host_job {
    thread_run run;
    int rc;
} host_job;

static void *host_thread(void *arg)
{
    host_job *j = arg;
    j->rc = train_and_decode(&j->run);
    return NULL;
}

/* Two host threads training and decoding at the same time (each its own
 * model) while the pool has 2 threads: neither corrupts the other, and both
 * get the bits of a run alone. */
START_TEST(test_two_host_threads)
{
    const int saved = tf_get_num_threads();
    ck_assert_int_eq(tf_set_num_threads(2), TF_OK);
    thread_run alone;
    ck_assert_msg(train_and_decode(&alone) == 0, "%s", tf_last_error());
    host_job jobs[2];
    pthread_t ids[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&ids[i], NULL, host_thread, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_join(ids[i], NULL), 0);
        ck_assert_int_eq(jobs[i].rc, 0);
        expect_same_run(&alone, &jobs[i].run, i ? "host thread 2" : "host thread 1");
        free(jobs[i].run.params);
        free(jobs[i].run.logits);
    }
    free(alone.params);
    free(alone.logits);
    ck_assert_int_eq(tf_set_num_threads(saved), TF_OK);
}
END_TEST

Suite *model_suite(void)
{
    Suite *s = suite_create("model");

    TCase *tc = tcase_create("math");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fixture_forward_backward, 0, 2);
    tcase_add_loop_test(tc, test_finite_differences, 0,
                        (int)(sizeof fd_cases / sizeof *fd_cases));
    tcase_add_test(tc, test_threads_same_bits);
    tcase_add_test(tc, test_label_smoothing);
    tcase_add_test(tc, test_two_host_threads);
    tcase_add_test(tc, test_grad_accumulation);
    suite_add_tcase(s, tc);

    tc = tcase_create("checkpoints");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, tt_make_basedir, tt_remove_basedir);
    tcase_add_checked_fixture(tc, tt_make_tmpdir, tt_remove_tmpdir);
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_save_load_optimizer);
    tcase_add_test(tc, test_load_official_names);
    tcase_add_test(tc, test_bad_checkpoints);
    tcase_add_test(tc, test_save_into_missing_directory);
    tcase_add_test(tc, test_failed_save_keeps_old_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_add_test(tc, test_null_model);
    tcase_add_test(tc, test_forward_arguments);
    tcase_add_test(tc, test_backward_state);
    tcase_add_test(tc, test_tensor_access_errors);
    tcase_add_test(tc, test_bad_params);
    suite_add_tcase(s, tc);
    return s;
}
