/*
 * conformance.c -- checks every *.safetensors fixture in a directory
 * against libtokenformer and prints one line per file:
 *
 *   PASS model_tiny.safetensors  logits 7.3e-07/2e-05  loss ... grads ...
 *
 * Dispatches on the file's `kind` metadata: pattention, model, grow, vision.
 * Tolerances are those of the fixtures' README (metric max|a-b| / (max|b| +
 * 1e-6) per tensor, the worst tensor of a group reported).  Exits 1 if any
 * file fails, 2 on usage errors.  Fixtures of any size work: every shape
 * comes from the file.
 *
 *   tf-conformance DIR
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

#define TOL_OUT 2e-5
#define TOL_GRAD 2e-4
#define TOL_STEP 1e-5

/* One line of results: groups of "name worst/limit". */
typedef struct report {
    char text[1024];
    size_t used;
    int failed;
    char why[512];
} report;

static void add_group(report *r, const char *group, double err, double tol)
{
    int ok = err <= tol; /* NaN fails */
    r->failed |= !ok;
    r->used += (size_t)snprintf(r->text + r->used, sizeof r->text - r->used, "  %s %.2e/%.0e%s",
                                group, err, tol, ok ? "" : " FAIL");
}

static void fail(report *r, const char *fmt, const char *detail)
{
    r->failed = 1;
    snprintf(r->why, sizeof r->why, fmt, detail);
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= num))
            num = isnan(d) ? INFINITY : d;
        den = fabs((double)b[i]) > den ? fabs((double)b[i]) : den;
    }
    return num / (den + 1e-6);
}

/* A fixture tensor as a fresh float array (NULL if absent or not F32). */
static float *tensor(const tfi_st_file *f, const char *name, size_t *count)
{
    const tfi_st_tensor *t = tfi_st_find(f, name);
    if (!t || t->dtype != TFI_ST_F32)
        return NULL;
    float *buf = malloc(((size_t)t->numel ? (size_t)t->numel : 1) * sizeof(float));
    if (buf && tfi_st_read_f32(f, name, buf, (size_t)t->numel, NULL) != TF_OK) {
        free(buf);
        return NULL;
    }
    if (count)
        *count = (size_t)t->numel;
    return buf;
}

static int32_t *ids(const tfi_st_file *f, const char *name, int *B, int *T)
{
    const tfi_st_tensor *t = tfi_st_find(f, name);
    if (!t || t->dtype != TFI_ST_I32 || t->ndim != 2)
        return NULL;
    *B = (int)t->shape[0];
    *T = (int)t->shape[1];
    int32_t *buf = malloc((size_t)t->numel * sizeof(int32_t) + 1);
    if (buf)
        memcpy(buf, tfi_st_data(f, t), (size_t)t->numel * sizeof(int32_t));
    return buf;
}

static double meta_num(const tfi_st_file *f, const char *key, double fallback)
{
    const char *s = tfi_st_meta(f, key);
    return s ? atof(s) : fallback;
}

/* ---- kind: pattention ------------------------------------------------- */

static void check_pattention(const tfi_st_file *f, report *r)
{
    size_t nx, nk, nv, ny;
    float *X = tensor(f, "input", &nx), *K = tensor(f, "key_param_tokens", &nk);
    float *V = tensor(f, "value_param_tokens", &nv), *Yref = tensor(f, "output", &ny);
    float *dY = tensor(f, "grad_output", NULL), *dXref = tensor(f, "grad_input", NULL);
    float *dKref = tensor(f, "grad_key_param_tokens", NULL);
    float *dVref = tensor(f, "grad_value_param_tokens", NULL);
    const tfi_st_tensor *tk = tfi_st_find(f, "key_param_tokens");
    const tfi_st_tensor *tv = tfi_st_find(f, "value_param_tokens");
    const char *norm = tfi_st_meta(f, "norm_activation_type");
    tf_pattention *set = NULL;
    float *Y = NULL, *dX = NULL, *dK = NULL, *dV = NULL;
    if (!X || !K || !V || !Yref || !dY || !dXref || !dKref || !dVref || !norm ||
        tk->ndim != 2 || tv->ndim != 2) {
        fail(r, "%s", "missing or malformed Pattention tensors or metadata");
        goto done;
    }
    tf_pattention_params p = tf_pattention_default_params();
    p.n = tk->shape[0];
    p.d_in = tk->shape[1];
    p.d_out = tv->shape[1];
    p.norm = strcmp(norm, "softmax") == 0        ? TF_NORM_SOFTMAX
             : strcmp(norm, "gelu_l2_norm") == 0 ? TF_NORM_GELU_L2_NORM
                                                 : TF_NORM_L2_NORM_GELU;
    p.tau = meta_num(f, "tau", 0.0);
    int64_t N = (int64_t)(nx / (size_t)p.d_in);
    Y = calloc(ny, sizeof(float));
    dX = calloc(nx, sizeof(float));
    dK = calloc(nk, sizeof(float));
    dV = calloc(nv, sizeof(float));
    if (tf_pattention_create(&p, &set) != TF_OK || tf_pattention_set_keys(set, K, nk) ||
        tf_pattention_set_values(set, V, nv) || tf_pattention_forward(set, N, X, Y) ||
        tf_pattention_backward(set, N, X, dY, dX) || tf_pattention_get_key_grad(set, dK, nk) ||
        tf_pattention_get_value_grad(set, dV, nv)) {
        fail(r, "%s", tf_last_error());
        goto done;
    }
    add_group(r, "output", rel_err(Y, Yref, ny), TOL_OUT);
    double g = rel_err(dX, dXref, nx);
    double gk = rel_err(dK, dKref, nk), gv = rel_err(dV, dVref, nv);
    g = gk > g ? gk : g;
    g = gv > g ? gv : g;
    add_group(r, "grads", g, TOL_GRAD);
done:
    tf_pattention_free(set);
    free(X); free(K); free(V); free(Yref); free(dY); free(dXref); free(dKref); free(dVref);
    free(Y); free(dX); free(dK); free(dV);
}

