/*
 * test_params.c -- the struct_size rule of every parameter struct: copy-in
 * refuses sizes below the oldest layout or above the library's, copy-out
 * refuses them too and never writes past the caller's struct_size.
 */
#include <check.h>
#include <math.h>
#include <string.h>

#include "internal.h"
#include "tokenformer.h"

#define GUARD 0xA5

/* A buffer larger than the struct, filled with GUARD, struct_size first. */
typedef struct guarded {
    unsigned char bytes[512];
} guarded;

static void guard_fill(guarded *g, size_t struct_size)
{
    memset(g->bytes, GUARD, sizeof g->bytes);
    memcpy(g->bytes, &struct_size, sizeof struct_size);
}

/* Bytes [from, end) of the buffer still hold GUARD. */
static int guard_intact(const guarded *g, size_t from)
{
    for (size_t i = from; i < sizeof g->bytes; i++)
        if (g->bytes[i] != GUARD)
            return 0;
    return 1;
}

static size_t size_of(const guarded *g)
{
    size_t s;
    memcpy(&s, g->bytes, sizeof s);
    return s;
}

START_TEST(test_helpers)
{
    typedef struct demo {
        size_t struct_size;
        int32_t a;
        double b, c;
    } demo;
    const size_t lo = TFI_PARAMS_MIN(demo, a);
    ck_assert_uint_eq(lo, offsetof(demo, a) + sizeof(int32_t));
    demo defaults = {sizeof(demo), 1, 2.0, 3.0};

    /* init: at most the library's size, stored in struct_size */
    guarded g;
    guard_fill(&g, 0);
    tfi_params_init(g.bytes, offsetof(demo, c), &defaults, sizeof defaults);
    ck_assert_uint_eq(size_of(&g), offsetof(demo, c));
    ck_assert(guard_intact(&g, offsetof(demo, c)));
    tfi_params_init(g.bytes, sizeof g.bytes, &defaults, sizeof defaults);
    ck_assert_uint_eq(size_of(&g), sizeof(demo));
    ck_assert(guard_intact(&g, sizeof(demo)));
    tfi_params_init(NULL, sizeof(demo), &defaults, sizeof defaults); /* no-op */

    /* in: an older caller's struct keeps the newer fields' defaults */
    demo in = {offsetof(demo, c), 7, 8.0, 99.0}, out = defaults;
    ck_assert_int_eq(tfi_params_in(&out, sizeof out, &in, lo, "f", "demo_params", NULL), TF_OK);
    ck_assert(out.struct_size == sizeof out && out.a == 7 && out.b == 8.0 && out.c == 3.0);
    ck_assert_int_eq(tfi_params_in(&out, sizeof out, NULL, lo, "f", "demo_params", NULL), TF_OK);
    size_t bad[] = {0, lo - 1, sizeof(demo) + 1, (size_t)-1};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        demo before = out;
        in.struct_size = bad[i];
        ck_assert_int_eq(tfi_params_in(&out, sizeof out, &in, lo, "f", "demo_params", NULL),
                         TF_ERR_ARGUMENT);
        ck_assert(memcmp(&before, &out, sizeof out) == 0);
        ck_assert_ptr_nonnull(strstr(tf_last_error(), "demo_default_params()"));
    }

    /* out: exactly the caller's struct_size is written */
    guard_fill(&g, lo);
    ck_assert_int_eq(tfi_params_out(g.bytes, &defaults, sizeof defaults, lo, "f", "demo", NULL),
                     TF_OK);
    ck_assert_uint_eq(size_of(&g), lo);
    ck_assert(guard_intact(&g, lo));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        guard_fill(&g, bad[i]);
        ck_assert_int_eq(tfi_params_out(g.bytes, &defaults, sizeof defaults, lo, "f", "demo",
                                        NULL), TF_ERR_ARGUMENT);
        ck_assert(guard_intact(&g, sizeof(size_t)));
        ck_assert_ptr_nonnull(strstr(tf_last_error(), "sizeof(demo)"));
    }
}
END_TEST

/* ---- copy-out through the API ---------------------------------------- */

typedef tf_status (*fill_fn)(void *ctx, void *out);

static tf_status fill_model_params(void *ctx, void *out)
{
    return tf_model_get_params(ctx, out);
}

static tf_status fill_optimizer_params(void *ctx, void *out)
{
    return tf_optimizer_get_params(ctx, out);
}

static tf_status fill_config_model(void *ctx, void *out)
{
    return tf_config_model_params(ctx, out);
}

