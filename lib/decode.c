/*
 * decode.c -- incremental decoding with a key/value cache.
 *
 * A decoder borrows a model and owns, for its `batch` sequences:
 *   - the cache: k (after rotary) and v of every layer and cached position,
 *     [L][batch][seq_length][d] each;
 *   - workspaces for one chunk of at most `chunk` positions per sequence
 *     (rows = batch * chunk), allocated at create.  A longer prefill runs in
 *     chunks, so memory stays bounded whatever T;
 *   - Pattention scratch (scores, Theta, row scales, transposed keys) and
 *     attention scratch, grow-only: sized at create and grown only when the
 *     model grew or the thread count rose.  A step allocates nothing in the
 *     steady state.
 *
 * Each layer runs tfi_layer_forward, the routine the training forward runs
 * (layer.c), on the chunk's rows at positions pos .. pos+Tc-1, with
 * attention reading the cache; the output head is tfi_model_head on the
 * last position of each sequence.  So decoding repeats the forward's
 * arithmetic row for row.  A step multiplies one row per sequence where
 * the forward multiplies all of them; below TFI_FEW_ROWS (64) rows the
 * products go through kernels that sum each output in one order whatever
 * the row count (kernels/fewrows.c), so whenever the forward of the same
 * tokens has fewer than 64 rows the logits are the forward's bit for bit.
 * From 64 rows on the forward's products go to BLIS, which orders its sums
 * by the product's shape, and the two differ by the rounding of those
 * products (test_decode.c holds both at one thread).
 *
 * A model with bfloat16 weights (model_bf16.c) runs the same way: its sets
 * and its head multiply through kernels/bf16.c, which also sums each
 * output in one order whatever the row count, so below 64 rows its
 * decoder's logits are its own forward's bit for bit too; from 64 rows on
 * each set is widened into the scratch t and multiplied by BLIS.
 *
 * The Pattention intermediates go to the decoder's scratch: the sets'
 * workspaces (what their backward needs) are never touched, so a training
 * forward/backward pair of the model stays valid across decoding.  Every
 * set is read through the model at every call, never kept, so a model
 * grown in place keeps serving.
 *
 * Scoring (tf_decoder_score) also takes every row of each chunk through the
 * output head, SCORE_ROWS rows of logits at a time, into a sum of
 * cross-entropies: evaluation in memory bounded whatever T.
 */
#include <string.h>

#include "kernels/ops.h"
#include "layer.h"
#include "model.h"

/* Positions per chunk at most (the attention's row block, so that a long
 * prefill's chunks multiply the blocks of the whole forward), and rows
 * (batch * positions) aimed at. */
#define CHUNK_MAX 64
#define CHUNK_ROWS 512

struct tf_decoder {
    tfi_errbuf err;
    tf_model *model;           /* borrowed */
    int batch, chunk;
    int64_t L, d, H, hd, V, S; /* fixed shapes of the model */
    int64_t pos;               /* cached positions */
    float *kcache, *vcache;    /* [L][batch][S][d] */
    /* chunk workspaces, [rows, d] */
    float *x, *u, *q, *k, *v, *att;
    float *mean, *rstd;        /* LayerNorm statistics, [rows] */
    float *xlast, *lnf;        /* [batch, d] */
    float *logits;             /* [batch, V] */
    int have_logits;
    /* grow-only scratch */
    float *pa, *ps, *pr, *pt;  /* Pattention: [rows, n_max] x2, [rows], [n_max, d] */
    size_t cap_pa, cap_ps, cap_pr, cap_pt;
    float *scr;                /* attention probabilities: threads * chunk * W(S) */
    size_t cap_scr;
    /* generate */
    int32_t *gen_feed, *gen_ids;
    unsigned char *gen_live;
    /* score: logits and log-sum-exp of SCORE_ROWS rows, their targets
     * (allocated by the first tf_decoder_score) */
    float *slogits, *slse;
    int32_t *stargets;
};

static void release(tf_decoder *dec)
{
    float **bufs[] = {&dec->kcache, &dec->vcache, &dec->x, &dec->u, &dec->q, &dec->k,
                      &dec->v, &dec->att, &dec->mean, &dec->rstd, &dec->xlast,
                      &dec->lnf, &dec->logits, &dec->pa, &dec->ps, &dec->pr, &dec->pt,
                      &dec->scr, &dec->slogits, &dec->slse};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        tfi_free(*bufs[i]);
        *bufs[i] = NULL;
    }
    tfi_free(dec->gen_feed);
    tfi_free(dec->gen_ids);
    tfi_free(dec->gen_live);
    tfi_free(dec->stargets);
    dec->stargets = NULL;
}

