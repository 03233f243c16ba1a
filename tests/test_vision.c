/* test_vision.c -- the image classifier: its tensors and shapes, every
 * gradient against central differences of the loss, label smoothing,
 * prediction as the argmax of the logits, training that learns,
 * function-preserving growth with the optimizer carried, and the task
 * checks (language calls on a vision model and image calls on a language
 * model are refused). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scratch.h"
#include "testutil.h"
#include "tokenformer.h"

/* A small model: 8 x 8 images, 4 x 4 patches (P = 4), 3 classes. */
static tf_vision_params tiny_params(void)
{
    tf_vision_params p = tf_vision_default_params();
    p.image_size = 8;
    p.patch_size = 4;
    p.num_classes = 3;
    p.patch_slot_num = 6;
    p.head_slot_num = 5;
    p.num_layers = 2;
    p.hidden_size = 8;
    p.num_attention_heads = 2;
    p.qkv_slot_num = 4;
    p.proj_slot_num = 4;
    p.ffn_slot_num = 8;
    p.init_method_std = 0.3; /* large enough that every path carries signal */
    p.seed = 7;
    return p;
}

static tf_model *tiny_model(void)
{
    tf_vision_params p = tiny_params();
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_create_vision(&p, &m), TF_OK);
    return m;
}

static void fill_pixels(float *px, size_t n, unsigned seed)
{
    srand(seed);
    for (size_t i = 0; i < n; i++)
        px[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
}

START_TEST(test_tensors_and_shapes)
{
    tf_model *m = tiny_model();
    ck_assert_int_eq(tf_model_is_vision(m), 1);
    const char *want[] = {"pos_embed", "layers.0.attention.query.key_param_tokens",
                          "patch_embed.key_param_tokens", "patch_embed.value_param_tokens",
                          "head.key_param_tokens", "head.value_param_tokens",
                          "final_norm.weight"};
    const int64_t rows[] = {4, 4, 6, 6, 5, 5, 8}, cols[] = {8, 8, 16, 8, 8, 3, 0};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        int64_t shape[2];
        int ndim;
        ck_assert_msg(tf_model_tensor_shape(m, want[i], shape, &ndim) == TF_OK, "%s", want[i]);
        ck_assert_int_eq(shape[0], rows[i]);
        if (cols[i])
            ck_assert_int_eq(shape[1], cols[i]);
    }
    ck_assert_str_eq(tf_model_tensor_name(m, 0), "pos_embed");
    int64_t total = 0;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        int64_t shape[2];
        int ndim;
        ck_assert_int_eq(tf_model_tensor_shape(m, tf_model_tensor_name(m, i), shape, &ndim),
                         TF_OK);
        total += shape[0] * (ndim == 2 ? shape[1] : 1);
    }
    ck_assert_int_eq(tf_model_num_params(m), total);
    tf_vision_params got = tf_vision_default_params();
    ck_assert_int_eq(tf_model_get_vision_params(m, &got), TF_OK);
    ck_assert_int_eq(got.patch_slot_num, 6);
    ck_assert_int_eq(got.num_classes, 3);
    tf_model_free(m);
}
END_TEST

START_TEST(test_bad_params)
{
    tf_vision_params p = tiny_params();
    tf_model *m = NULL;
    p.patch_size = 3; /* does not divide 8 */
    ck_assert_int_eq(tf_model_create_vision(&p, &m), TF_ERR_CONFIG);
    ck_assert_ptr_null(m);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "patch_size"));
    p = tiny_params();
    p.num_classes = 1;
    ck_assert_int_eq(tf_model_create_vision(&p, &m), TF_ERR_CONFIG);
    p = tiny_params();
    p.hidden_size = 9; /* not divisible by the heads */
    ck_assert_int_eq(tf_model_create_vision(&p, &m), TF_ERR_CONFIG);
    ck_assert_ptr_null(m);
}
END_TEST

static double loss_of(tf_model *m, int B, const float *px, const int32_t *lab)
{
    float loss = 0;
    ck_assert_int_eq(tf_model_forward_images(m, B, px, lab, NULL, &loss), TF_OK);
    return loss;
}

