#!/usr/bin/python3
"""make_fixtures.py -- writes the golden fixtures of tests/data from this
reference (numpy, float64; stored as F32, token ids as I32).

    make_fixtures.py --out DIR --inputs tests/data   # the committed inputs (what `make fixtures` does)
    make_fixtures.py --out DIR                       # inputs drawn afresh from the seeds
    make_fixtures.py --out DIR --only model_tiny     # some of the fixtures

Inputs are what a fixture starts from: the Pattention set's X, K, V and dY;
a model's parameters, tokens and targets; for growth also the new rows.
Everything else in a file is computed here.  With --inputs the inputs are
read from the fixture files of that name in DIR (the committed tests/data
inputs were drawn once with torch's generator, which numpy cannot replay),
so the output can be compared with the committed files (compare.py).
Without it they are drawn from numpy.random.default_rng(seed): the same
distributions, other numbers (such files say so in `inputs_rng`).  Either
way inputs are rounded to float32 first, so the stored F32 inputs are
exactly the numbers the float64 computation used.  The layout of every file
is described in tests/data/README.md.
"""
import argparse
import json
import math
import os
import sys

import numpy as np

import grow
import model as M
import ops
import optim
import safetensors_io as st
import vision as VM

FORMAT = "tokenformer-fixture-1"
OPTIM = dict(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, clip_grad=1.0)
TINY = dict(num_layers=2, hidden_size=64, num_attention_heads=4, qkv_slot_num=48,
            proj_slot_num=40, ffn_slot_num=96, rotary_pct=0.25,
            norm_activation_type="l2_norm_gelu", vocab_size=256, seq_length=16)
SPECS = [
    *[{"kind": "pattention", "name": f"pattention_{nt}", "seed": 101 + i,
       "N": 7, "d_in": 24, "d_out": 20, "n": 13, "norm": nt}
      for i, nt in enumerate(ops.NORM_TYPES)],
    {"kind": "model", "name": "model_tiny", "seed": 201, "batch": 2, "config": TINY,
     "optim": OPTIM},
    {"kind": "model", "name": "model_softmax", "seed": 202, "batch": 2,
     "config": {**TINY, "num_layers": 1, "rotary_pct": 1.0, "norm_activation_type": "softmax"},
     "optim": OPTIM},
    {"kind": "grow", "name": "grow_tiny", "seed": 301, "batch": 2, "config": TINY,
     "grown": dict(qkv_slot_num=64, proj_slot_num=56, ffn_slot_num=128)},
]
VISION_TINY = dict(image_size=8, channels=2, patch_size=4, num_classes=5, patch_slot_num=14,
                   head_slot_num=11, num_layers=2, hidden_size=16, num_attention_heads=2,
                   qkv_slot_num=12, proj_slot_num=10, ffn_slot_num=24)
SPECS.append({"kind": "vision", "name": "vision_tiny", "seed": 401, "batch": 3,
              "vision": VISION_TINY, "optim": OPTIM,
              "grown": dict(qkv_slot_num=16, proj_slot_num=12, ffn_slot_num=32)})
GROWN_KEYS = ("qkv_slot_num", "proj_slot_num", "ffn_slot_num")


def f32(a):
    return np.asarray(a, dtype=np.float32)


def as_input(a):
    """float32-rounded, held in float64: the exact value stored."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def rel(a, b):
    """The fixture metric: max|a - b| / (max|b| + 1e-6)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-6))


# ---------------------------------------------------------------------------
# inputs: drawn from a seed, or read back from an existing fixture
# ---------------------------------------------------------------------------
def _batch(rng, cfg, B):
    seq = rng.integers(0, cfg.vocab_size, (B, cfg.seq_length + 1))
    return seq[:, :-1].astype(np.int32), seq[:, 1:].astype(np.int32)