/* Grows the scratch for a chunk of `rows` rows if the model grew or the
 * thread count rose; changes nothing on failure. */
static tf_status reserve_scratch(tf_decoder *dec, const char *fn)
{
    tf_model *m = dec->model;
    const size_t rows = (size_t)dec->batch * (size_t)dec->chunk;
    int64_t nmax = 1;
    for (int64_t i = 0; i < dec->L * TFI_SETS_PER_LAYER; i++)
        if (m->sets[i].n > nmax)
            nmax = m->sets[i].n;
    size_t rn = tfi_mul_size(rows, (size_t)nmax);
    size_t nd = tfi_mul_size((size_t)nmax, (size_t)dec->d);
    size_t sc = tfi_mul_size(tfi_mul_size((size_t)tfi_num_threads(), (size_t)dec->chunk),
                             (size_t)tfi_attn_probs_width(dec->S));
    if (rn == 0 || nd == 0 || sc == 0 || tfi_reserve(&dec->pa, &dec->cap_pa, rn) != TF_OK ||
        tfi_reserve(&dec->ps, &dec->cap_ps, rn) != TF_OK ||
        tfi_reserve(&dec->pr, &dec->cap_pr, rows) != TF_OK ||
        tfi_reserve(&dec->pt, &dec->cap_pt, nd) != TF_OK ||
        tfi_reserve(&dec->scr, &dec->cap_scr, sc) != TF_OK)
        return tfi_fail(&dec->err, TF_ERR_NOMEM,
                        "%s: out of memory for the decoder's scratch (%zu rows, n=%lld)", fn,
                        rows, (long long)nmax);
    return TF_OK;
}

TF_API tf_status tf_decoder_create(tf_model *model, int batch, tf_decoder **out)
{
    if (!out)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_decoder_create: out is NULL");
    *out = NULL;
    if (!model)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_decoder_create: the model is NULL");
    if (batch < 1 || batch > 4096)
        return tfi_fail(NULL, TF_ERR_ARGUMENT,
                        "tf_decoder_create: batch must be in [1, 4096] (got %d)", batch);
    tf_status st = tfi_model_need_language(model, "tf_decoder_create");
    if (st != TF_OK)
        return tfi_fail(NULL, st, "%s", model->err.msg);
    if ((st = tfi_runtime_ensure()) != TF_OK)
        return st;
    tf_decoder *dec = tfi_calloc(1, sizeof *dec);
    if (!dec)
        return tfi_fail(NULL, TF_ERR_NOMEM, "tf_decoder_create: out of memory");
    const tf_model_params *p = &model->p;
    dec->model = model;
    dec->batch = batch;
    dec->L = p->num_layers;
    dec->d = p->hidden_size;
    dec->H = p->num_attention_heads;
    dec->hd = model->head_dim;
    dec->V = p->vocab_size;
    dec->S = p->seq_length;
    int chunk = CHUNK_ROWS / batch;
    chunk = chunk < 1 ? 1 : chunk > CHUNK_MAX ? CHUNK_MAX : chunk;
    if (chunk > dec->S)
        chunk = (int)dec->S;
    dec->chunk = chunk;

    const size_t d = (size_t)dec->d, rows = (size_t)batch * (size_t)chunk;
    size_t cache = tfi_mul_size(tfi_mul_size(tfi_mul_size((size_t)dec->L, (size_t)batch),
                                             (size_t)dec->S), d);
    size_t row_d = rows * d, logits = tfi_mul_size((size_t)batch, (size_t)dec->V);
    int ok = cache != 0 && logits != 0;
    if (ok) {
        /* not zeroed: attention reads only the positions written before it,
         * and untouched pages cost no memory, so a decoder uses about the
         * positions it fills, not seq_length's */
        dec->kcache = tfi_alloc(tfi_mul_size(cache, sizeof(float)));
        dec->vcache = tfi_alloc(tfi_mul_size(cache, sizeof(float)));
        float **rowbufs[] = {&dec->x, &dec->u, &dec->q, &dec->k, &dec->v, &dec->att};
        for (size_t i = 0; i < sizeof rowbufs / sizeof rowbufs[0]; i++)
            *rowbufs[i] = tfi_calloc(row_d, sizeof(float));
        dec->mean = tfi_calloc(rows, sizeof(float));
        dec->rstd = tfi_calloc(rows, sizeof(float));
        dec->xlast = tfi_calloc((size_t)batch * d, sizeof(float));
        dec->lnf = tfi_calloc((size_t)batch * d, sizeof(float));
        dec->logits = tfi_calloc(logits, sizeof(float));
        dec->gen_feed = tfi_calloc((size_t)batch, sizeof(int32_t));
        dec->gen_ids = tfi_calloc((size_t)batch, sizeof(int32_t));
        dec->gen_live = tfi_calloc((size_t)batch, 1);
        ok = dec->kcache && dec->vcache && dec->x && dec->u && dec->q && dec->k && dec->v &&
             dec->att && dec->mean && dec->rstd && dec->xlast && dec->lnf && dec->logits &&
             dec->gen_feed && dec->gen_ids && dec->gen_live;
    }
    if (!ok || reserve_scratch(dec, "tf_decoder_create") != TF_OK) {
        release(dec);
        tfi_free(dec);
        return tfi_fail(NULL, TF_ERR_NOMEM,
                        "tf_decoder_create: out of memory for a cache of batch %d x %lld "
                        "positions x %lld layers (%zu MB)", batch, (long long)p->seq_length,
                        (long long)p->num_layers, cache ? cache * 8 >> 20 : (size_t)0);
    }
    *out = dec;
    return TF_OK;
}

