/*
 * runtime.c -- the process-wide runtime: BLIS kernel choice and
 * initialisation, the thread count, the info call, and the GEMM wrapper.
 *
 * Why the kernel choice lives here: Debian's BLIS 0.9 does not recognise
 * some AVX-512 CPUs (e.g. AMD Zen 4) and falls back to its portable
 * "generic" kernels, about 5x slower than its "skx" kernels, which run
 * correctly on any CPU with AVX-512 F/CD/BW/DQ/VL.  BLIS reads its
 * BLIS_ARCH_TYPE variable exactly once, inside bli_init(), so the choice
 * must be made (and exported) before BLIS initialises.
 *
 * The threads: the count in effect lives here (tf_set_num_threads); the
 * workers that run parallel loops are pool.c's.  BLIS itself always runs
 * single-threaded (tfi_sgemm cuts GEMMs into blocks for the pool).
 */
#include <blis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "kernels/arch.h"
#include "kernels/bf16.h"

static pthread_once_t runtime_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static int runtime_up;                  /* guarded by runtime_lock/once */
static char requested_arch[32] = "";    /* from tf_init(), before startup */
static int requested_by_init;
static char arch_source[160] = "";
static atomic_int num_threads;

typedef struct cpu_features {
    int avx512, avx2, avx, sse3, amd;
    int x86_64_v3, x86_64_v4; /* the ISA levels arch.h's variants are built for */
} cpu_features;

static cpu_features detect_cpu(void)
{
    cpu_features f = {0, 0, 0, 0, 0, 0, 0};
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
    f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    f.avx = __builtin_cpu_supports("avx");
    f.sse3 = __builtin_cpu_supports("sse3");
    f.amd = __builtin_cpu_is("amd");
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    f.x86_64_v3 = __builtin_cpu_supports("x86-64-v3");
    f.x86_64_v4 = __builtin_cpu_supports("x86-64-v4");
#endif
#endif
    return f;
}

/* The x86-64 kernel sets of Debian's BLIS build, with what each needs. */
typedef struct arch_entry {
    const char *name;
    arch_t id;
    int needs; /* 0 none, 1 sse3, 2 avx, 3 avx2+fma, 4 avx512 */
} arch_entry;

static const arch_entry known_arches[] = {
    {"skx", BLIS_ARCH_SKX, 4},          {"knl", BLIS_ARCH_KNL, 4},
    {"haswell", BLIS_ARCH_HASWELL, 3},  {"zen3", BLIS_ARCH_ZEN3, 3},
    {"zen2", BLIS_ARCH_ZEN2, 3},        {"zen", BLIS_ARCH_ZEN, 3},
    {"excavator", BLIS_ARCH_EXCAVATOR, 3},
    {"steamroller", BLIS_ARCH_STEAMROLLER, 2},
    {"piledriver", BLIS_ARCH_PILEDRIVER, 2},
    {"bulldozer", BLIS_ARCH_BULLDOZER, 2},
    {"sandybridge", BLIS_ARCH_SANDYBRIDGE, 2},
    {"penryn", BLIS_ARCH_PENRYN, 1},    {"generic", BLIS_ARCH_GENERIC, 0},
};

static int cpu_meets(const cpu_features *f, int needs)
{
    switch (needs) {
    case 4: return f->avx512;
    case 3: return f->avx2;
    case 2: return f->avx;
    case 1: return f->sse3;
    default: return 1;
    }
}

static const arch_entry *find_arch(const char *name)
{
    for (size_t i = 0; i < sizeof known_arches / sizeof known_arches[0]; i++)
        if (strcasecmp(known_arches[i].name, name) == 0)
            return &known_arches[i];
    return NULL;
}

/* Checks a TF_BLIS_ARCH-style request.  Returns 0 if acceptable (writes the
 * BLIS id to *id, or -1 for "leave it to BLIS"/"auto"), else -1 with why. */
