/*
 * generate.c -- text generation from a checkpoint with the KV-cache
 * decoder, with the sampling of the official text_generation.yml.  Uses
 * the public API only.
 *
 *   generate CHECKPOINT [--tokenizer tokenizer.json] [--prompt TEXT]
 *            [--config MODEL.yml] [--generation-config text_generation.yml]
 *            [--maximum-tokens N] [--temperature T] [--top-k K] [--top-p P]
 *            [--seed S] [--threads N] [--stop-id ID]... [--ignore-eos]
 *            [--show-ids] [--bf16]
 *
 * With a tokenizer the prompt is text, encoded by it, and the output is
 * decoded as it streams (a token may end inside a UTF-8 character: only
 * whole characters are printed, invalid bytes as U+FFFD).  Without one, a
 * vocabulary of 256 is bytes in and out, any other vocabulary
 * space-separated token ids.  The prompt is echoed, generated text streams
 * to stdout, a summary goes to stderr.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli.h"
#include "tokenformer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: generate CHECKPOINT [options]\n"
            "\n"
            "Generates a continuation of a prompt with the model in CHECKPOINT (a\n"
            "safetensors file: saved by libtokenformer, or converted from an official\n"
            "release by tools/convert_checkpoint.py).\n"
            "\n"
            "options:\n"
            "  --tokenizer FILE    a tokenizer.json (GPT-NeoX-20B's for the released\n"
            "                      models): the prompt is text, the output decoded text\n"
            "  --prompt TEXT       the prompt (default: read standard input); with a\n"
            "                      tokenizer, an empty prompt starts from <|endoftext|>\n"
            "  --config FILE       the model's YAML config (e.g. 150M_eval.yml): needed\n"
            "                      for a file with the official tensor names only; else\n"
            "                      checked against the file's own configuration\n"
            "  --generation-config FILE  maximum_tokens, temperature, top_k and top_p\n"
            "                      from an official text_generation.yml (options win)\n"
            "  --maximum-tokens N  tokens to generate at most (default 200; --max-new)\n"
            "  --temperature T     >= 0 (default 1.0)\n"
            "  --top-k K           keep the K most likely tokens; 0: off (default 0)\n"
            "  --top-p P           nucleus sampling, P in [0, 1]; 0: off (default 0)\n"
            "                      Temperature, top-k and top-p all 0: greedy.\n"
            "  --seed S            random seed (default 1)\n"
            "  --threads N         threads (default: TF_NUM_THREADS or all CPUs)\n"
            "  --stop-id ID        also stop after emitting token ID; may be repeated\n"
            "                      (--stop-byte is the same)\n"
            "  --ignore-eos        do not stop at the tokenizer's <|endoftext|>\n"
            "  --show-ids          print the generated ids to stderr at the end\n"
            "  --bf16              weights in bfloat16: half the memory, about twice the\n"
            "                      tokens/s at batch 1 (logits within ~1e-2 of float32's)\n"
            "  -h, --help          this text\n"
            "\n"
            "Sampling follows GPT-NeoX's text generation: softmax(logits / temperature)\n"
            "(no division at temperature 0), the top-k most likely, then the nucleus of\n"
            "mass top-p; generation ends at <|endoftext|> (not printed) when the\n"
            "tokenizer has it.  A prompt longer than the context (seq_length) keeps its\n"
            "last seq_length tokens, and when the context is full generation goes on\n"
            "with its last half as a sliding window; both are said on stderr.  Exits 1\n"
            "on any error.\n");
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "generate: %s: %s\n", what, detail);
    return 1;
}

/* ---- decoded text, streamed ----------------------------------------------- */

#define REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* Prints the whole UTF-8 characters at the start of buf[0, n), one U+FFFD
 * for each invalid sequence (its maximal valid prefix, as UTF-8 decoders
 * replace), and returns the bytes used: an incomplete character at the end
 * is left for the next token's bytes, unless `final` (then it is invalid). */
