#!/usr/bin/python3
"""Train a byte-level TokenFormer data-parallel over MPI processes (mpi4py).

    mpirun -np 2 /usr/bin/python3 bindings/python/examples/train_data_parallel.py \\
        [--steps 100] [--batch 8] [--accum 1] [--seq 64] [--threads 1] [--overlap] \\
        [--text FILE] [--save ckpt.safetensors] [--check-every 10]

Every process holds the whole model (the same seed gives the same
parameters) and computes its share of each step's global batch: the
--accum micro-batches of --batch sequences that one process would train
on, split evenly over the processes (batch i is a pure function of the
seed and i, so R processes see exactly the tokens one process sees).  The
gradients are summed in place in the model's gradient buffer (a numpy view,
no copies) with ``comm.Allreduce``; with --overlap, each part of the
buffer is summed with ``comm.Iallreduce`` as soon as backward reports it
final, while the rest of the backward runs.  Every process then applies
the same optimizer step (grad_accum_steps counts the pieces of all
processes, so the sum becomes the mean) and the models stay bit-identical,
which the processes check with Model.checksum every --check-every steps.

Process 0 prints one line per step: ``step N loss L`` (the global batch's
mean loss) and saves the checkpoint.  Uses the package of this source tree
unless ``tokenformer`` is importable already.  Needs Debian's
python3-mpi4py; without mpirun it runs as one process.
"""

import argparse
import math
import os
import sys
import time

try:
    import tokenformer as tf
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import tokenformer as tf

import numpy as np
from mpi4py import MPI

BUILTIN = (
    "TokenFormer treats model parameters as tokens. Every linear projection of a "
    "Transformer becomes a Pattention layer: the input tokens attend to learnable key and "
    "value parameter tokens, and a trained model grows by appending parameter tokens. "
) * 16


def my_share(B, accum, rank, size):
    """This process's pieces of a step: (micro-batch, first row, rows) triples.

    The step's accum x B sequences, in order (micro-batch k's rows are
    sequences k*B .. k*B+B-1), are cut into ``size`` equal runs, one per
    process, and each run into pieces of c = gcd(run, B) rows, so that no
    piece crosses a micro-batch.  Every piece's loss is a mean over the same
    number of tokens, so the mean of the pieces' losses (and gradients) is
    the global batch's."""
    total = B * accum
    if total % size:
        raise SystemExit("the global batch (%d x %d = %d sequences) does not split evenly "
                         "over %d processes" % (B, accum, total, size))
    run = total // size
    c = math.gcd(run, B)
    first = rank * run
    return [((s // B), s % B, c) for s in range(first, first + run, c)], total // c


class Overlap(object):
    """Sums the gradient buffer in buckets of at least ``bucket`` floats as
    backward reports them final (the reports run from the end of the buffer
    to its start, each ending where the one before began)."""

    def __init__(self, comm, model, bucket):
        self.comm, self.model, self.bucket = comm, model, bucket
        self.requests = []
        self.buf = None
        self.lo = self.hi = 0

    def arm(self):
        """Reduce during the next backward."""
        self.buf = self.model.grad_buffer()
        self.lo = self.hi = self.buf.size
        self.model.set_grad_ready_callback(self.ready)

    def ready(self, offset, count):
        self.lo = offset
        if self.hi - self.lo >= self.bucket or offset == 0:
            view = self.buf[self.lo:self.hi]
            self.requests.append((self.comm.Iallreduce(MPI.IN_PLACE, view), view))
            self.hi = self.lo
        MPI.Request.Testall([r for r, _ in self.requests])  # lets them progress

    def finish(self):
        """Waits for every sum; the buffer then holds the total."""
        self.model.set_grad_ready_callback(None)
        MPI.Request.Waitall([r for r, _ in self.requests])
        self.requests = []


def load_text(path):
    if path:
        with open(path, "rb") as f:
            return f.read()
    return BUILTIN.encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8, help="sequences per micro-batch (global)")
    ap.add_argument("--accum", type=int, default=1, help="micro-batches per step (global)")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="threads per process")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--overlap", action="store_true",
                    help="sum the gradients during backward (Iallreduce per bucket)")
    ap.add_argument("--bucket", type=int, default=1 << 20, help="floats per Iallreduce")
    ap.add_argument("--text", help="train on this file (default: a built-in paragraph)")
    ap.add_argument("--save", help="process 0 writes a checkpoint here at the end")
    ap.add_argument("--check-every", type=int, default=10,
                    help="compare the processes' checksums every N steps (0: at the end only)")
    args = ap.parse_args()

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    tf.set_num_threads(args.threads)
    B, T = args.batch, args.seq
    pieces, total_pieces = my_share(B, args.accum, rank, size)

    ds = tf.Dataset.from_bytes(load_text(args.text), val_fraction=0.1)
    model = tf.Model(num_layers=2, hidden_size=32, num_attention_heads=2, qkv_slot_num=16,
                     proj_slot_num=16, ffn_slot_num=32, vocab_size=256, seq_length=T,
                     seed=args.seed)
    opt = tf.Optimizer(model, lr=3e-3, min_lr=3e-4, warmup_steps=max(1, args.steps // 10),
                       decay_steps=args.steps, grad_accum_steps=total_pieces)
    overlap = Overlap(comm, model, args.bucket) if args.overlap else None
    if rank == 0:
        print("%d processes x %d threads; global batch %d x %d sequences of %d tokens; "
              "%d parameters; %s" % (size, args.threads, args.accum, B, T, model.num_params,
                                     "overlapped Iallreduce" if overlap else "Allreduce"))

    def check_same(step):
        sums = comm.allgather(model.checksum(opt))
        if len(set(sums)) != 1:
            sys.stderr.write("train_data_parallel: step %d: the processes' models differ "
                             "(checksums %s)\n" % (step, ", ".join("%016x" % s for s in sums)))
            comm.Abort(1)

    check_same(0)
    comm_time, t_start = 0.0, time.time()
    for step in range(args.steps):
        loss_sum = 0.0
        for j, (k, row, rows) in enumerate(pieces):
            tok, tgt = ds.sample("train", args.seed, step * args.accum + k, B, T)
            loss = model.forward(tok[row:row + rows], tgt[row:row + rows], logits=False).loss
            if overlap is not None and j == len(pieces) - 1:
                overlap.arm()
            model.backward()
            loss_sum += loss
        t0 = time.time()
        if overlap is not None:
            overlap.finish()
        else:
            comm.Allreduce(MPI.IN_PLACE, model.grad_buffer())
        loss_sum = comm.allreduce(loss_sum)
        comm_time += time.time() - t0
        gnorm = opt.step()
        if args.check_every and (step + 1) % args.check_every == 0:
            check_same(step + 1)
        if rank == 0:
            print("step %d loss %.9g |g| %.4f" % (step + 1, loss_sum / total_pieces, gnorm))
            sys.stdout.flush()
    check_same(args.steps)
    elapsed = time.time() - t_start
    if rank == 0:
        n = min(4, ds.num_batches("val", B, T))
        val = float(np.mean([model.loss(*ds.batch("val", i, B, T)) for i in range(n)]))
        print("validation loss %.6f; %.0f tokens/s; %.1f%% of the time in the sums after "
              "backward" % (val, args.steps * args.accum * B * T / elapsed,
                            100.0 * comm_time / elapsed))
        if args.save:
            model.save(args.save, opt)
            print("saved %s" % args.save)
    opt.close()
    model.close()
    ds.close()


if __name__ == "__main__":
    main()