static tf_status fill_config_optimizer(void *ctx, void *out)
{
    return tf_config_optimizer_params(ctx, out);
}

static tf_status fill_info(void *ctx, void *out)
{
    (void)ctx;
    return tf_get_info(out);
}

/* A struct_size out of range is refused with nothing written; in range,
 * exactly struct_size bytes are written and struct_size is kept. */
static void check_copy_out(const char *what, fill_fn fill, void *ctx, size_t lo, size_t full)
{
    guarded g;
    const size_t bad[] = {0, 4, lo - 1, full + 1, full + 8, (size_t)0xA5A5A5A5A5A5A5A5ULL};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        guard_fill(&g, bad[i]);
        tf_status st = fill(ctx, g.bytes);
        ck_assert_msg(st == TF_ERR_ARGUMENT, "%s: struct_size %zu gave %s", what, bad[i],
                      tf_status_name(st));
        ck_assert_msg(guard_intact(&g, sizeof(size_t)), "%s: wrote with struct_size %zu", what,
                      bad[i]);
        ck_assert_msg(size_of(&g) == bad[i], "%s: struct_size changed", what);
        ck_assert_msg(strstr(tf_last_error(), "struct_size") != NULL, "%s: '%s'", what,
                      tf_last_error());
    }
    const size_t good[] = {lo, (lo + full) / 2, full};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        guard_fill(&g, good[i]);
        ck_assert_msg(fill(ctx, g.bytes) == TF_OK, "%s: %s", what, tf_last_error());
        ck_assert_msg(guard_intact(&g, good[i]), "%s: wrote past struct_size %zu", what,
                      good[i]);
        ck_assert_uint_eq(size_of(&g), good[i]);
    }
}

START_TEST(test_copy_out)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 1;
    p.hidden_size = 16;
    p.rotary_pct = 0.5;
    p.qkv_slot_num = p.proj_slot_num = p.ffn_slot_num = 8;
    p.vocab_size = 32;
    p.seq_length = 8;
    tf_model *m = NULL;
    ck_assert_int_eq(tf_model_create(&p, &m), TF_OK);
    tf_optimizer *opt = NULL;
    ck_assert_int_eq(tf_optimizer_create(m, NULL, &opt), TF_OK);
    static const char yaml[] = "{num_layers: 1, hidden_size: 16, num_attention_heads: 4,"
                               " qkv_slot_num: 8, proj_slot_num: 8, ffn_slot_num: 8,"
                               " seq_length: 8, rotary_pct: 0.5}";
    tf_config *cfg = NULL;
    ck_assert_int_eq(tf_config_parse(yaml, sizeof yaml - 1, &cfg), TF_OK);

    check_copy_out("tf_model_get_params", fill_model_params, m,
                   TFI_PARAMS_MIN(tf_model_params, num_layers), sizeof(tf_model_params));
    check_copy_out("tf_optimizer_get_params", fill_optimizer_params, opt,
                   TFI_PARAMS_MIN(tf_optimizer_params, lr), sizeof(tf_optimizer_params));
    check_copy_out("tf_config_model_params", fill_config_model, cfg,
                   TFI_PARAMS_MIN(tf_model_params, num_layers), sizeof(tf_model_params));
    check_copy_out("tf_config_optimizer_params", fill_config_optimizer, cfg,
                   TFI_PARAMS_MIN(tf_optimizer_params, lr), sizeof(tf_optimizer_params));
    check_copy_out("tf_get_info", fill_info, NULL, TFI_PARAMS_MIN(tf_info, version_number),
                   sizeof(tf_info));

    tf_config_free(cfg);
    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

/* ---- copy-in through the API ------------------------------------------ */