static size_t print_utf8(const unsigned char *buf, size_t n, int final)
{
    size_t i = 0;
    while (i < n) {
        const unsigned char c = buf[i];
        size_t need;
        unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c < 0x80) {
            putchar(c);
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            lo = c == 0xe0 ? 0xa0 : 0x80; /* no overlong forms */
            hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            lo = c == 0xf0 ? 0x90 : 0x80;
            hi = c == 0xf4 ? 0x8f : 0xbf; /* at most U+10FFFF */
        } else {
            fputs(REPLACEMENT, stdout);
            i++;
            continue;
        }
        size_t k = 1;
        while (k <= need && i + k < n && buf[i + k] >= (k == 1 ? lo : 0x80) &&
               buf[i + k] <= (k == 1 ? hi : 0xbf))
            k++;
        if (k == need + 1) {
            fwrite(buf + i, 1, k, stdout);
        } else if (i + k == n && !final) {
            break; /* the rest of the character may come with the next token */
        } else {
            fputs(REPLACEMENT, stdout);
        }
        i += k;
    }
    return i;
}

typedef struct stream_state {
    enum { OUT_IDS, OUT_BYTES, OUT_TEXT } mode;
    tf_tokenizer *tok;
    int32_t eos;               /* not printed; -1: none */
    unsigned char *pending;    /* text bytes not printed yet */
    size_t npending, cap;
    int64_t count, unknown;    /* tokens generated; of them, not in the tokenizer */
    int last_newline;          /* the last thing printed was '\n' */
    int failed;
} stream_state;

/* Appends the bytes of token id to s->pending and prints what is whole. */
static void stream_text(stream_state *s, int32_t id, int final)
{
    size_t len = 0;
    if (id >= 0 && id != s->eos) {
        if (tf_tokenizer_decode(s->tok, &id, 1, NULL, 0, &len) != TF_OK) {
            s->unknown++; /* an id the model has and the tokenizer not (padding) */
            len = 0;
        } else if (s->npending + len > s->cap) {
            size_t cap = (s->npending + len) * 2 + 64;
            unsigned char *grown = realloc(s->pending, cap);
            if (!grown) {
                s->failed = 1;
                return;
            }
            s->pending = grown;
            s->cap = cap;
        }
        if (len && tf_tokenizer_decode(s->tok, &id, 1, (char *)s->pending + s->npending,
                                       s->cap - s->npending, &len) == TF_OK)
            s->npending += len;
    }
    size_t used = print_utf8(s->pending, s->npending, final);
    if (used) {
        s->last_newline = s->pending[used - 1] == '\n';
        memmove(s->pending, s->pending + used, s->npending - used);
        s->npending -= used;
    }
}

static int on_token(void *user, const int32_t *ids, int batch)
{
    stream_state *s = user;
    (void)batch;
    if (ids[0] < 0)
        return 0;
    s->count++;
    if (s->mode == OUT_TEXT) {
        stream_text(s, ids[0], 0);
    } else if (s->mode == OUT_BYTES) {
        char c;
        if (tf_tokens_to_bytes(ids, 1, &c, 1) == TF_OK) {
            fputc((unsigned char)c, stdout);
            s->last_newline = c == '\n';
        }
    } else {
        printf(" %" PRId32, ids[0]);
    }
    fflush(stdout);
    return s->failed;
}

/* ---- options ---------------------------------------------------------------- */

typedef struct options {
    const char *path, *prompt, *tokenizer, *config, *gen_config;
    int64_t max_new;
    double temperature, top_p;
    int64_t top_k;
    uint64_t seed;
    int64_t threads;
    int32_t stops[64];
    int n_stop, ignore_eos, show_ids, bf16;
    int set_max, set_temperature, set_top_k, set_top_p; /* given on the command line */
} options;

