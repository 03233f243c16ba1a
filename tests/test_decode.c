/* test_decode.c -- incremental decoding against the full forward, prefill
 * in one call or in chunks or token by token, generation (greedy, seeded
 * sampling, stop ids, streaming, the context bound), the sampler's
 * filters, errors that must leave the cache unchanged, growth while
 * serving, training state surviving decoding, and the byte tokenizer. */
#include <check.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokenformer.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double unif(uint64_t *s) { return (double)(mix(s) >> 11) * 0x1.0p-53; }

static double gauss(uint64_t *s)
{
    double u = unif(s), v = unif(s);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

#define SEQ 24
#define VOCAB 61

/* A small model whose every tensor is re-drawn with std large enough that
 * the logits depend visibly on the context.  (Not larger: with softmax
 * norms and values of std 0.3 the model is so ill-conditioned that a
 * one-ulp change of the embedding moves its logits by 4e-4.) */
static tf_model *small_model(tf_norm_type norm, double rotary_pct, int64_t seq, uint64_t seed)
{
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 32;
    p.num_attention_heads = 4;
    p.qkv_slot_num = 24;
    p.proj_slot_num = 20;
    p.ffn_slot_num = 40;
    p.rotary_pct = rotary_pct;
    p.norm = norm;
    p.vocab_size = VOCAB;
    p.seq_length = seq;
    p.seed = seed;
    tf_model *m;
    ck_assert_msg(tf_model_create(&p, &m) == TF_OK, "%s", tf_last_error());
    uint64_t s = seed * 7919 + 3;
    for (int i = 0; i < tf_model_num_tensors(m); i++) {
        const char *name = tf_model_tensor_name(m, i);
        int64_t shape[2];
        int ndim;
        ck_assert_int_eq(tf_model_tensor_shape(m, name, shape, &ndim), TF_OK);
        size_t count = (size_t)shape[0] * (size_t)(ndim == 2 ? shape[1] : 1);
        double std = strstr(name, "embed") ? 0.5
                   : strstr(name, "key_param") ? 0.5
                   : 0.1; /* values, final norm */
        double base = strstr(name, "final_norm.weight") ? 1.0 : 0.0;
        float *buf = malloc(count * sizeof(float));
        for (size_t j = 0; j < count; j++)
            buf[j] = (float)(base + std * gauss(&s));
        ck_assert_int_eq(tf_model_set_tensor(m, name, buf, count), TF_OK);
        free(buf);
    }
    return m;
}

static void random_tokens(int32_t *t, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        t[i] = (int32_t)(mix(&seed) % VOCAB);
}

/* The full forward's logits at position p-1 of each sequence, on the
 * prefixes tokens[b][0, p) (tokens has row stride ld). */
static void reference_logits(tf_model *m, int B, int p, const int32_t *tokens, int ld,
                             float *out)
{
    int32_t *pre = calloc((size_t)B * (size_t)p, sizeof(int32_t));
    float *all = malloc((size_t)B * (size_t)p * VOCAB * sizeof(float));
    for (int b = 0; b < B; b++)
        memcpy(pre + b * p, tokens + b * ld, (size_t)p * sizeof(int32_t));
    ck_assert_msg(tf_model_forward(m, B, p, pre, NULL, all, NULL) == TF_OK, "%s",
                  tf_last_error());
    for (int b = 0; b < B; b++)
        memcpy(out + b * VOCAB, all + ((size_t)b * p + (size_t)(p - 1)) * VOCAB,
               VOCAB * sizeof(float));
    free(pre);
    free(all);
}

static const tf_norm_type norms[2] = {TF_NORM_L2_NORM_GELU, TF_NORM_SOFTMAX};
static const double rotary[2] = {0.25, 1.0};

/* ---- (1) incremental == full forward ------------------------------------ */

/* A decoder's logits against the full forward's on the same prefix, at one
 * thread.  Decoding runs the forward's layer routine and output head
 * (layer.c, model.c), and below 64 rows the forward's products go through
 * kernels that sum each output in one order whatever the row count
 * (fewrows.c): while the forward has fewer than 64 rows (B * p < 64) the
 * logits are the forward's bit for bit.  A private copy of any row kernel
 * (LayerNorm, rotary, softmax, Theta) or another product route in the
 * decoder fails that.  From 64 rows on the forward's products go to BLIS,
 * which orders its sums by the product's shape: then within float rounding
 * (1e-4 on this ill-conditioned model; test_logits_near_the_forwards
 * bounds a well-conditioned one). */
static void expect_forwards(const float *got, const float *want, int B, int p, const char *when)
{
    double err = tt_rel_err(got, want, (size_t)B * VOCAB);
    if (B * p < 64)
        ck_assert_msg(memcmp(got, want, (size_t)B * VOCAB * sizeof(float)) == 0,
                      "B=%d, %s, prefix %d: not the forward's bits (rel err %g)", B, when, p, err);
    else
        ck_assert_msg(err <= 1e-4, "B=%d, %s, prefix %d: rel err %g", B, when, p, err);
}

/* Prompts prefilled in one call, then token by token; a prompt in uneven
 * pieces.  _i: the norm (3) times the rotary fraction (2). */
START_TEST(test_incremental_matches_full_forward)
{
    static const tf_norm_type all_norms[3] = {TF_NORM_L2_NORM_GELU, TF_NORM_GELU_L2_NORM,
                                              TF_NORM_SOFTMAX};
    const int threads = tf_get_num_threads();
    ck_assert_int_eq(tf_set_num_threads(1), TF_OK);
    tf_model *m = small_model(all_norms[_i % 3], rotary[_i / 3], SEQ, 11 + (uint64_t)_i);
    const int batches[2] = {1, 3}, prompts[3] = {1, 5, SEQ};
    for (int bi = 0; bi < 2; bi++) {
        int B = batches[bi];
        int32_t tokens[3 * SEQ];
        random_tokens(tokens, (size_t)B * SEQ, 100 + (uint64_t)B);
        /* the full forward on every prefix [0, p), last position */
        static float ref[SEQ + 1][3 * VOCAB];
        for (int p = 1; p <= SEQ; p++)
            reference_logits(m, B, p, tokens, SEQ, ref[p]);
        float got[3 * VOCAB];
        for (int pi = 0; pi < 3; pi++) {
            int P = prompts[pi];
            tf_decoder *dec;
            ck_assert_int_eq(tf_decoder_create(m, B, &dec), TF_OK);
            ck_assert_ptr_null(tf_decoder_logits(dec));
            /* the prompt, [B, P] contiguous */
            int32_t prompt[3 * SEQ];
            for (int b = 0; b < B; b++)
                memcpy(prompt + b * P, tokens + b * SEQ, (size_t)P * sizeof(int32_t));
            ck_assert_msg(tf_decoder_prefill(dec, P, prompt, got) == TF_OK, "%s",
                          tf_decoder_errmsg(dec));
            ck_assert_int_eq(tf_decoder_position(dec), P);
            expect_forwards(got, ref[P], B, P, "prefill");
            ck_assert(memcmp(tf_decoder_logits(dec), got, (size_t)B * VOCAB * 4) == 0);
            for (int pos = P; pos < SEQ; pos++) {
                int32_t step[3];
                for (int b = 0; b < B; b++)
                    step[b] = tokens[b * SEQ + pos];
                ck_assert_int_eq(tf_decoder_step(dec, step, got), TF_OK);
                expect_forwards(got, ref[pos + 1], B, pos + 1, "step");
            }
            /* the context is full: no more room, nothing changes */
            int32_t one[3] = {1, 2, 3};
            ck_assert_int_eq(tf_decoder_step(dec, one, NULL), TF_ERR_RANGE);
            ck_assert_int_eq(tf_decoder_position(dec), SEQ);
            tf_decoder_free(dec);
        }
        /* pieces of 7, 10 and 7 positions */
        tf_decoder *dec;
        ck_assert_int_eq(tf_decoder_create(m, B, &dec), TF_OK);
        const int cuts[4] = {0, 7, 17, SEQ};
        for (int k = 0; k < 3; k++) {
            const int T = cuts[k + 1] - cuts[k];
            int32_t piece[3 * SEQ];
            for (int b = 0; b < B; b++)
                memcpy(piece + b * T, tokens + b * SEQ + cuts[k], (size_t)T * sizeof(int32_t));
            ck_assert_int_eq(tf_decoder_prefill(dec, T, piece, got), TF_OK);
            expect_forwards(got, ref[cuts[k + 1]], B, cuts[k + 1], "piece");
        }
        tf_decoder_free(dec);
    }
    tf_model_free(m);
    tf_set_num_threads(threads);
}
END_TEST

/* One prefill call, token by token, and uneven pieces give the same logits
 * at the end (within float reassociation: the paths use different GEMMs). */
START_TEST(test_prefill_one_call_vs_token_by_token)
{
    tf_model *m = small_model(norms[_i & 1], rotary[_i >> 1], SEQ, 21 + (uint64_t)_i);
    const int B = 3;
    int32_t tokens[3 * SEQ];
    random_tokens(tokens, (size_t)B * SEQ, 77);
    tf_decoder *a, *b, *c;
    ck_assert_int_eq(tf_decoder_create(m, B, &a), TF_OK);
    ck_assert_int_eq(tf_decoder_create(m, B, &b), TF_OK);
    ck_assert_int_eq(tf_decoder_create(m, B, &c), TF_OK);
    float la[3 * VOCAB], lb[3 * VOCAB], lc[3 * VOCAB];
    const int P = SEQ - 1;
    int32_t prompt[3 * SEQ];
    for (int s = 0; s < B; s++)
        memcpy(prompt + s * P, tokens + s * SEQ, (size_t)P * sizeof(int32_t));
    ck_assert_int_eq(tf_decoder_prefill(a, P, prompt, la), TF_OK);
    for (int pos = 0; pos < P; pos++) {
        int32_t step[3] = {tokens[pos], tokens[SEQ + pos], tokens[2 * SEQ + pos]};
        ck_assert_int_eq(tf_decoder_step(b, step, lb), TF_OK);
    }
    /* pieces of 7, 10 and 6 positions */
    const int cuts[4] = {0, 7, 17, P};
    for (int k = 0; k < 3; k++) {
        int T = cuts[k + 1] - cuts[k];
        int32_t piece[3 * SEQ];
        for (int s = 0; s < B; s++)
            memcpy(piece + s * T, tokens + s * SEQ + cuts[k], (size_t)T * sizeof(int32_t));
        ck_assert_int_eq(tf_decoder_prefill(c, T, piece, lc), TF_OK);
    }
    ck_assert_msg(tt_rel_err(lb, la, 3 * VOCAB) <= 1e-4, "token by token: %g",
                  tt_rel_err(lb, la, 3 * VOCAB));
    ck_assert_msg(tt_rel_err(lc, la, 3 * VOCAB) <= 1e-4, "pieces: %g",
                  tt_rel_err(lc, la, 3 * VOCAB));
    /* the caches agree too: the last step gives the same logits */
    int32_t last[3] = {tokens[P], tokens[SEQ + P], tokens[2 * SEQ + P]};
    ck_assert_int_eq(tf_decoder_step(a, last, la), TF_OK);
    ck_assert_int_eq(tf_decoder_step(b, last, lb), TF_OK);
    ck_assert_int_eq(tf_decoder_step(c, last, lc), TF_OK);
    ck_assert(tt_rel_err(lb, la, 3 * VOCAB) <= 1e-4 && tt_rel_err(lc, la, 3 * VOCAB) <= 1e-4);
    /* reset forgets everything: the same prompt gives the same logits */
    float again[3 * VOCAB];
    ck_assert_int_eq(tf_decoder_reset(b), TF_OK);
    ck_assert_int_eq(tf_decoder_position(b), 0);
    ck_assert_ptr_null(tf_decoder_logits(b));
    ck_assert_int_eq(tf_decoder_prefill(a, 0, prompt, NULL), TF_ERR_ARGUMENT);
    tf_decoder_reset(a);
    ck_assert_int_eq(tf_decoder_prefill(a, P, prompt, again), TF_OK);
    ck_assert_int_eq(tf_decoder_step(a, last, again), TF_OK);
    ck_assert(memcmp(again, la, sizeof again) == 0);
    tf_decoder_free(a);
    tf_decoder_free(b);
    tf_decoder_free(c);
    tf_model_free(m);
}
END_TEST

/* A prompt longer than one chunk (64 positions) runs in several chunks. */
START_TEST(test_long_prefill_in_chunks)
{
    const int S = 150;
    tf_model *m = small_model(TF_NORM_L2_NORM_GELU, 0.25, S, 5);
    for (int B = 1; B <= 3; B += 2) {
        int32_t *tokens = malloc((size_t)B * S * sizeof(int32_t));
        random_tokens(tokens, (size_t)B * S, 9);
        float got[3 * VOCAB], want[3 * VOCAB];
        tf_decoder *dec;
        ck_assert_int_eq(tf_decoder_create(m, B, &dec), TF_OK);
        int P = S - 2;
        int32_t *prompt = malloc((size_t)B * P * sizeof(int32_t));
        for (int b = 0; b < B; b++)
            memcpy(prompt + b * P, tokens + b * S, (size_t)P * sizeof(int32_t));
        ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, got), TF_OK);
        reference_logits(m, B, P, tokens, S, want);
        ck_assert_msg(tt_rel_err(got, want, (size_t)B * VOCAB) <= 1e-4, "B=%d: %g", B,
                      tt_rel_err(got, want, (size_t)B * VOCAB));
        for (int pos = P; pos < S; pos++) {
            int32_t step[3];
            for (int b = 0; b < B; b++)
                step[b] = tokens[b * S + pos];
            ck_assert_int_eq(tf_decoder_step(dec, step, got), TF_OK);
        }
        reference_logits(m, B, S, tokens, S, want);
        ck_assert_msg(tt_rel_err(got, want, (size_t)B * VOCAB) <= 1e-4, "B=%d end: %g", B,
                      tt_rel_err(got, want, (size_t)B * VOCAB));
        tf_decoder_free(dec);
        free(prompt);
        free(tokens);
    }
    tf_model_free(m);
}
END_TEST

