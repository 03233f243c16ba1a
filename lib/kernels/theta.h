/*
 * theta.h -- Pattention's row-wise normalisation Theta, forward and
 * backward (internal).  Two implementations of each: a plain one that reads
 * like the math (double accumulation, libm erf/exp), and a fast one
 * (vectorised polynomial erf/exp, OpenMP over rows) that the library uses,
 * compiled once per instruction set (arch.h).  The tests hold every
 * variant the CPU runs to the plain one.
 *
 * Buffers, all [N, n] row-major unless said:
 *   A  in: scores X K^T.  out: what backward needs -- for l2_norm_gelu the
 *      scaled scores z = a * tau / ||a||, for gelu_l2_norm the scores a
 *      themselves (unchanged), for softmax unused (unchanged).
 *   S  out: Theta(A).
 *   R  [N] out: per-row scale, tau/||a|| or tau/||gelu(a)|| (0 for a
 *      zero-norm row: the documented guard), unused for softmax.
 * Backward: G in: dL/dS; out: dL/dA (in place).
 */
#ifndef TF_KERNELS_THETA_H
#define TF_KERNELS_THETA_H

#include <stdint.h>

#include "kernels/arch.h"
#include "tokenformer.h"

void tfi_theta_forward(tf_norm_type norm, float tau, int64_t N, int64_t n,
                       float *A, float *S, float *R);
void tfi_theta_backward(tf_norm_type norm, float tau, int64_t N, int64_t n,
                        const float *A, const float *S, const float *R, float *G);

/* The fast rows of one instruction set, on the calling thread (for tests). */
void tfi_theta_forward_arch(tfi_arch arch, tf_norm_type norm, float tau, int64_t N,
                            int64_t n, float *A, float *S, float *R);
void tfi_theta_backward_arch(tfi_arch arch, tf_norm_type norm, float tau, int64_t N,
                             int64_t n, const float *A, const float *S, const float *R,
                             float *G);

void tfi_theta_forward_plain(tf_norm_type norm, float tau, int64_t N, int64_t n,
                             float *A, float *S, float *R);
void tfi_theta_backward_plain(tf_norm_type norm, float tau, int64_t N, int64_t n,
                              const float *A, const float *S, const float *R, float *G);

/* The vectorised scalar functions of one instruction set, exposed for
 * tests: gelu(x) = x Phi(x), gelu'(x) = Phi(x) + x phi(x), with Phi the
 * standard normal CDF and phi its density, and e^x. */
void tfi_gelu_fast(tfi_arch arch, const float *x, float *y, int64_t count);
void tfi_gelu_grad_fast(tfi_arch arch, const float *x, float *dy, int64_t count);
void tfi_exp_fast(tfi_arch arch, const float *x, float *y, int64_t count);

#endif /* TF_KERNELS_THETA_H */