/* 0 and *o filled, or 1 (message printed), or -1 for --help. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->max_new = 200;
    o->temperature = 1.0;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return -1;
        if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = 1;
            continue;
        }
        if (!strcmp(a, "--show-ids")) {
            o->show_ids = 1;
            continue;
        }
        if (!strcmp(a, "--bf16")) {
            o->bf16 = 1;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) {
                fprintf(stderr, "generate: %s needs a value (see --help)\n", a);
                return 1;
            }
            const char *v = argv[++i];
            int64_t iv;
            int bad = 0;
            if (!strcmp(a, "--prompt")) {
                o->prompt = v;
            } else if (!strcmp(a, "--tokenizer")) {
                o->tokenizer = v;
            } else if (!strcmp(a, "--config")) {
                o->config = v;
            } else if (!strcmp(a, "--generation-config")) {
                o->gen_config = v;
            } else if (!strcmp(a, "--maximum-tokens") || !strcmp(a, "--max-new")) {
                bad = arg_int("generate", a, v, 0, 1 << 30, &o->max_new);
                o->set_max = 1;
            } else if (!strcmp(a, "--temperature")) {
                bad = arg_double("generate", a, v, 0.0, DBL_MAX, &o->temperature);
                o->set_temperature = 1;
            } else if (!strcmp(a, "--top-k")) {
                bad = arg_int("generate", a, v, 0, INT32_MAX, &o->top_k);
                o->set_top_k = 1;
            } else if (!strcmp(a, "--top-p")) {
                bad = arg_double("generate", a, v, 0.0, 1.0, &o->top_p); /* 0: off */
                o->set_top_p = 1;
            } else if (!strcmp(a, "--seed")) {
                bad = arg_u64("generate", a, v, &o->seed);
            } else if (!strcmp(a, "--threads")) {
                bad = arg_int("generate", a, v, 1, 4096, &o->threads);
            } else if (!strcmp(a, "--stop-id") || !strcmp(a, "--stop-byte")) {
                bad = arg_int("generate", a, v, 0, INT32_MAX, &iv);
                if (!bad && o->n_stop == (int)(sizeof o->stops / sizeof o->stops[0])) {
                    fprintf(stderr, "generate: at most 64 stop ids\n");
                    return 1;
                }
                if (!bad)
                    o->stops[o->n_stop++] = (int32_t)iv;
            } else {
                fprintf(stderr, "generate: unknown option %s (see --help)\n", a);
                return 1;
            }
            if (bad)
                return 1; /* args.h said why */
        } else if (!o->path) {
            o->path = a;
        } else {
            fprintf(stderr, "generate: unexpected argument '%s' (see --help)\n", a);
            return 1;
        }
    }
    if (!o->path) {
        usage(stderr);
        return 1;
    }
    return 0;
}

/* maximum_tokens, temperature, top_k, top_p of an official
 * text_generation.yml, where the command line did not set them. */
static int read_generation_config(options *o)
{
    tf_config *cfg = NULL;
    if (tf_config_load(o->gen_config, &cfg) != TF_OK)
        return fail("--generation-config", tf_last_error());
    int64_t iv;
    double dv;
    tf_status st = TF_OK;
    if (!o->set_max && tf_config_has(cfg, "maximum_tokens") &&
        (st = tf_config_get_int(cfg, "maximum_tokens", &iv)) == TF_OK)
        o->max_new = iv < 0 ? 0 : iv > (1 << 30) ? (1 << 30) : iv;
    if (st == TF_OK && !o->set_temperature && tf_config_has(cfg, "temperature") &&
        (st = tf_config_get_double(cfg, "temperature", &dv)) == TF_OK)
        o->temperature = dv;
    if (st == TF_OK && !o->set_top_k && tf_config_has(cfg, "top_k") &&
        (st = tf_config_get_int(cfg, "top_k", &iv)) == TF_OK)
        o->top_k = iv;
    if (st == TF_OK && !o->set_top_p && tf_config_has(cfg, "top_p") &&
        (st = tf_config_get_double(cfg, "top_p", &dv)) == TF_OK)
        o->top_p = dv;
    tf_config_free(cfg);
    return st == TF_OK ? 0 : fail("--generation-config", tf_last_error());
}