/* From 64 rows on the forward's products go to BLIS, which sums each
 * output in an order of its own (its kernel families split k elsewhere),
 * while a decoder's step stays below 64 rows: here a batch of 3 and a
 * 140-token prompt (two chunks) make the forward's calls 420 to 450 rows.
 * The logits then differ by the float rounding of those products only.
 * The bound is 2e-6 of the largest logit, not 1e-6: the forward itself
 * moves by up to 9e-7 on this model when a sequence runs in a batch of 3
 * instead of alone (the same products, in other shapes), and the decoder
 * differs from it by 2e-7 to 1.03e-6 (BLIS kernels zen3, skx, haswell,
 * generic).  _i: the norm. */
START_TEST(test_logits_near_the_forwards)
{
    static const tf_norm_type all_norms[3] = {TF_NORM_L2_NORM_GELU, TF_NORM_GELU_L2_NORM,
                                              TF_NORM_SOFTMAX};
    const int threads = tf_get_num_threads();
    ck_assert_int_eq(tf_set_num_threads(1), TF_OK);
    tf_model_params p = tf_model_default_params();
    p.num_layers = 2;
    p.hidden_size = 64;
    p.num_attention_heads = 2;
    p.qkv_slot_num = 64;
    p.proj_slot_num = 64;
    p.ffn_slot_num = 256;
    p.vocab_size = VOCAB;
    p.seq_length = 150;
    p.norm = all_norms[_i];
    tf_model *m;
    ck_assert_int_eq(tf_model_create(&p, &m), TF_OK);
    const int B = 3, S = 150, P = 140;
    int32_t *tokens = malloc((size_t)B * S * sizeof(int32_t));
    int32_t *prompt = malloc((size_t)B * P * sizeof(int32_t));
    random_tokens(tokens, (size_t)B * S, 300 + (uint64_t)_i);
    for (int b = 0; b < B; b++)
        memcpy(prompt + b * P, tokens + b * S, (size_t)P * sizeof(int32_t));
    tf_decoder *dec;
    ck_assert_int_eq(tf_decoder_create(m, B, &dec), TF_OK);
    float got[3 * VOCAB], want[3 * VOCAB];
    ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, got), TF_OK);
    for (int pos = P;; pos++) {
        reference_logits(m, B, pos, tokens, S, want);
        double err = tt_rel_err(got, want, (size_t)B * VOCAB);
        ck_assert_msg(err <= 2e-6, "position %d: rel err %g", pos - 1, err);
        if (pos == S)
            break;
        int32_t step[3];
        for (int b = 0; b < B; b++)
            step[b] = tokens[b * S + pos];
        ck_assert_int_eq(tf_decoder_step(dec, step, got), TF_OK);
    }
    tf_decoder_free(dec);
    free(tokens);
    free(prompt);
    tf_model_free(m);
    tf_set_num_threads(threads);
}
END_TEST