static int check_request(const char *req, const cpu_features *f, int *id,
                         char *why, size_t whylen)
{
    *id = -1;
    if (!req[0] || strcasecmp(req, "auto") == 0 || strcasecmp(req, "blis") == 0)
        return 0;
    const arch_entry *a = find_arch(req);
    if (!a) {
        snprintf(why, whylen, "unknown BLIS kernel set '%s' (try auto, blis, skx, "
                 "haswell, zen3, generic)", req);
        return -1;
    }
    if (!cpu_meets(f, a->needs)) {
        snprintf(why, whylen, "BLIS kernel set '%s' needs CPU features this CPU lacks", req);
        return -1;
    }
    *id = (int)a->id;
    return 0;
}

static void export_arch(int id)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%d", id);
    setenv("BLIS_ARCH_TYPE", buf, 1);
}

/* The documented bound of tf_set_num_threads() and TF_NUM_THREADS: more
 * threads than a few per CPU only add switching, and a mistyped count
 * (500, or INT_MAX) must not ask the system for that many threads. */
#define THREADS_PER_CPU 4
#define THREADS_HARD_CAP 1024

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (n < THREADS_HARD_CAP ? (int)n : THREADS_HARD_CAP) : 1;
}

static int thread_bound(void)
{
    int b = THREADS_PER_CPU * online_cpus();
    return b < THREADS_HARD_CAP ? b : THREADS_HARD_CAP;
}

static int default_threads(void)
{
    const char *env = getenv("TF_NUM_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1)
            return v < thread_bound() ? (int)v : thread_bound();
    }
    return online_cpus();
}

/* The kernel set "auto" exports, or -1 to leave BLIS's own choice.  BLIS
 * 0.9 recognises the CPUs it was written for but takes AVX-512 ones it does
 * not know (AMD Zen 4 among them) for `generic`, 5x slow.  On those:
 * - AMD: `zen3`.  Its AVX2 kernels reach the sgemm peak of `skx` on these
 *   CPUs, and only the AMD set has BLIS's small-matrix ("sup") kernels,
 *   which skip packing the operands: the products of attention heads and
 *   of small models are of that size, and run several times faster for it.
 * - anyone else: `skx`. */
static int auto_arch(const cpu_features *f)
{
    if (!f->avx512)
        return -1;
    return f->amd && f->avx2 ? (int)BLIS_ARCH_ZEN3 : (int)BLIS_ARCH_SKX;
}

static void runtime_startup(void)
{
    cpu_features f = detect_cpu();
    char why[128] = "";
    int id = -1;
    const char *req = requested_by_init ? requested_arch : getenv("TF_BLIS_ARCH");
    const char *src = requested_by_init ? "tf_init" : "TF_BLIS_ARCH";
    if (!req)
        req = "";
    if (check_request(req, &f, &id, why, sizeof why) != 0) {
        /* A bad environment switch must not break every call: fall back to
         * auto and say so in the info call.  tf_init() rejects it earlier. */
        snprintf(arch_source, sizeof arch_source, "auto (TF_BLIS_ARCH ignored: %s)", why);
        req = "auto";
        id = -1;
    }
    const char *user_env = getenv("BLIS_ARCH_TYPE");
    if (id >= 0) {
        export_arch(id);
        snprintf(arch_source, sizeof arch_source, "%s", src);
    } else if (strcasecmp(req, "blis") == 0) {
        snprintf(arch_source, sizeof arch_source, "blis");
    } else if (user_env && *user_env) {
        snprintf(arch_source, sizeof arch_source, "BLIS_ARCH_TYPE");
    } else {
        int id_auto = auto_arch(&f);
        if (id_auto >= 0)
            export_arch(id_auto);
        if (!arch_source[0])
            snprintf(arch_source, sizeof arch_source, "auto");
    }
    bli_init();
    tfi_arch_active();
    atomic_store(&num_threads, default_threads());
    runtime_up = 1;
}

tf_status tfi_runtime_ensure(void)
{
    pthread_once(&runtime_once, runtime_startup);
    return TF_OK;
}

