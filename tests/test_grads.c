/* test_grads.c -- what a data-parallel host uses: the gradient buffer (its
 * order, size, in-place use and life across growth), the readiness
 * callback during backward, and the state checksum. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scratch.h"
#include "tokenformer.h"

enum { L = 2, D = 16, SQ = 6, SP = 5, SF = 10, V = 32, B = 2, T = 8 };

static tf_model *new_model(uint64_t seed)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = L;
    p.hidden_size = D;
    p.num_attention_heads = 2;
    p.qkv_slot_num = SQ;
    p.proj_slot_num = SP;
    p.ffn_slot_num = SF;
    p.vocab_size = V;
    p.seq_length = T;
    p.seed = seed;
    tf_model *m = NULL;
    ck_assert_msg(tf_model_create(&p, &m) == TF_OK, "%s", tf_last_error());
    return m;
}

static tf_optimizer *new_opt(tf_model *m)
{
    tf_optimizer *opt = NULL;
    tf_optimizer_params op = tf_optimizer_default_params();
    op.lr = 1e-2;
    ck_assert_msg(tf_optimizer_create(m, &op, &opt) == TF_OK, "%s", tf_last_error());
    return opt;
}

static void fill_tokens(int32_t *t, size_t n, uint64_t seed)
{
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i] = (int32_t)((s >> 33) % (uint64_t)V);
    }
}

/* One forward and backward on batch `seed`. */
static void fwd_bwd(tf_model *m, uint64_t seed)
{
    int32_t tok[B * T], tgt[B * T];
    fill_tokens(tok, B * T, 2 * seed);
    fill_tokens(tgt, B * T, 2 * seed + 1);
    ck_assert_msg(tf_model_forward(m, B, T, tok, tgt, NULL, NULL) == TF_OK, "%s",
                  tf_model_errmsg(m));
    ck_assert_msg(tf_model_backward(m) == TF_OK, "%s", tf_model_errmsg(m));
}

static size_t tensor_size(const tf_model *m, const char *name)
{
    int64_t shape[2];
    int nd;
    ck_assert_int_eq(tf_model_tensor_shape(m, name, shape, &nd), TF_OK);
    return (size_t)shape[0] * (size_t)(nd == 2 ? shape[1] : 1);
}

/* The buffer holds every tensor's gradient, in table order, back to back. */
static void expect_buffer_is_table(const tf_model *m, const float *buf, size_t count)
{
    size_t off = 0;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n = tensor_size(m, name);
        float *g = malloc(n * sizeof(float));
        ck_assert_int_eq(tf_model_get_grad(m, name, g, n), TF_OK);
        ck_assert_uint_le(off + n, count);
        ck_assert_msg(memcmp(g, buf + off, n * sizeof(float)) == 0, "%s at offset %zu", name,
                      off);
        free(g);
        off += n;
    }
    ck_assert_uint_eq(off, count);
    ck_assert_uint_eq(count, (size_t)tf_model_num_params(m));
}

static int any_nonzero(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] != 0.0f)
            return 1;
    return 0;
}

/* ---- the buffer ------------------------------------------------------------ */

START_TEST(test_buffer_order_and_size)
{
    tf_model *m = new_model(3);
    float *buf = NULL;
    size_t count = 0;
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, &count), TF_OK);
    ck_assert_ptr_nonnull(buf);
    ck_assert(!any_nonzero(buf, count));
    fwd_bwd(m, 1);
    ck_assert(any_nonzero(buf, count));
    expect_buffer_is_table(m, buf, count);
    /* the first and last tensors of the table bound the buffer */
    ck_assert_str_eq(tf_model_tensor_name(m, 0), "embed.weight");
    ck_assert_str_eq(tf_model_tensor_name(m, tf_model_num_tensors(m) - 1), "final_norm.bias");
    /* zero_grad zeroes the buffer; set_grad writes into it */
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    ck_assert(!any_nonzero(buf, count));
    float ones[D];
    for (int i = 0; i < D; i++)
        ones[i] = 1.0f;
    ck_assert_int_eq(tf_model_set_grad(m, "final_norm.bias", ones, D), TF_OK);
    ck_assert(memcmp(buf + count - D, ones, sizeof ones) == 0);
    ck_assert(!any_nonzero(buf, count - D));

    ck_assert_int_eq(tf_model_grad_buffer(NULL, &buf, &count), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_grad_buffer(m, NULL, &count), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, NULL), TF_ERR_ARGUMENT);
    tf_model_free(m);
}
END_TEST