/* ---- (2) generation ----------------------------------------------------- */

/* Greedy tokens equal the argmax of the full forward, step after step, and
 * two runs agree. */
START_TEST(test_greedy_generation)
{
    tf_model *m = small_model(norms[_i], 0.25, SEQ, 31);
    const int B = 3, P = 4, N = 12;
    int32_t prompt[3 * 4];
    random_tokens(prompt, sizeof prompt / sizeof prompt[0], 5);
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = 0.0;
    int32_t out1[3 * 12], out2[3 * 12];
    int produced = -1;
    tf_decoder *dec;
    ck_assert_int_eq(tf_decoder_create(m, B, &dec), TF_OK);
    ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_generate(dec, N, &sp, NULL, 0, out1, &produced, NULL, NULL),
                     TF_OK);
    ck_assert_int_eq(produced, N);
    ck_assert_int_eq(tf_decoder_position(dec), P + N);
    ck_assert_int_eq(tf_decoder_reset(dec), TF_OK);
    ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_generate(dec, N, &sp, NULL, 0, out2, NULL, NULL, NULL), TF_OK);
    ck_assert(memcmp(out1, out2, sizeof out1) == 0);
    /* against the full forward */
    int32_t seqs[3 * SEQ];
    for (int b = 0; b < B; b++) {
        memcpy(seqs + b * SEQ, prompt + b * P, P * sizeof(int32_t));
        memcpy(seqs + b * SEQ + P, out1 + b * N, N * sizeof(int32_t));
    }
    float want[3 * VOCAB];
    for (int i = 0; i < N; i++) {
        reference_logits(m, B, P + i, seqs, SEQ, want);
        for (int b = 0; b < B; b++) {
            int best = 0;
            for (int v = 1; v < VOCAB; v++)
                if (want[b * VOCAB + v] > want[b * VOCAB + best])
                    best = v;
            ck_assert_msg(out1[b * N + i] == best, "seq %d token %d: %d, full forward %d", b,
                          i, out1[b * N + i], best);
        }
    }
    tf_decoder_free(dec);
    tf_model_free(m);
}
END_TEST

static void generate_with(tf_model *m, const tf_sampler_params *sp, const int32_t *prompt,
                          int B, int P, int N, int32_t *out)
{
    tf_decoder *dec;
    ck_assert_int_eq(tf_decoder_create(m, B, &dec), TF_OK);
    ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, NULL), TF_OK);
    int produced = 0;
    ck_assert_msg(tf_decoder_generate(dec, N, sp, NULL, 0, out, &produced, NULL, NULL) == TF_OK,
                  "%s", tf_decoder_errmsg(dec));
    ck_assert_int_eq(produced, N);
    tf_decoder_free(dec);
}