/* The prompt's ids into *ids (malloc'ed), *n of them; 0 or 1 (reported). */
static int encode_prompt(const char *text, size_t len, tf_tokenizer *tok, int64_t vocab,
                         int32_t eos, int32_t **ids, size_t *n)
{
    *ids = malloc((len + 1) * sizeof(int32_t));
    *n = 0;
    if (!*ids)
        return fail("prompt", "out of memory");
    if (tok) {
        size_t need = 0;
        tf_tokenizer_encode(tok, text, len, NULL, 0, &need);
        int32_t *grown = need > len + 1 ? realloc(*ids, need * sizeof(int32_t)) : *ids;
        if (!grown)
            return fail("prompt", "out of memory");
        *ids = grown;
        if (tf_tokenizer_encode(tok, text, len, *ids, need, n) != TF_OK)
            return fail("cannot encode the prompt", tf_tokenizer_errmsg(tok));
        if (*n == 0 && eos >= 0)
            (*ids)[(*n)++] = eos; /* unconditional, as the official generation */
    } else if (vocab == 256) {
        if (tf_bytes_to_tokens(text, len, *ids, len + 1, n) != TF_OK)
            return fail("prompt", tf_last_error());
    } else {
        const char *p = text;
        char *end;
        for (;;) {
            while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
                p++;
            if (!*p)
                break;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno || v < 0 || v >= vocab ||
                (*end && *end != ' ' && *end != '\n' && *end != '\t' && *end != '\r')) {
                fprintf(stderr,
                        "generate: the prompt must be token ids in [0, %" PRId64
                        ") separated by spaces (vocabulary is not bytes; or give --tokenizer); "
                        "bad token at offset %zu\n", vocab, (size_t)(p - text));
                return 1;
            }
            (*ids)[(*n)++] = (int32_t)v;
            p = end;
        }
    }
    if (*n == 0)
        return fail("prompt", "empty prompt: give --prompt TEXT or text on standard input");
    for (size_t i = 0; i < *n; i++)
        if ((*ids)[i] >= vocab) {
            fprintf(stderr, "generate: the prompt's token %zu is id %" PRId32 ", outside the "
                    "model's vocabulary of %" PRId64 ": the tokenizer does not belong to this "
                    "model\n", i, (*ids)[i], vocab);
            return 1;
        }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc < 0) {
        usage(stdout);
        return 0;
    }
    if (rc || (o.gen_config && read_generation_config(&o)))
        return 1;
    tf_sampler_params sp = tf_sampler_default_params();
    sp.seed = o.seed;
    if (tf_sampler_params_official(&sp, o.temperature, (int32_t)o.top_k, o.top_p) != TF_OK)
        return fail("sampling", tf_last_error());
    if (o.threads && tf_set_num_threads((int)o.threads) != TF_OK)
        return fail("--threads", tf_last_error());

    tf_model *model = cli_open_model("generate", o.path, o.config, o.bf16);
    if (!model)
        return 1;
    tf_model_params mp = tf_model_default_params();
    tf_tokenizer *tok = NULL;
    if (tf_model_get_params(model, &mp) != TF_OK)
        rc = fail("model", tf_last_error());
    if (!rc && o.tokenizer && tf_tokenizer_load(o.tokenizer, &tok) != TF_OK)
        rc = fail("cannot load the tokenizer", tf_last_error());
    int32_t eos = -1;
    if (tok) {
        if (tf_tokenizer_token_to_id(tok, "<|endoftext|>", &eos) != TF_OK || eos >= mp.vocab_size)
            eos = -1;
        if (tf_tokenizer_vocab_size(tok) > mp.vocab_size)
            fprintf(stderr, "generate: note: the tokenizer has %" PRId64 " ids, the model %" PRId64
                    ": are they of one release?\n", tf_tokenizer_vocab_size(tok), mp.vocab_size);
    }
    for (int i = 0; !rc && i < o.n_stop; i++)
        if (o.stops[i] >= mp.vocab_size) {
            fprintf(stderr, "generate: --stop-id %d is outside the vocabulary [0, %" PRId64 ")\n",
                    (int)o.stops[i], mp.vocab_size);
            rc = 1;
        }
    if (!rc && eos >= 0 && !o.ignore_eos && o.n_stop < 64)
        o.stops[o.n_stop++] = eos;

    /* the prompt */
    size_t text_len = 0;
    char *text = NULL;
    if (!rc && o.prompt) {
        text_len = strlen(o.prompt);
        if ((text = malloc(text_len + 1)))
            memcpy(text, o.prompt, text_len + 1);
    } else if (!rc) {
        text = cli_read_all(stdin, &text_len);
    }
    if (!rc && !text)
        rc = fail("prompt", "cannot read standard input or out of memory");
    int32_t *prompt = NULL;
    size_t n_prompt = 0, skip = 0;
    if (!rc)
        rc = encode_prompt(text, text_len, tok, mp.vocab_size, eos, &prompt, &n_prompt);
    if (!rc && (int64_t)n_prompt > mp.seq_length) {
        skip = n_prompt - (size_t)mp.seq_length;
        fprintf(stderr, "generate: the prompt has %zu tokens, more than the context of %" PRId64
                ": its first %zu are left out\n", n_prompt, mp.seq_length, skip);
    }
    tf_decoder *dec = NULL;
    if (!rc && tf_decoder_create(model, 1, &dec) != TF_OK)
        rc = fail("decoder", tf_last_error());
    if (!rc && tf_decoder_prefill(dec, (int)(n_prompt - skip), prompt + skip, NULL) != TF_OK)
        rc = fail("prefill", tf_decoder_errmsg(dec));

    stream_state st = {.mode = tok ? OUT_TEXT : mp.vocab_size == 256 ? OUT_BYTES : OUT_IDS,
                       .tok = tok, .eos = eos};
    int32_t *out = NULL;
    if (!rc) {
        /* echo the prompt as given */
        if (st.mode != OUT_IDS) {
            fwrite(text, 1, text_len, stdout);
            st.last_newline = text_len > 0 && text[text_len - 1] == '\n';
        } else {
            for (size_t i = 0; i < n_prompt; i++)
                printf(i ? " %" PRId32 : "%" PRId32, prompt[i]);
        }
        fflush(stdout);
        /* every token so far, for re-filling the context when it is full */
        out = malloc(((size_t)o.max_new + n_prompt + 1) * sizeof(int32_t));
        if (!out)
            rc = fail("generate", "out of memory");
        else
            memcpy(out, prompt, n_prompt * sizeof(int32_t));
    }
    if (!rc) {
        size_t have = n_prompt;
        int64_t left = o.max_new, windows = 0;
        double busy = 0.0;
        tf_status s = TF_OK;
        while (left > 0 && s == TF_OK && !st.failed) {
            int64_t room = mp.seq_length - tf_decoder_position(dec);
            if (room == 0) {
                /* a sliding window: keep the last half of the context */
                size_t keep = (size_t)(mp.seq_length / 2);
                if ((s = tf_decoder_reset(dec)) != TF_OK ||
                    (s = tf_decoder_prefill(dec, (int)keep, out + have - keep, NULL)) != TF_OK)
                    break;
                windows++;
                continue;
            }
            int n = (int)(left < room ? left : room), produced = 0;
            tf_sampler_params chunk = sp;
            chunk.seed = sp.seed + (uint64_t)windows; /* a fresh stream per window */
            double t0 = cli_now();
            s = tf_decoder_generate(dec, n, &chunk, o.stops, o.n_stop, out + have, &produced,
                                    on_token, &st);
            busy += cli_now() - t0;
            have += (size_t)produced;
            left -= produced;
            int stopped = produced < n && tf_decoder_position(dec) < mp.seq_length;
            if (stopped || produced == 0)
                break;
        }
        if (st.mode == OUT_TEXT)
            stream_text(&st, -1, 1); /* what is left: an unfinished character */
        if (st.mode == OUT_IDS || !st.last_newline)
            putchar('\n');
        fflush(stdout);
        if (s != TF_OK) {
            rc = fail("generation failed", tf_decoder_errmsg(dec));
        } else if (st.failed) {
            rc = fail("generation failed", "out of memory");
        } else {
            fprintf(stderr, "generate: %zu prompt tokens, %lld generated tokens, %.1f tokens/s "
                    "(decode%s)%s\n", n_prompt, (long long)st.count,
                    busy > 0 ? (double)st.count / busy : 0.0, o.bf16 ? ", bfloat16 weights" : "",
                    windows ? ", sliding window" : "");
            if (st.unknown)
                fprintf(stderr, "generate: %lld generated ids are not in the tokenizer "
                        "(padding of the vocabulary): left out\n", (long long)st.unknown);
            if (o.show_ids) {
                fprintf(stderr, "generate: ids:");
                for (size_t i = n_prompt; i < have; i++)
                    fprintf(stderr, " %" PRId32, out[i]);
                fprintf(stderr, "\n");
            }
        }
    }
    free(st.pending);
    free(out);
    tf_decoder_free(dec);
    free(prompt);
    free(text);
    tf_tokenizer_free(tok);
    tf_model_free(model);
    return rc;
}