TF_API void tf_decoder_free(tf_decoder *dec)
{
    if (!dec)
        return;
    release(dec);
    tfi_free(dec);
}

TF_API const char *tf_decoder_errmsg(const tf_decoder *dec)
{
    return dec ? dec->err.msg : "the decoder is NULL";
}

TF_API tf_status tf_decoder_reset(tf_decoder *dec)
{
    if (!dec)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_decoder_reset: the decoder is NULL");
    dec->pos = 0;
    dec->have_logits = 0;
    return TF_OK;
}

TF_API int64_t tf_decoder_position(const tf_decoder *dec)
{
    return dec ? dec->pos : 0;
}

TF_API const float *tf_decoder_logits(const tf_decoder *dec)
{
    return dec && dec->have_logits ? dec->logits : NULL;
}

/* ---- the forward of new positions -------------------------------------- */

/* Runs Tc positions per sequence (tokens of sequence b at tok + b*ld) at
 * positions pos .. pos+Tc-1; everything validated and reserved. */
static void run_chunk(tf_decoder *dec, int Tc, const int32_t *tok, int64_t ld)
{
    tf_model *m = dec->model;
    const int64_t B = dec->batch, d = dec->d, S = dec->S;
    for (int64_t b = 0; b < B; b++)
        tfi_model_embed_rows(m, tok + b * ld, (size_t)Tc, dec->x + b * Tc * d);
    const tfi_layer_spec spec = tfi_model_layer_spec(m);
    /* the residual stream stays in x; both LayerNorms share u */
    tfi_layer_acts a = {.x_in = dec->x, .ln1 = dec->u, .ln1_mean = dec->mean,
                        .ln1_rstd = dec->rstd, .q = dec->q, .k = dec->k, .v = dec->v,
                        .probs = dec->scr, .attn = dec->att, .x_mid = dec->x, .ln2 = dec->u,
                        .ln2_mean = dec->mean, .ln2_rstd = dec->rstd};
    /* the scratch holds the probabilities of cap_scr / (chunk * W(S)) threads */
    const tfi_layer_scratch scratch = {
        {dec->pa, dec->ps, dec->pr, dec->pt},
        (int)(dec->cap_scr / ((size_t)dec->chunk * (size_t)tfi_attn_probs_width(S)))};
    for (int64_t l = 0; l < dec->L; l++) {
        const size_t at = (size_t)(l * B) * (size_t)(S * d);
        const tfi_kv_cache kv = {dec->kcache + at, dec->vcache + at, S};
        tfi_layer_forward(&m->sets[l * TFI_SETS_PER_LAYER], &spec, B, Tc, dec->pos, &a, dec->x,
                          &kv, &scratch);
    }
    dec->pos += Tc;
}

/* logits [B, V] of the last row of each sequence in the last chunk (Tc). */
static void final_logits(tf_decoder *dec, int Tc)
{
    const int64_t B = dec->batch, d = dec->d;
    for (int64_t b = 0; b < B; b++)
        memcpy(dec->xlast + b * d, dec->x + (b * Tc + Tc - 1) * d, (size_t)d * sizeof(float));
    tfi_model_head(dec->model, B, dec->xlast, dec->lnf, dec->mean, dec->rstd, dec->logits);
    dec->have_logits = 1;
}

/* Rows whose logits exist at once while scoring: [SCORE_ROWS, V] floats
 * (13 MB for V = 50304). */
#define SCORE_ROWS 64

/* The cross-entropy of the R rows of the last chunk (Tc positions per
 * sequence, row b * Tc + t) against targets (row stride ld), summed. */