def draw_vision_inputs(spec):
    """Drawn from the seed in any case (no torch-era inputs exist): params
    (keys N(0, 0.3), so that every path carries signal), pixels N(0, 1),
    labels, the growth's new value rows (zero keys)."""
    rng = np.random.default_rng(spec["seed"])
    vc = VM.VisionConfig(**spec["vision"])
    params = {k: as_input(v) for k, v in VM.init_params(vc, rng, 0.1, key_std=0.3).items()}
    B, S, C = spec["batch"], vc.image_size, vc.channels
    pixels = as_input(rng.standard_normal((B, S, S, C) if C > 1 else (B, S, S)))
    labels = rng.integers(0, vc.num_classes, B).astype(np.int32)
    cfg, gcfg = vc.trunk(), vc.trunk().replace(**spec["grown"])
    rows = {}
    for p in M.pattention_sets(cfg.num_layers):
        Kn, Vn = grow.new_rows(rng, M.slot_num(gcfg, p) - M.slot_num(cfg, p), vc.hidden_size,
                               vc.hidden_size, "zero", vstd=M.value_std(cfg))
        rows[p] = (as_input(Kn), as_input(Vn))
    return {"params": params, "pixels": pixels, "labels": labels, "rows": rows}


def draw_inputs(spec):
    if spec["kind"] == "vision":
        return draw_vision_inputs(spec)
    rng = np.random.default_rng(spec["seed"])
    if spec["kind"] == "pattention":
        N, din, dout, n = spec["N"], spec["d_in"], spec["d_out"], spec["n"]
        return {"X": as_input(rng.standard_normal((N, din))),
                "K": as_input(rng.standard_normal((n, din)) / math.sqrt(din)),
                "V": as_input(rng.standard_normal((n, dout)) / math.sqrt(n)),
                "dY": as_input(rng.standard_normal((N, dout)))}
    cfg = M.Config(**spec["config"])
    params = {k: as_input(v) for k, v in M.init_params(cfg, rng, ln_jitter=0.1).items()}
    if spec["kind"] == "model":
        tokens, targets = _batch(rng, cfg, spec["batch"])
        return {"params": params, "tokens": tokens, "targets": targets}
    vstd = M.value_std(cfg)
    gcfg = cfg.replace(**spec["grown"])
    rows = {}
    for p in M.pattention_sets(cfg.num_layers):
        Kn, Vn = grow.new_rows(rng, M.slot_num(gcfg, p) - M.slot_num(cfg, p),
                               cfg.hidden_size, cfg.hidden_size, "zero", vstd=vstd)
        rows[p] = (as_input(Kn), as_input(Vn))
    tokens, targets = _batch(rng, cfg, spec["batch"])
    return {"params": params, "rows": rows, "tokens": tokens, "targets": targets}


def _expect_meta(path, meta, want):
    for k, v in want.items():
        if meta.get(k) != v:
            raise ValueError(f"{path}: metadata {k} is {meta.get(k)!r}, the spec says {v!r}")


def read_inputs(spec, path):
    """The inputs of spec from the fixture file path (its config must match)."""
    t, meta = st.read(path)
    _expect_meta(path, meta, {"format": FORMAT, "kind": spec["kind"], "seed": str(spec["seed"])})
    f64 = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in t.items()}
    if spec["kind"] == "pattention":
        _expect_meta(path, meta, {"norm_activation_type": spec["norm"],
                                  **{k: str(spec[k]) for k in ("N", "d_in", "d_out", "n")}})
        return {"X": f64["input"], "K": f64["key_param_tokens"], "V": f64["value_param_tokens"],
                "dY": f64["grad_output"]}
    if spec["kind"] == "vision":
        vc = VM.VisionConfig(**spec["vision"])
        _expect_meta(path, meta, vc.to_strings())
        cfg, gcfg = vc.trunk(), vc.trunk().replace(**spec["grown"])
        return {"params": {k: f64[k] for k in VM.param_shapes(vc)}, "pixels": f64["pixels"],
                "labels": t["labels"],
                "rows": {p: (f64["grown." + p + M.KEYS][M.slot_num(cfg, p):],
                             f64["grown." + p + M.VALUES][M.slot_num(cfg, p):])
                         for p in M.pattention_sets(cfg.num_layers)}}
    cfg = M.Config(**spec["config"])
    _expect_meta(path, meta, cfg.to_strings())
    out = {"params": {k: f64[k] for k in M.param_shapes(cfg)},
           "tokens": t["tokens"], "targets": t["targets"]}
    if spec["kind"] == "grow":
        gcfg = cfg.replace(**spec["grown"])
        out["rows"] = {p: (f64["grown." + p + M.KEYS][M.slot_num(cfg, p):],
                           f64["grown." + p + M.VALUES][M.slot_num(cfg, p):])
                       for p in M.pattention_sets(cfg.num_layers)}
        for p in M.pattention_sets(gcfg.num_layers):
            if out["rows"][p][0].shape[0] != M.slot_num(gcfg, p) - M.slot_num(cfg, p):
                raise ValueError(f"{path}: {p} was not grown to the spec's size")
    return out