TF_API tf_status tf_init(const char *blis_arch)
{
    cpu_features f = detect_cpu();
    char why[128];
    int id;
    const char *req = blis_arch ? blis_arch : "";
    if (blis_arch && check_request(req, &f, &id, why, sizeof why) != 0)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_init: %s", why);
    pthread_mutex_lock(&runtime_lock);
    if (runtime_up) {
        pthread_mutex_unlock(&runtime_lock);
        if (blis_arch && strcasecmp(blis_arch, "auto") != 0 &&
            strcasecmp(blis_arch, bli_arch_string(bli_arch_query_id())) != 0)
            return tfi_fail(NULL, TF_ERR_STATE,
                            "tf_init: the runtime is already running kernel set '%s'; "
                            "BLIS cannot switch kernels after it initialised",
                            bli_arch_string(bli_arch_query_id()));
        return TF_OK;
    }
    if (blis_arch) {
        snprintf(requested_arch, sizeof requested_arch, "%s", blis_arch);
        requested_by_init = 1;
    }
    pthread_mutex_unlock(&runtime_lock);
    return tfi_runtime_ensure();
}

TF_API int tf_version_number(void)
{
    return TF_VERSION_NUMBER;
}

TF_API const char *tf_version_string(void)
{
    return TF_VERSION_STRING;
}

/* Serialises tf_set_num_threads calls: the count and the pool's size. */
static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;

TF_API tf_status tf_set_num_threads(int n)
{
    if (n < 1)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_set_num_threads: n must be >= 1 (got %d)", n);
    tfi_runtime_ensure();
    int bound = thread_bound();
    if (n > bound)
        n = bound;
    pthread_mutex_lock(&threads_lock);
    int err = 0;
    tfi_pool_resize(n, &err);
    if (err) {
        int cur = tfi_num_threads();
        pthread_mutex_unlock(&threads_lock);
        return tfi_fail(NULL, TF_ERR_NOMEM,
                        "tf_set_num_threads: the system refused to create the threads for %d "
                        "(%s: a process or cgroup limit such as ulimit -u or pids.max?); "
                        "the count stays %d",
                        n, strerror(err), cur);
    }
    atomic_store(&num_threads, n);
    pthread_mutex_unlock(&threads_lock);
    return TF_OK;
}

TF_API int tf_get_num_threads(void)
{
    tfi_runtime_ensure();
    return tfi_num_threads();
}

/* ---- the element-wise kernels' instruction set (kernels/arch.h) -------- */

static pthread_once_t arch_once = PTHREAD_ONCE_INIT;
static tfi_arch active_arch;            /* written once, under arch_once */
static char arch_choice_source[128];

static const char *const arch_names[TFI_ARCH_COUNT] = {"generic", "avx2", "avx512"};

const char *tfi_arch_name(tfi_arch arch)
{
    return (unsigned)arch < TFI_ARCH_COUNT ? arch_names[arch] : "unknown";
}

int tfi_arch_supported(tfi_arch arch)
{
    cpu_features f = detect_cpu();
    switch (arch) {
    case TFI_ARCH_GENERIC: return 1;
    case TFI_ARCH_AVX2: return f.x86_64_v3;
    case TFI_ARCH_AVX512: return f.x86_64_v4;
    }
    return 0;
}

/* The CPU's best set, or TF_ARCH's if the CPU runs it; a request above
 * what the CPU runs is lowered to the best it does (and said so in
 * tf_get_info), a name that is not a set is ignored.  Like TF_BLIS_ARCH, a
 * bad switch must not make every call fail. */
static void arch_startup(void)
{
    tfi_arch best = TFI_ARCH_GENERIC;
    for (int a = TFI_ARCH_COUNT - 1; a > 0; a--)
        if (tfi_arch_supported((tfi_arch)a)) {
            best = (tfi_arch)a;
            break;
        }
    active_arch = best;
    snprintf(arch_choice_source, sizeof arch_choice_source, "auto");
    const char *env = getenv("TF_ARCH");
    if (!env || !*env || strcasecmp(env, "auto") == 0)
        return;
    for (int a = 0; a < TFI_ARCH_COUNT; a++) {
        if (strcasecmp(env, arch_names[a]) != 0)
            continue;
        if (a <= (int)best) {
            active_arch = (tfi_arch)a;
            snprintf(arch_choice_source, sizeof arch_choice_source, "TF_ARCH");
        } else {
            snprintf(arch_choice_source, sizeof arch_choice_source,
                     "TF_ARCH (%s lowered to %s: the CPU does not run it)", arch_names[a],
                     arch_names[best]);
        }
        return;
    }
    snprintf(arch_choice_source, sizeof arch_choice_source,
             "auto (TF_ARCH ignored: '%.40s' is not auto, generic, avx2 or avx512)", env);
}