/* Central differences of the float32 loss, on a few elements of every
 * tensor, against tf_model_backward's gradients. */
START_TEST(test_gradients_match_finite_differences)
{
    tf_model *m = tiny_model();
    const int B = 3;
    float px[3 * 64];
    fill_pixels(px, sizeof px / sizeof *px, 3);
    const int32_t lab[3] = {0, 2, 1};
    loss_of(m, B, px, lab);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    for (int t = 0; t < tf_model_num_tensors(m); t++) {
        const char *name = tf_model_tensor_name(m, t);
        int64_t shape[2];
        int ndim;
        ck_assert_int_eq(tf_model_tensor_shape(m, name, shape, &ndim), TF_OK);
        size_t n = (size_t)(shape[0] * (ndim == 2 ? shape[1] : 1));
        float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g);
        ck_assert_int_eq(tf_model_get_tensor(m, name, w, n), TF_OK);
        ck_assert_int_eq(tf_model_get_grad(m, name, g, n), TF_OK);
        double gmax = 0;
        for (size_t i = 0; i < n; i++)
            gmax = fmax(gmax, fabs(g[i]));
        ck_assert_msg(gmax > 0, "%s has a zero gradient", name);
        for (size_t k = 0; k < 4; k++) {
            size_t i = (k * 7919u + 3u) % n;
            const float h = 1e-2f, keep = w[i];
            w[i] = keep + h;
            ck_assert_int_eq(tf_model_set_tensor(m, name, w, n), TF_OK);
            double up = loss_of(m, B, px, lab);
            w[i] = keep - h;
            ck_assert_int_eq(tf_model_set_tensor(m, name, w, n), TF_OK);
            double down = loss_of(m, B, px, lab);
            w[i] = keep;
            ck_assert_int_eq(tf_model_set_tensor(m, name, w, n), TF_OK);
            double fd = (up - down) / (2.0 * h);
            ck_assert_msg(fabs(fd - g[i]) <= 2e-3 + 0.05 * fmax(fabs(fd), gmax * 0.1),
                          "%s[%zu]: backward %g, finite differences %g", name, i, g[i], fd);
        }
        free(w);
        free(g);
    }
    tf_model_free(m);
}
END_TEST

/* The gradient of the whole buffer after one forward with labels lab and
 * one backward (zeroed first), into g [count]. */
static void grads_of(tf_model *m, int B, const float *px, const int32_t *lab, float *g,
                     size_t count)
{
    float *buf;
    size_t n;
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    float loss;
    ck_assert_int_eq(tf_model_forward_images(m, B, px, lab, NULL, &loss), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, &n), TF_OK);
    ck_assert_uint_eq(n, count);
    memcpy(g, buf, n * sizeof *g);
}

/* Label smoothing: the loss is the smoothed distribution's cross-entropy of
 * the logits; the gradient is linear in the target distribution, so it is
 * (1 - eps) of the labels' plus eps / K of the sum over "every image is
 * class k"; a backward uses its forward's eps; eps = 0 is the plain loss bit
 * for bit; bad values are refused and change nothing. */
