#!/usr/bin/python3
"""PyTorch side of bench/model_vs_torch.sh: one row of torch_baseline.py at a
chosen config, in this process (env as the caller set it).

    /usr/bin/python3 bench/torch_model.py --config bench|150m --batch B --threads N

Reuses shared/reference/torch_baseline.py's run_one (the same training step,
forward, timing and FLOP count) with its module-level CFG and BATCH set to
the requested shape, because the baseline itself only knows the benchmark
config.  The reference directory comes from TF_TORCH_REF (default
/work/shared/reference).  Prints one JSON line.
"""
import argparse
import json
import os
import sys

REF = os.environ.get("TF_TORCH_REF", "/work/shared/reference")
CONFIGS = {
    "bench": (dict(num_layers=4, hidden_size=256, num_attention_heads=4, qkv_slot_num=256,
                   proj_slot_num=256, ffn_slot_num=1024, rotary_pct=0.25,
                   norm_activation_type="l2_norm_gelu", vocab_size=256, seq_length=256), 8),
    "150m": (dict(num_layers=12, hidden_size=768, num_attention_heads=12, qkv_slot_num=768,
                  proj_slot_num=768, ffn_slot_num=3072, rotary_pct=0.25,
                  norm_activation_type="l2_norm_gelu", vocab_size=50304, seq_length=1024), 1),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="bench")
    ap.add_argument("--batch", type=int, help="default: 8 for bench, 1 for 150m")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, REF)
    import torch_baseline as TB
    cfg, batch = CONFIGS[a.config]
    TB.CFG = cfg
    TB.BATCH = a.batch or batch
    r = TB.run_one(a.threads, a.warmup, a.reps)
    r["config"], r["batch"] = a.config, TB.BATCH
    print(json.dumps(r))


if __name__ == "__main__":
    main()
