/*
 * eval.c -- the mean loss and perplexity of a model on a text or a token
 * file, the official way: the tokens cut into non-overlapping windows of
 * seq_length + 1 (stride seq_length, as GPT-NeoX's validation samples),
 * every position of every whole window scored.  Uses the public API only.
 *
 *   eval MODEL (--text FILE [--tokenizer tokenizer.json] | --tokens FILE)
 *        [--config MODEL.yml] [--format auto|bytes|u16|llmc] [--batch B]
 *        [--max-windows N] [--seq-length T] [--threads N]
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "tokenformer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: eval MODEL (--text FILE [--tokenizer FILE] | --tokens FILE) [options]\n"
            "\n"
            "Prints the mean cross-entropy (nats per token) and the perplexity of the\n"
            "model in MODEL (a safetensors checkpoint) on non-overlapping windows of\n"
            "seq_length + 1 tokens, every position of every whole window counted (the\n"
            "tokens after the last whole window are not).\n"
            "\n"
            "  --text FILE         a text file: encoded with --tokenizer, or as bytes for a\n"
            "                      byte-level model (vocabulary 256) when none is given\n"
            "  --tokenizer FILE    a tokenizer.json (GPT-NeoX-20B's for the released models)\n"
            "  --tokens FILE       token ids: an llm.c shard, a .bin of uint16, or bytes\n"
            "                      (--format, default auto: as the trainer reads them)\n"
            "  --config FILE       the model's YAML config (needed for a file with the\n"
            "                      official tensor names only)\n"
            "  --batch B           windows scored at once (default 1)\n"
            "  --max-windows N     at most the first N windows\n"
            "  --seq-length T      windows of T tokens (default and at most the model's\n"
            "                      seq_length)\n"
            "  --threads N         threads (default: TF_NUM_THREADS or all CPUs)\n"
            "  -h, --help          this text\n"
            "\n"
            "A progress line goes to stderr; exits 1 on any error.\n");
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "eval: %s: %s\n", what, detail);
    return 1;
}

typedef struct options {
    const char *path, *text, *tokenizer, *tokens, *config;
    tf_data_format format;
    int64_t batch, max_windows, seq_length, threads;
} options;

/* 0 and *o filled, 1 (message printed), or -1 for --help. */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return -1;
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc) {
                fprintf(stderr, "eval: %s needs a value (see --help)\n", a);
                return 1;
            }
            const char *v = argv[++i];
            int bad = 0;
            if (!strcmp(a, "--text"))
                o->text = v;
            else if (!strcmp(a, "--tokenizer"))
                o->tokenizer = v;
            else if (!strcmp(a, "--tokens"))
                o->tokens = v;
            else if (!strcmp(a, "--config"))
                o->config = v;
            else if (!strcmp(a, "--format")) {
                int f = 0;
                while (f <= 3 && strcmp(v, tf_data_format_name((tf_data_format)f)) != 0)
                    f++;
                if (f > 3) {
                    fprintf(stderr, "eval: --format is auto, bytes, u16 or llmc, not '%s'\n", v);
                    return 1;
                }
                o->format = (tf_data_format)f;
            } else if (!strcmp(a, "--batch"))
                bad = arg_int("eval", a, v, 1, 4096, &o->batch);
            else if (!strcmp(a, "--max-windows"))
                bad = arg_int("eval", a, v, 1, INT64_MAX, &o->max_windows);
            else if (!strcmp(a, "--seq-length"))
                bad = arg_int("eval", a, v, 1, INT32_MAX, &o->seq_length);
            else if (!strcmp(a, "--threads"))
                bad = arg_int("eval", a, v, 1, 4096, &o->threads);
            else {
                fprintf(stderr, "eval: unknown option %s (see --help)\n", a);
                return 1;
            }
            if (bad)
                return 1; /* args.h said why */
        } else if (!o->path) {
            o->path = a;
        } else {
            fprintf(stderr, "eval: unexpected argument '%s' (see --help)\n", a);
            return 1;
        }
    }
    if (!o->path || !o->text == !o->tokens) {
        fprintf(stderr, "eval: give MODEL and one of --text FILE or --tokens FILE (see --help)\n");
        return 1;
    }
    if (o->tokenizer && !o->text) {
        fprintf(stderr, "eval: --tokenizer goes with --text\n");
        return 1;
    }
    return 0;
}

/* The tokens to evaluate on, as a dataset (everything in the train split). */
static int open_tokens(const options *o, int64_t vocab, tf_dataset **ds)
{
    if (o->tokens) {
        if (tf_dataset_open(o->tokens, o->format, vocab, 0.0, ds) != TF_OK)
            return fail("cannot read the tokens", tf_last_error());
        return 0;
    }
    if (!o->tokenizer) {
        if (vocab < 256)
            return fail("--text", "without --tokenizer the text is bytes, which needs a "
                                  "vocabulary of 256");
        if (tf_dataset_open(o->text, TF_DATA_BYTES, vocab, 0.0, ds) != TF_OK)
            return fail("cannot read the text", tf_last_error());
        return 0;
    }
    tf_tokenizer *tok = NULL;
    if (tf_tokenizer_load(o->tokenizer, &tok) != TF_OK)
        return fail("cannot load the tokenizer", tf_last_error());
    size_t len = 0, n = 0;
    FILE *f = fopen(o->text, "rb");
    const int opened = f != NULL, open_errno = errno;
    char *text = opened ? cli_read_all(f, &len) : NULL;
    if (opened)
        fclose(f);
    int32_t *ids = NULL;
    int rc = 0;
    if (!text) {
        fprintf(stderr, "eval: cannot read %s: %s\n", o->text,
                opened ? "read error or out of memory" : strerror(open_errno));
        rc = 1;
    } else {
        tf_tokenizer_encode(tok, text, len, NULL, 0, &n);
        ids = malloc((n ? n : 1) * sizeof *ids);
        if (!ids)
            rc = fail("--text", "out of memory for the token ids");
        else if (tf_tokenizer_encode(tok, text, len, ids, n, &n) != TF_OK)
            rc = fail("cannot encode the text", tf_tokenizer_errmsg(tok));
    }
    if (!rc && tf_dataset_from_tokens(ids, (int64_t)n, vocab, 0.0, ds) != TF_OK)
        rc = fail("the text's tokens", tf_last_error()); /* an id beyond the model's vocabulary */
    free(ids);
    free(text);
    tf_tokenizer_free(tok);
    return rc;
}