START_TEST(test_label_smoothing)
{
    tf_model *m = tiny_model();
    enum { B = 4, K = 3 };
    float px[B * 64], logits[B * K];
    fill_pixels(px, sizeof px / sizeof *px, 11);
    const int32_t lab[B] = {2, 0, 1, 2};
    float plain, smooth;
    ck_assert_double_eq(tf_model_get_label_smoothing(m), 0.0);
    ck_assert_int_eq(tf_model_forward_images(m, B, px, lab, logits, &plain), TF_OK);

    const double eps = 0.25;
    ck_assert_int_eq(tf_model_set_label_smoothing(m, eps), TF_OK);
    ck_assert_double_eq(tf_model_get_label_smoothing(m), eps);
    ck_assert_int_eq(tf_model_forward_images(m, B, px, lab, NULL, &smooth), TF_OK);
    const double want = tt_smoothed_ce(logits, lab, B, K, eps);
    ck_assert_msg(fabs(smooth - want) <= 1e-5 * fabs(want), "loss %g, want %g", smooth, want);
    ck_assert_msg(fabs(smooth - plain) > 1e-3, "smoothing changed nothing");

    float *buf;
    size_t n;
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, &n), TF_OK);
    float *g = malloc(n * sizeof *g), *want_g = calloc(n, sizeof *want_g),
          *one = malloc(n * sizeof *one);
    ck_assert_int_eq(tf_model_set_label_smoothing(m, 0.0), TF_OK);
    grads_of(m, B, px, lab, one, n);
    for (size_t i = 0; i < n; i++)
        want_g[i] = (float)(1.0 - eps) * one[i];
    for (int32_t k = 0; k < K; k++) {
        const int32_t all_k[B] = {k, k, k, k};
        grads_of(m, B, px, all_k, one, n);
        for (size_t i = 0; i < n; i++)
            want_g[i] += (float)(eps / K) * one[i];
    }
    /* set after the forward: the backward keeps the forward's eps */
    ck_assert_int_eq(tf_model_set_label_smoothing(m, eps), TF_OK);
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    ck_assert_int_eq(tf_model_forward_images(m, B, px, lab, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_set_label_smoothing(m, 0.5), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    memcpy(g, buf, n * sizeof *g);
    double gmax = 0.0;
    for (size_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(want_g[i]));
    ck_assert(gmax > 0.0);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(g[i] - want_g[i]) <= 1e-5 * gmax, "grad[%zu] = %g, want %g", i, g[i],
                      want_g[i]);

    /* refused values change nothing; 0 is the plain loss again */
    const double bad[] = {-0.1, 1.0, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(tf_model_set_label_smoothing(m, bad[i]), TF_ERR_ARGUMENT);
        ck_assert_double_eq(tf_model_get_label_smoothing(m), 0.5);
    }
    ck_assert_int_eq(tf_model_set_label_smoothing(NULL, 0.1), TF_ERR_ARGUMENT);
    ck_assert_double_eq(tf_model_get_label_smoothing(NULL), 0.0);
    ck_assert_int_eq(tf_model_set_label_smoothing(m, 0.0), TF_OK);
    float again;
    ck_assert_int_eq(tf_model_forward_images(m, B, px, lab, NULL, &again), TF_OK);
    ck_assert(memcmp(&again, &plain, sizeof again) == 0);
    free(g), free(want_g), free(one);
    tf_model_free(m);
}
END_TEST

START_TEST(test_predict_is_argmax_and_rows_independent)
{
    tf_model *m = tiny_model();
    float px[4 * 64], logits[4 * 3], one[3];
    fill_pixels(px, sizeof px / sizeof *px, 5);
    int32_t cls[4];
    ck_assert_int_eq(tf_model_forward_images(m, 4, px, NULL, logits, NULL), TF_OK);
    ck_assert_int_eq(tf_model_predict(m, 4, px, cls), TF_OK);
    for (int b = 0; b < 4; b++) {
        int best = 0;
        for (int k = 1; k < 3; k++)
            if (logits[b * 3 + k] > logits[b * 3 + best])
                best = k;
        ck_assert_int_eq(cls[b], best);
    }
    /* an image's logits do not depend on the other images of the batch */
    ck_assert_int_eq(tf_model_forward_images(m, 1, px + 2 * 64, NULL, one, NULL), TF_OK);
    ck_assert_double_lt(tt_rel_err(one, logits + 6, 3), 1e-5);
    tf_model_free(m);
}
END_TEST

/* Three classes told apart by which quadrant is bright. */
static void quadrant_batch(int B, unsigned seed, float *px, int32_t *lab)
{
    srand(seed);
    for (int b = 0; b < B; b++) {
        lab[b] = rand() % 3;
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++) {
                int q = (y >= 4) * 2 + (x >= 4);
                float noise = (float)rand() / (float)RAND_MAX * 0.4f - 0.2f;
                px[b * 64 + y * 8 + x] = (q == lab[b] ? 1.0f : -0.5f) + noise;
            }
    }
}

