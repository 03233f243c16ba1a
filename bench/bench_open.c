/*
 * bench_open.c -- opening a checkpoint to run it: time and peak memory.
 *
 *   build/bench/bench_open [reps] [new_tokens]
 *
 * Writes a checkpoint of the official 150M shape (L=12, d=768, 12 heads,
 * qkv=proj=768, ffn=3072, V=50304, seq 2048; random weights, F32) into a
 * temporary directory, reads it once so that the page cache is warm, then
 * runs itself as a fresh process (so that nothing of the writing counts)
 * for each measurement:
 *   open          tf_model_open alone, reps times (default 5): the median
 *   open+decode   once: tf_model_open, a 16-token prompt, new_tokens
 *                 (default 256) generated greedily
 *   create+load   once, for comparison: tf_model_create (which draws an
 *                 initialisation) and tf_model_load (the whole file in
 *                 memory, then copied), what opening cost before
 * Each child reports its wall time for the open and its peak resident set
 * (VmHWM of /proc/self/status; getrusage's ru_maxrss agrees), against the
 * weights' bytes in float32.  Targets: open < 1.5 s, peak of open+decode
 * <= 1.25 x the weights.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_configs.h"
#include "bench_util.h"
#include "tokenformer.h"

#define TARGET_OPEN_S 1.5
#define TARGET_RSS_RATIO 1.25

static void die(const char *what)
{
    fprintf(stderr, "bench_open: %s: %s\n", what, tf_last_error());
    exit(1);
}

/* kB of a "Name:   123 kB" line of /proc/self/status, or -1. */
static long status_kb(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0 && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* ---- a child: one measurement, printed as one line for the parent ------- */

static int child(const char *mode, const char *path, int new_tokens)
{
    long base = status_kb("VmRSS");
    tf_model *m = NULL;
    double t0 = now();
    if (strcmp(mode, "create+load") == 0) {
        tf_model_params p = tf_model_default_params();
        if (tf_checkpoint_info(path, &p, NULL) != TF_OK || tf_model_create(&p, &m) != TF_OK ||
            tf_model_load(m, NULL, path) != TF_OK)
            die(mode);
    } else if (tf_model_open(path, &m) != TF_OK) {
        die("tf_model_open");
    }
    double t_open = now() - t0, tok_s = 0.0;
    if (strcmp(mode, "open+decode") == 0) {
        tf_decoder *dec = NULL;
        int32_t prompt[16], *out = malloc((size_t)new_tokens * sizeof *out);
        for (int i = 0; i < 16; i++)
            prompt[i] = (int32_t)(i * 997 % 50304);
        tf_sampler_params sp = tf_sampler_default_params();
        sp.temperature = 0.0;
        int produced = 0;
        if (!out || tf_decoder_create(m, 1, &dec) != TF_OK ||
            tf_decoder_prefill(dec, 16, prompt, NULL) != TF_OK)
            die("prefill");
        double t1 = now();
        if (tf_decoder_generate(dec, new_tokens, &sp, NULL, 0, out, &produced, NULL, NULL) !=
            TF_OK)
            die("generate");
        tok_s = produced / (now() - t1);
        tf_decoder_free(dec);
        free(out);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%.6f %ld %ld %ld %lld %.3f\n", t_open, status_kb("VmHWM"), (long)ru.ru_maxrss, base,
           (long long)tf_model_num_params(m), tok_s);
    tf_model_free(m);
    return 0;
}

/* ---- the parent -------------------------------------------------------------- */

typedef struct result {
    double open_s, tok_s;
    long hwm_kb, maxrss_kb, base_kb;
    long long params;
} result;

static result run_child(const char *self, const char *mode, const char *path, int new_tokens)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("bench_open: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        char tokens[32];
        snprintf(tokens, sizeof tokens, "%d", new_tokens);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(self, self, "--child", mode, path, tokens, (char *)NULL);
        perror("bench_open: exec");
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    result r = {0};
    int got = in ? fscanf(in, "%lf %ld %ld %ld %lld %lf", &r.open_s, &r.hwm_kb, &r.maxrss_kb,
                          &r.base_kb, &r.params, &r.tok_s)
                 : 0;
    if (in)
        fclose(in);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != 6 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_open: the %s child failed\n", mode);
        exit(1);
    }
    return r;
}

