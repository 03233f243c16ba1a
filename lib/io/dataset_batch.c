/*
 * dataset_batch.c -- the batches a dataset hands to training: sampled
 * (tf_dataset_sample) and sequential (tf_dataset_batch), each B rows of
 * T tokens and their T next-token targets.
 *
 * Sampling: batch `index` of a seed's stream takes its B segments of T+1
 * tokens from one piece.  The pieces are laid end to end in an order
 * shuffled per epoch, each as wide as its number of segment starts (its
 * length - T); an epoch is ceil(starts / (B*T)) batches, and batch r of it
 * comes from the piece that covers offset r*B*T.  So consecutive indices
 * stay in one file (one file is read at a time), files are visited in
 * proportion to their size, and every random draw is seeded from (seed,
 * index): a batch is a pure function of its arguments, and a resumed run
 * sees exactly the batches it would have seen.  With one piece this is B
 * uniform starts in the split, the stream of earlier versions.
 *
 * Sequential batches: segment s of a piece covers its tokens [s*T, s*T + T]
 * (stride T, so consecutive segments share one token and every token except
 * the first is a target exactly once); a piece has (length - 1) / T
 * segments, the split's segments are the pieces' in order, and batch i
 * holds segments [i*B, (i+1)*B).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "io/dataset_internal.h"

/* ---- batches ------------------------------------------------------------- */

/* Copies tokens [pos, pos + T] of a resident source as one row of tokens
 * and targets. */
static void copy_segment(const tf_dataset *ds, const source *s, int64_t pos, int T, int32_t *tok,
                         int32_t *tgt)
{
    if (!ds->wide) {
        const uint16_t *p = (const uint16_t *)s->ids + pos;
        for (int t = 0; t < T; t++) {
            tok[t] = p[t];
            tgt[t] = p[t + 1];
        }
    } else {
        const int32_t *p = (const int32_t *)s->ids + pos;
        memcpy(tok, p, (size_t)T * sizeof *tok);
        memcpy(tgt, p + 1, (size_t)T * sizeof *tgt);
    }
}

static const char *split_name(tf_split split)
{
    return split == TF_SPLIT_VAL ? "validation" : "training";
}

/* Checks the arguments shared by sample and batch and finds the split. */
static tf_status check_batch_args(const tf_dataset *ds, const char *fn, tf_split split, int B,
                                  int T, const int32_t *tokens, const int32_t *targets,
                                  const split_set **sp)
{
    if (!ds)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "%s: the dataset is NULL", fn);
    tfi_errbuf *eb = (tfi_errbuf *)&ds->err;
    if (!(*sp = tfi_dataset_split(ds, split)))
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: unknown split %d", fn, (int)split);
    if (B < 1 || T < 1)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: B = %d and T = %d must both be >= 1", fn, B,
                        T);
    if (!tokens || !targets)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "%s: %s is NULL", fn,
                        !tokens ? "tokens" : "targets");
    return TF_OK;
}

/* The error for a split without a single segment of T+1 tokens. */
static tf_status too_short(tf_dataset *ds, const char *fn, tf_split split, const split_set *sp,
                           int T)
{
    if (sp->npieces <= 1)
        return tfi_fail(&ds->err, TF_ERR_RANGE,
                        "%s: %s split has %lld tokens, shorter than one segment of T+1 = %lld",
                        fn, split_name(split), (long long)sp->ntok, (long long)T + 1);
    int64_t longest = 0;
    for (int64_t k = 0; k < sp->npieces; k++)
        longest = sp->pieces[k].count > longest ? sp->pieces[k].count : longest;
    return tfi_fail(&ds->err, TF_ERR_RANGE,
                    "%s: no file of the %s split holds one segment of T+1 = %lld tokens (the "
                    "longest has %lld)", fn, split_name(split), (long long)T + 1,
                    (long long)longest);
}

/* SplitMix64's output from state z: a bijection on 64-bit words. */
static uint64_t mix64(uint64_t z)
{
    return tfi_splitmix64(&z);
}

/* Uniform integer in [0, range) without modulo bias (range >= 1). */
static uint64_t uniform_below(tfi_rng *r, uint64_t range)
{
    uint64_t threshold = (0 - range) % range; /* 2^64 mod range */
    for (;;) {
        uint64_t x = tfi_rng_next(r);
        if (x >= threshold)
            return x % range;
    }
}

/* Segment starts of a piece for segments of T+1 tokens. */
static uint64_t piece_starts(const piece *pc, int T)
{
    return pc->count > (int64_t)T ? (uint64_t)(pc->count - T) : 0;
}

/* The piece that sampling's batch `index` draws from (see the top of the
 * file), given starts = the split's total of piece_starts() > 0. */
static const piece *sample_piece(const split_set *sp, uint64_t seed, int64_t index, int B, int T,
                                 uint64_t starts)
{
    if (sp->npieces == 1)
        return &sp->pieces[0];
    const uint64_t bt = (uint64_t)B * (uint64_t)T;
    const uint64_t per_epoch = starts / bt + (starts % bt != 0);
    const uint64_t epoch = (uint64_t)index / per_epoch, r = (uint64_t)index % per_epoch;
    int64_t *order = sp->order;
    for (int64_t k = 0; k < sp->npieces; k++)
        order[k] = k;
    tfi_rng rng; /* Fisher-Yates, seeded by (seed, epoch) */
    tfi_rng_seed(&rng, mix64(seed ^ 0x5851f42d4c957f2dULL) ^ mix64(epoch));
    for (int64_t k = sp->npieces - 1; k > 0; k--) {
        int64_t j = (int64_t)uniform_below(&rng, (uint64_t)k + 1);
        int64_t t = order[k];
        order[k] = order[j];
        order[j] = t;
    }
    const uint64_t pos = r * bt; /* < starts */
    uint64_t end = 0;
    for (int64_t k = 0; k < sp->npieces; k++) {
        end += piece_starts(&sp->pieces[order[k]], T);
        if (pos < end)
            return &sp->pieces[order[k]];
    }
    return &sp->pieces[order[sp->npieces - 1]]; /* not reached */
}

