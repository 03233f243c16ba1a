/*
 * checksum.c -- a 64-bit hash of a model's state (and its optimizer's), so
 * that the processes of a data-parallel run can check that they hold the
 * same parameters bit for bit by exchanging eight bytes.
 *
 * The hash is not cryptographic; it only has to tell two honest states
 * apart.  It reads eight bytes at a time: each word is multiplied by an odd
 * constant (a bijection), xored into the state, and the state rotated and
 * multiplied (a bijection for a fixed word), so two states that differ in
 * one word always hash differently; SplitMix64's finaliser (a bijection
 * too) mixes the end.  Lengths
 * and names go in too, so that tensors cannot trade bytes across their
 * boundaries unnoticed.
 */
#include <string.h>

#include "optimizer.h"

typedef struct hasher {
    uint64_t h;
} hasher;

static uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void mix_word(hasher *s, uint64_t w)
{
    s->h = rotl64(s->h ^ (w * 0x9e3779b97f4a7c15ULL), 29) * 0xbf58476d1ce4e5b9ULL;
}

static void mix_bytes(hasher *s, const void *data, size_t len)
{
    const unsigned char *p = data;
    mix_word(s, (uint64_t)len);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        mix_word(s, w);
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, p + i, len - i);
        mix_word(s, w);
    }
}

static void mix_i64(hasher *s, int64_t v)
{
    mix_word(s, (uint64_t)v);
}

static void mix_double(hasher *s, double v)
{
    uint64_t w;
    memcpy(&w, &v, sizeof w);
    mix_word(s, w);
}

static uint64_t finish(const hasher *s)
{
    uint64_t x = s->h;
    return tfi_splitmix64(&x);
}

TF_API tf_status tf_model_checksum(const tf_model *model, const tf_optimizer *opt, uint64_t *out)
{
    CHECK_MODEL(model, "tf_model_checksum");
    tfi_errbuf *eb = (tfi_errbuf *)&model->err;
    if (!out)
        return tfi_fail(eb, TF_ERR_ARGUMENT, "tf_model_checksum: out is NULL");
    if (opt && opt->model != model)
        return tfi_fail(eb, TF_ERR_ARGUMENT,
                        "tf_model_checksum: the optimizer belongs to another model");
    hasher s = {0x746f6b656e666f72ULL}; /* "tokenfor" */
    for (int t = 0; t < model->nrefs; t++) {
        const tfi_tensor_ref *r = &model->refs[t];
        mix_bytes(&s, r->name, strlen(r->name));
        mix_i64(&s, r->rows);
        mix_i64(&s, r->cols);
        mix_bytes(&s, r->data, tfi_ref_size(r) * sizeof(float));
    }
    for (int i = 0; i < tfi_model_num_sets(model); i++) {
        const tf_pattention *set = &model->sets[i];
        mix_double(&s, set->tau);
        mix_i64(&s, (int64_t)set->scale_policy);
        mix_double(&s, set->ramp.from);
        mix_double(&s, set->ramp.to);
        mix_i64(&s, set->ramp.start);
        mix_i64(&s, set->ramp.steps);
    }
    if (opt) {
        const tf_optimizer_params *p = &opt->p;
        mix_i64(&s, opt->step);
        mix_i64(&s, opt->moments_origin);
        mix_i64(&s, (int64_t)p->lr_restart);
        mix_i64(&s, p->lr_restart_step);
        mix_double(&s, p->lr_restart_lr);
        mix_double(&s, p->lr_restart_min_lr);
        mix_i64(&s, p->lr_restart_warmup_steps);
        mix_i64(&s, p->lr_restart_decay_steps);
        mix_double(&s, p->lr_restart_factor);
        for (int t = 0; t < opt->nslots; t++) {
            const tfi_opt_slot *sl = &opt->slots[t];
            size_t n = (size_t)sl->rows * (size_t)(sl->cols ? sl->cols : 1);
            mix_bytes(&s, sl->m, n * sizeof(float));
            mix_bytes(&s, sl->v, n * sizeof(float));
        }
    }
    *out = finish(&s);
    return TF_OK;
}