/* ---- kind: model ------------------------------------------------------ */

/* Worst error over every model tensor of a prefixed group in the file
 * ("grad." or "step1."), from the model (which 0: params, 1: grads). */
static double worst_over_tensors(tf_model *m, const tfi_st_file *f, const char *prefix,
                                 int which, report *r)
{
    double worst = 0.0;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        char name[160];
        const char *tn = tf_model_tensor_name(m, i);
        snprintf(name, sizeof name, "%s%s", prefix, tn);
        size_t n;
        float *ref = tensor(f, name, &n);
        if (!ref) {
            fail(r, "fixture lacks %s", name);
            return INFINITY;
        }
        float *mine = malloc(n * sizeof(float));
        tf_status st = which ? tf_model_get_grad(m, tn, mine, n) : tf_model_get_tensor(m, tn, mine, n);
        double e = st == TF_OK ? rel_err(mine, ref, n) : INFINITY;
        worst = e > worst || isnan(e) ? e : worst;
        free(ref);
        free(mine);
    }
    return worst;
}

static tf_optimizer *fixture_optimizer(tf_model *m, const tfi_st_file *f)
{
    tf_optimizer_params op = tf_optimizer_default_params();
    op.lr = meta_num(f, "lr", op.lr);
    op.min_lr = 0.0;
    op.beta1 = meta_num(f, "beta1", op.beta1);
    op.beta2 = meta_num(f, "beta2", op.beta2);
    op.eps = meta_num(f, "eps", op.eps);
    op.weight_decay = meta_num(f, "weight_decay", op.weight_decay);
    op.clip_grad = meta_num(f, "clip_grad", op.clip_grad);
    tf_optimizer *opt = NULL;
    return tf_optimizer_create(m, &op, &opt) == TF_OK ? opt : NULL;
}

/* End-to-end step: |a - b| <= 1e-2 lr where the fixture's |grad| >= 1e-5. */
static double step_end_to_end(tf_model *m, const tfi_st_file *f, double lr, report *r)
{
    double worst = 0.0;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *tn = tf_model_tensor_name(m, i);
        char sname[160], gname[160];
        snprintf(sname, sizeof sname, "step1.%s", tn);
        snprintf(gname, sizeof gname, "grad.%s", tn);
        size_t n;
        float *ref = tensor(f, sname, &n), *grad = tensor(f, gname, NULL);
        float *mine = malloc(n * sizeof(float));
        if (!ref || !grad || tf_model_get_tensor(m, tn, mine, n) != TF_OK) {
            fail(r, "cannot compare %s", sname);
            free(ref); free(grad); free(mine);
            return INFINITY;
        }
        for (size_t j = 0; j < n; j++)
            if (fabsf(grad[j]) >= 1e-5f) {
                double e = fabs((double)mine[j] - ref[j]) / lr;
                worst = e > worst || isnan(e) ? e : worst;
            }
        free(ref); free(grad); free(mine);
    }
    return worst;
}

static void check_step_alone(const char *path, const tfi_st_file *f, report *r);