static void warm(const char *path)
{
    FILE *f = fopen(path, "rb");
    static char buf[1 << 20];
    while (f && fread(buf, 1, sizeof buf, f) == sizeof buf)
        ;
    if (f)
        fclose(f);
}

static void cpu_name(char *out, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    snprintf(out, cap, "?");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v) {
                v += v[1] == ' ' ? 2 : 1;
                v[strcspn(v, "\n")] = '\0';
                snprintf(out, cap, "%s", v);
            }
            break;
        }
    if (f)
        fclose(f);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child(argv[2], argv[3], atoi(argv[4]));
    int reps = argc > 1 ? atoi(argv[1]) : 5, new_tokens = argc > 2 ? atoi(argv[2]) : 256;
    if (reps < 1 || new_tokens < 1 || new_tokens > 2000) {
        fprintf(stderr, "usage: bench_open [reps >= 1] [new_tokens in 1..2000]\n");
        return 2;
    }
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        perror("bench_open: /proc/self/exe");
        return 1;
    }
    self[len] = '\0';
    const char *tmp = getenv("TMPDIR");
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/bench_open.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("bench_open: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/150m.safetensors", dir);

    tf_model_params p = official_150m(2048);
    tf_model *m = NULL;
    double t0 = now();
    if (tf_model_create(&p, &m) != TF_OK || tf_model_save(m, NULL, path) != TF_OK)
        die("writing the 150M checkpoint");
    const long long weights = tf_model_num_params(m) * 4LL;
    tf_model_free(m);
    printf("wrote %s (%.0f MB of weights) in %.1f s\n", path, weights / 1e6, now() - t0);
    warm(path);

    char cpu[128];
    cpu_name(cpu, sizeof cpu);
    printf("cpu: %s, %d threads\n", cpu, tf_get_num_threads());
    const char *modes[] = {"open", "open+decode", "create+load"};
    for (int k = 0; k < 3; k++) {
        int n = k == 0 ? reps : 1; /* peak memory varies little; open time does */
        double t[64], rss[64], tok[64];
        result r = {0};
        for (int i = 0; i < n && i < 64; i++) {
            r = run_child(self, modes[k], path, new_tokens);
            t[i] = r.open_s;
            rss[i] = (double)r.hwm_kb;
            tok[i] = r.tok_s;
        }
        n = n < 64 ? n : 64;
        double fastest = t[0];
        for (int i = 1; i < n; i++)
            fastest = t[i] < fastest ? t[i] : fastest;
        double open_s = median(t, n), peak = median(rss, n) * 1024.0;
        double ratio = peak / (double)weights;
        printf("%-12s open %.3f s (fastest %.3f)   peak RSS %.0f MB = %.3f x weights "
               "(ru_maxrss %.0f MB, at start %.0f MB)",
               modes[k], open_s, fastest, peak / 1e6, ratio, r.maxrss_kb * 1024.0 / 1e6,
               r.base_kb * 1024.0 / 1e6);
        if (k == 1)
            printf("   decode %.1f tokens/s", median(tok, n));
        if (k < 2)
            printf("   [%s]", k == 0 ? (open_s < TARGET_OPEN_S ? "open < 1.5 s: met"
                                                               : "open < 1.5 s: MISSED")
                                     : (ratio <= TARGET_RSS_RATIO ? "<= 1.25 x: met"
                                                                  : "<= 1.25 x: MISSED"));
        printf("\n");
    }
    unlink(path);
    rmdir(dir);
    return 0;
}