TF_API tf_status tf_dataset_sample(const tf_dataset *cds, tf_split split, uint64_t seed,
                                   int64_t index, int B, int T, int32_t *tokens,
                                   int32_t *targets)
{
    static const char fn[] = "tf_dataset_sample";
    const split_set *sp;
    tf_status st = check_batch_args(cds, fn, split, B, T, tokens, targets, &sp);
    if (st != TF_OK)
        return st;
    tf_dataset *ds = (tf_dataset *)cds;
    pthread_mutex_lock(&ds->lock);
    uint64_t starts = 0;
    for (int64_t k = 0; k < sp->npieces; k++)
        starts += piece_starts(&sp->pieces[k], T);
    if (starts == 0) {
        st = too_short(ds, fn, split, sp, T);
    } else {
        const piece *pc = sample_piece(sp, seed, index, B, T, starts);
        uint64_t stamp = ++ds->tick;
        st = tfi_dataset_acquire(ds, pc->src, stamp);
        if (st == TF_OK) {
            tfi_rng rng;
            tfi_rng_seed(&rng, mix64(seed) ^ mix64(~(uint64_t)index));
            const uint64_t n_starts = piece_starts(pc, T); /* 0 .. count - (T+1) */
            for (int b = 0; b < B; b++) {
                int64_t start = (int64_t)uniform_below(&rng, n_starts);
                copy_segment(ds, &ds->src[pc->src], pc->begin + start, T,
                             tokens + (size_t)b * (size_t)T, targets + (size_t)b * (size_t)T);
            }
        }
    }
    pthread_mutex_unlock(&ds->lock);
    return st;
}

static int64_t piece_segments(const piece *pc, int T)
{
    return (pc->count - 1) / T;
}

TF_API int64_t tf_dataset_num_batches(const tf_dataset *ds, tf_split split, int B, int T)
{
    const split_set *sp = ds ? tfi_dataset_split(ds, split) : NULL;
    if (!sp || B < 1 || T < 1)
        return 0;
    int64_t segs = 0;
    for (int64_t k = 0; k < sp->npieces; k++)
        segs += piece_segments(&sp->pieces[k], T);
    return segs / B;
}

TF_API tf_status tf_dataset_batch(const tf_dataset *cds, tf_split split, int64_t i, int B, int T,
                                  int32_t *tokens, int32_t *targets)
{
    static const char fn[] = "tf_dataset_batch";
    const split_set *sp;
    tf_status st = check_batch_args(cds, fn, split, B, T, tokens, targets, &sp);
    if (st != TF_OK)
        return st;
    tf_dataset *ds = (tf_dataset *)cds;
    int64_t nb = tf_dataset_num_batches(ds, split, B, T);
    pthread_mutex_lock(&ds->lock);
    if (i < 0 || i >= nb) {
        if (nb == 0 && tf_dataset_num_batches(ds, split, 1, T) == 0)
            st = too_short(ds, fn, split, sp, T);
        else
            st = tfi_fail(&ds->err, TF_ERR_RANGE,
                          "%s: batch %lld is out of range: the %s split has %lld batches of "
                          "B = %d, T = %d", fn, (long long)i, split_name(split), (long long)nb,
                          B, T);
        pthread_mutex_unlock(&ds->lock);
        return st;
    }
    /* the pieces of segments [i*B, i*B + B): all resident before any row is
     * written, so that a failed read leaves the output untouched */
    const int64_t first = i * B;
    int64_t k = 0, seg0 = 0; /* piece k holds segments [seg0, seg0 + its count) */
    while (seg0 + piece_segments(&sp->pieces[k], T) <= first)
        seg0 += piece_segments(&sp->pieces[k++], T);
    const int64_t k_first = k, seg0_first = seg0;
    uint64_t stamp = ++ds->tick;
    for (int64_t g = first; g < first + B && st == TF_OK; g++) {
        while (seg0 + piece_segments(&sp->pieces[k], T) <= g)
            seg0 += piece_segments(&sp->pieces[k++], T);
        st = tfi_dataset_acquire(ds, sp->pieces[k].src, stamp);
    }
    k = k_first;
    seg0 = seg0_first;
    for (int64_t g = first; g < first + B && st == TF_OK; g++) {
        while (seg0 + piece_segments(&sp->pieces[k], T) <= g)
            seg0 += piece_segments(&sp->pieces[k++], T);
        const piece *pc = &sp->pieces[k];
        int b = (int)(g - first);
        copy_segment(ds, &ds->src[pc->src], pc->begin + (g - seg0) * T, T,
                     tokens + (size_t)b * (size_t)T, targets + (size_t)b * (size_t)T);
    }
    tfi_dataset_evict_to(ds, ds->max_resident, UINT64_MAX);
    pthread_mutex_unlock(&ds->lock);
    return st;
}