tfi_arch tfi_arch_active(void)
{
    pthread_once(&arch_once, arch_startup);
    return active_arch;
}

int tfi_num_threads(void)
{
    int n = atomic_load(&num_threads);
    if (n <= 1)
        return 1;
    /* by default the workers are made by the first loop; if the system
     * refused some there, the count in effect is what it gave */
    int refused = tfi_pool_refused();
    return refused && refused < n ? refused : n;
}

int tfi_threads_for(int64_t work)
{
    return work < TFI_PARALLEL_MIN_WORK ? 1 : tfi_num_threads();
}

/* A product of few rows is small in multiply-adds but still streams all of
 * B from memory (a decoder's step: every weight, once per token), so B's
 * size counts as work too. */
static int gemm_is_large(int64_t m, int64_t n, int64_t k)
{
    return m * n * k >= 64 * TFI_PARALLEL_MIN_WORK || n * k >= 8 * TFI_PARALLEL_MIN_WORK;
}

int tfi_gemm_threads(int64_t m, int64_t n, int64_t k)
{
    return gemm_is_large(m, n, k) ? tfi_num_threads() : 1;
}

TF_API tf_status tf_get_info(tf_info *info)
{
    if (!info)
        return tfi_fail(NULL, TF_ERR_ARGUMENT, "tf_get_info: info is NULL");
    tfi_runtime_ensure();
    cpu_features f = detect_cpu();
    tf_info full;
    memset(&full, 0, sizeof full);
    full.struct_size = sizeof full;
    full.version_number = TF_VERSION_NUMBER;
    full.version_string = TF_VERSION_STRING;
    full.blis_version = bli_info_get_version_str();
    arch_t id = bli_arch_query_id();
    full.blis_arch = bli_arch_string(id);
    full.blis_arch_source = arch_source;
    full.cpu_avx512 = f.avx512;
    full.cpu_avx2 = f.avx2;
    full.blis_arch_generic = id == BLIS_ARCH_GENERIC;
    full.num_threads = tfi_num_threads();
    full.kernel_arch = tfi_arch_name(tfi_arch_active());
    full.kernel_arch_source = arch_choice_source;
    full.bf16_kernel = tfi_bf16_isa_name(tfi_bf16_isa_best());
    return tfi_params_out(info, &full, sizeof full, TFI_PARAMS_MIN(tf_info, version_number),
                          "tf_get_info", "tf_info", NULL);
}

/* Blocks of a split GEMM: two per thread, so that a thread the system
 * deschedules holds back half its share, while each block still packs the
 * shared operand once for a large part of the product (bench/shared_cores.sh
 * on 2 Zen 5 cores: 2 blocks per thread 0.300 s quiet / 0.521 s beside a
 * busy process, 1 block 0.302 / 0.522, 4 blocks 0.320 / 0.515); none
 * thinner than GEMM_MIN_BLOCK rows or columns, so that packing the shared
 * operand again stays cheap. */
#define GEMM_BLOCKS_PER_THREAD 2
#define GEMM_MIN_BLOCK 96
#define GEMM_ALIGN 48
/* A large product whose C is too small for two such blocks is deep instead
 * (a weight gradient: C [slots, d] summed over every row of a batch, k in
 * the thousands), and one thread alone would run it while the others wait
 * (in the 64-slot vision model every q, k, v and proj set's two weight
 * gradients: a tenth of the step's CPU time).  Its blocks may be as thin as
 * GEMM_THIN_BLOCK, on multiples of GEMM_THIN_ALIGN (whole 16-wide register
 * tiles): packing the shared operand once more costs 1/(2 * 32) of a
 * block's multiply-adds at any k. */
#define GEMM_THIN_BLOCK 32
#define GEMM_THIN_ALIGN 16

/* One single-threaded BLIS call on row-major operands; `packed` keeps BLIS
 * on its packing ("conventional") path, whose every element is the same
 * sum whatever the call's m and n (see tfi_sgemm). */