static void check_model(const char *path, const tfi_st_file *f, report *r)
{
    tf_model *m = NULL;
    tf_optimizer *opt = NULL;
    int B, T, B2, T2;
    int32_t *tokens = ids(f, "tokens", &B, &T), *targets = ids(f, "targets", &B2, &T2);
    size_t nl;
    float *lref = tensor(f, "logits", &nl), *loss_ref = tensor(f, "loss", NULL);
    float *gn_ref = tensor(f, "grad_norm", NULL), *logits = NULL;
    if (!tokens || !targets || !lref || !loss_ref || B != B2 || T != T2) {
        fail(r, "%s", "missing tokens, targets, logits or loss");
        goto done;
    }
    if (tf_model_open(path, &m) != TF_OK) {
        fail(r, "%s", tf_last_error());
        goto done;
    }
    logits = malloc(nl * sizeof(float));
    float loss;
    if (tf_model_forward(m, B, T, tokens, targets, logits, &loss) != TF_OK ||
        tf_model_backward(m) != TF_OK) {
        fail(r, "%s", tf_model_errmsg(m));
        goto done;
    }
    add_group(r, "logits", rel_err(logits, lref, nl), TOL_OUT);
    add_group(r, "loss", rel_err(&loss, loss_ref, 1), TOL_OUT);
    add_group(r, "grads", worst_over_tensors(m, f, "grad.", 1, r), TOL_GRAD);
    if (!tfi_st_find(f, "step1.embed.weight"))
        goto done;
    /* end to end: one step from our own gradients */
    if (!(opt = fixture_optimizer(m, f))) {
        fail(r, "%s", tf_last_error());
        goto done;
    }
    float gnorm;
    if (tf_optimizer_step(opt, &gnorm) != TF_OK) {
        fail(r, "%s", tf_optimizer_errmsg(opt));
        goto done;
    }
    if (gn_ref)
        add_group(r, "grad_norm", rel_err(&gnorm, gn_ref, 1), TOL_GRAD);
    double lr = meta_num(f, "lr", 1e-3);
    add_group(r, "step1(e2e, /lr)", step_end_to_end(m, f, lr, r), 1e-2);
    check_step_alone(path, f, r);
done:
    tf_optimizer_free(opt);
    tf_model_free(m);
    free(tokens); free(targets); free(lref); free(loss_ref); free(gn_ref); free(logits);
}

/* The optimizer alone: the fixture's params with its stored gradients, one
 * step, against step1.*. */
static void check_step_alone(const char *path, const tfi_st_file *f, report *r)
{
    tf_model *m = NULL;
    tf_optimizer *opt = NULL;
    if (tf_model_open(path, &m) != TF_OK || !(opt = fixture_optimizer(m, f))) {
        fail(r, "%s", tf_last_error());
        goto done;
    }
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        char gname[160];
        const char *tn = tf_model_tensor_name(m, i);
        snprintf(gname, sizeof gname, "grad.%s", tn);
        size_t n = 0;
        float *g = tensor(f, gname, &n);
        tf_status st = g ? tf_model_set_grad(m, tn, g, n) : TF_ERR_NOT_FOUND;
        free(g);
        if (st != TF_OK) {
            fail(r, "%s", st == TF_ERR_NOT_FOUND ? "fixture lacks a grad.* tensor"
                                                 : tf_model_errmsg(m));
            goto done;
        }
    }
    if (tf_optimizer_step(opt, NULL) != TF_OK) {
        fail(r, "%s", tf_optimizer_errmsg(opt));
        goto done;
    }
    add_group(r, "step1", worst_over_tensors(m, f, "step1.", 0, r), TOL_STEP);
done:
    tf_optimizer_free(opt);
    tf_model_free(m);
}

/* ---- kind: grow ------------------------------------------------------- */

/* The grown model of the fixture: the base grown with zero keys under the
 * given policy, its new value rows taken from the fixture (they are random
 * draws of the reference's generator). */
static tf_model *grown_model(const char *path, const tfi_st_file *f, tf_scale_policy policy,
                             report *r)
{
    tf_model *m = NULL;
    int64_t qkv = (int64_t)meta_num(f, "grown_qkv_slot_num", 0);
    int64_t proj = (int64_t)meta_num(f, "grown_proj_slot_num", 0);
    int64_t ffn = (int64_t)meta_num(f, "grown_ffn_slot_num", 0);
    tf_grow_params g = tf_grow_default_params();
    g.key_init = TF_KEYS_ZERO;
    g.scale_policy = policy;
    if (tf_model_open(path, &m) != TF_OK || tf_model_grow(m, NULL, qkv, proj, ffn, &g) != TF_OK) {
        fail(r, "%s", tf_last_error());
        tf_model_free(m);
        return NULL;
    }
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *tn = tf_model_tensor_name(m, i);
        char name[160];
        snprintf(name, sizeof name, "grown.%s", tn);
        size_t n;
        float *src = tensor(f, name, &n);
        if (!src || tf_model_set_tensor(m, tn, src, n) != TF_OK) {
            fail(r, "cannot set %s", name);
            free(src);
            tf_model_free(m);
            return NULL;
        }
        free(src);
    }
    return m;
}