START_TEST(test_copy_in)
{
    /* each constructor or setter refuses a size below its oldest layout
     * and above the library's, and takes the oldest layout */
    tf_model_params mp = tf_model_default_params();
    mp.num_layers = 1;
    mp.hidden_size = 16;
    mp.rotary_pct = 0.5;
    mp.qkv_slot_num = mp.proj_slot_num = mp.ffn_slot_num = 8;
    mp.vocab_size = 32;
    mp.seq_length = 8;
    const size_t mlo = TFI_PARAMS_MIN(tf_model_params, num_layers);
    tf_model *m = NULL;
    mp.struct_size = mlo - 1;
    ck_assert_int_eq(tf_model_create(&mp, &m), TF_ERR_ARGUMENT);
    mp.struct_size = sizeof mp + 1;
    ck_assert_int_eq(tf_model_create(&mp, &m), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "tf_model_default_params()"));
    mp.struct_size = mlo; /* only num_layers read: the rest are defaults */
    ck_assert_int_eq(tf_model_create(&mp, &m), TF_OK);
    tf_model_params got = tf_model_default_params();
    ck_assert_int_eq(tf_model_get_params(m, &got), TF_OK);
    ck_assert_int_eq(got.num_layers, 1);
    ck_assert_int_eq(got.hidden_size, tf_model_default_params().hidden_size);
    tf_model_free(m);
    mp.struct_size = sizeof mp;
    ck_assert_int_eq(tf_model_create(&mp, &m), TF_OK);

    tf_pattention_params pp = tf_pattention_default_params();
    tf_pattention *set = NULL;
    pp.struct_size = TFI_PARAMS_MIN(tf_pattention_params, n) - 1;
    ck_assert_int_eq(tf_pattention_create(&pp, &set), TF_ERR_ARGUMENT);
    pp.struct_size = sizeof pp + 8;
    ck_assert_int_eq(tf_pattention_create(&pp, &set), TF_ERR_ARGUMENT);
    pp.struct_size = TFI_PARAMS_MIN(tf_pattention_params, n);
    pp.n = 5;
    ck_assert_int_eq(tf_pattention_create(&pp, &set), TF_OK);
    ck_assert_int_eq(tf_pattention_n(set), 5);

    tf_grow_params gp = tf_grow_default_params();
    gp.struct_size = TFI_PARAMS_MIN(tf_grow_params, key_init) - 1;
    ck_assert_int_eq(tf_pattention_grow(set, 9, &gp), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_model_grow(m, NULL, 9, 9, 9, &gp), TF_ERR_ARGUMENT);
    gp.struct_size = sizeof gp + 1;
    ck_assert_int_eq(tf_pattention_grow(set, 9, &gp), TF_ERR_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(tf_pattention_errmsg(set), "tf_pattention_grow"));
    ck_assert_int_eq(tf_pattention_n(set), 5);
    gp.struct_size = TFI_PARAMS_MIN(tf_grow_params, key_init);
    ck_assert_int_eq(tf_pattention_grow(set, 9, &gp), TF_OK);
    tf_pattention_free(set);

    tf_optimizer_params op = tf_optimizer_default_params();
    tf_optimizer *opt = NULL;
    op.struct_size = TFI_PARAMS_MIN(tf_optimizer_params, lr) - 1;
    ck_assert_int_eq(tf_optimizer_create(m, &op, &opt), TF_ERR_ARGUMENT);
    op.struct_size = sizeof op + 1;
    ck_assert_int_eq(tf_optimizer_create(m, &op, &opt), TF_ERR_ARGUMENT);
    op.struct_size = sizeof op;
    ck_assert_int_eq(tf_optimizer_create(m, &op, &opt), TF_OK);
    op.struct_size = 1;
    ck_assert_int_eq(tf_optimizer_set_params(opt, &op), TF_ERR_ARGUMENT);
    ck_assert(isnan(tf_schedule_lr(&op, 1)));
    op.struct_size = TFI_PARAMS_MIN(tf_optimizer_params, decay_steps);
    ck_assert(tf_schedule_lr(&op, 1) == op.lr);
    op.struct_size = TFI_PARAMS_MIN(tf_optimizer_params, warmup_steps);
    ck_assert(isnan(tf_schedule_lr(&op, 1)));

    tf_sampler_params sp = tf_sampler_default_params();
    const float logits[3] = {0.0f, 1.0f, 2.0f};
    uint64_t rng = 1;
    int32_t tok = -1;
    sp.struct_size = TFI_PARAMS_MIN(tf_sampler_params, temperature) - 1;
    ck_assert_int_eq(tf_sample(logits, 3, &sp, &rng, &tok), TF_ERR_ARGUMENT);
    sp.struct_size = sizeof sp + 1;
    ck_assert_int_eq(tf_sample(logits, 3, &sp, &rng, &tok), TF_ERR_ARGUMENT);
    sp.struct_size = sizeof sp;
    ck_assert_int_eq(tf_sample(logits, 3, &sp, &rng, &tok), TF_OK);

    tf_optimizer_free(opt);
    tf_model_free(m);
}
END_TEST

Suite *params_suite(void)
{
    Suite *s = suite_create("params");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_helpers);
    tcase_add_test(tc, test_copy_out);
    tcase_add_test(tc, test_copy_in);
    suite_add_tcase(s, tc);
    return s;
}
