/*
 * generate.c -- text generation from a checkpoint with the KV-cache
 * decoder.  Uses the public API only.
 *
 *   generate CHECKPOINT [--prompt TEXT] [--max-new N] [--temperature T]
 *            [--top-k K] [--top-p P] [--seed S] [--stop-byte B]
 *
 * With a vocabulary of 256 the prompt is bytes (from --prompt, else from
 * standard input) and the output is bytes; with any other vocabulary the
 * prompt is space-separated token ids and the output is ids.  The prompt is
 * echoed, generated tokens stream to stdout as they are produced, and a
 * summary (tokens, decode tokens/s) goes to stderr.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "tokenformer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: generate CHECKPOINT [options]\n"
            "\n"
            "Generates a continuation of a prompt with the model in CHECKPOINT (a\n"
            "safetensors file saved by libtokenformer).  With a vocabulary of 256 the\n"
            "prompt and the output are bytes; otherwise space-separated token ids.\n"
            "\n"
            "options:\n"
            "  --prompt TEXT       the prompt (default: read standard input)\n"
            "  --max-new N         tokens to generate (default 200)\n"
            "  --temperature T     >= 0; 0 is greedy (default 1.0)\n"
            "  --top-k K           keep the K most likely tokens, K >= 0; 0: off (default 0)\n"
            "  --top-p P           nucleus sampling, P in [0, 1]; 1: off (default 1.0)\n"
            "  --seed S            random seed (default 1)\n"
            "  --stop-byte B       stop after emitting token B (0..vocab-1); may be repeated\n"
            "  -h, --help          this text\n"
            "\n"
            "When the context (seq_length) is full, generation goes on with the last\n"
            "half of it as a sliding window.  Prints tokens and decode\n"
            "tokens/s to stderr; exits 1 on any error.\n");
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "generate: %s: %s\n", what, detail);
    return 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Reads all of a stream into a NUL-terminated buffer. */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

typedef struct stream_state {
    int bytes; /* print bytes, else ids */
    int64_t count;
} stream_state;