START_TEST(test_training_learns_and_growth_preserves_function)
{
    tf_vision_params vp = tiny_params();
    vp.init_method_std = 0.02;
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_create_vision(&vp, &m), TF_OK);
    tf_optimizer_params op = tf_optimizer_default_params();
    op.lr = 3e-3;
    op.weight_decay = 0.0;
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, &op, &opt), TF_OK);
    const int B = 16;
    float px[16 * 64];
    int32_t lab[16];
    double first = 0, last = 0;
    for (int step = 0; step < 150; step++) {
        quadrant_batch(B, (unsigned)step + 1, px, lab);
        float loss;
        ck_assert_int_eq(tf_model_forward_images(m, B, px, lab, NULL, &loss), TF_OK);
        ck_assert_int_eq(tf_model_backward(m), TF_OK);
        ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
        if (step < 10)
            first += loss / 10;
        if (step >= 140)
            last += loss / 10;
    }
    ck_assert_msg(last < 0.5 * first, "loss %g -> %g", first, last);
    /* held-out accuracy */
    quadrant_batch(B, 999, px, lab);
    int32_t cls[16];
    ck_assert_int_eq(tf_model_predict(m, B, px, cls), TF_OK);
    int right = 0;
    for (int b = 0; b < B; b++)
        right += cls[b] == lab[b];
    ck_assert_int_ge(right, 14);
    /* growth keeps the function (zero keys, pinned tau) and training goes on */
    float before[16 * 3], after[16 * 3];
    ck_assert_int_eq(tf_model_forward_images(m, B, px, NULL, before, NULL), TF_OK);
    tf_grow_params g = tf_grow_default_params();
    ck_assert_int_eq(tf_model_grow(m, opt, 8, 8, 16, &g), TF_OK);
    ck_assert_int_eq(tf_model_forward_images(m, B, px, NULL, after, NULL), TF_OK);
    ck_assert_double_lt(tt_rel_err(after, before, 16 * 3), 1e-5);
    tf_vision_params got = tf_vision_default_params();
    ck_assert_int_eq(tf_model_get_vision_params(m, &got), TF_OK);
    ck_assert_int_eq(got.qkv_slot_num, 8);
    ck_assert_int_eq(got.ffn_slot_num, 16);
    ck_assert_int_eq(got.patch_slot_num, 6); /* the patch and head sets keep their size */
    float loss;
    ck_assert_int_eq(tf_model_forward_images(m, B, px, lab, NULL, &loss), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

START_TEST(test_task_checks)
{
    tf_model *vm = tiny_model(), *lm = NULL;
    tf_model_params lp = tf_model_default_params();
    lp.vocab_size = 16;
    lp.seq_length = 8;
    ck_assert_int_eq(tf_model_create(&lp, &lm), TF_OK);
    ck_assert_int_eq(tf_model_is_vision(lm), 0);
    int32_t tok[4] = {1, 2, 3, 4}, cls[1];
    float px[64] = {0};
    ck_assert_int_eq(tf_model_forward(vm, 1, 4, tok, tok, NULL, NULL), TF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(vm), "vision model"));
    ck_assert_int_eq(tf_model_forward_images(lm, 1, px, NULL, NULL, NULL), TF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(lm), "language model"));
    ck_assert_int_eq(tf_model_predict(lm, 1, px, cls), TF_ERR_STATE);
    tf_vision_params vp = tf_vision_default_params();
    ck_assert_int_eq(tf_model_get_vision_params(lm, &vp), TF_ERR_STATE);
    tf_decoder *dec = NULL;
    ck_assert_int_eq(tf_decoder_create(vm, 1, &dec), TF_ERR_STATE);
    ck_assert_ptr_null(dec);
    /* no backward without a forward with labels */
    ck_assert_int_eq(tf_model_backward(vm), TF_ERR_STATE);
    ck_assert_int_eq(tf_model_forward_images(vm, 1, px, NULL, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(vm), TF_ERR_STATE);
    int32_t bad = 3;
    ck_assert_int_eq(tf_model_forward_images(vm, 1, px, &bad, NULL, NULL), TF_ERR_RANGE);
    ck_assert_int_eq(tf_model_forward_images(vm, 0, px, NULL, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_forward_images(vm, 1, NULL, NULL, NULL, NULL), TF_ERR_ARGUMENT);
    tf_model_free(vm);
    tf_model_free(lm);
}
END_TEST

/* Save with the optimizer, open (the task from the metadata) and load:
 * the same logits, and a step from the loaded state equals a step from
 * the original, bit for bit. */
START_TEST(test_save_open_and_resume)
{
    tf_model *m = tiny_model();
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    float px[4 * 64], a[12], b[12];
    int32_t lab[4] = {0, 1, 2, 1};
    fill_pixels(px, sizeof px / sizeof *px, 11);
    for (int step = 0; step < 2; step++) {
        loss_of(m, 4, px, lab);
        ck_assert_int_eq(tf_model_backward(m), TF_OK);
        ck_assert_int_eq(tf_optimizer_step(opt, NULL), TF_OK);
    }
    tf_grow_params g = tf_grow_default_params();
    ck_assert_int_eq(tf_model_grow(m, opt, 6, 4, 8, &g), TF_OK);
    char path[512];
    tt_tmp_path(path, sizeof path, "vision.safetensors");
    ck_assert_int_eq(tf_model_save(m, opt, path), TF_OK);
    tf_model *o = NULL;
    ck_assert_int_eq(tf_model_open(path, &o), TF_OK);
    ck_assert_int_eq(tf_model_is_vision(o), 1);
    tf_vision_params vp = tf_vision_default_params();
    ck_assert_int_eq(tf_model_get_vision_params(o, &vp), TF_OK);
    ck_assert_int_eq(vp.qkv_slot_num, 6);
    ck_assert_int_eq(vp.head_slot_num, 5);
    ck_assert_int_eq(tf_model_forward_images(m, 4, px, NULL, a, NULL), TF_OK);
    ck_assert_int_eq(tf_model_forward_images(o, 4, px, NULL, b, NULL), TF_OK);
    ck_assert_mem_eq(a, b, sizeof a);
    /* resume: load model and optimizer into a fresh model of the same shape */
    tf_optimizer *oopt = NULL;
    ck_assert_int_eq(tf_optimizer_create(o, NULL, &oopt), TF_OK);
    ck_assert_int_eq(tf_model_load(o, oopt, path), TF_OK);
    tf_model *pair[2] = {m, o};
    tf_optimizer *opts[2] = {opt, oopt};
    for (int k = 0; k < 2; k++) {
        loss_of(pair[k], 4, px, lab);
        ck_assert_int_eq(tf_model_backward(pair[k]), TF_OK);
        ck_assert_int_eq(tf_optimizer_step(opts[k], NULL), TF_OK);
    }
    uint64_t h1, h2;
    ck_assert_int_eq(tf_model_checksum(m, opt, &h1), TF_OK);
    ck_assert_int_eq(tf_model_checksum(o, oopt, &h2), TF_OK);
    ck_assert(h1 == h2);
    /* a vision file does not load into a language model */
    tf_model *lm = NULL;
    tf_model_params lp = tf_model_default_params();
    ck_assert_int_eq(tf_model_create(&lp, &lm), TF_OK);
    ck_assert_int_eq(tf_model_load(lm, NULL, path), TF_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(lm), "vision"));
    tf_model_free(lm);
    tf_optimizer_free(oopt);
    tf_optimizer_free(opt);
    tf_model_free(o);
    tf_model_free(m);
}
END_TEST

Suite *vision_suite(void)
{
    Suite *s = suite_create("vision");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tensors_and_shapes);
    tcase_add_test(tc, test_bad_params);
    tcase_add_test(tc, test_gradients_match_finite_differences);
    tcase_add_test(tc, test_label_smoothing);
    tcase_add_test(tc, test_predict_is_argmax_and_rows_independent);
    tcase_add_test(tc, test_training_learns_and_growth_preserves_function);
    tcase_add_test(tc, test_task_checks);
    suite_add_tcase(s, tc);
    TCase *io = tcase_create("io");
    tcase_add_unchecked_fixture(io, tt_make_basedir, tt_remove_basedir);
    tcase_add_checked_fixture(io, tt_make_tmpdir, tt_remove_tmpdir);
    tcase_add_test(io, test_save_open_and_resume);
    suite_add_tcase(s, io);
    return s;
}