START_TEST(test_seeded_sampling)
{
    tf_model *m = small_model(TF_NORM_L2_NORM_GELU, 0.25, SEQ, 41);
    const int B = 2, P = 3, N = 16;
    int32_t prompt[6] = {1, 2, 3, 4, 5, 6};
    int32_t greedy[32], a[32], b[32], c[32], k1[32], p0[32];
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = 0.0;
    generate_with(m, &sp, prompt, B, P, N, greedy);
    sp.temperature = 1.5;
    sp.seed = 7;
    generate_with(m, &sp, prompt, B, P, N, a);
    generate_with(m, &sp, prompt, B, P, N, b);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    sp.seed = 8;
    generate_with(m, &sp, prompt, B, P, N, c);
    ck_assert_msg(memcmp(a, c, sizeof a) != 0, "seeds 7 and 8 gave the same 32 tokens");
    ck_assert_msg(memcmp(a, greedy, sizeof a) != 0, "temperature 1.5 sampled the greedy path");
    sp.top_k = 1;
    generate_with(m, &sp, prompt, B, P, N, k1);
    ck_assert(memcmp(k1, greedy, sizeof k1) == 0);
    sp.top_k = 0;
    sp.top_p = 1e-9;
    generate_with(m, &sp, prompt, B, P, N, p0);
    ck_assert(memcmp(p0, greedy, sizeof p0) == 0);
    sp.top_p = 0.0;
    generate_with(m, &sp, prompt, B, P, N, p0);
    ck_assert(memcmp(p0, greedy, sizeof p0) == 0);
    tf_model_free(m);
}
END_TEST

/* Frequencies of n draws; returns them in freq[V]. */
static void draw_many(const float *logits, int V, const tf_sampler_params *sp, int n,
                      double *freq)
{
    uint64_t rng = sp->seed;
    memset(freq, 0, (size_t)V * sizeof(double));
    for (int i = 0; i < n; i++) {
        int32_t id = -1;
        ck_assert_int_eq(tf_sample(logits, V, sp, &rng, &id), TF_OK);
        ck_assert(id >= 0 && id < V);
        freq[id] += 1.0 / n;
    }
}

START_TEST(test_sampler_distribution)
{
    const double probs[4] = {0.1, 0.2, 0.3, 0.4};
    float logits[4];
    for (int i = 0; i < 4; i++)
        logits[i] = (float)log(probs[i]) + 3.0f; /* any shift: softmax is shift-free */
    double f[4];
    tf_sampler_params sp = tf_sampler_default_params();
    sp.seed = 1234;
    draw_many(logits, 4, &sp, 20000, f);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(f[i] - probs[i]) < 0.02, "id %d: %g vs %g", i, f[i], probs[i]);
    /* temperature 0.5: p^2, renormalised */
    sp.temperature = 0.5;
    draw_many(logits, 4, &sp, 20000, f);
    for (int i = 0; i < 4; i++) {
        double want = probs[i] * probs[i] / 0.3;
        ck_assert_msg(fabs(f[i] - want) < 0.02, "T=0.5 id %d: %g vs %g", i, f[i], want);
    }
    /* top_k 2: ids 3 and 2 only, 4:3 */
    sp.temperature = 1.0;
    sp.top_k = 2;
    draw_many(logits, 4, &sp, 20000, f);
    ck_assert(f[0] == 0.0 && f[1] == 0.0);
    ck_assert(fabs(f[3] - 4.0 / 7.0) < 0.02);
    /* top_p: 0.39 keeps {3}; 0.5 keeps {3, 2}; 0.75 keeps {3, 2, 1} */
    sp.top_k = 0;
    sp.top_p = 0.39;
    draw_many(logits, 4, &sp, 2000, f);
    ck_assert(f[0] == 0.0 && f[1] == 0.0 && f[2] == 0.0 && f[3] > 0.0);
    sp.top_p = 0.5;
    draw_many(logits, 4, &sp, 20000, f);
    ck_assert(f[0] == 0.0 && f[1] == 0.0 && fabs(f[3] - 4.0 / 7.0) < 0.02);
    sp.top_p = 0.75;
    draw_many(logits, 4, &sp, 20000, f);
    ck_assert(f[0] == 0.0 && fabs(f[1] - 2.0 / 9.0) < 0.02 && fabs(f[3] - 4.0 / 9.0) < 0.02);
    /* top_k and top_p together: top_k 3 -> {3,2,1} of mass 0.9, then top_p
     * 0.7 of that (0.63) -> {3, 2} */
    sp.top_k = 3;
    sp.top_p = 0.7;
    draw_many(logits, 4, &sp, 5000, f);
    ck_assert(f[0] == 0.0 && f[1] == 0.0 && f[2] > 0.3);
    /* -inf is a valid logit of probability 0 */
    float masked[4] = {logits[0], -INFINITY, logits[2], -INFINITY};
    sp.top_k = 0;
    sp.top_p = 1.0;
    draw_many(masked, 4, &sp, 5000, f);
    ck_assert(f[1] == 0.0 && f[3] == 0.0 && fabs(f[0] - 0.25) < 0.03);
}
END_TEST

/* The radix selection against a brute-force sort, on vocabularies with
 * many ties: every draw lies in the kept set, and small sets are covered. */
static const float *g_logits;
static int order_cmp(const void *x, const void *y)
{
    int a = *(const int *)x, b = *(const int *)y;
    if (g_logits[a] != g_logits[b])
        return g_logits[a] > g_logits[b] ? -1 : 1;
    return a - b;
}

START_TEST(test_sampler_selection_matches_sort)
{
    const int V = 5000;
    float *logits = malloc(V * sizeof(float));
    int *order = malloc(V * sizeof(int));
    char *in = malloc(V);
    uint64_t s = 99;
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < V; i++)
            logits[i] = round & 1 ? (float)floor(unif(&s) * 8) * 0.5f  /* many ties */
                                  : (float)(gauss(&s) * 2.0);
        for (int i = 0; i < V; i++)
            order[i] = i;
        g_logits = logits;
        qsort(order, V, sizeof(int), order_cmp);
        tf_sampler_params sp = tf_sampler_default_params();
        sp.seed = 5 + (uint64_t)round;
        int kept;
        if (round < 2) {
            sp.top_k = 7;
            kept = 7;
        } else {
            sp.top_p = 0.3;
            double mx = logits[order[0]], total = 0, cum = 0;
            for (int i = 0; i < V; i++)
                total += exp(logits[i] - mx);
            for (kept = 0; kept < V;) {
                cum += exp(logits[order[kept]] - mx);
                kept++;
                if (cum >= 0.3 * total)
                    break;
            }
        }
        memset(in, 0, V);
        for (int i = 0; i < kept; i++)
            in[order[i]] = 1;
        uint64_t rng = sp.seed;
        int seen_all = 0;
        char *seen = calloc(V, 1);
        for (int i = 0; i < 4000; i++) {
            int32_t id;
            ck_assert_int_eq(tf_sample(logits, V, &sp, &rng, &id), TF_OK);
            ck_assert_msg(in[id], "round %d: id %d (logit %g) outside the kept %d", round, id,
                          (double)logits[id], kept);
            if (!seen[id]) {
                seen[id] = 1;
                seen_all++;
            }
        }
        if (kept <= 50)
            ck_assert_int_eq(seen_all, kept);
        free(seen);
    }
    free(logits);
    free(order);
    free(in);
}
END_TEST