# ---------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------
def build_pattention(spec, x):
    nt, n = spec["norm"], spec["n"]
    Y, cache = ops.pattention_forward(x["X"], x["K"], x["V"], nt)
    dX, dK, dV = ops.pattention_backward(cache, x["dY"])
    tensors = {"input": x["X"], "key_param_tokens": x["K"], "value_param_tokens": x["V"],
               "output": Y, "grad_output": x["dY"], "grad_input": dX,
               "grad_key_param_tokens": dK, "grad_value_param_tokens": dV}
    meta = {"norm_activation_type": nt, "tau": repr(ops.default_tau(nt, n)),
            **{k: str(spec[k]) for k in ("N", "d_in", "d_out", "n")}, "seed": str(spec["seed"])}
    return tensors, meta


def model_outputs(params, tokens, targets, cfg, hp):
    """logits, loss, F32-rounded grads, step1 from those grads, grad norm."""
    logits, loss, grads = M.loss_and_grads(params, tokens, targets, cfg)
    grads = {k: as_input(g) for k, g in grads.items()}   # step1 starts from the stored grads
    step1, _, gnorm = optim.adamw_step(params, grads, hp)
    return logits, loss, grads, step1, gnorm


def build_model(spec, x):
    cfg, hp = M.Config(**spec["config"]), optim.AdamW(**spec["optim"])
    params, tokens, targets = x["params"], x["tokens"], x["targets"]
    logits, loss, grads, step1, gnorm = model_outputs(params, tokens, targets, cfg, hp)
    if not gnorm > hp.clip_grad:
        raise AssertionError(f"{spec['name']}: grad norm {gnorm} does not exercise clipping")
    tensors = {**params, "tokens": tokens, "targets": targets, "logits": logits,
               "loss": np.reshape(loss, 1), "grad_norm": np.array([gnorm])}
    tensors.update({"grad." + k: g for k, g in grads.items()})
    tensors.update({"step1." + k: p for k, p in step1.items()})
    meta = {"batch_size": str(spec["batch"]), "seed": str(spec["seed"]),
            **cfg.to_strings(), **hp.to_strings()}
    return tensors, meta


def grow_outputs(base, grown, cfg, gcfg, tokens, targets):
    """{logits_tag, loss_tag} of the base model and of the grown one under
    both scale policies."""
    out = {}
    for tag, p, c, taus in (("base", base, cfg, None),
                            ("grown_official", grown, gcfg, grow.grown_taus(cfg, "follow_n")),
                            ("grown_pinned", grown, gcfg, grow.grown_taus(cfg, "pinned"))):
        logits = M.forward(p, tokens, c, taus)
        out["logits_" + tag] = logits
        out["loss_" + tag] = np.reshape(ops.cross_entropy_forward(
            logits.reshape(-1, c.vocab_size), targets.reshape(-1))[0], 1)
    return out


