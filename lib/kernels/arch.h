/*
 * arch.h -- the instruction-set variants of the element-wise kernels: the
 * sets, and the macro that compiles one kernel body once per set.
 *
 * Each row kernel is written once, as an always-inline body in plain C
 * that the compiler vectorises; TFI_ARCH_VARIANTS compiles that body for
 * the baseline (SSE2), for AVX2 + FMA (x86-64-v3) and for AVX-512
 * (x86-64-v4), and puts the three in a table indexed by tfi_arch.  The
 * runtime picks the set once (runtime.c: the CPU's best, or TF_ARCH, never
 * above what the CPU runs), and callers index the table with
 * tfi_arch_active().  Unlike GCC's target_clones, whose ifunc always takes
 * the CPU's best, every variant the CPU supports can be called, so the
 * tests run the AVX2 code on an AVX-512 machine too.
 *
 * The variants compute the same math; where their results may differ (FMA
 * contraction, vector width in a sum that is not laid out in fixed lanes),
 * each kernel's header says by how much.  Outside x86-64 GCC the three
 * entries are the same code.
 */
#ifndef TF_KERNELS_ARCH_H
#define TF_KERNELS_ARCH_H

typedef enum tfi_arch {
    TFI_ARCH_GENERIC = 0, /* the compiler's baseline for the target */
    TFI_ARCH_AVX2 = 1,    /* x86-64-v3: AVX2, FMA, BMI1/2, F16C, ... */
    TFI_ARCH_AVX512 = 2   /* x86-64-v4: AVX-512 F/CD/BW/DQ/VL */
} tfi_arch;
#define TFI_ARCH_COUNT 3

/* The set the library's kernels run with (chosen once; runtime.c). */
tfi_arch tfi_arch_active(void);
/* 1 if this CPU can run the set's code. */
int tfi_arch_supported(tfi_arch arch);
/* "generic", "avx2", "avx512". */
const char *tfi_arch_name(tfi_arch arch);

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TFI_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#define TFI_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
#else
#define TFI_TARGET_AVX2
#define TFI_TARGET_AVX512
#endif

/* For a kernel body `static inline TFI_BODY void name##_body params`,
 * defines name##_generic, name##_avx2, name##_avx512 (static, same
 * parameters) and `name##_variants`, their table indexed by tfi_arch.  The
 * body is inlined into each, and with it the helpers it calls, so each
 * variant is compiled whole for its set. */
#define TFI_BODY __attribute__((always_inline))
#define TFI_ARCH_VARIANTS(name, params, args)                                   \
    static void name##_generic params { name##_body args; }                     \
    TFI_TARGET_AVX2 static void name##_avx2 params { name##_body args; }        \
    TFI_TARGET_AVX512 static void name##_avx512 params { name##_body args; }    \
    static void (*const name##_variants[TFI_ARCH_COUNT]) params = {             \
        name##_generic, name##_avx2, name##_avx512}

#endif /* TF_KERNELS_ARCH_H */