static double score_chunk(tf_decoder *dec, int Tc, const int32_t *targets, int64_t ld)
{
    const int64_t d = dec->d, V = dec->V, R = dec->batch * (int64_t)Tc;
    double total = 0.0;
    for (int64_t r0 = 0; r0 < R; r0 += SCORE_ROWS) {
        const int64_t n = R - r0 < SCORE_ROWS ? R - r0 : SCORE_ROWS;
        for (int64_t i = 0; i < n; i++)
            dec->stargets[i] = targets[(r0 + i) / Tc * ld + (r0 + i) % Tc];
        tfi_model_head(dec->model, n, dec->x + r0 * d, dec->u + r0 * d, dec->mean + r0,
                       dec->rstd + r0, dec->slogits);
        total += tfi_crossentropy_forward(dec->slogits, dec->stargets, n, V, 0.0f, dec->slse) *
                 (double)n;
    }
    return total;
}

/* TF_ERR_RANGE naming the first of ids[0, count) outside the vocabulary. */
static tf_status check_ids(tf_decoder *dec, const char *fn, const char *what,
                           const int32_t *ids, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (ids[i] < 0 || ids[i] >= dec->V)
            return tfi_fail(&dec->err, TF_ERR_RANGE,
                            "%s: %s[%zu] = %d is outside the vocabulary [0, %lld)", fn, what, i,
                            ids[i], (long long)dec->V);
    return TF_OK;
}

/* Validates a call of T tokens per sequence (row stride T) and reserves. */
static tf_status check_call(tf_decoder *dec, const char *fn, int T, const int32_t *tokens)
{
    if (!tokens)
        return tfi_fail(&dec->err, TF_ERR_ARGUMENT, "%s: tokens is NULL", fn);
    if (T < 1)
        return tfi_fail(&dec->err, TF_ERR_ARGUMENT, "%s: T must be >= 1 (got %d)", fn, T);
    if (dec->pos + T > dec->S)
        return tfi_fail(&dec->err, TF_ERR_RANGE,
                        "%s: context full: position %lld + %d > seq_length %lld", fn,
                        (long long)dec->pos, T, (long long)dec->S);
    tf_status st = check_ids(dec, fn, "tokens", tokens, (size_t)dec->batch * (size_t)T);
    return st == TF_OK ? reserve_scratch(dec, fn) : st;
}

/* Runs T tokens per sequence through the cache in chunks, then the last
 * position's logits; with targets (tf_decoder_score) each chunk's rows are
 * scored on the way, and the summed cross-entropy returned. */
static double forward_tokens(tf_decoder *dec, int T, const int32_t *tokens,
                             const int32_t *targets)
{
    int done = 0, last = 0;
    double nll = 0.0;
    while (done < T) {
        last = T - done < dec->chunk ? T - done : dec->chunk;
        run_chunk(dec, last, tokens + done, T);
        if (targets)
            nll += score_chunk(dec, last, targets + done, T);
        done += last;
    }
    final_logits(dec, last);
    return nll;
}

TF_API tf_status tf_decoder_prefill(tf_decoder *dec, int T, const int32_t *tokens,
                                    float *logits)
{
    if (!dec)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_decoder_prefill: the decoder is NULL");
    tf_status st = check_call(dec, "tf_decoder_prefill", T, tokens);
    if (st != TF_OK)
        return st;
    forward_tokens(dec, T, tokens, NULL);
    if (logits)
        memcpy(logits, dec->logits, (size_t)dec->batch * (size_t)dec->V * sizeof(float));
    return TF_OK;
}

TF_API tf_status tf_decoder_step(tf_decoder *dec, const int32_t *tokens, float *logits)
{
    if (!dec)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_decoder_step: the decoder is NULL");
    tf_status st = check_call(dec, "tf_decoder_step", 1, tokens);
    if (st != TF_OK)
        return st;
    forward_tokens(dec, 1, tokens, NULL);
    if (logits)
        memcpy(logits, dec->logits, (size_t)dec->batch * (size_t)dec->V * sizeof(float));
    return TF_OK;
}

/* ---- scoring ---------------------------------------------------------- */