static void gemm_block(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                       float *C, int64_t ldc, int packed)
{
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
    if (packed)
        bli_rntm_disable_l3_sup(&rntm);
    /* Row-major: row stride = leading dimension, column stride = 1.  A
     * transposed operand keeps its stored strides and gets the trans flag. */
    bli_sgemm_ex(ta ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 tb ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, m, n, k, &alpha,
                 (float *)A, lda, 1, (float *)B, ldb, 1, &beta, C, ldc, 1, NULL, &rntm);
}

typedef struct gemm_split {
    int ta, tb, rows;
    int64_t m, n, k, len, step, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_split;

static void gemm_split_task(void *arg, int64_t b, int worker)
{
    const gemm_split *g = arg;
    int64_t i0 = b * g->step, cnt = g->len - i0 < g->step ? g->len - i0 : g->step;
    if (g->rows)
        gemm_block(g->ta, g->tb, cnt, g->n, g->k, g->alpha, g->ta ? g->A + i0 : g->A + i0 * g->lda,
                   g->lda, g->B, g->ldb, g->beta, g->C + i0 * g->ldc, g->ldc, 1);
    else
        gemm_block(g->ta, g->tb, g->m, cnt, g->k, g->alpha, g->A, g->lda,
                   g->tb ? g->B + i0 * g->ldb : g->B + i0, g->ldb, g->beta, g->C + i0, g->ldc, 1);
}

void tfi_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb,
               float beta, float *C, int64_t ldc, int nthreads)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) { /* C = beta * C: BLIS would too, but say it plainly */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    /* Large products are split along C's longer side into more blocks than
     * threads, each a single-threaded BLIS call, handed out dynamically by
     * the pool.  BLIS's own team (BLIS_NUM_THREADS > 1) synchronises with
     * busy-waiting barriers that never yield: on a shared machine a
     * descheduled team member stalls the others for a whole time slice at
     * every barrier, so 2 threads ran 10x slower than 1 under load.  Here a
     * late thread holds at most one block and the others take the rest.
     *
     * Every call of a large product, split or not, takes BLIS's packing
     * path: there an element of C is the same sum over k (blocked by k
     * alone, the same micro-kernel, edges computed through a full tile)
     * whatever the call's m and n, so the result does not depend on the
     * split or the thread count (test_gemm_split, test_threads_same_bits).
     * BLIS's small-matrix ("sup") path would sum in an order that follows
     * the block's shape; it also runs thin blocks of a wide product at half
     * the rate, while a whole large product runs as fast either way.  Small
     * products keep BLIS's own choice: they run in one call. */
    int packed;
    if (nthreads <= 0) {
        packed = gemm_is_large(m, n, k);
        nthreads = packed ? tfi_num_threads() : 1;
    } else {
        packed = nthreads > 1; /* 1: inside a task of a parallel loop */
    }
    int rows = m >= n;
    int64_t len = rows ? m : n;
    const int thin = len < 2 * GEMM_MIN_BLOCK;
    const int64_t min_block = thin ? GEMM_THIN_BLOCK : GEMM_MIN_BLOCK;
    const int64_t align = thin ? GEMM_THIN_ALIGN : GEMM_ALIGN;
    int64_t blocks = nthreads > 1 ? (int64_t)nthreads * GEMM_BLOCKS_PER_THREAD : 1;
    if (blocks > len / min_block)
        blocks = len / min_block;
    if (blocks <= 1) {
        gemm_block(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, packed);
        return;
    }
    /* Block edges on multiples of GEMM_ALIGN, so that blocks keep whole
     * register tiles of every kernel set (no edge tiles but the last). */
    int64_t step = (len + blocks - 1) / blocks;
    step = (step + align - 1) / align * align;
    blocks = (len + step - 1) / step;
    if (nthreads > blocks)
        nthreads = (int)blocks;
    gemm_split g = {ta, tb, rows, m, n, k, len, step, lda, ldb, ldc, alpha, beta, A, B, C};
    tfi_parallel_for(blocks, nthreads, gemm_split_task, &g);
}