START_TEST(test_sampler_greedy_and_errors)
{
    float tie[5] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = 0.0;
    uint64_t rng = 1;
    int32_t id = -5;
    ck_assert_int_eq(tf_sample(tie, 5, &sp, &rng, &id), TF_OK);
    ck_assert_int_eq(id, 1); /* lowest id of the tie */
    sp.temperature = 1.0;
    sp.top_k = 1;
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(tf_sample(tie, 5, &sp, &rng, &id), TF_OK);
        ck_assert_int_eq(id, 1);
    }
    /* NULL params: defaults */
    ck_assert_int_eq(tf_sample(tie, 5, NULL, &rng, &id), TF_OK);
    /* errors, out untouched */
    id = -5;
    ck_assert_int_eq(tf_sample(NULL, 5, &sp, &rng, &id), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_sample(tie, 5, &sp, NULL, &id), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_sample(tie, 5, &sp, &rng, NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_sample(tie, 0, &sp, &rng, &id), TF_ERR_ARGUMENT);
    sp.temperature = -1.0;
    ck_assert_int_eq(tf_sample(tie, 5, &sp, &rng, &id), TF_ERR_ARGUMENT);
    sp.temperature = 1.0;
    sp.top_k = -1;
    ck_assert_int_eq(tf_sample(tie, 5, &sp, &rng, &id), TF_ERR_ARGUMENT);
    sp.top_k = 0;
    float bad[3] = {0.0f, NAN, 1.0f};
    ck_assert_int_eq(tf_sample(bad, 3, &sp, &rng, &id), TF_ERR_NONFINITE);
    ck_assert(strstr(tf_last_error(), "logits[1]") != NULL);
    float none[2] = {-INFINITY, -INFINITY};
    ck_assert_int_eq(tf_sample(none, 2, &sp, &rng, &id), TF_ERR_NONFINITE);
    ck_assert_int_eq(id, -5);
    sp.struct_size = 3;
    ck_assert_int_eq(tf_sample(tie, 5, &sp, &rng, &id), TF_ERR_ARGUMENT);
}
END_TEST

struct stream {
    int calls, stop_after;
    int32_t ids[16][3];
};

static int on_token(void *user, const int32_t *ids, int batch)
{
    struct stream *s = user;
    ck_assert_int_eq(batch, 3);
    memcpy(s->ids[s->calls], ids, 3 * sizeof(int32_t));
    s->calls++;
    return s->stop_after > 0 && s->calls >= s->stop_after;
}

/* Stop ids, -1 after a stop, streaming, stopping from the callback, and
 * the seq_length bound. */