/* A model that only ran has no gradients; the buffer comes when they are
 * first needed, holding any a borrowed set accumulated on its own before. */
START_TEST(test_buffer_allocated_when_needed)
{
    tf_model *m = new_model(4), *ref = new_model(4);
    int32_t tok[B * T];
    fill_tokens(tok, B * T, 9);
    ck_assert_int_eq(tf_model_forward(m, B, T, tok, NULL, NULL, NULL), TF_OK);
    /* a backward through one borrowed set, before the model has a buffer */
    tf_pattention *set = tf_model_pattention(m, 1, TF_SET_FFN);
    float X[3 * D], dY[3 * D];
    for (int i = 0; i < 3 * D; i++) {
        X[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
        dY[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
    }
    ck_assert_int_eq(tf_pattention_forward(set, 3, X, dY), TF_OK); /* dY as scratch output */
    for (int i = 0; i < 3 * D; i++)
        dY[i] = (float)((i * 5) % 13) / 13.0f - 0.5f;
    ck_assert_int_eq(tf_pattention_backward(set, 3, X, dY, NULL), TF_OK);
    float kg[SF * D];
    ck_assert_int_eq(tf_pattention_get_key_grad(set, kg, SF * D), TF_OK);
    ck_assert(any_nonzero(kg, SF * D));
    /* the same through the model's own backward afterwards, into the buffer */
    fwd_bwd(m, 1);
    fwd_bwd(ref, 1);
    float *buf, *rbuf;
    size_t count, rcount;
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, &count), TF_OK);
    ck_assert_int_eq(tf_model_grad_buffer(ref, &rbuf, &rcount), TF_OK);
    ck_assert_uint_eq(count, rcount);
    expect_buffer_is_table(m, buf, count);
    /* the set's own accumulation is in the buffer, on top of the model's */
    float mg[SF * D], rg[SF * D];
    ck_assert_int_eq(tf_model_get_grad(m, "layers.1.mlp.key_param_tokens", mg, SF * D), TF_OK);
    ck_assert_int_eq(tf_model_get_grad(ref, "layers.1.mlp.key_param_tokens", rg, SF * D), TF_OK);
    for (int i = 0; i < SF * D; i++)
        ck_assert_msg(mg[i] == rg[i] + kg[i], "element %d: %g, not %g + %g", i, mg[i], rg[i],
                      kg[i]);
    /* a model grown before it had gradients gets a buffer of the grown size */
    tf_model *g = new_model(5);
    ck_assert_int_eq(tf_model_grow(g, NULL, SQ + 2, SP, SF, NULL), TF_OK);
    ck_assert_int_eq(tf_model_grad_buffer(g, &buf, &count), TF_OK);
    ck_assert_uint_eq(count, (size_t)tf_model_num_params(g));
    ck_assert(!any_nonzero(buf, count));
    tf_model_free(g);
    tf_model_free(ref);
    tf_model_free(m);
}
END_TEST

/* A host sums the buffer in place; the optimizer steps with what it wrote,
 * exactly as with the same gradients set tensor by tensor. */
START_TEST(test_in_place_writes_drive_the_step)
{
    tf_model *a = new_model(5), *b = new_model(5);
    tf_optimizer *oa = new_opt(a), *ob = new_opt(b);
    float *buf;
    size_t count;
    ck_assert_int_eq(tf_model_grad_buffer(a, &buf, &count), TF_OK);
    fwd_bwd(a, 1);
    /* "the other process's gradients": a second batch on a copy */
    tf_model *peer = new_model(5);
    fwd_bwd(peer, 2);
    float *pbuf;
    size_t pcount;
    ck_assert_int_eq(tf_model_grad_buffer(peer, &pbuf, &pcount), TF_OK);
    ck_assert_uint_eq(pcount, count);
    for (size_t i = 0; i < count; i++)
        buf[i] += pbuf[i];
    /* b receives the same sums tensor by tensor */
    for (int i = 0, off = 0; i < tf_model_num_tensors(b); i++) {
        const char *name = tf_model_tensor_name(b, i);
        size_t n = tensor_size(b, name);
        ck_assert_int_eq(tf_model_set_grad(b, name, buf + off, n), TF_OK);
        off += (int)n;
    }
    expect_buffer_is_table(a, buf, count);
    float na, nb;
    ck_assert_int_eq(tf_optimizer_step(oa, &na), TF_OK);
    ck_assert_int_eq(tf_optimizer_step(ob, &nb), TF_OK);
    ck_assert(na == nb && na > 0.0f);
    ck_assert(!any_nonzero(buf, count)); /* the step zeroes the buffer */
    uint64_t ca, cb;
    ck_assert_int_eq(tf_model_checksum(a, oa, &ca), TF_OK);
    ck_assert_int_eq(tf_model_checksum(b, ob, &cb), TF_OK);
    ck_assert(ca == cb);
    tf_optimizer_free(oa);
    tf_optimizer_free(ob);
    tf_model_free(a);
    tf_model_free(b);
    tf_model_free(peer);
}
END_TEST