def build_grow(spec, x):
    cfg = M.Config(**spec["config"])
    base = x["params"]
    grown, gcfg = grow.grow_params(base, cfg, spec["grown"], rows=x["rows"])
    res = grow_outputs(base, grown, cfg, gcfg, x["tokens"], x["targets"])
    d_pin = rel(res["logits_grown_pinned"], res["logits_base"])
    d_off = rel(res["logits_grown_official"], res["logits_base"])
    if not (d_pin < 1e-12 and np.array_equal(f32(res["logits_grown_pinned"]), f32(res["logits_base"]))):
        raise AssertionError(f"{spec['name']}: pinned zero-key growth changed the logits ({d_pin})")
    if not d_off > 1e-3:
        raise AssertionError(f"{spec['name']}: follow_n growth did not change the logits ({d_off})")
    tensors = {**base, **{"grown." + k: v for k, v in grown.items()},
               "tokens": x["tokens"], "targets": x["targets"], **res}
    pinned = grow.grown_taus(cfg, "pinned")
    first = {kind: M.layer_sets(0)[j] for kind, j in (("qkv", 0), ("proj", 3), ("ffn", 4))}
    meta = {"batch_size": str(spec["batch"]), "seed": str(spec["seed"]), **cfg.to_strings(),
            **{"grown_" + k: str(spec["grown"][k]) for k in GROWN_KEYS},
            "new_key_init": "zero", "new_value_std": repr(M.value_std(cfg)),
            **{f"tau_pinned_{kind}": repr(pinned[p]) for kind, p in first.items()},
            "rel_diff_official_vs_base": f"{d_off:.6e}",
            "rel_diff_pinned_vs_base_float64": f"{d_pin:.3e}"}
    return tensors, meta


def build_vision(spec, x):
    """The image classifier: logits, loss, gradients, one AdamW step (the
    model fixtures' layout, with pixels and labels for tokens and targets),
    and growth of the layers' sets with zero keys (grown.*, logits under
    both scale policies; the patch and head sets keep their size)."""
    vc, hp = VM.VisionConfig(**spec["vision"]), optim.AdamW(**spec["optim"])
    params, pixels, labels = x["params"], x["pixels"], x["labels"]
    logits, loss, grads = VM.loss_and_grads(params, pixels, labels, vc)
    grads = {k: as_input(g) for k, g in grads.items()}
    step1, _, gnorm = optim.adamw_step(params, grads, hp)
    cfg = vc.trunk()
    grown, gcfg = grow.grow_params(params, cfg, spec["grown"], rows=x["rows"])
    res = {}
    for tag, policy in (("official", "follow_n"), ("pinned", "pinned")):
        lg = VM.forward(grown, pixels, vc.replace(**spec["grown"]), grow.grown_taus(cfg, policy))[0]
        res["logits_grown_" + tag] = lg
    if not np.array_equal(f32(res["logits_grown_pinned"]), f32(logits)):
        raise AssertionError(f"{spec['name']}: pinned zero-key growth changed the logits")
    if not rel(res["logits_grown_official"], logits) > 1e-3:
        raise AssertionError(f"{spec['name']}: follow_n growth did not change the logits")
    tensors = {**params, "pixels": pixels, "labels": labels, "logits": logits,
               "loss": np.reshape(loss, 1), "grad_norm": np.array([gnorm])}
    tensors.update({"grad." + k: g for k, g in grads.items()})
    tensors.update({"step1." + k: p for k, p in step1.items()})
    tensors.update({"grown." + k: v for k, v in grown.items()})
    tensors.update(res)
    meta = {"task": "vision", "batch_size": str(spec["batch"]), "seed": str(spec["seed"]),
            **cfg.to_strings(), **vc.to_strings(), **hp.to_strings(),
            **{"grown_" + k: str(spec["grown"][k]) for k in GROWN_KEYS},
            "inputs_rng": "numpy.random.default_rng(seed)"}
    return tensors, meta


BUILDERS = {"pattention": build_pattention, "model": build_model, "grow": build_grow,
            "vision": build_vision}


# ---------------------------------------------------------------------------
# the YAML sibling: the config in the style of the official configs (a
# JSON-like flow mapping with '#' comments, which json reads once the
# comment lines are dropped)
# ---------------------------------------------------------------------------
def _yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        s = repr(v)
        mant, _, exp = s.partition("e")
        return f"{mant}.0e{exp}" if exp and "." not in mant else s   # 1e-05 is a string in YAML 1.1
    return json.dumps(v)


