#!/usr/bin/python3
"""bf16_agreement.py -- how closely a model with bfloat16 weights follows
its float32 self over a long text, teacher-forced.

    bench/bf16_agreement.py CHECKPOINT [TEXT_FILE...] [--bytes N] [--window T]

Opens the checkpoint twice, float32 and bfloat16 (Model.open(weights=
"bf16"), i.e. tf_model_open_inference), runs both over the same N bytes of
text (default 8192 of the TEXT_FILEs concatenated, default Debian's
/usr/share/games/fortunes/fortunes; a byte-level model: vocab 256) in
windows of T tokens (default 63: below 64 rows every product is the
decoder's; 64 and more go through BLIS on widened weights), and prints per
window size:
  top-1 agreement   the share of positions whose greedy next token (argmax
                    of the logits) is the same for both
  near ties         of the disagreements, how many had a float32 top-2
                    margin under 1% of the logits' range
  logits rel. err   max |bf16 - f32| / max |f32| over each window: the
                    median and the largest
  loss              mean cross-entropy of the next byte, nats, both
A random-init model has near-uniform logits, where agreement means little:
use a trained one (the closing note of issue 15 says which was used).
Uses the Python bindings of this tree (bindings/python) and build/'s
library.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bindings", "python"))
import tokenformer as tf  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("text", nargs="*", default=["/usr/share/games/fortunes/fortunes"])
    ap.add_argument("--bytes", type=int, default=8192)
    ap.add_argument("--window", type=int, action="append")
    a = ap.parse_args()
    data = b"".join(open(p, "rb").read() for p in a.text)[: a.bytes + 1]
    ids = np.frombuffer(data, dtype=np.uint8).astype(np.int32)
    with tf.Model.open(a.checkpoint) as m32, \
            tf.Model.open(a.checkpoint, weights="bf16") as m16:
        V, S = m32.vocab_size, m32.params.seq_length
        if V != 256:
            sys.exit("bf16_agreement: a byte-level model (vocab 256) is needed, not %d" % V)
        info = tf.get_info()
        print("checkpoint %s: %d layers, d=%d, %d parameters; %d bytes of %s; bf16 kernel %s"
              % (a.checkpoint, m32.params.num_layers, m32.params.hidden_size, m32.num_params,
                 len(ids) - 1, ", ".join(a.text), info["bf16_kernel"]))
        print("| window | positions | top-1 agreement | disagreements (near ties) "
              "| logits rel. err median / max | loss f32 / bf16 |")
        print("|---|---|---|---|---|---|")
        for T in a.window or [63, min(S, 128)]:
            T = min(T, S)
            same = total = ties = 0
            errs, nll = [], [0.0, 0.0]
            for s in range(0, len(ids) - 1 - T + 1, T):
                x, y = ids[s:s + T], ids[s + 1:s + T + 1]
                l32 = m32.forward(x).logits[0].astype(np.float64)
                l16 = m16.forward(x).logits[0].astype(np.float64)
                g32, g16 = l32.argmax(-1), l16.argmax(-1)
                same += int((g32 == g16).sum())
                total += T
                top2 = np.sort(l32, -1)[:, -2:]
                margin = (top2[:, 1] - top2[:, 0]) / (l32.max() - l32.min())
                ties += int(((g32 != g16) & (margin < 0.01)).sum())
                errs.append(np.abs(l16 - l32).max() / np.abs(l32).max())
                for k, lg in enumerate((l32, l16)):
                    mx = lg.max(-1, keepdims=True)
                    lse = mx[:, 0] + np.log(np.exp(lg - mx).sum(-1))
                    nll[k] += float((lse - lg[np.arange(T), y]).sum())
            print("| %d | %d | %.2f%% | %d (%d) | %.1e / %.1e | %.4f / %.4f |"
                  % (T, total, 100.0 * same / total, total - same, ties, np.median(errs),
                     max(errs), nll[0] / total, nll[1] / total))


if __name__ == "__main__":
    main()