/* Growth lays the buffer out for the new sizes: still the table, the
 * accumulated gradients kept (new rows zero), the old pointer replaced. */
START_TEST(test_buffer_follows_growth)
{
    tf_model *m = new_model(7);
    tf_optimizer *opt = new_opt(m);
    fwd_bwd(m, 1);
    const int nt = tf_model_num_tensors(m);
    float **before = calloc((size_t)nt, sizeof *before);
    size_t *sizes = calloc((size_t)nt, sizeof *sizes);
    for (int i = 0; i < nt; i++) {
        const char *name = tf_model_tensor_name(m, i);
        sizes[i] = tensor_size(m, name);
        before[i] = malloc(sizes[i] * sizeof(float));
        ck_assert_int_eq(tf_model_get_grad(m, name, before[i], sizes[i]), TF_OK);
    }
    float *old;
    size_t old_count;
    ck_assert_int_eq(tf_model_grad_buffer(m, &old, &old_count), TF_OK);
    tf_grow_params g = tf_grow_default_params();
    ck_assert_msg(tf_model_grow(m, opt, SQ + 2, SP, SF + 4, &g) == TF_OK, "%s",
                  tf_model_errmsg(m));
    float *buf;
    size_t count;
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, &count), TF_OK);
    ck_assert_uint_eq(count, old_count + (size_t)L * (3 * 2 * 2 * D + 2 * 4 * D));
    expect_buffer_is_table(m, buf, count);
    for (int i = 0; i < nt; i++) {
        const char *name = tf_model_tensor_name(m, i);
        size_t n = tensor_size(m, name);
        float *now = malloc(n * sizeof(float));
        ck_assert_int_eq(tf_model_get_grad(m, name, now, n), TF_OK);
        ck_assert_msg(memcmp(now, before[i], sizes[i] * sizeof(float)) == 0, "%s: old rows",
                      name);
        ck_assert_msg(!any_nonzero(now + sizes[i], n - sizes[i]), "%s: new rows", name);
        free(now);
        free(before[i]);
    }
    /* a set grown through its own handle grows through the model */
    ck_assert_int_eq(tf_pattention_grow(tf_model_pattention(m, 1, TF_SET_PROJ), SP + 3, NULL),
                     TF_OK);
    float *buf2;
    size_t count2;
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf2, &count2), TF_OK);
    ck_assert_uint_eq(count2, count + 2 * 3 * D);
    expect_buffer_is_table(m, buf2, count2);
    /* a refused growth changes nothing */
    ck_assert_int_eq(tf_pattention_grow(tf_model_pattention(m, 1, TF_SET_PROJ), SP + 3, NULL),
                     TF_ERR_ARGUMENT);
    float *buf3;
    size_t count3;
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf3, &count3), TF_OK);
    ck_assert(buf3 == buf2 && count3 == count2);
    free(before);
    free(sizes);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- the readiness callback -------------------------------------------------- */

typedef struct report {
    size_t offset, count;
    float *snapshot; /* the range's contents when reported */
} report;

typedef struct recorder {
    report r[64];
    int n;
    int scale; /* > 0: multiply each reported range by it, as a host's sum would */
} recorder;

static void record(void *user, float *grads, size_t offset, size_t count)
{
    recorder *rec = user;
    ck_assert_int_lt(rec->n, 64);
    report *r = &rec->r[rec->n++];
    r->offset = offset;
    r->count = count;
    if (rec->scale > 0)
        for (size_t i = 0; i < count; i++)
            grads[offset + i] *= (float)rec->scale;
    r->snapshot = malloc(count * sizeof(float));
    memcpy(r->snapshot, grads + offset, count * sizeof(float));
}