/* Scores windows [w0, w0 + B) with dec (batch B); *nll accumulates. */
static int score(tf_decoder *dec, const tf_dataset *ds, int64_t w0, int B, int T, int32_t *tok,
                 int32_t *tgt, double *nll)
{
    for (int b = 0; b < B; b++)
        if (tf_dataset_batch(ds, TF_SPLIT_TRAIN, w0 + b, 1, T, tok + (size_t)b * T,
                             tgt + (size_t)b * T) != TF_OK)
            return fail("reading a window", tf_last_error());
    double part = 0.0;
    if (tf_decoder_reset(dec) != TF_OK || tf_decoder_score(dec, T, tok, tgt, &part) != TF_OK)
        return fail("scoring", tf_decoder_errmsg(dec));
    *nll += part;
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
    if (rc)
        return 1;
    if (o.threads && tf_set_num_threads((int)o.threads) != TF_OK)
        return fail("--threads", tf_last_error());
    tf_model *model = cli_open_model("eval", o.path, o.config, 0);
    if (!model)
        return 1;
    tf_model_params mp = tf_model_default_params();
    tf_dataset *ds = NULL;
    if (tf_model_get_params(model, &mp) != TF_OK)
        rc = fail("model", tf_last_error());
    if (!rc && o.seq_length > mp.seq_length) {
        fprintf(stderr, "eval: --seq-length %" PRId64 " exceeds the model's %" PRId64 "\n",
                o.seq_length, mp.seq_length);
        rc = 1;
    }
    const int T = (int)(o.seq_length ? o.seq_length : mp.seq_length);
    if (!rc)
        rc = open_tokens(&o, mp.vocab_size, &ds);
    int64_t tokens = 0, windows = 0;
    if (!rc) {
        tokens = tf_dataset_num_tokens(ds, TF_SPLIT_TRAIN);
        windows = tf_dataset_num_batches(ds, TF_SPLIT_TRAIN, 1, T);
        if (windows < 1) {
            fprintf(stderr, "eval: %" PRId64 " tokens: fewer than one window of %d + 1\n",
                    tokens, T);
            rc = 1;
        }
        if (o.max_windows && windows > o.max_windows)
            windows = o.max_windows;
    }
    const int B = (int)(o.batch < windows ? o.batch : windows > 0 ? windows : 1);
    tf_decoder *dec = NULL, *tail = NULL;
    int32_t *tok = malloc((size_t)B * (size_t)T * sizeof *tok);
    int32_t *tgt = malloc((size_t)B * (size_t)T * sizeof *tgt);
    if (!rc && (!tok || !tgt))
        rc = fail("eval", "out of memory");
    if (!rc && tf_decoder_create(model, B, &dec) != TF_OK)
        rc = fail("decoder", tf_last_error());
    if (!rc && windows % B && tf_decoder_create(model, 1, &tail) != TF_OK)
        rc = fail("decoder", tf_last_error());

    const int tty = isatty(STDERR_FILENO);
    double nll = 0.0, t0 = cli_now();
    int64_t done = 0, next_report = 0;
    while (!rc && done < windows) {
        int n = windows - done >= B ? B : 1;
        rc = score(n == B ? dec : tail, ds, done, n, T, tok, tgt, &nll);
        done += n;
        double mean = nll / ((double)done * T), dt = cli_now() - t0;
        if (!rc && (tty || done >= next_report || done == windows)) {
            fprintf(stderr, "%seval: %" PRId64 "/%" PRId64 " windows, mean loss %.4f, "
                    "%.0f tokens/s%s", tty ? "\r" : "", done, windows, mean,
                    dt > 0 ? (double)done * T / dt : 0.0, tty && done < windows ? "" : "\n");
            next_report = done + (windows + 9) / 10; /* about ten lines off a terminal */
        }
    }
    if (!rc) {
        const double positions = (double)windows * T, mean = nll / positions;
        printf("windows     %" PRId64 " of %d + 1 tokens (%.0f positions scored), %" PRId64
               " tokens in all\n", windows, T, positions, tokens);
        printf("mean loss   %.6f nats/token\n", mean);
        printf("perplexity  %.6g\n", exp(mean));
    }
    free(tok);
    free(tgt);
    tf_decoder_free(dec);
    tf_decoder_free(tail);
    tf_dataset_free(ds);
    tf_model_free(model);
    return rc;
}