START_TEST(test_generate_stop_stream_bound)
{
    tf_model *m = small_model(TF_NORM_L2_NORM_GELU, 0.25, SEQ, 51);
    const int B = 3, P = 4, N = 12;
    int32_t prompt[12];
    random_tokens(prompt, 12, 17);
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = 0.0;
    tf_decoder *dec;
    ck_assert_int_eq(tf_decoder_create(m, B, &dec), TF_OK);
    int32_t free_run[36], out[36];
    ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_generate(dec, N, &sp, NULL, 0, free_run, NULL, NULL, NULL),
                     TF_OK);
    /* stop at what sequence 1 emits at step 2 */
    int32_t stop[2] = {VOCAB + 5, free_run[1 * N + 2]};
    int expect_produced = 0;
    int32_t expect[36];
    for (int b = 0; b < B; b++) {
        int stopped = 0, len = N;
        for (int i = 0; i < N; i++) {
            expect[b * N + i] = stopped ? -1 : free_run[b * N + i];
            if (!stopped && free_run[b * N + i] == stop[1]) {
                stopped = 1;
                len = i + 1;
            }
        }
        if (len > expect_produced)
            expect_produced = len;
    }
    struct stream st;
    memset(&st, 0, sizeof st);
    ck_assert_int_eq(tf_decoder_reset(dec), TF_OK);
    ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, NULL), TF_OK);
    int produced = -1;
    ck_assert_int_eq(tf_decoder_generate(dec, N, &sp, stop, 2, out, &produced, on_token, &st),
                     TF_OK);
    ck_assert_int_eq(produced, expect_produced);
    ck_assert_int_eq(st.calls, produced);
    ck_assert_int_eq(tf_decoder_position(dec), P + produced);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < N; i++) {
            ck_assert_msg(out[b * N + i] == expect[b * N + i], "seq %d step %d: %d vs %d", b, i,
                          out[b * N + i], expect[b * N + i]);
            if (i < produced)
                ck_assert_int_eq(st.ids[i][b], out[b * N + i]);
        }
    int first = 0;
    while (free_run[1 * N + first] != stop[1])
        first++;
    ck_assert_int_le(first, 2);
    ck_assert_int_eq(out[1 * N + first], stop[1]); /* the stop id is emitted */
    ck_assert_int_eq(out[1 * N + first + 1], -1);

    /* the callback stops generation */
    memset(&st, 0, sizeof st);
    st.stop_after = 3;
    tf_decoder_reset(dec);
    ck_assert_int_eq(tf_decoder_prefill(dec, P, prompt, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_generate(dec, N, &sp, NULL, 0, out, &produced, on_token, &st),
                     TF_OK);
    ck_assert_int_eq(produced, 3);
    ck_assert_int_eq(st.calls, 3);
    ck_assert_int_eq(out[3], -1);
    ck_assert_int_eq(out[2], free_run[2]);

    /* the context bound: 3 positions left */
    int32_t longp[3 * (SEQ - 3)];
    random_tokens(longp, sizeof longp / sizeof longp[0], 3);
    tf_decoder_reset(dec);
    ck_assert_int_eq(tf_decoder_prefill(dec, SEQ - 3, longp, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_generate(dec, N, &sp, NULL, 0, out, &produced, NULL, NULL),
                     TF_OK);
    ck_assert_int_eq(produced, 3);
    ck_assert_int_eq(tf_decoder_position(dec), SEQ);
    ck_assert(out[2] >= 0 && out[3] == -1);
    /* full: nothing more, not an error */
    ck_assert_int_eq(tf_decoder_generate(dec, N, &sp, NULL, 0, out, &produced, NULL, NULL),
                     TF_OK);
    ck_assert_int_eq(produced, 0);
    ck_assert_int_eq(out[0], -1);
    tf_decoder_free(dec);
    tf_model_free(m);
}
END_TEST

/* ---- (3) errors leave the cache unchanged -------------------------------- */

START_TEST(test_errors_change_nothing)
{
    tf_model *m = small_model(TF_NORM_L2_NORM_GELU, 0.25, SEQ, 61);
    tf_decoder *dec = (tf_decoder *)0x1, *ref;
    ck_assert_int_eq(tf_decoder_create(NULL, 1, &dec), TF_ERR_ARGUMENT);
    ck_assert_ptr_null(dec);
    ck_assert_int_eq(tf_decoder_create(m, 0, &dec), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_create(m, 4097, &dec), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_create(m, 1, NULL), TF_ERR_ARGUMENT);
    int32_t tok[2] = {1, 2};
    float lg[2 * VOCAB];
    ck_assert_int_eq(tf_decoder_prefill(NULL, 1, tok, lg), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_step(NULL, tok, lg), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_reset(NULL), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_generate(NULL, 1, NULL, NULL, 0, tok, NULL, NULL, NULL),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_position(NULL), 0);
    ck_assert_ptr_null(tf_decoder_logits(NULL));
    ck_assert_str_eq(tf_decoder_errmsg(NULL), "the decoder is NULL");
    tf_decoder_free(NULL);

    ck_assert_int_eq(tf_decoder_create(m, 2, &dec), TF_OK);
    ck_assert_int_eq(tf_decoder_create(m, 2, &ref), TF_OK);
    /* nothing to sample from yet */
    int32_t out[8];
    ck_assert_int_eq(tf_decoder_generate(dec, 4, NULL, NULL, 0, out, NULL, NULL, NULL),
                     TF_ERR_STATE);
    int32_t prompt[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ck_assert_int_eq(tf_decoder_prefill(dec, 5, prompt, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_prefill(ref, 5, prompt, NULL), TF_OK);
    float before[2 * VOCAB];
    memcpy(before, tf_decoder_logits(dec), sizeof before);

    /* T = 0, NULL tokens, an out-of-vocabulary id (the second sequence's
     * third token: index 5 + 2 = 7), past seq_length */
    ck_assert_int_eq(tf_decoder_prefill(dec, 0, prompt, lg), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_prefill(dec, 2, NULL, lg), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_step(dec, NULL, lg), TF_ERR_ARGUMENT);
    int32_t bad[10] = {1, 2, 3, 4, 5, 6, 7, VOCAB, 9, 10};
    ck_assert_int_eq(tf_decoder_prefill(dec, 5, bad, lg), TF_ERR_RANGE);
    ck_assert_msg(strstr(tf_decoder_errmsg(dec), "tokens[7]") != NULL, "%s",
                  tf_decoder_errmsg(dec));
    ck_assert_str_eq(tf_last_error(), tf_decoder_errmsg(dec));
    int32_t neg[2] = {3, -1};
    ck_assert_int_eq(tf_decoder_step(dec, neg, lg), TF_ERR_RANGE);
    int32_t *many = calloc(2 * SEQ, sizeof(int32_t));
    ck_assert_int_eq(tf_decoder_prefill(dec, SEQ - 4, many, lg), TF_ERR_RANGE);
    ck_assert_msg(strstr(tf_decoder_errmsg(dec), "context full: position 5 + 20 > seq_length 24"),
                  "%s", tf_decoder_errmsg(dec));
    int32_t stop[1] = {0};
    ck_assert_int_eq(tf_decoder_generate(dec, -1, NULL, NULL, 0, out, NULL, NULL, NULL),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_generate(dec, 4, NULL, NULL, 0, NULL, NULL, NULL, NULL),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_generate(dec, 4, NULL, NULL, 1, out, NULL, NULL, NULL),
                     TF_ERR_ARGUMENT);
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = -2.0;
    ck_assert_int_eq(tf_decoder_generate(dec, 4, &sp, stop, 1, out, NULL, NULL, NULL),
                     TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_decoder_position(dec), 5);
    ck_assert(memcmp(before, tf_decoder_logits(dec), sizeof before) == 0);
    /* and the cache is intact: the next step matches an untouched decoder */
    float a[2 * VOCAB], b[2 * VOCAB];
    int32_t next[2] = {11, 12};
    ck_assert_int_eq(tf_decoder_step(dec, next, a), TF_OK);
    ck_assert_int_eq(tf_decoder_step(ref, next, b), TF_OK);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    /* the decoder fills the context exactly, then refuses one more */
    ck_assert_int_eq(tf_decoder_prefill(dec, SEQ - 6, many, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_step(dec, next, NULL), TF_ERR_RANGE);
    ck_assert_msg(strstr(tf_decoder_errmsg(dec), "context full: position 24 + 1 > seq_length 24"),
                  "%s", tf_decoder_errmsg(dec));
    free(many);
    tf_decoder_free(dec);
    tf_decoder_free(ref);
    tf_model_free(m);
}
END_TEST

/* ---- (4) growth while serving ------------------------------------------- */

START_TEST(test_growth_while_serving)
{
    tf_model *m = small_model(TF_NORM_L2_NORM_GELU, 0.25, SEQ, 71);
    const int B = 2, P = 5, N = 8;
    int32_t prompt[10];
    random_tokens(prompt, 10, 23);
    tf_sampler_params sp = tf_sampler_default_params();
    sp.temperature = 0.0;
    tf_decoder *a, *b;
    ck_assert_int_eq(tf_decoder_create(m, B, &a), TF_OK);
    ck_assert_int_eq(tf_decoder_create(m, B, &b), TF_OK);
    ck_assert_int_eq(tf_decoder_prefill(a, P, prompt, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_prefill(b, P, prompt, NULL), TF_OK);
    int32_t ta[16], tb[16];
    ck_assert_int_eq(tf_decoder_generate(a, N, &sp, NULL, 0, ta, NULL, NULL, NULL), TF_OK);
    float la[2 * VOCAB];
    memcpy(la, tf_decoder_logits(a), sizeof la);
    int64_t n_before = tf_model_num_params(m);
    tf_grow_params g = tf_grow_default_params();
    ck_assert_int_eq(g.key_init, TF_KEYS_ZERO);
    ck_assert_int_eq(g.scale_policy, TF_SCALE_PINNED);
    ck_assert_msg(tf_model_grow(m, NULL, 48, 36, 88, &g) == TF_OK, "%s", tf_last_error());
    ck_assert(tf_model_num_params(m) > n_before);
    ck_assert_int_eq(tf_decoder_generate(b, N, &sp, NULL, 0, tb, NULL, NULL, NULL), TF_OK);
    ck_assert(memcmp(ta, tb, sizeof ta) == 0);
    /* zero keys and pinned tau: the very same numbers */
    ck_assert(memcmp(la, tf_decoder_logits(b), sizeof la) == 0);
    /* a prefill through the grown model (the GEMM path) agrees closely */
    tf_decoder_reset(a);
    ck_assert_int_eq(tf_decoder_prefill(a, P, prompt, NULL), TF_OK);
    ck_assert_int_eq(tf_decoder_generate(a, N, &sp, NULL, 0, ta, NULL, NULL, NULL), TF_OK);
    ck_assert(memcmp(ta, tb, sizeof ta) == 0);
    tf_decoder_free(a);
    tf_decoder_free(b);
    tf_model_free(m);
}
END_TEST

/* Decoding does not disturb what a training backward needs: forward with
 * targets, decode, backward gives the gradients of a plain forward/backward. */
START_TEST(test_training_state_survives_decoding)
{
    tf_model *m = small_model(TF_NORM_L2_NORM_GELU, 0.25, SEQ, 81);
    int32_t tokens[2 * 8], targets[2 * 8];
    random_tokens(tokens, 16, 1);
    random_tokens(targets, 16, 2);
    const char *name = "layers.0.attention.query.key_param_tokens";
    int64_t shape[2];
    int ndim;
    ck_assert_int_eq(tf_model_tensor_shape(m, name, shape, &ndim), TF_OK);
    size_t count = (size_t)(shape[0] * shape[1]);
    float *g1 = malloc(count * sizeof(float)), *g2 = malloc(count * sizeof(float));
    tf_model_zero_grad(m);
    ck_assert_int_eq(tf_model_forward(m, 2, 8, tokens, targets, NULL, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    tf_model_get_grad(m, name, g1, count);
    tf_model_zero_grad(m);
    ck_assert_int_eq(tf_model_forward(m, 2, 8, tokens, targets, NULL, NULL), TF_OK);
    tf_decoder *dec;
    ck_assert_int_eq(tf_decoder_create(m, 2, &dec), TF_OK); /* 2 x 8 rows, as the forward */
    ck_assert_int_eq(tf_decoder_prefill(dec, 8, tokens, NULL), TF_OK);
    int32_t step[2] = {1, 2};
    ck_assert_int_eq(tf_decoder_step(dec, step, NULL), TF_OK);
    ck_assert_int_eq(tf_model_backward(m), TF_OK);
    tf_model_get_grad(m, name, g2, count);
    ck_assert(memcmp(g1, g2, count * sizeof(float)) == 0);
    tf_decoder_free(dec);
    free(g1);
    free(g2);
    tf_model_free(m);
}
END_TEST

/* ---- (5) byte tokenizer -------------------------------------------------- */

START_TEST(test_byte_tokenizer)
{
    const char text[] = "h\xc3\xa9llo\0\xff!";
    const size_t len = sizeof text - 1; /* 9 bytes, one of them NUL */
    int32_t ids[16];
    size_t count = 0;
    ck_assert_int_eq(tf_bytes_to_tokens(text, len, ids, 16, &count), TF_OK);
    ck_assert_uint_eq(count, len);
    ck_assert_int_eq(ids[1], 0xc3);
    ck_assert_int_eq(ids[6], 0);
    ck_assert_int_eq(ids[7], 255);
    char back[16];
    memset(back, 'x', sizeof back);
    ck_assert_int_eq(tf_tokens_to_bytes(ids, count, back, sizeof back), TF_OK);
    ck_assert(memcmp(back, text, len) == 0);
    ck_assert_int_eq(back[len], '\0'); /* terminated when there is room */
    ck_assert_int_eq(tf_tokens_to_bytes(ids, count, back, len), TF_OK); /* exact fit */
    ck_assert(memcmp(back, text, len) == 0);
    /* empty */
    ck_assert_int_eq(tf_bytes_to_tokens("", 0, NULL, 0, &count), TF_OK);
    ck_assert_uint_eq(count, 0);
    /* errors */
    count = 77;
    ck_assert_int_eq(tf_bytes_to_tokens(text, len, ids, len - 1, &count), TF_ERR_SHAPE);
    ck_assert_uint_eq(count, 77);
    ck_assert_int_eq(tf_bytes_to_tokens(NULL, 3, ids, 16, &count), TF_ERR_ARGUMENT);
    ck_assert_int_eq(tf_tokens_to_bytes(ids, count > 9 ? 9 : count, back, 8), TF_ERR_SHAPE);
    int32_t bad[3] = {65, 256, 66};
    memset(back, 'x', sizeof back);
    ck_assert_int_eq(tf_tokens_to_bytes(bad, 3, back, 16), TF_ERR_RANGE);
    ck_assert(strstr(tf_last_error(), "ids[1]") != NULL);
    ck_assert_int_eq(back[0], 'x'); /* nothing written */
    bad[1] = -1;
    ck_assert_int_eq(tf_tokens_to_bytes(bad, 3, back, 16), TF_ERR_RANGE);
    ck_assert_int_eq(tf_tokens_to_bytes(NULL, 2, back, 16), TF_ERR_ARGUMENT);
}
END_TEST

/* ---- scoring ------------------------------------------------------------- */

/* tf_decoder_score's nll is the forward's loss times the positions, over
 * several chunks and batch rows; scoring in two calls continues the
 * cache; the last position's logits are prefill's; bad targets change
 * nothing. */
START_TEST(test_score_matches_forward_loss)
{
    const int S = 150;
    tf_model *m = small_model(TF_NORM_L2_NORM_GELU, 0.25, S, 11);
    for (int B = 1; B <= 3; B += 2) {
        const size_t n = (size_t)B * S;
        int32_t *tokens = malloc(n * sizeof(int32_t)), *targets = malloc(n * sizeof(int32_t));
        random_tokens(tokens, n, 21 + (uint64_t)B);
        random_tokens(targets, n, 31 + (uint64_t)B);
        float loss;
        ck_assert_int_eq(tf_model_forward(m, B, S, tokens, targets, NULL, &loss), TF_OK);
        tf_decoder *dec, *ref;
        ck_assert_int_eq(tf_decoder_create(m, B, &dec), TF_OK);
        ck_assert_int_eq(tf_decoder_create(m, B, &ref), TF_OK);
        double nll = -1.0;
        ck_assert_int_eq(tf_decoder_score(dec, S, tokens, targets, &nll), TF_OK);
        const double mean = nll / (double)n;
        ck_assert_msg(fabs(mean - loss) <= 1e-5 * loss, "B=%d: %.9g vs %.9g", B, mean,
                      (double)loss);
        ck_assert_int_eq(tf_decoder_position(dec), S);
        float want[3 * VOCAB];
        ck_assert_int_eq(tf_decoder_prefill(ref, S, tokens, want), TF_OK);
        ck_assert(memcmp(tf_decoder_logits(dec), want, (size_t)B * VOCAB * sizeof(float)) == 0);
        /* two calls: 100 positions, then the other 50 after them */
        const int P = 100;
        int32_t *t1 = malloc(n * sizeof(int32_t)), *g1 = malloc(n * sizeof(int32_t));
        int32_t *t2 = malloc(n * sizeof(int32_t)), *g2 = malloc(n * sizeof(int32_t));
        for (int b = 0; b < B; b++) {
            memcpy(t1 + b * P, tokens + b * S, P * sizeof(int32_t));
            memcpy(g1 + b * P, targets + b * S, P * sizeof(int32_t));
            memcpy(t2 + b * (S - P), tokens + b * S + P, (S - P) * sizeof(int32_t));
            memcpy(g2 + b * (S - P), targets + b * S + P, (S - P) * sizeof(int32_t));
        }
        double a, c;
        ck_assert_int_eq(tf_decoder_reset(dec), TF_OK);
        ck_assert_int_eq(tf_decoder_score(dec, P, t1, g1, &a), TF_OK);
        /* a target outside the vocabulary: refused, the cache as it was */
        g2[n - (size_t)B * P - 1] = VOCAB;
        ck_assert_int_eq(tf_decoder_score(dec, S - P, t2, g2, &c), TF_ERR_RANGE);
        ck_assert_ptr_nonnull(strstr(tf_decoder_errmsg(dec), "targets["));
        ck_assert_int_eq(tf_decoder_position(dec), P);
        ck_assert_int_eq(tf_decoder_score(dec, S - P, t2, NULL, &c), TF_ERR_ARGUMENT);
        g2[n - (size_t)B * P - 1] = targets[n - 1];
        ck_assert_int_eq(tf_decoder_score(dec, S - P, t2, g2, &c), TF_OK);
        ck_assert_msg(fabs((a + c) - nll) <= 1e-6 * nll, "%.9g + %.9g vs %.9g", a, c, nll);
        tf_decoder_free(dec);
        tf_decoder_free(ref);
        free(t1);
        free(t2);
        free(g1);
        free(g2);
        free(tokens);
        free(targets);
    }
    tf_model_free(m);
}
END_TEST

/* The official sampling settings (0 = off) as library params. */
START_TEST(test_sampler_params_official)
{
    static const struct {
        double t;
        int32_t k;
        double p, want_t, want_p;
    } map[] = {
        {0.0, 0, 0.0, 0.0, 1.0},  /* greedy */
        {0.0, 5, 0.0, 1.0, 1.0},  /* sampling without a temperature */
        {0.0, 0, 0.9, 1.0, 0.9},
        {0.7, 0, 0.0, 0.7, 1.0},  /* pure sampling at 0.7 */
        {1.0, 40, 1.0, 1.0, 1.0},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        tf_sampler_params p = tf_sampler_default_params();
        p.seed = 99;
        ck_assert_int_eq(tf_sampler_params_official(&p, map[i].t, map[i].k, map[i].p), TF_OK);
        ck_assert(p.temperature == map[i].want_t && p.top_k == map[i].k &&
                  p.top_p == map[i].want_p && p.seed == 99);
    }
    /* the nucleus of 0.5 around a token of mass > 0.5 is that token */
    const float logits[4] = {0.0f, 3.0f, 1.0f, 0.5f};
    tf_sampler_params p = tf_sampler_default_params();
    ck_assert_int_eq(tf_sampler_params_official(&p, 0.0, 0, 0.5), TF_OK);
    uint64_t rng = 5;
    for (int i = 0; i < 50; i++) {
        int32_t id;
        ck_assert_int_eq(tf_sample(logits, 4, &p, &rng, &id), TF_OK);
        ck_assert_int_eq(id, 1);
    }
    static const double bad[][3] = {{0, 0, 1.5}, {0, 0, -0.1}, {0, 0, NAN}, {-1, 0, 0},
                                    {INFINITY, 0, 0}, {0, -1, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tf_sampler_params q = tf_sampler_default_params(), before = q;
        ck_assert_int_eq(tf_sampler_params_official(&q, bad[i][0], (int32_t)bad[i][1],
                                                    bad[i][2]),
                         TF_ERR_ARGUMENT);
        ck_assert(memcmp(&q, &before, sizeof q) == 0);
    }
    ck_assert_ptr_nonnull(strstr(tf_last_error(), "top_k"));
    ck_assert_int_eq(tf_sampler_params_official(NULL, 1, 0, 0), TF_ERR_ARGUMENT);
    p.struct_size = offsetof(tf_sampler_params, top_k) + sizeof p.top_k;
    ck_assert_int_eq(tf_sampler_params_official(&p, 1, 0, 0), TF_ERR_ARGUMENT);
}
END_TEST

#define ADD(fn, loops)                                                         \
    do {                                                                       \
        TCase *tc = tcase_create(#fn + 5);                                     \
        tcase_set_timeout(tc, 120);                                            \
        if (loops)                                                             \
            tcase_add_loop_test(tc, fn, 0, loops);                             \
        else                                                                   \
            tcase_add_test(tc, fn);                                            \
        suite_add_tcase(s, tc);                                                \
    } while (0)

Suite *decode_suite(void)
{
    Suite *s = suite_create("decode");
    ADD(test_incremental_matches_full_forward, 6);
    ADD(test_prefill_one_call_vs_token_by_token, 4);
    ADD(test_long_prefill_in_chunks, 0);
    ADD(test_logits_near_the_forwards, 3);
    ADD(test_greedy_generation, 2);
    ADD(test_seeded_sampling, 0);
    ADD(test_sampler_distribution, 0);
    ADD(test_sampler_selection_matches_sort, 0);
    ADD(test_sampler_greedy_and_errors, 0);
    ADD(test_generate_stop_stream_bound, 0);
    ADD(test_errors_change_nothing, 0);
    ADD(test_growth_while_serving, 0);
    ADD(test_training_state_survives_decoding, 0);
    ADD(test_byte_tokenizer, 0);
    ADD(test_score_matches_forward_loss, 0);
    ADD(test_sampler_params_official, 0);
    return s;
}
