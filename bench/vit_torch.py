#!/usr/bin/env python3
"""vit_torch.py -- the PyTorch baseline for the vision model: a standard ViT
classifier (nn.Linear projections) trained on Fashion-MNIST, to compare with
the TokenFormer classifier of the same width, depth, heads, patches,
optimizer, epochs and augmentation.  Run by hand, not by make check:

    /usr/bin/python3 bench/vit_torch.py --epochs 10 --width 64 --depth 4 \\
        --heads 4 --patch 4 --threads 2 --csv run/vit_torch.csv

Needs Debian's python3-torch and python3-numpy, and the dataset
(apt-get install dataset-fashion-mnist): the gzip IDX files are read here
with gzip + numpy, independently of libtokenformer.

The model (pre-norm ViT):
    patches  the 28 x 28 image cut into p x p patches, each flattened
    x        = [cls; Linear(p*p -> d)(patches)] + pos      (learned, [1+P, d])
    block    x = x + Proj(MHA(LN(x)))   bidirectional softmax attention,
                                        q, k, v = Linear(d -> d) each
             x = x + Linear(m -> d)(GELU(Linear(d -> m)(LN(x))))
    logits   = Linear(d -> classes)(LN(x)[cls])
    loss     = mean cross-entropy (with --label-smoothing eps: against
               (1 - eps) onehot + eps / classes, as tf_model_set_label_smoothing)
Linear weights ~ N(0, 0.02) truncated at 2 std, biases 0; cls and pos
embeddings ~ N(0, 0.02) truncated; LayerNorms 1 and 0.

Training, matched to libtokenformer's conventions:
    data     per epoch a fresh permutation of the 60,000 images cut into
             floor(N / B) batches (the remainder skipped, as
             tf_image_dataset_train_batch does); pixels v / 255, shifted by
             (dy, dx) uniform in [-k, k]^2 with zero padding (pad by k and
             crop back), then mirrored left-right with probability 1/2, then
             normalised (x - mean) / std -- the order and padding of the
             library's augmentation, drawn from torch's generator instead.
    AdamW    torch.optim.AdamW; weight decay on every tensor of 2 or more
             dimensions (Linear weights, cls, pos), never on biases or
             LayerNorms; global-norm clipping (--clip, 0 = off).
    schedule step t = 1, 2, ...: lr * t / warmup for t <= warmup, then a
             cosine from lr to min_lr at the last step (tf_schedule_lr's
             formula).
Output: one line per epoch (wall and CPU time of the training pass, mean
training loss and accuracy, test loss and accuracy, the pass's throughput)
and a CSV with the same columns.  The FLOPs column counts the multiply-adds of the
matrix products and attention (x2), forward + backward = 3x forward.
"""

import argparse
import csv
import gzip
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"


# ---- data ---------------------------------------------------------------------

def read_idx(path):
    """An IDX file (plain or .gz) of unsigned bytes as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError("%s: not an IDX file of unsigned bytes" % path)
    dims = struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: %d data bytes, the header declares %s" % (path, data.size, dims))
    return data.reshape(dims)


def load_split(data_dir, prefix):
    images = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    if images.shape[0] != labels.shape[0]:
        raise ValueError("%s: %d images, %d labels" % (prefix, images.shape[0], labels.shape[0]))
    # bytes stay bytes (47 MB, not 188 MB as float32); batches convert
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def to_unit(x):
    """Pixel bytes -> float32 in [0, 1]."""
    return x.float() / 255.0


def augment(x, shift, hflip, gen):
    """x [B, H, W] in [0, 1]: a random shift by up to `shift` pixels with zero
    padding (pad, then crop H x W back at a random offset), then a random
    horizontal flip -- the library's rule (tokenformer.h, Image datasets)."""
    B, H, W = x.shape
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift))
        oy = torch.randint(0, 2 * shift + 1, (B,), generator=gen)
        ox = torch.randint(0, 2 * shift + 1, (B,), generator=gen)
        rows = (oy[:, None] + torch.arange(H))[:, :, None]      # [B, H, 1]
        cols = (ox[:, None] + torch.arange(W))[:, None, :]      # [B, 1, W]
        x = padded[torch.arange(B)[:, None, None], rows, cols]
    if hflip:
        flip = torch.rand(B, generator=gen) < 0.5
        x = torch.where(flip[:, None, None], x.flip(-1), x)
    return x


# ---- the model --------------------------------------------------------------------

