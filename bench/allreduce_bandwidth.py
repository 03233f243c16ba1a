#!/usr/bin/python3
"""MPI_Allreduce of float32 buffers (MPI_SUM, in place) between the ranks
of this job: the time per call and the bandwidth, for buffer sizes up to a
gradient buffer's, and a fit of t = alpha + 2 (R-1)/R x bytes / beta (the
ring model of docs/scaling-out.md) to the sizes up to --fit-mb.

    mpirun -np 2 /usr/bin/python3 bench/allreduce_bandwidth.py [--max-mb 64] [--reps 10]

Rank 0 prints a table and the fit; with --json, also the fit as JSON (for
bench/scaling_projection.py).  On one machine the ranks talk through shared
memory (Open MPI's vader BTL), so beta is the loopback bandwidth; buffers
that no longer fit the last-level cache run at the memory's pace instead
(on a machine shared with other work, far below it), hence the fit's
bound.
"""

import argparse
import json
import sys
import time

import numpy as np
from mpi4py import MPI


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-kb", type=float, default=4)
    ap.add_argument("--max-mb", type=float, default=64)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--fit-mb", type=float, default=4, help="the largest size fitted")
    ap.add_argument("--json", help="write the fit here (rank 0)")
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    R = comm.Get_size()
    if R < 2:
        sys.exit("allreduce_bandwidth: run it with mpirun -np R, R >= 2")
    sizes, size = [], int(args.min_kb * 1024)
    while size <= args.max_mb * (1 << 20):
        sizes.append(size)
        size *= 4
    rows = []
    for nbytes in sizes:
        buf = np.ones(nbytes // 4, np.float32)
        times = []
        for rep in range(args.reps + 2):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf)
            t = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
            if rep >= 2:
                times.append(t)
        rows.append((nbytes, float(np.median(times))))
    if comm.Get_rank() != 0:
        return
    ring = 2.0 * (R - 1) / R
    # least squares t = alpha + ring * bytes / beta
    fit = [(b, t) for b, t in rows if b <= args.fit_mb * (1 << 20)]
    x = np.array([ring * b for b, _ in fit])
    y = np.array([t for _, t in fit])
    A = np.vstack([np.ones_like(x), x]).T
    (alpha, inv_beta), *_ = np.linalg.lstsq(A, y, rcond=None)
    beta = 1.0 / inv_beta
    print("MPI_Allreduce, %d ranks, float32 sum in place (median of %d):" % (R, args.reps))
    print("| bytes | time | algorithm bandwidth | bus bandwidth (x 2(R-1)/R) |")
    print("|---:|---:|---:|---:|")
    for b, t in rows:
        print("| %s | %.3f ms | %.2f GB/s | %.2f GB/s |"
              % (human(b), t * 1e3, b / t / 1e9, ring * b / t / 1e9))
    print("fit up to %s: t = %.1f us + 2(R-1)/R x bytes / (%.2f GB/s)"
          % (human(fit[-1][0]), alpha * 1e6, beta / 1e9))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ranks": R, "alpha_s": alpha, "beta_bytes_per_s": beta,
                       "rows": [{"bytes": b, "seconds": t} for b, t in rows]}, f, indent=1)


def human(b):
    for unit in ("B", "KB", "MB", "GB"):
        if b < 1024 or unit == "GB":
            return "%g %s" % (b, unit)
        b /= 1024.0
    return str(b)


if __name__ == "__main__":
    main()