static void recorder_clear(recorder *rec)
{
    for (int i = 0; i < rec->n; i++)
        free(rec->r[i].snapshot);
    rec->n = 0;
}

/* The reports of one backward: tail first, each ending where the one
 * before began, covering the buffer once, and final when reported. */
static void expect_reports(const tf_model *m, const recorder *rec, const float *buf,
                           size_t count)
{
    ck_assert_int_eq(rec->n, L + 2);
    size_t end = count;
    for (int i = 0; i < rec->n; i++) {
        const report *r = &rec->r[i];
        ck_assert_uint_gt(r->count, 0);
        ck_assert_uint_eq(r->offset + r->count, end);
        ck_assert_msg(memcmp(r->snapshot, buf + r->offset, r->count * sizeof(float)) == 0,
                      "range %d [%zu, +%zu) changed after it was reported", i, r->offset,
                      r->count);
        end = r->offset;
    }
    ck_assert_uint_eq(end, 0);
    /* the head is the final norm, the last report the embedding */
    ck_assert_uint_eq(rec->r[0].count, 2 * D);
    ck_assert_uint_eq(rec->r[rec->n - 1].count, tensor_size(m, "embed.weight"));
    /* a layer's report holds its ten tensors */
    ck_assert_uint_eq(rec->r[1].count, 2 * D * (size_t)(3 * SQ + SP + SF));
}

START_TEST(test_ready_ranges_cover_once_and_are_final)
{
    tf_model *m = new_model(11);
    recorder rec = {0};
    ck_assert_int_eq(tf_model_set_grad_ready_callback(m, record, &rec), TF_OK);
    float *buf;
    size_t count;
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, &count), TF_OK);
    fwd_bwd(m, 1);
    expect_reports(m, &rec, buf, count);
    recorder_clear(&rec);
    /* accumulation: the second backward reports again, and what it reports
     * is the final sum of both */
    fwd_bwd(m, 2);
    expect_reports(m, &rec, buf, count);
    recorder_clear(&rec);
    /* a host that writes each range when it is reported (a sum across
     * processes): the writes stay, backward does not touch the range again */
    tf_model *ref = new_model(11);
    fwd_bwd(ref, 3);
    float *rbuf;
    size_t rcount;
    ck_assert_int_eq(tf_model_grad_buffer(ref, &rbuf, &rcount), TF_OK);
    ck_assert_int_eq(tf_model_zero_grad(m), TF_OK);
    rec.scale = 3;
    fwd_bwd(m, 3);
    expect_reports(m, &rec, buf, count);
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(buf[i] == 3.0f * rbuf[i], "element %zu: %g, not 3 x %g", i, buf[i],
                      rbuf[i]);
    recorder_clear(&rec);
    /* removed: no more reports */
    ck_assert_int_eq(tf_model_set_grad_ready_callback(m, NULL, &rec), TF_OK);
    fwd_bwd(m, 4);
    ck_assert_int_eq(rec.n, 0);
    /* after growth the reports cover the new buffer */
    ck_assert_int_eq(tf_model_set_grad_ready_callback(m, record, &rec), TF_OK);
    rec.scale = 0;
    ck_assert_int_eq(tf_model_grow(m, NULL, SQ + 1, SP + 1, SF + 1, NULL), TF_OK);
    ck_assert_int_eq(tf_model_grad_buffer(m, &buf, &count), TF_OK);
    fwd_bwd(m, 5);
    ck_assert_int_eq(rec.n, L + 2);
    ck_assert_uint_eq(rec.r[0].offset + rec.r[0].count, count);
    ck_assert_uint_eq(rec.r[rec.n - 1].offset, 0);
    recorder_clear(&rec);
    ck_assert_int_eq(tf_model_set_grad_ready_callback(NULL, record, &rec), TF_ERR_ARGUMENT);
    tf_model_free(ref);
    tf_model_free(m);
}
END_TEST

/* ---- the checksum ------------------------------------------------------------ */

static uint64_t sum_of(const tf_model *m, const tf_optimizer *opt)
{
    uint64_t c = 0;
    ck_assert_msg(tf_model_checksum(m, opt, &c) == TF_OK, "%s", tf_model_errmsg(m));
    return c;
}

