#!/usr/bin/python3
"""Writes tests/data/torch/: real PyTorch checkpoints of a tiny TokenFormer
under the official GPT-NeoX names, and the logits PyTorch computes from them.

Run by hand (it needs Debian's python3-torch; `make check` does not):

    /usr/bin/python3 tests/reference/make_torch_checkpoints.py [OUTDIR]

The model is an nn.Module tree shaped like the official pipeline model, so
that its state_dict() has the official names by construction:
sequential.0.word_embeddings.weight, sequential.{i+2}.attention.{query,key,
value,proj}.{key,value}_param_tokens, sequential.{i+2}.mlp.*,
sequential.{L+3}.norm.{weight,bias}; sequential.1 and sequential.{L+2}
hold no parameters (GPT-NeoX's pre/post-transformer lambdas).  Its forward
follows the official code (as the SPEC states it): Pattention with the
official l2_norm_gelu (scores / ||scores|| * sqrt(n), then exact GELU),
non-parametric LayerNorm before attention and FFN, GPT-NeoX partial rotary
(rotate_half), causal softmax attention, final LayerNorm, tied output.
Logits are computed in float64 from the weights exactly as stored.

Files (the configuration is tiny.yml beside them):
  tiny_fp32.pt, tiny_fp16.pt, tiny_bf16.pt  plain state_dicts, zip format
  tiny_legacy_fp32.pt                       the pre-1.6 (non-zip) format
  deepspeed/                                a DeepSpeed checkpoint directory:
      latest, global_step7/mp_rank_00_model_states.pt with the fp16 weights
      under 'module' (plus the rotary inv_freq buffers, as older GPT-NeoX
      saved them) and DeepSpeed's and GPT-NeoX's other entries
  deepspeed_pipe/global_step7/              the pipeline layout: bf16 weights
      in layer_XX-model_00-model_states.pt, 'module': None in mp_rank_00
  logits_{fp32,fp16,bf16}.npy               float64 [B, T, V] on manifest's tokens
  manifest.json                             which file gives which logits
"""
import collections
import json
import math
import os
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "torch")

# tiny.yml, restated for torch (the generator checks the file says the same)
CFG = dict(num_layers=2, hidden_size=32, num_attention_heads=2, qkv_slot_num=24,
           proj_slot_num=20, ffn_slot_num=40, seq_length=16, rotary_pct=0.25,
           rotary_emb_base=10000, vocab_size=96, layernorm_epsilon=1e-5)
STEP = 7
TOKENS_SEED = 11


class Pattention(nn.Module):
    """Y = Theta(X K^T) V with the official l2_norm_gelu Theta."""

    def __init__(self, n, d_in, d_out):
        super().__init__()
        self.key_param_tokens = nn.Parameter(torch.empty(n, d_in))
        self.value_param_tokens = nn.Parameter(torch.empty(n, d_out))

    def forward(self, x):
        a = x @ self.key_param_tokens.t()
        n = a.shape[-1]
        s = F.gelu(a / torch.linalg.vector_norm(a, dim=-1, keepdim=True) * math.sqrt(n))
        return s @ self.value_param_tokens


class RotaryEmbedding(nn.Module):
    """GPT-NeoX's: inv_freq[j] = base^(-2j/r); cos/sin of t * inv_freq, twice."""

    def __init__(self, dim, base, persistent):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
        self.register_buffer("inv_freq", inv_freq.float(), persistent=persistent)
        self.dim, self.base = dim, base

    def forward(self, T):
        inv = 1.0 / (self.base ** (torch.arange(0, self.dim, 2, dtype=torch.float64) / self.dim))
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        ang = torch.cat([ang, ang], dim=-1)
        return ang.cos(), ang.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    def __init__(self, c, save_inv_freq):
        super().__init__()
        d = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.head_dim = d // self.heads
        self.rot = int(self.head_dim * c["rotary_pct"])
        self.query = Pattention(c["qkv_slot_num"], d, d)
        self.key = Pattention(c["qkv_slot_num"], d, d)
        self.value = Pattention(c["qkv_slot_num"], d, d)
        self.rotary_emb = RotaryEmbedding(self.rot, c["rotary_emb_base"], save_inv_freq)
        self.proj = Pattention(c["proj_slot_num"], d, d)

    def forward(self, u):
        B, T, d = u.shape
        q, k, v = (m(u).view(B, T, self.heads, self.head_dim).transpose(1, 2)
                   for m in (self.query, self.key, self.value))
        cos, sin = self.rotary_emb(T)
        r = self.rot
        q = torch.cat([q[..., :r] * cos + rotate_half(q[..., :r]) * sin, q[..., r:]], dim=-1)
        k = torch.cat([k[..., :r] * cos + rotate_half(k[..., :r]) * sin, k[..., r:]], dim=-1)
        s = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, d)
        return self.proj(o)