static void check_grow(const char *path, const tfi_st_file *f, report *r)
{
    int B, T, B2, T2;
    int32_t *tokens = ids(f, "tokens", &B, &T), *targets = ids(f, "targets", &B2, &T2);
    size_t nl;
    float *base_ref = tensor(f, "logits_base", &nl), *off_ref = tensor(f, "logits_grown_official", NULL);
    float *pin_ref = tensor(f, "logits_grown_pinned", NULL);
    float *lb_ref = tensor(f, "loss_base", NULL), *lo_ref = tensor(f, "loss_grown_official", NULL);
    float *base = NULL, *off = NULL, *pin = NULL;
    tf_model *m = NULL;
    if (!tokens || !targets || !base_ref || !off_ref || !pin_ref || !lb_ref || !lo_ref) {
        fail(r, "%s", "missing grow tensors");
        goto done;
    }
    base = malloc(nl * sizeof(float));
    off = malloc(nl * sizeof(float));
    pin = malloc(nl * sizeof(float));
    float lb, lo, lp;
    if (tf_model_open(path, &m) != TF_OK ||
        tf_model_forward(m, B, T, tokens, targets, base, &lb) != TF_OK) {
        fail(r, "%s", tf_last_error());
        goto done;
    }
    tf_model_free(m);
    add_group(r, "base", rel_err(base, base_ref, nl), TOL_OUT);
    if (!(m = grown_model(path, f, TF_SCALE_FOLLOW_N, r)))
        goto done;
    if (tf_model_forward(m, B, T, tokens, targets, off, &lo) != TF_OK) {
        fail(r, "%s", tf_last_error());
        goto done;
    }
    tf_model_free(m);
    add_group(r, "follow_n", rel_err(off, off_ref, nl), TOL_OUT);
    add_group(r, "loss", fmax(rel_err(&lb, lb_ref, 1), rel_err(&lo, lo_ref, 1)), TOL_OUT);
    if (!(m = grown_model(path, f, TF_SCALE_PINNED, r)))
        goto done;
    if (tf_model_forward(m, B, T, tokens, targets, pin, &lp) != TF_OK) {
        fail(r, "%s", tf_last_error());
        goto done;
    }
    add_group(r, "pinned", rel_err(pin, pin_ref, nl), TOL_OUT);
    /* pinned with zero keys must reproduce our own base run bit for bit */
    int identical = memcmp(pin, base, nl * sizeof(float)) == 0 && lp == lb;
    r->failed |= !identical;
    r->used += (size_t)snprintf(r->text + r->used, sizeof r->text - r->used,
                                "  pinned==base %s", identical ? "bit-identical" : "DIFFERS FAIL");
done:
    tf_model_free(m);
    free(tokens); free(targets); free(base_ref); free(off_ref); free(pin_ref); free(lb_ref);
    free(lo_ref); free(base); free(off); free(pin);
}

/* ---- kind: vision ----------------------------------------------------- */

/* The image classifier: logits, loss, every gradient, one step (end to end
 * and from the stored gradients), and growth of the layers' sets with zero
 * keys under both scale policies (pinned: our own base bit for bit). */
