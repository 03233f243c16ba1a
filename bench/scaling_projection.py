#!/usr/bin/python3
"""Projected data-parallel scaling of the official 150M and 1.5B configs,
from the training compute rate measured on this machine and a ring-allreduce
model of the gradient sum.  docs/scaling-out.md explains the model and
quotes the tables.

    /usr/bin/python3 bench/scaling_projection.py [--core-gflops G] [--steps 4]
        [--alpha-us 25] [--cores 2,64]

The model, per optimizer step, for R ranks (one rank = one machine of C
cores, all of them used by the library's threads):

  N        parameters of the config (tf_model_num_params' count)
  S        gradient bytes = 4 N (float32, one contiguous buffer)
  F        training FLOPs per token = 6 N + 12 L T d (the trainer's count)
  G        global batch in tokens (the configs': 1024 sequences x 2048)
  f        sustained FLOP/s of one core, measured here (bench_model's
           config, one thread; --core-gflops overrides)
  T_comp = F G / (R C f)                          compute of one rank
  T_comm = 2 (R-1)/R S / B + 2 (R-1) alpha        ring allreduce: each rank
           sends and receives 2 (R-1)/R of the buffer over its link of B
           bytes/s, in 2 (R-1) latency-bound rounds of alpha seconds
  E      = T_comp / (T_comp + T_comm)             sums after backward
  E_ovl  = T_comp / (T_comp + max(0, T_comm - 2/3 T_comp))
                                                  sums hidden behind the
                                                  backward (2/3 of the
                                                  compute), the best case

Without mpi4py or a network this is arithmetic only: the one measurement is
f, taken from a few training steps of bench_model's config through the
Python bindings.
"""

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "bindings", "python"))
import numpy as np  # noqa: E402

import tokenformer as tf  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
CONFIGS = [("150M", "tests/data/configs/150M_train_pile.yml"),
           ("1.5B", "tests/data/configs/1-5B_train_pile.yml")]
GLOBAL_SEQUENCES = 1024  # both configs' global batch (their comments: 32 x 4 x 8, 8 x 2 x 64)
RANKS = (8, 64, 512)
LINKS = ((10, "10 Gbit/s"), (100, "100 Gbit/s"))


def num_params(p):
    """tf_model_num_params of a model of params p, without building it."""
    d = p.hidden_size
    per_layer = 2 * d * (3 * p.qkv_slot_num + p.proj_slot_num + p.ffn_slot_num)
    return p.vocab_size * d + p.num_layers * per_layer + 2 * d


def flops_per_token(p):
    """examples/train.c's flops_per_token: 6 N + 12 L T d (N without the norm)."""
    n = 2.0 * p.hidden_size * (3 * p.qkv_slot_num + p.proj_slot_num + p.ffn_slot_num) \
        * p.num_layers + p.vocab_size * p.hidden_size
    return 6.0 * n + 12.0 * p.num_layers * p.seq_length * p.hidden_size


def measure_core_flops(steps):
    """FLOP/s of one thread training bench_model's config (V 256, d 256, L 4,
    qkv = proj 256, ffn 1024, T 256, B 8): the median step."""
    tf.set_num_threads(1)
    p = tf.ModelParams(num_layers=4, hidden_size=256, num_attention_heads=4, qkv_slot_num=256,
                       proj_slot_num=256, ffn_slot_num=1024, seq_length=256, vocab_size=256)
    rng = np.random.default_rng(1)
    with tf.Model(p) as m, tf.Optimizer(m) as opt:
        assert m.num_params == num_params(p), "num_params() disagrees with the library"
        times = []
        for i in range(steps + 1):
            tok, tgt = rng.integers(0, 256, (8, 256)), rng.integers(0, 256, (8, 256))
            t0 = time.perf_counter()
            m.forward(tok, tgt, logits=False)
            m.backward()
            opt.step()
            if i:
                times.append(time.perf_counter() - t0)
    return flops_per_token(p) * 8 * 256 / float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--core-gflops", type=float, help="skip the measurement: f in GFLOP/s")
    ap.add_argument("--steps", type=int, default=4, help="timed steps of the measurement")
    ap.add_argument("--alpha-us", type=float, default=25.0,
                    help="latency of one allreduce round (MPI over TCP: tens of us)")
    ap.add_argument("--cores", default="2,64", help="cores per rank, one table each")
    args = ap.parse_args()
    f = args.core_gflops * 1e9 if args.core_gflops else measure_core_flops(args.steps)
    alpha = args.alpha_us * 1e-6
    print("f = %.1f GFLOP/s per core (%s); alpha = %g us; global batch %d x 2048 tokens"
          % (f / 1e9, "given" if args.core_gflops else "measured: bench_model, 1 thread",
             args.alpha_us, GLOBAL_SEQUENCES))
    for cores in [int(c) for c in args.cores.split(",")]:
        print("\nranks of %d cores (%.0f GFLOP/s each):\n" % (cores, cores * f / 1e9))
        print("| config | N | gradient | ranks | T_comp | T_comm 10G | E 10G (overlap) | "
              "T_comm 100G | E 100G (overlap) | tokens/s, 100G |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, path in CONFIGS:
            with tf.Config.load(os.path.join(ROOT, path)) as cfg:
                p = cfg.model_params()
            n = num_params(p)
            S = 4.0 * n
            F = flops_per_token(p)
            G = GLOBAL_SEQUENCES * p.seq_length
            for R in RANKS:
                t_comp = F * G / (R * cores * f)
                row = "| %s | %.3g | %.2f GB | %d | %s" % (name, n, S / 1e9, R, secs(t_comp))
                for gbit, _ in LINKS:
                    B = gbit * 1e9 / 8
                    t_comm = 2.0 * (R - 1) / R * S / B + 2 * (R - 1) * alpha
                    e = t_comp / (t_comp + t_comm)
                    e_ovl = t_comp / (t_comp + max(0.0, t_comm - 2.0 / 3.0 * t_comp))
                    row += " | %s | %.0f%% (%.0f%%)" % (secs(t_comm), 100 * e, 100 * e_ovl)
                row += " | %.3g |" % (e * R * cores * f / F)
                print(row)


def secs(t):
    return "%.3g s" % t if t >= 0.1 else "%.3g ms" % (t * 1e3)


if __name__ == "__main__":
    main()