class Layer(nn.Module):
    """ParallelTokenformerLayer: pre-LN (no weight, no bias), two residuals."""

    def __init__(self, c, save_inv_freq):
        super().__init__()
        self.eps = c["layernorm_epsilon"]
        self.attention = Attention(c, save_inv_freq)
        self.mlp = Pattention(c["ffn_slot_num"], c["hidden_size"], c["hidden_size"])

    def forward(self, x):
        d = x.shape[-1]
        x = x + self.attention(F.layer_norm(x, (d,), eps=self.eps))
        return x + self.mlp(F.layer_norm(x, (d,), eps=self.eps))


class EmbeddingPipe(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])

    def forward(self, tokens):
        return self.word_embeddings(tokens)


class NormPipe(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.LayerNorm(c["hidden_size"], eps=c["layernorm_epsilon"])

    def forward(self, x):
        return self.norm(x)


class NoParams(nn.Module):
    """GPT-NeoX's _pre/_post_transformer_block: reshapes only."""

    def forward(self, x):
        return x


class TokenFormer(nn.Module):
    def __init__(self, c, save_inv_freq=False):
        super().__init__()
        L = c["num_layers"]
        self.sequential = nn.Sequential(EmbeddingPipe(c), NoParams(),
                                        *[Layer(c, save_inv_freq) for _ in range(L)],
                                        NoParams(), NormPipe(c))

    def forward(self, tokens):
        x = self.sequential(tokens)
        return x @ self.sequential[0].word_embeddings.weight.t()  # tied output layer


def init_weights(model, gen):
    """Larger than the official init (keys 0.02, values 2/L/sqrt(d)) so that
    the logits depend clearly on every tensor."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("norm.bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("value_param_tokens"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen))


def logits64(sd, tokens):
    """The float64 logits of the model holding exactly the weights of sd."""
    m = TokenFormer(CFG).double()
    m.load_state_dict({k: v.double() for k, v in sd.items() if not k.endswith("inv_freq")})
    with torch.no_grad():
        return m(tokens).numpy()


def deepspeed_extras(sd, buffer_names):
    """What DeepSpeed's engine and GPT-NeoX's save_ds_checkpoint put beside
    the weights in mp_rank_00_model_states.pt."""
    random.seed(1)
    np.random.seed(1)
    shapes = collections.OrderedDict((k, v.shape) for k, v in sd.items()
                                     if k not in buffer_names)
    return {
        "buffer_names": list(buffer_names),
        "optimizer": None,  # ZeRO keeps it in zero_pp_rank_*_optim_states.pt
        "param_shapes": [shapes],
        "frozen_param_shapes": None,
        "shared_params": {},
        "frozen_param_fragments": None,
        "lr_scheduler": {"num_iters": STEP, "max_lr": 6e-4, "min_lr": 6e-5,
                         "warmup_iter": 1, "end_iter": 100, "decay_style": "cosine"},
        "data_sampler": None,
        "random_ltd": None,
        "sparse_tensor_module_names": set(),
        "skipped_steps": 0,
        "global_steps": STEP,
        "global_samples": STEP * 16,
        "dp_world_size": 1,
        "mp_world_size": 1,
        "ds_config": {"train_batch_size": 16, "fp16": {"enabled": True}},
        "ds_version": "0.10.0",
        "iteration": STEP,
        "args": {"num_layers": CFG["num_layers"], "hidden_size": CFG["hidden_size"],
                 "num_attention_heads": CFG["num_attention_heads"],
                 "max_position_embeddings": CFG["seq_length"],
                 "make_vocab_size_divisible_by": 32, "padded_vocab_size": CFG["vocab_size"],
                 "tokenizer_type": "HFTokenizer", "model_parallel_size": 1},
        "random_rng_state": random.getstate(),
        "np_rng_state": np.random.get_state(),
        "torch_rng_state": torch.get_rng_state(),
    }


def check_yaml(path):
    """tiny.yml must describe CFG (JSON once the comments are gone)."""
    text = "\n".join(line.split("#")[0] for line in open(path))
    y = json.loads(text.replace("False", "false").replace("True", "true"))
    for k, v in CFG.items():
        if k in y and y[k] != v:
            raise SystemExit("%s says %s = %r, the generator %r" % (path, k, y[k], v))


def main():
    os.makedirs(OUT, exist_ok=True)
    check_yaml(os.path.join(OUT, "tiny.yml"))
    gen = torch.Generator().manual_seed(2024)
    model = TokenFormer(CFG)
    init_weights(model, gen)
    sd32 = collections.OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    tgen = torch.Generator().manual_seed(TOKENS_SEED)
    tokens = torch.randint(0, CFG["vocab_size"], (2, 8), generator=tgen)

    variants = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    sds, cases = {}, []
    for tag, dt in variants.items():
        sds[tag] = collections.OrderedDict((k, v.to(dt)) for k, v in sd32.items())
        np.save(os.path.join(OUT, "logits_%s.npy" % tag), logits64(sds[tag], tokens))
        torch.save(sds[tag], os.path.join(OUT, "tiny_%s.pt" % tag))
        cases.append({"source": "tiny_%s.pt" % tag, "layout": "state_dict, zip format",
                      "dtype": str(dt).replace("torch.", ""), "logits": "logits_%s.npy" % tag})
    torch.save(sds["fp32"], os.path.join(OUT, "tiny_legacy_fp32.pt"),
               _use_new_zipfile_serialization=False)
    cases.append({"source": "tiny_legacy_fp32.pt", "layout": "state_dict, legacy format",
                  "dtype": "float32", "logits": "logits_fp32.npy"})

    # DeepSpeed, no pipeline: weights under 'module', with the inv_freq buffers
    ds_model = TokenFormer(CFG, save_inv_freq=True)
    ds_model.load_state_dict(sd32, strict=False)
    ds_sd = collections.OrderedDict((k, v.half()) for k, v in ds_model.state_dict().items())
    buffers = [k for k in ds_sd if k.endswith("inv_freq")]
    tag = "global_step%d" % STEP
    ddir = os.path.join(OUT, "deepspeed")
    os.makedirs(os.path.join(ddir, tag), exist_ok=True)
    with open(os.path.join(ddir, "latest"), "w") as f:
        f.write(tag)
    torch.save(dict(module=ds_sd, **deepspeed_extras(ds_sd, buffers)),
               os.path.join(ddir, tag, "mp_rank_00_model_states.pt"))
    cases.append({"source": "deepspeed", "layout": "DeepSpeed directory (latest -> %s), "
                  "weights under 'module'" % tag, "dtype": "float16",
                  "logits": "logits_fp16.npy"})

    # DeepSpeed pipeline: one file per layer that has parameters
    pdir = os.path.join(OUT, "deepspeed_pipe", tag)
    os.makedirs(pdir, exist_ok=True)
    per_layer = collections.defaultdict(collections.OrderedDict)
    for k, v in sds["bf16"].items():
        _, idx, rest = k.split(".", 2)
        per_layer[int(idx)][rest] = v.clone()
    for idx, layer_sd in per_layer.items():
        torch.save(layer_sd, os.path.join(pdir, "layer_%02d-model_00-model_states.pt" % idx))
    torch.save(dict(module=None, **deepspeed_extras(sds["bf16"], [])),
               os.path.join(pdir, "mp_rank_00_model_states.pt"))
    cases.append({"source": "deepspeed_pipe/" + tag, "layout": "DeepSpeed pipeline directory, "
                  "layer_XX-model_00-model_states.pt", "dtype": "bfloat16",
                  "logits": "logits_bf16.npy"})

    # the files read back by torch give the same weights
    for c in cases[:4]:
        back = torch.load(os.path.join(OUT, c["source"]))
        assert all(torch.equal(back[k].float(), sds[c["logits"][7:11]][k].float())
                   for k in sd32), c["source"]

    manifest = {"config": "tiny.yml", "torch_version": torch.__version__,
                "tokens": tokens.tolist(), "cases": cases}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print("wrote %s: %d cases, %d bytes in all" % (OUT, len(cases), total))


if __name__ == "__main__":
    main()