static void check_vision(const char *path, const tfi_st_file *f, report *r)
{
    tf_model *m = NULL;
    tf_optimizer *opt = NULL;
    size_t nl;
    float *pixels = tensor(f, "pixels", NULL), *lref = tensor(f, "logits", &nl);
    float *loss_ref = tensor(f, "loss", NULL), *gn_ref = tensor(f, "grad_norm", NULL);
    float *off_ref = tensor(f, "logits_grown_official", NULL);
    float *pin_ref = tensor(f, "logits_grown_pinned", NULL);
    const tfi_st_tensor *lt = tfi_st_find(f, "labels");
    int32_t *labels = NULL;
    float *logits = NULL, *grown = NULL;
    if (!pixels || !lref || !loss_ref || !off_ref || !pin_ref || !lt || lt->ndim != 1) {
        fail(r, "%s", "missing pixels, labels, logits, loss or grown logits");
        goto done;
    }
    const int B = (int)lt->shape[0];
    if (lt->dtype != TFI_ST_I32 || B < 1 || !(labels = malloc((size_t)B * 4))) {
        fail(r, "%s", "labels are not I32 [B]");
        goto done;
    }
    memcpy(labels, tfi_st_data(f, lt), (size_t)B * sizeof(int32_t));
    if (tf_model_open(path, &m) != TF_OK || !tf_model_is_vision(m)) {
        fail(r, "%s", m ? "tf_model_open did not make a vision model" : tf_last_error());
        goto done;
    }
    logits = malloc(nl * sizeof(float));
    grown = malloc(nl * sizeof(float));
    float loss;
    if (tf_model_forward_images(m, B, pixels, labels, logits, &loss) != TF_OK ||
        tf_model_backward(m) != TF_OK) {
        fail(r, "%s", tf_model_errmsg(m));
        goto done;
    }
    add_group(r, "logits", rel_err(logits, lref, nl), TOL_OUT);
    add_group(r, "loss", rel_err(&loss, loss_ref, 1), TOL_OUT);
    add_group(r, "grads", worst_over_tensors(m, f, "grad.", 1, r), TOL_GRAD);
    float gnorm;
    if (!(opt = fixture_optimizer(m, f)) || tf_optimizer_step(opt, &gnorm) != TF_OK) {
        fail(r, "%s", tf_last_error());
        goto done;
    }
    if (gn_ref)
        add_group(r, "grad_norm", rel_err(&gnorm, gn_ref, 1), TOL_GRAD);
    add_group(r, "step1(e2e, /lr)", step_end_to_end(m, f, meta_num(f, "lr", 1e-3), r), 1e-2);
    check_step_alone(path, f, r);
    const tf_scale_policy policies[2] = {TF_SCALE_FOLLOW_N, TF_SCALE_PINNED};
    const float *refs[2] = {off_ref, pin_ref};
    const char *names[2] = {"follow_n", "pinned"};
    for (int k = 0; k < 2; k++) {
        tf_optimizer_free(opt);
        opt = NULL;
        tf_model_free(m);
        if (!(m = grown_model(path, f, policies[k], r)))
            goto done;
        if (tf_model_forward_images(m, B, pixels, NULL, grown, NULL) != TF_OK) {
            fail(r, "%s", tf_model_errmsg(m));
            goto done;
        }
        add_group(r, names[k], rel_err(grown, refs[k], nl), TOL_OUT);
    }
    int identical = memcmp(grown, logits, nl * sizeof(float)) == 0;
    r->failed |= !identical;
    r->used += (size_t)snprintf(r->text + r->used, sizeof r->text - r->used,
                                "  pinned==base %s", identical ? "bit-identical" : "DIFFERS FAIL");
done:
    tf_optimizer_free(opt);
    tf_model_free(m);
    free(pixels); free(lref); free(loss_ref); free(gn_ref); free(off_ref); free(pin_ref);
    free(labels); free(logits); free(grown);
}

/* ---- driver ----------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    DIR *dir = opendir(argv[1]);
    if (!dir) {
        perror(argv[1]);
        return 2;
    }
    char **names = NULL;
    size_t count = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        size_t len = strlen(e->d_name);
        if (len > 12 && strcmp(e->d_name + len - 12, ".safetensors") == 0) {
            names = realloc(names, (count + 1) * sizeof *names);
            names[count++] = strdup(e->d_name);
        }
    }
    closedir(dir);
    qsort(names, count, sizeof *names, by_name);
    int failures = 0;
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[i]);
        report r = {0};
        tfi_st_file f;
        if (tfi_st_open(path, &f, NULL) != TF_OK) {
            fail(&r, "%s", tf_last_error());
        } else {
            const char *kind = tfi_st_meta(&f, "kind");
            if (!kind)
                fail(&r, "%s", "no 'kind' in the metadata");
            else if (strcmp(kind, "pattention") == 0)
                check_pattention(&f, &r);
            else if (strcmp(kind, "model") == 0)
                check_model(path, &f, &r);
            else if (strcmp(kind, "vision") == 0)
                check_vision(path, &f, &r);
            else if (strcmp(kind, "grow") == 0)
                check_grow(path, &f, &r);
            else
                fail(&r, "unknown kind '%s'", kind);
            tfi_st_close(&f);
        }
        failures += r.failed;
        printf("%s %s%s%s%s\n", r.failed ? "FAIL" : "PASS", names[i], r.text,
               r.why[0] ? "  error: " : "", r.why);
        free(names[i]);
    }
    free(names);
    if (count == 0) {
        fprintf(stderr, "%s: no *.safetensors files\n", argv[1]);
        return 1;
    }
    printf("conformance: %zu files, %d failed\n", count, failures);
    return failures ? 1 : 0;
}