static int on_token(void *user, const int32_t *ids, int batch)
{
    stream_state *s = user;
    (void)batch;
    if (ids[0] < 0)
        return 0;
    if (s->bytes) {
        char c;
        if (tf_tokens_to_bytes(ids, 1, &c, 1) == TF_OK)
            fputc((unsigned char)c, stdout);
    } else {
        printf(" %" PRId32, ids[0]);
    }
    fflush(stdout);
    s->count++;
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *prompt_arg = NULL;
    int64_t max_new = 200;
    tf_sampler_params sp = tf_sampler_default_params();
    int32_t stops[64];
    int n_stop = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) {
                fprintf(stderr, "generate: %s needs a value (see --help)\n", a);
                return 1;
            }
            const char *v = argv[++i];
            int64_t iv = 0;
            int bad = 0;
            if (!strcmp(a, "--prompt")) {
                prompt_arg = v;
            } else if (!strcmp(a, "--max-new")) {
                bad = arg_int("generate", a, v, 0, 1 << 30, &max_new);
            } else if (!strcmp(a, "--temperature")) {
                bad = arg_double("generate", a, v, 0.0, DBL_MAX, &sp.temperature);
            } else if (!strcmp(a, "--top-k")) {
                bad = arg_int("generate", a, v, 0, INT32_MAX, &iv);
                sp.top_k = (int32_t)iv;
            } else if (!strcmp(a, "--top-p")) {
                bad = arg_double("generate", a, v, 0.0, 1.0, &sp.top_p);
            } else if (!strcmp(a, "--seed")) {
                bad = arg_u64("generate", a, v, &sp.seed);
            } else if (!strcmp(a, "--stop-byte")) {
                bad = arg_int("generate", a, v, 0, INT32_MAX, &iv);
                if (!bad && n_stop == (int)(sizeof stops / sizeof stops[0]))
                    return fail("--stop-byte", "at most 64 stop tokens");
                stops[n_stop] = (int32_t)iv;
                n_stop += !bad;
            } else {
                fprintf(stderr, "generate: unknown option %s (see --help)\n", a);
                return 1;
            }
            if (bad)
                return 1;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "generate: unexpected argument '%s' (see --help)\n", a);
            return 1;
        }
    }
    if (!path) {
        usage(stderr);
        return 1;
    }

    tf_model *model = NULL;
    if (tf_model_open(path, &model) != TF_OK)
        return fail("cannot load the model", tf_last_error());
    tf_model_params mp = tf_model_default_params();
    if (tf_model_get_params(model, &mp) != TF_OK) {
        tf_model_free(model);
        return fail("model", tf_last_error());
    }
    const int bytes = mp.vocab_size == 256;
    for (int i = 0; i < n_stop; i++)
        if (stops[i] >= mp.vocab_size) {
            fprintf(stderr, "generate: --stop-byte %d is outside the vocabulary [0, %" PRId64 ")\n",
                    (int)stops[i], mp.vocab_size);
            tf_model_free(model);
            return 1;
        }

    /* the prompt */
    size_t text_len = 0;
    char *text = NULL;
    if (prompt_arg) {
        text_len = strlen(prompt_arg);
        text = malloc(text_len + 1);
        if (text)
            memcpy(text, prompt_arg, text_len + 1);
    } else {
        text = read_all(stdin, &text_len);
    }
    if (!text) {
        tf_model_free(model);
        return fail("prompt", "cannot read standard input or out of memory");
    }
    int32_t *prompt = malloc((text_len + 1) * sizeof(int32_t));
    size_t n_prompt = 0;
    int rc = 0;
    if (!prompt) {
        rc = fail("prompt", "out of memory");
    } else if (bytes) {
        if (tf_bytes_to_tokens(text, text_len, prompt, text_len + 1, &n_prompt) != TF_OK)
            rc = fail("prompt", tf_last_error());
    } else {
        char *p = text, *end;
        for (;;) {
            while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
                p++;
            if (!*p)
                break;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno || v < 0 || v >= mp.vocab_size ||
                (*end && *end != ' ' && *end != '\n' && *end != '\t' && *end != '\r')) {
                fprintf(stderr,
                        "generate: the prompt must be token ids in [0, %" PRId64
                        ") separated by spaces (vocabulary is not bytes); bad token at "
                        "offset %zu\n", mp.vocab_size, (size_t)(p - text));
                rc = 1;
                break;
            }
            prompt[n_prompt++] = (int32_t)v;
            p = end;
        }
    }
    if (!rc && n_prompt == 0)
        rc = fail("prompt", "empty prompt: give --prompt TEXT or text on standard input");
    if (!rc && (int64_t)n_prompt > mp.seq_length) {
        fprintf(stderr, "generate: the prompt has %zu tokens, the model's context is %" PRId64 "\n",
                n_prompt, mp.seq_length);
        rc = 1;
    }
    tf_decoder *dec = NULL;
    if (!rc && tf_decoder_create(model, 1, &dec) != TF_OK)
        rc = fail("decoder", tf_last_error());
    if (!rc && tf_decoder_prefill(dec, (int)n_prompt, prompt, NULL) != TF_OK)
        rc = fail("prefill", tf_decoder_errmsg(dec));

    int32_t *out = NULL;
    if (!rc) {
        /* echo the prompt */
        if (bytes)
            fwrite(text, 1, text_len, stdout);
        else
            for (size_t i = 0; i < n_prompt; i++)
                printf(i ? " %" PRId32 : "%" PRId32, prompt[i]);
        fflush(stdout);
        /* every token so far, for re-filling the context when it is full */
        out = malloc(((size_t)max_new + n_prompt + 1) * sizeof(int32_t));
        if (!out)
            rc = fail("generate", "out of memory");
        else
            memcpy(out, prompt, n_prompt * sizeof(int32_t));
    }
    if (!rc) {
        stream_state st = {bytes, 0};
        size_t have = n_prompt;
        int64_t left = max_new, windows = 0;
        double busy = 0.0;
        tf_status s = TF_OK;
        while (left > 0 && s == TF_OK) {
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
            double t0 = now();
            s = tf_decoder_generate(dec, n, &chunk, stops, n_stop, out + have, &produced,
                                    on_token, &st);
            busy += now() - t0;
            have += (size_t)produced;
            left -= produced;
            int stopped = produced < n && tf_decoder_position(dec) < mp.seq_length;
            if (stopped || produced == 0)
                break;
        }
        if (!bytes || (st.count > 0 && out[have - 1] != '\n'))
            putchar('\n');
        fflush(stdout);
        if (s != TF_OK) {
            rc = fail("generation failed", tf_decoder_errmsg(dec));
        } else {
            fprintf(stderr, "generate: %zu prompt tokens, %lld generated tokens, %.1f tokens/s "
                    "(decode)%s\n", n_prompt, (long long)st.count,
                    busy > 0 ? (double)st.count / busy : 0.0,
                    windows ? ", sliding window" : "");
        }
    }
    free(out);
    tf_decoder_free(dec);
    free(prompt);
    free(text);
    tf_model_free(model);
    return rc;
}