class Block(nn.Module):
    """Pre-norm Transformer block with bidirectional multi-head attention."""

    def __init__(self, d, heads, mlp, bias):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.q = nn.Linear(d, d, bias=bias)
        self.k = nn.Linear(d, d, bias=bias)
        self.v = nn.Linear(d, d, bias=bias)
        self.proj = nn.Linear(d, d, bias=bias)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, mlp, bias=bias)
        self.fc2 = nn.Linear(mlp, d, bias=bias)

    def forward(self, x):
        B, T, d = x.shape
        h, hd = self.heads, d // self.heads
        u = self.ln1(x)
        q = self.q(u).view(B, T, h, hd).transpose(1, 2)
        k = self.k(u).view(B, T, h, hd).transpose(1, 2)
        v = self.v(u).view(B, T, h, hd).transpose(1, 2)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + self.proj(o)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):

    def __init__(self, image, patch, d, depth, heads, mlp, classes, bias=True):
        super().__init__()
        if image % patch:
            raise ValueError("patch %d does not divide the image size %d" % (patch, image))
        if d % heads:
            raise ValueError("heads %d does not divide the width %d" % (heads, d))
        self.patch = patch
        self.num_patches = (image // patch) ** 2
        self.embed = nn.Linear(patch * patch, d, bias=bias)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, 1 + self.num_patches, d))
        self.blocks = nn.ModuleList(Block(d, heads, mlp, bias) for _ in range(depth))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes, bias=bias)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, a=-0.04, b=0.04)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.cls, std=0.02, a=-0.04, b=0.04)
        nn.init.trunc_normal_(self.pos, std=0.02, a=-0.04, b=0.04)

    def patches(self, x):
        """[B, H, W] -> [B, P, p*p], patches in row-major order, each row-major."""
        B, H, W = x.shape
        p = self.patch
        x = x.view(B, H // p, p, W // p, p).permute(0, 1, 3, 2, 4)
        return x.reshape(B, (H // p) * (W // p), p * p)

    def forward(self, x):
        t = self.embed(self.patches(x))
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], dim=1) + self.pos
        for blk in self.blocks:
            t = blk(t)
        return self.head(self.ln_f(t)[:, 0])


def forward_flops(args, image, classes):
    """FLOPs (2 per multiply-add) of one image's forward pass: the matrix
    products and attention's two (LayerNorms, GELU and softmax left out)."""
    d, m, p2 = args.width, args.mlp, args.patch ** 2
    P = (image // args.patch) ** 2
    T = 1 + P
    block = T * (4 * d * d + 2 * d * m) + 2 * T * T * d   # q, k, v, proj, MLP; QK^T, AV
    return 2 * (P * p2 * d + args.depth * block + d * classes)


def lr_at(args, t, total):
    """tf_schedule_lr's formula: linear warmup, then cosine to min_lr."""
    if args.warmup_steps > 0 and t <= args.warmup_steps:
        return args.lr * t / args.warmup_steps
    if total > args.warmup_steps:
        progress = (t - args.warmup_steps) / (total - args.warmup_steps)
        return args.min_lr + (args.lr - args.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
    return args.lr


# ---- training ------------------------------------------------------------------------

def evaluate(model, images, labels, args):
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for first in range(0, images.shape[0], 1000):
            x = (to_unit(images[first:first + 1000]) - args.mean) / args.std
            y = labels[first:first + 1000]
            logits = model(x)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
    n = images.shape[0]
    return loss_sum / n, correct / n


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    a("--data-dir", default=DATA_DIR, help="the IDX .gz files (default %(default)s)")
    a("--width", type=int, default=64, help="d (default %(default)s)")
    a("--depth", type=int, default=4, help="blocks (default %(default)s)")
    a("--heads", type=int, default=4, help="attention heads (default %(default)s)")
    a("--patch", type=int, default=4, help="patch side p (default %(default)s)")
    a("--mlp", type=int, default=0, help="MLP width (default 4 * width)")
    a("--no-bias", dest="bias", action="store_false",
      help="Linear layers without biases (Pattention has none)")
    a("--epochs", type=int, default=10, help="(default %(default)s)")
    a("--batch", type=int, default=128, help="B (default %(default)s)")
    a("--lr", type=float, default=1e-3, help="peak learning rate (default %(default)s)")
    a("--min-lr", type=float, default=1e-5, help="end of the cosine (default %(default)s)")
    a("--warmup-steps", type=int, default=-1,
      help="linear warmup steps (default: 5%% of all steps)")
    a("--weight-decay", type=float, default=0.05, help="(default %(default)s)")
    a("--beta1", type=float, default=0.9, help="(default %(default)s)")
    a("--beta2", type=float, default=0.999, help="(default %(default)s)")
    a("--eps", type=float, default=1e-8, help="(default %(default)s)")
    a("--label-smoothing", type=float, default=0.0,
      help="eps of the training loss (default %(default)s)")
    a("--clip", type=float, default=1.0, help="global gradient-norm bound, 0: off "
                                              "(default %(default)s)")
    a("--shift", type=int, default=2, help="random shifts up to k pixels, 0: off "
                                           "(default %(default)s)")
    a("--hflip", type=int, default=1, choices=(0, 1), help="random horizontal flips "
                                                         "(default %(default)s)")
    a("--mean", type=float, default=0.2860, help="pixel normalisation (default %(default)s)")
    a("--std", type=float, default=0.3530, help="(default %(default)s)")
    a("--threads", type=int, default=1, help="torch threads (default %(default)s)")
    a("--seed", type=int, default=1, help="(default %(default)s)")
    a("--csv", default="", help="write the per-epoch table here")
    a("--limit-batches", type=int, default=0,
      help="train only this many batches per epoch (a quick check; 0: all)")
    args = ap.parse_args(argv)
    if args.mlp <= 0:
        args.mlp = 4 * args.width
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    train_x, train_y = load_split(args.data_dir, "train")
    test_x, test_y = load_split(args.data_dir, "t10k")
    image, classes = train_x.shape[1], int(train_y.max()) + 1
    N, B = train_x.shape[0], args.batch
    per_epoch = N // B
    if args.limit_batches > 0:
        per_epoch = min(per_epoch, args.limit_batches)
    total = per_epoch * args.epochs
    if args.warmup_steps < 0:
        args.warmup_steps = max(1, round(0.05 * total))

    model = ViT(image, args.patch, args.width, args.depth, args.heads, args.mlp, classes,
                args.bias)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps)
    n_params = sum(p.numel() for p in model.parameters())
    flops_image = forward_flops(args, image, classes)
    print("vit_torch: torch %s, %d thread(s); d=%d depth=%d heads=%d patch=%d mlp=%d "
          "bias=%s; %d parameters; %.1f MFLOP forward per image" % (
              torch.__version__, torch.get_num_threads(), args.width, args.depth, args.heads,
              args.patch, args.mlp, args.bias, n_params, flops_image / 1e6))
    print("vit_torch: %d epochs of %d batches of %d; AdamW lr %g -> %g (warmup %d), wd %g, "
          "betas (%g, %g), clip %g; label smoothing %g; shift %d, hflip %d, mean %g, std %g" % (
              args.epochs, per_epoch, B, args.lr, args.min_lr, args.warmup_steps,
              args.weight_decay, args.beta1, args.beta2, args.clip, args.label_smoothing,
              args.shift, args.hflip, args.mean, args.std))
    sys.stdout.flush()

    columns = ["epoch", "step", "lr", "train_seconds", "train_cpu_seconds", "eval_seconds",
               "train_loss",
               "train_acc", "test_loss", "test_acc", "images_per_second", "train_flops"]
    csv_file = out = None
    if args.csv:
        os.makedirs(os.path.dirname(os.path.abspath(args.csv)), exist_ok=True)
        csv_file = open(args.csv, "w", newline="")
        out = csv.writer(csv_file)
        out.writerow(columns)
    step, wall = 0, 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(N, generator=gen)
        loss_sum, correct = 0.0, 0
        t0, c0 = time.perf_counter(), time.process_time()
        for j in range(per_epoch):
            idx = order[j * B:(j + 1) * B]
            x = augment(to_unit(train_x[idx]), args.shift, args.hflip, gen)
            x = (x - args.mean) / args.std
            y = train_y[idx]
            step += 1
            lr = lr_at(args, step, total)
            for g in opt.param_groups:
                g["lr"] = lr
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            loss_sum += loss.item()
            correct += (logits.argmax(-1) == y).sum().item()
        train_s = time.perf_counter() - t0
        train_cpu = time.process_time() - c0
        wall += train_s
        t1 = time.perf_counter()
        test_loss, test_acc = evaluate(model, test_x, test_y, args)
        eval_s = time.perf_counter() - t1
        row = [epoch, step, lr, train_s, train_cpu, eval_s, loss_sum / per_epoch,
               correct / (per_epoch * B), test_loss, test_acc, per_epoch * B / train_s,
               3 * flops_image * per_epoch * B * epoch]
        print("epoch %3d  step %6d  train %7.1f s wall, %7.1f s cpu (%5.0f img/s)  loss %.4f  "
              "acc %.4f  |  test loss %.4f  acc %.4f  (eval %.1f s)" % (
                  epoch, step, train_s, train_cpu, row[10], row[6], row[7], test_loss,
                  test_acc, eval_s))
        sys.stdout.flush()
        if out:
            out.writerow(["%.6g" % v if isinstance(v, float) else v for v in row])
            csv_file.flush()
    if csv_file:
        csv_file.close()
    print("vit_torch: %.1f s of training in all, %.1f s per epoch; final test accuracy %.4f"
          % (wall, wall / args.epochs, test_acc))
    if os.getloadavg()[0] > os.cpu_count():
        print("vit_torch: the machine was busy (load %.1f on %d CPUs): the cpu seconds "
              "compare better than the wall seconds" % (os.getloadavg()[0], os.cpu_count()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