TF_API tf_status tf_decoder_score(tf_decoder *dec, int T, const int32_t *tokens,
                                  const int32_t *targets, double *nll)
{
    static const char fn[] = "tf_decoder_score";
    if (!dec)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the decoder is NULL", fn);
    if (!targets)
        return tfi_fail(&dec->err, TF_ERR_ARGUMENT, "%s: targets is NULL", fn);
    tf_status st = check_call(dec, fn, T, tokens);
    if (st == TF_OK)
        st = check_ids(dec, fn, "targets", targets, (size_t)dec->batch * (size_t)T);
    if (st != TF_OK)
        return st;
    if (!dec->slogits) {
        dec->slogits = tfi_alloc(tfi_mul_size((size_t)SCORE_ROWS * sizeof(float), (size_t)dec->V));
        dec->slse = tfi_alloc(SCORE_ROWS * sizeof(float));
        dec->stargets = tfi_alloc(SCORE_ROWS * sizeof(int32_t));
        if (!dec->slogits || !dec->slse || !dec->stargets) {
            tfi_free(dec->slogits);
            tfi_free(dec->slse);
            tfi_free(dec->stargets);
            dec->slogits = dec->slse = NULL;
            dec->stargets = NULL;
            return tfi_fail(&dec->err, TF_ERR_NOMEM, "%s: out of memory for the logits of %d "
                            "rows", fn, SCORE_ROWS);
        }
    }
    const double total = forward_tokens(dec, T, tokens, targets);
    if (nll)
        *nll = total;
    return TF_OK;
}

/* ---- generation ------------------------------------------------------- */

TF_API tf_status tf_decoder_generate(tf_decoder *dec, int max_new, const tf_sampler_params *params,
                                     const int32_t *stop_ids, int n_stop, int32_t *out,
                                     int *produced, tf_token_callback on_token, void *user)
{
    static const char fn[] = "tf_decoder_generate";
    if (!dec)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the decoder is NULL", fn);
    if (max_new < 0)
        return tfi_fail(&dec->err, TF_ERR_ARGUMENT, "%s: max_new must be >= 0 (got %d)", fn,
                        max_new);
    if (max_new > 0 && !out)
        return tfi_fail(&dec->err, TF_ERR_ARGUMENT, "%s: out is NULL", fn);
    if (n_stop < 0 || (n_stop > 0 && !stop_ids))
        return tfi_fail(&dec->err, TF_ERR_ARGUMENT,
                        "%s: n_stop must be >= 0 and stop_ids not NULL when n_stop > 0", fn);
    if (!dec->have_logits)
        return tfi_fail(&dec->err, TF_ERR_STATE,
                        "%s: no logits to sample from: prefill a prompt first", fn);
    tf_sampler_params sp = tf_sampler_default_params();
    tf_status pst = tfi_params_in(&sp, sizeof sp, params,
                                  TFI_PARAMS_MIN(tf_sampler_params, temperature), fn,
                                  "tf_sampler_params", &dec->err);
    if (pst != TF_OK)
        return pst;
    /* check the sampler params once, on a dummy distribution */
    {
        float one = 0.0f;
        uint64_t s = 0;
        int32_t id;
        tf_status st = tf_sample(&one, 1, &sp, &s, &id);
        if (st != TF_OK)
            return tfi_fail(&dec->err, st, "%s: %s", fn, tf_last_error());
    }
    tf_status st = reserve_scratch(dec, fn);
    if (st != TF_OK)
        return st;

    const int B = dec->batch;
    const int64_t V = dec->V;
    for (size_t i = 0; i < (size_t)B * (size_t)max_new; i++)
        out[i] = -1;
    memset(dec->gen_live, 1, (size_t)B);
    int live = B, steps = 0;
    uint64_t rng = sp.seed;
    while (steps < max_new && live > 0 && dec->pos < dec->S) {
        for (int b = 0; b < B; b++) {
            int32_t id = -1;
            if (dec->gen_live[b]) {
                st = tf_sample(dec->logits + (size_t)b * (size_t)V, V, &sp, &rng, &id);
                if (st != TF_OK) {
                    if (produced)
                        *produced = steps;
                    return tfi_fail(&dec->err, st, "%s: sequence %d, step %d: %s", fn, b,
                                    steps, tf_last_error());
                }
                out[(size_t)b * (size_t)max_new + (size_t)steps] = id;
                for (int s = 0; s < n_stop; s++)
                    if (stop_ids[s] == id) {
                        dec->gen_live[b] = 0;
                        live--;
                        break;
                    }
            }
            dec->gen_ids[b] = id;
            dec->gen_feed[b] = id >= 0 ? id : 0; /* a stopped sequence is fed a filler */
        }
        /* every emitted id is fed, so position = prompt + tokens produced */
        if ((st = reserve_scratch(dec, fn)) != TF_OK) { /* the model may grow in a callback */
            if (produced)
                *produced = steps;
            return st;
        }
        forward_tokens(dec, 1, dec->gen_feed, NULL);
        steps++;
        if (on_token && on_token(user, dec->gen_ids, B) != 0)
            break;
    }
    if (produced)
        *produced = steps;
    return TF_OK;
}