START_TEST(test_checksum)
{
    tf_model *a = new_model(5), *b = new_model(5), *c = new_model(6);
    tf_optimizer *oa = new_opt(a), *ob = new_opt(b);
    ck_assert(sum_of(a, NULL) == sum_of(b, NULL));
    ck_assert(sum_of(a, oa) == sum_of(b, ob));
    ck_assert(sum_of(a, NULL) != sum_of(c, NULL));
    ck_assert(sum_of(a, NULL) != sum_of(a, oa));
    /* a step changes it; the same step on the twin agrees again */
    fwd_bwd(a, 1);
    ck_assert(sum_of(a, oa) == sum_of(b, ob)); /* gradients are not state */
    ck_assert_int_eq(tf_optimizer_step(oa, NULL), TF_OK);
    ck_assert(sum_of(a, NULL) != sum_of(b, NULL));
    fwd_bwd(b, 1);
    ck_assert_int_eq(tf_optimizer_step(ob, NULL), TF_OK);
    ck_assert(sum_of(a, NULL) == sum_of(b, NULL));
    ck_assert(sum_of(a, oa) == sum_of(b, ob));
    /* one bit of one parameter */
    float w[D];
    ck_assert_int_eq(tf_model_get_tensor(b, "final_norm.bias", w, D), TF_OK);
    uint32_t bits;
    memcpy(&bits, &w[3], 4);
    bits ^= 1;
    memcpy(&w[3], &bits, 4);
    ck_assert_int_eq(tf_model_set_tensor(b, "final_norm.bias", w, D), TF_OK);
    ck_assert(sum_of(a, NULL) != sum_of(b, NULL));
    bits ^= 1;
    memcpy(&w[3], &bits, 4);
    ck_assert_int_eq(tf_model_set_tensor(b, "final_norm.bias", w, D), TF_OK);
    ck_assert(sum_of(a, oa) == sum_of(b, ob));
    /* the scale is state too */
    tf_pattention *set = tf_model_pattention(b, 1, TF_SET_FFN);
    double tau = tf_pattention_tau(set);
    ck_assert_int_eq(tf_pattention_set_tau(set, tau * 2), TF_OK);
    ck_assert(sum_of(a, NULL) != sum_of(b, NULL));
    ck_assert_int_eq(tf_pattention_set_tau(set, tau), TF_OK);
    /* set_tau pins the scale: a different policy is a different state */
    ck_assert(sum_of(a, NULL) != sum_of(b, NULL));

    /* a checkpoint restores the state the checksum sees, optimizer included */
    char path[512];
    tt_tmp_path(path, sizeof path, "ck.safetensors");
    ck_assert_int_eq(tf_model_save(a, oa, path), TF_OK);
    tf_model *r = new_model(99);
    tf_optimizer *orr = new_opt(r);
    ck_assert_msg(tf_model_load(r, orr, path) == TF_OK, "%s", tf_model_errmsg(r));
    ck_assert(sum_of(r, orr) == sum_of(a, oa));

    uint64_t out;
    ck_assert_int_eq(tf_model_checksum(NULL, NULL, &out), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_checksum(a, NULL, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_checksum(a, ob, &out), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_model_errmsg(a), "another model"));
    tf_optimizer_free(orr);
    tf_model_free(r);
    tf_optimizer_free(oa);
    tf_optimizer_free(ob);
    tf_model_free(a);
    tf_model_free(b);
    tf_model_free(c);
}
END_TEST

Suite *grads_suite(void)
{
    Suite *s = suite_create("grads");
    TCase *tc = tcase_create("buffer");
    tcase_add_test(tc, test_buffer_order_and_size);
    tcase_add_test(tc, test_buffer_allocated_when_needed);
    tcase_add_test(tc, test_in_place_writes_drive_the_step);
    tcase_add_test(tc, test_buffer_follows_growth);
    tcase_add_test(tc, test_ready_ranges_cover_once_and_are_final);
    suite_add_tcase(s, tc);
    tc = tcase_create("checksum");
    tcase_add_unchecked_fixture(tc, tt_make_basedir, tt_remove_basedir);
    tcase_add_checked_fixture(tc, tt_make_tmpdir, tt_remove_tmpdir);
    tcase_add_test(tc, test_checksum);
    suite_add_tcase(s, tc);
    return s;
}