def yaml_text(spec):
    cfg = M.Config(**spec["config"])
    items = [("num_layers", cfg.num_layers), ("hidden_size", cfg.hidden_size),
             ("num_attention_heads", cfg.num_attention_heads),
             ("qkv_slot_num", cfg.qkv_slot_num), ("proj_slot_num", cfg.proj_slot_num),
             ("ffn_slot_num", cfg.ffn_slot_num), ("seq_length", cfg.seq_length),
             ("max_position_embeddings", cfg.seq_length), ("pos_emb", "rotary"),
             ("rotary_pct", float(cfg.rotary_pct)), ("rotary_emb_base", cfg.rotary_emb_base),
             ("no_weight_tying", False), ("norm", "layernorm_nonparam"),
             ("final_norm", "layernorm"), ("layernorm_epsilon", float(cfg.layernorm_epsilon)),
             ("vocab_size", cfg.vocab_size), ("attention_config", [[["tokenformer"], cfg.num_layers]]),
             ("norm_activation_type", cfg.norm_activation_type),
             ("init_method", "normal"), ("output_layer_init_method", "wang_init")]
    name = spec["name"]
    lines = [f"# {name}: config of the fixture {name}.safetensors (same values as its __metadata__)."]
    if spec["kind"] == "grow":
        lines += ["# Base model config. grown_*_slot_num are the slot numbers after growth",
                  "# (not official keys; an official incremental config would carry them as",
                  "# qkv_slot_num/proj_slot_num/ffn_slot_num of the new model)."]
        items += [("grown_" + k, spec["grown"][k]) for k in GROWN_KEYS]
    lines += ["# Generated by tests/reference/make_fixtures.py; do not edit.", "{"]
    body = [f'  "{k}": {_yaml_value(v)}' for k, v in items]
    if "optim" in spec:
        hp = optim.AdamW(**spec["optim"])
        body += ['  "optimizer": {\n    "type": "Adam",\n    "params": {\n'
                 f'      "lr": {_yaml_value(hp.lr)},\n'
                 f'      "betas": [{_yaml_value(hp.beta1)}, {_yaml_value(hp.beta2)}],\n'
                 f'      "eps": {_yaml_value(hp.eps)}\n    }}\n  }}',
                 f'  "weight_decay": {_yaml_value(hp.weight_decay)}',
                 f'  "gradient_clipping": {_yaml_value(hp.clip_grad)}']
    body += [f'  "train_micro_batch_size_per_gpu": {spec["batch"]}',
             '  "hidden_dropout": 0', '  "attention_dropout": 0']
    return "\n".join(lines + [",\n".join(body), "}"]) + "\n"


def read_yaml(path):
    """A fixture .yml as a dict (comment lines dropped, the rest is JSON)."""
    with open(path) as f:
        return json.loads("".join(line for line in f if not line.lstrip().startswith("#")))


# ---------------------------------------------------------------------------
def write_fixture(spec, out, inputs_dir=None):
    """Builds and writes spec's files into out; returns their paths."""
    path = os.path.join(out, spec["name"] + ".safetensors")
    if inputs_dir:
        x = read_inputs(spec, os.path.join(inputs_dir, spec["name"] + ".safetensors"))
    else:
        x = draw_inputs(spec)
    tensors, meta = BUILDERS[spec["kind"]](spec, x)
    meta = {"format": FORMAT, "kind": spec["kind"], **meta}
    if not inputs_dir:
        meta["inputs_rng"] = "numpy.random.default_rng(seed)"
    st.write(path, {k: v if v.dtype.kind == "i" else f32(v) for k, v in tensors.items()}, meta)
    back, _ = st.read(path)
    assert list(back) == list(tensors), path
    written = [path]
    if spec["kind"] not in ("pattention", "vision"):
        ypath = os.path.join(out, spec["name"] + ".yml")
        with open(ypath, "w") as f:
            f.write(yaml_text(spec))
        y = read_yaml(ypath)
        assert all(y[k] == v for k, v in spec["config"].items()), ypath
        written.append(ypath)
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--inputs", metavar="DIR", help="take the inputs from the fixtures in DIR")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="fixture names (default: all)")
    a = ap.parse_args(argv)
    specs = [s for s in SPECS if not a.only or s["name"] in a.only]
    unknown = set(a.only or ()) - {s["name"] for s in specs}
    if unknown:
        ap.error(f"unknown fixture(s): {', '.join(sorted(unknown))}")
    os.makedirs(a.out, exist_ok=True)
    for spec in specs:
        for path in write_fixture(spec, a.out, a.inputs):
            print(f"wrote {path} ({os.path.getsize(path)} B)")


if __name__ == "__main__":
    sys.exit(main())
