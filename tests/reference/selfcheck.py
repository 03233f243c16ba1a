#!/usr/bin/python3
"""selfcheck.py -- checks the reference against itself and the fixtures.

    selfcheck.py [FIXTURE_DIR]          (default: tests/data)

1. Finite differences: every hand-written backward of ops.py (Pattention
   with each norm, LayerNorm without and with affine, partial and full
   rotary, causal and bidirectional attention, cross-entropy), the layer
   (causal with rotary as in the language model, bidirectional without as
   in a vision model) and the whole model's loss on the model fixtures,
   against central differences in float64.
2. The zero-norm guard: zero rows give Theta = 0 and a zero gradient.
3. The optimizer: schedule, bias correction, clipping, the decay group and
   gradient accumulation, each against what it must equal.
4. Growth: zero keys with pinned tau keep the function and the old rows'
   gradients (the GELU norms) while the new keys still get a gradient;
   follow_n, random keys and softmax change it; the moments grow with zeros.
5. A float32 stand-in (this reference run in float32) scored against every
   fixture with the metric of tests/data/README.md: its tolerances are
   reachable, and the numbers are those of the README's last column.
Exit status 1 if any check fails.
"""
import glob
import math
import os
import sys

import numpy as np

import grow
import make_fixtures as MF
import model as M
import ops
import optim
import safetensors_io as st
import vision as VM

FAILURES = []


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("FAIL " + what)


# ---------------------------------------------------------------------------
# 1. finite differences
# ---------------------------------------------------------------------------
def fd_error(scalar, arrays, grads, h=1e-4, entries=None, rng=None):
    """max |finite difference - analytic| / max(1, max|analytic|) over the
    entries of each array (all, or `entries` random ones per array).  The
    five-point stencil's truncation error is O(h^4), so a wrong backward
    stands out above ~1e-10 even where the function is strongly curved.
    scalar() reads the arrays, which are perturbed in place and restored."""
    worst = 0.0
    for a, g in zip(arrays, grads):
        flat, gflat = a.reshape(-1), g.reshape(-1)
        idx = range(flat.size) if entries is None else rng.choice(flat.size, entries, replace=False)
        scale = max(1.0, float(np.max(np.abs(g))))
        for i in idx:
            keep = flat[i]
            f = []
            for step in (2 * h, h, -h, -2 * h):
                flat[i] = keep + step
                f.append(scalar())
            flat[i] = keep
            fd = (8 * (f[1] - f[2]) - (f[0] - f[3])) / (12 * h)
            worst = max(worst, abs(fd - gflat[i]) / scale)
    return worst


def op_case(rng, forward, backward, arrays):
    """L = sum(forward(*arrays) * W) for a random W; backward(cache, W) gives
    the arrays' gradients."""
    out, cache = forward(*arrays)
    W = rng.standard_normal(out.shape)
    grads = backward(cache, W)
    return fd_error(lambda: float(np.sum(forward(*arrays)[0] * W)), arrays, grads)


def check_ops(rng):
    print("== finite differences: the operations (float64, every entry) ==")
    n = 9
    cases = {}
    for nt in ops.NORM_TYPES:
        tau = ops.default_tau(nt, n)
        cases[f"theta {nt}"] = (lambda a, nt=nt, tau=tau: ops.theta_forward(a, nt, tau),
                                lambda c, d: [ops.theta_backward(c, d)],
                                [rng.standard_normal((4, n))])
        cases[f"pattention {nt}"] = (
            lambda x, K, V, nt=nt: ops.pattention_forward(x, K, V, nt),
            lambda c, d: ops.pattention_backward(c, d),
            [rng.standard_normal((2, 3, 6)), 0.4 * rng.standard_normal((n, 6)),
             rng.standard_normal((n, 5))])
    cases["layernorm"] = (lambda x: ops.layer_norm_forward(x, 1e-5),
                          lambda c, d: ops.layer_norm_backward(c, d)[:1],
                          [rng.standard_normal((3, 8))])
    cases["layernorm affine"] = (lambda x, w, b: ops.layer_norm_forward(x, 1e-5, w, b),
                                 lambda c, d: ops.layer_norm_backward(c, d),
                                 [rng.standard_normal((2, 3, 8)), 1 + 0.1 * rng.standard_normal(8),
                                  0.1 * rng.standard_normal(8)])
    for r in (4, 8):
        cos, sin = ops.rotary_tables(np.arange(5), r, 10000)
        cases[f"rotary r={r} of 8"] = (lambda x, cos=cos, sin=sin: (ops.rotary_forward(x, cos, sin), None),
                                       lambda c, d, cos=cos, sin=sin: [ops.rotary_backward(d, cos, sin)],
                                       [rng.standard_normal((2, 2, 5, 8))])
    for causal in (True, False):
        cases["attention " + ("causal" if causal else "bidirectional")] = (
            lambda q, k, v, causal=causal: ops.attention_forward(q, k, v, causal),
            lambda c, d: ops.attention_backward(c, d),
            [rng.standard_normal((2, 2, 5, 4)) for _ in range(3)])
    targets = rng.integers(0, 7, 6)
    cases["cross-entropy"] = (lambda z: ops.cross_entropy_forward(z, targets),
                              lambda c, d: [ops.cross_entropy_backward(c, float(d))],
                              [rng.standard_normal((6, 7))])
    for name, (fwd, bwd, arrays) in cases.items():
        err = op_case(rng, fwd, bwd, arrays)
        print(f"  {name:28s} max err {err:.1e}")
        check(err < 1e-9, f"{name}: backward differs from finite differences by {err:.1e}")


def small_config(**kw):
    return M.Config(**{**dict(num_layers=2, hidden_size=8, num_attention_heads=2, qkv_slot_num=5,
                              proj_slot_num=4, ffn_slot_num=6, rotary_pct=0.5, vocab_size=11,
                              seq_length=5), **kw})


def check_layers(rng):
    print("== finite differences: two layers and the final norm (8 entries per tensor) ==")
    for nt in ops.NORM_TYPES:
        cfg = small_config(norm_activation_type=nt)
        params = M.init_params(cfg, rng, ln_jitter=0.1, key_std=0.3)
        trunk = {k: params[k] for k in M.trunk_param_shapes(cfg)}
        for causal, rope in ((True, M.lm_rope(cfg, 5)), (False, None)):
            x = rng.standard_normal((2, 5, cfg.hidden_size))
            W = rng.standard_normal(x.shape)
            y, cache = M.trunk_forward(trunk, x, cfg, causal, rope)
            grads = M.zero_grads(trunk)
            dx = M.trunk_backward(cache, W, grads)
            names = list(trunk)
            err = fd_error(lambda: float(np.sum(M.trunk_forward(trunk, x, cfg, causal, rope)[0] * W)),
                           [x] + [trunk[k] for k in names], [dx] + [grads[k] for k in names],
                           entries=8, rng=rng)
            what = f"trunk {nt}, " + ("causal + rotary" if causal else "bidirectional, no rotary")
            print(f"  {what:50s} max err {err:.1e}")
            check(err < 1e-9, f"{what}: backward differs from finite differences by {err:.1e}")


def fixture_inputs(path, spec):
    return MF.read_inputs(spec, path), M.Config(**spec["config"])


def check_model_fd(fixtures, rng):
    print("== finite differences: the loss of the model fixtures (4 entries per tensor) ==")
    for path, spec in fixtures:
        if spec["kind"] == "vision":
            check_vision_fd(path, spec, rng)
        if spec["kind"] != "model":
            continue
        x, cfg = fixture_inputs(path, spec)
        params, tokens, targets = x["params"], x["tokens"], x["targets"]
        _, _, grads = M.loss_and_grads(params, tokens, targets, cfg)
        names = list(params)
        err = fd_error(lambda: float(M.loss(params, tokens, targets, cfg)),
                       [params[k] for k in names], [grads[k] for k in names],
                       entries=4, rng=rng)
        print(f"  {os.path.basename(path):34s} {4 * len(names):4d} entries  max err {err:.1e}")
        check(err < 1e-9, f"{path}: loss gradient differs from finite differences by {err:.1e}")


def check_vision_fd(path, spec, rng):
    """The image classifier's loss against every gradient (4 entries per
    tensor, and the pixels), and its zero-key growth under the pinned
    scale: the same logits in float64."""
    x, vc = MF.read_inputs(spec, path), VM.VisionConfig(**spec["vision"])
    params, pixels, labels = x["params"], x["pixels"], x["labels"]
    _, _, grads = VM.loss_and_grads(params, pixels, labels, vc)
    names = list(params)
    err = fd_error(lambda: float(VM.loss(params, pixels, labels, vc)),
                   [params[k] for k in names], [grads[k] for k in names], entries=4, rng=rng)
    print(f"  {os.path.basename(path):34s} {4 * len(names):4d} entries  max err {err:.1e}")
    check(err < 1e-9, f"{path}: loss gradient differs from finite differences by {err:.1e}")
    cfg = vc.trunk()
    grown, _ = grow.grow_params(params, cfg, spec["grown"], rows=x["rows"])
    base = VM.forward(params, pixels, vc)[0]
    pinned = VM.forward(grown, pixels, vc.replace(**spec["grown"]), grow.grown_taus(cfg, "pinned"))[0]
    d = MF.rel(pinned, base)
    print(f"  {'vision growth, zero keys, pinned':34s}  rel diff {d:.1e}")
    check(d < 1e-12, f"{path}: pinned zero-key growth changed the logits by {d:.1e}")


# ---------------------------------------------------------------------------
# 2. the zero-norm guard
# ---------------------------------------------------------------------------
def check_guard(rng):
    print("== the zero-norm guard ==")
    a = rng.standard_normal((4, 9))
    a[1] = 0.0
    a[3] = -40.0      # gelu underflows to 0 on every entry: zero norm after gelu
    for nt in ops.NORM_TYPES:
        tau = ops.default_tau(nt, 9)
        s, cache = ops.theta_forward(a, nt, tau)
        da = ops.theta_backward(cache, rng.standard_normal(a.shape))
        alone = ops.theta_forward(a[[0, 2]], nt, tau)[0]
        check(np.all(np.isfinite(s)) and np.all(np.isfinite(da)), f"{nt}: a zero row gives NaN")
        check(np.array_equal(s[[0, 2]], alone), f"{nt}: a zero row changes the other rows")
        guarded = [1] if nt == "l2_norm_gelu" else [1, 3] if nt == "gelu_l2_norm" else []
        for r in guarded:
            check(not s[r].any() and not da[r].any(), f"{nt}: guarded row {r} is not zero")
        if nt == "softmax":
            check(np.allclose(s[1], tau / 9), "softmax of a zero row is not uniform")
        print(f"  {nt:14s} rows {guarded or 'none'} guarded; finite everywhere")


# ---------------------------------------------------------------------------
# 3. the optimizer
# ---------------------------------------------------------------------------
def check_optimizer(rng):
    print("== the optimizer ==")
    hp = optim.AdamW(lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=110)
    lr = lambda t: optim.lr_at(hp, t)  # noqa: E731
    check(lr(0) == 0.0 and math.isclose(lr(5), 5e-4, rel_tol=1e-15), "warmup is not linear from 0")
    check(lr(10) == hp.lr, "the warmup does not end at lr")
    check(math.isclose(lr(60), 5.5e-4, rel_tol=1e-12), "the cosine's midpoint is not (lr + min_lr)/2")
    check(lr(110) == lr(1000) == hp.min_lr, "the cosine does not end at min_lr")
    check(optim.lr_at(optim.AdamW(lr=1e-3), 7) == 1e-3, "no schedule is not a constant lr")
    lrs = [lr(t) for t in range(10, 111)]
    check(all(x >= y for x, y in zip(lrs, lrs[1:])), "the cosine is not monotone")

    cfg = small_config(num_layers=1)
    params = M.init_params(cfg, rng, ln_jitter=0.1)
    grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
    norm = optim.global_norm(grads)
    noclip = optim.AdamW(clip_grad=0.0, weight_decay=0.0)
    # step 1 from zero moments moves every weight by lr * |g| / (|g| + eps)
    p1, _, _ = optim.adamw_step(params, grads, noclip)
    err = max(float(np.max(np.abs(params[k] - p1[k] - noclip.lr * g / (np.abs(g) + noclip.eps))))
              for k, g in grads.items())
    check(err < 1e-15, f"bias correction: step 1 is off lr * g / (|g| + eps) by {err:.1e}")
    # clipping is the same step on gradients scaled by clip / (norm + 1e-6)
    clip = optim.AdamW(clip_grad=0.5 * norm, weight_decay=0.0)
    pa, sa, n_rep = optim.adamw_step(params, grads, clip)
    c = clip.clip_grad / (norm + 1e-6)
    pb, sb, _ = optim.adamw_step(params, {k: g * c for k, g in grads.items()}, noclip)
    err = max(float(np.max(np.abs(pa[k] - pb[k]))) for k in params)
    check(n_rep == norm and err < 1e-15, f"clipping differs from scaled gradients by {err:.1e}")
    # weight decay: zero gradients shrink every tensor but the final norm
    zeros = M.zero_grads(params)
    wd = optim.AdamW(weight_decay=0.1)
    pz, _, _ = optim.adamw_step(params, zeros, wd)
    ok = all(np.array_equal(pz[k], params[k] * (1 - wd.lr * wd.weight_decay)) == M.decays(k)
             for k in params)
    check(ok, "weight decay does not apply to exactly the decay group")
    # accumulation: k micro-batch gradients summed, divided by k
    acc = optim.AdamW(grad_accum_steps=4)
    pc, _, nc = optim.adamw_step(params, {k: 4 * g for k, g in grads.items()}, acc)
    pd, _, nd = optim.adamw_step(params, grads, optim.AdamW())
    err = max(float(np.max(np.abs(pc[k] - pd[k]))) for k in params)
    check(math.isclose(nc, nd) and err < 1e-15, f"gradient accumulation differs by {err:.1e}")
    # two steps: the moments carry over (step 2 from step 1's state)
    _, s1, _ = optim.adamw_step(params, grads, noclip)
    _, s2, _ = optim.adamw_step(p1, grads, noclip, s1, step=2)
    m, v = s2["embed.weight"]
    g = grads["embed.weight"]
    check(np.allclose(m, (1 - 0.9 ** 2) * g, rtol=1e-14)
          and np.allclose(v, (1 - 0.95 ** 2) * g * g, rtol=1e-14), "the moments do not accumulate over steps")
    print("  schedule, bias correction, clipping, decay group, accumulation, moments: checked")


# ---------------------------------------------------------------------------
# 4. growth
# ---------------------------------------------------------------------------
def check_growth(rng):
    print("== growth ==")
    new = dict(qkv_slot_num=8, proj_slot_num=6, ffn_slot_num=9)
    for nt in ops.NORM_TYPES:
        cfg = small_config(norm_activation_type=nt)
        base = M.init_params(cfg, rng)
        tokens = rng.integers(0, cfg.vocab_size, (2, 5))
        targets = rng.integers(0, cfg.vocab_size, (2, 5))
        lb, loss_b, gb = M.loss_and_grads(base, tokens, targets, cfg)
        zero, gcfg = grow.grow_params(base, cfg, new, rng, "zero")
        rand, _ = grow.grow_params(base, cfg, new, rng, "random")
        pinned, follow = grow.grown_taus(cfg, "pinned"), grow.grown_taus(cfg, "follow_n")
        lz, _, gz = M.loss_and_grads(zero, tokens, targets, gcfg, pinned)
        d_zero = MF.rel(lz, lb)
        d_follow = MF.rel(M.forward(zero, tokens, gcfg, follow), lb)
        d_rand = MF.rel(M.forward(rand, tokens, gcfg, pinned), lb)
        keys = [p + M.KEYS for p in M.pattention_sets(cfg.num_layers)]
        if nt == "softmax":
            check(d_zero > 1e-3, "softmax: zero-key growth kept the function (it cannot)")
        else:
            old = max(MF.rel(gz[k][:gb[k].shape[0]], gb[k]) for k in gb)
            new_key_grad = min(float(np.max(np.abs(gz[k][gb[k].shape[0]:]))) for k in keys)
            check(d_zero < 1e-13, f"{nt}: pinned zero-key growth changed the logits by {d_zero:.1e}")
            check(old < 1e-13, f"{nt}: pinned zero-key growth changed the old gradients by {old:.1e}")
            check(new_key_grad > 0, f"{nt}: a set's new zero keys get no gradient")
        check(d_follow > 1e-3 and d_rand > 1e-3, f"{nt}: follow_n or random keys kept the function")
        print(f"  {nt:14s} zero keys + pinned {d_zero:.1e}, + follow_n {d_follow:.1e}, "
              f"random keys + pinned {d_rand:.1e}")
    state = {k: (rng.standard_normal(v.shape), rng.standard_normal(v.shape)) for k, v in base.items()}
    gstate = grow.grow_state(state, zero)
    ok = all(np.array_equal(gstate[k][j][:v.shape[0]], state[k][j]) and not gstate[k][j][v.shape[0]:].any()
             and gstate[k][j].shape == zero[k].shape for k, v in base.items() for j in (0, 1))
    check(ok, "the grown moments are not the old ones followed by zero rows")


# ---------------------------------------------------------------------------
# 5. float32 stand-in
# ---------------------------------------------------------------------------
def stand_in(path, spec):
    """This reference in float32 on the fixture's inputs: {what: metric}."""
    t, _ = st.read(path)
    x = MF.read_inputs(spec, path)
    to32 = lambda d: {k: v.astype(np.float32) for k, v in d.items()}  # noqa: E731
    res = {}
    if spec["kind"] == "pattention":
        X, K, V, dY = (x[k].astype(np.float32) for k in ("X", "K", "V", "dY"))
        Y, cache = ops.pattention_forward(X, K, V, spec["norm"])
        dX, dK, dV = ops.pattention_backward(cache, dY)
        res["output"] = MF.rel(Y, t["output"])
        res["grads"] = max(MF.rel(dX, t["grad_input"]), MF.rel(dK, t["grad_key_param_tokens"]),
                           MF.rel(dV, t["grad_value_param_tokens"]))
    elif spec["kind"] == "model":
        cfg, hp = M.Config(**spec["config"]), optim.AdamW(**spec["optim"])
        p32 = to32(x["params"])
        logits, loss, grads = M.loss_and_grads(p32, x["tokens"], x["targets"], cfg)
        res["logits"] = MF.rel(logits, t["logits"])
        res["loss"] = MF.rel(np.reshape(loss, 1), t["loss"])
        res["grads"] = max(MF.rel(grads[k], t["grad." + k]) for k in p32)
        s_fix, _, _ = optim.adamw_step(p32, to32({k: t["grad." + k] for k in p32}), hp)
        s_own, _, _ = optim.adamw_step(p32, grads, hp)
        res["step1 (stored grads)"] = max(MF.rel(s_fix[k], t["step1." + k]) for k in p32)
        res["step1 (own grads) /lr"] = max(
            float(np.max(np.abs(s_own[k] - t["step1." + k])[np.abs(t["grad." + k]) >= 1e-5])) / hp.lr
            for k in p32)
    elif spec["kind"] == "vision":
        vc = VM.VisionConfig(**spec["vision"])
        p32, px = to32(x["params"]), x["pixels"].astype(np.float32)
        logits, loss, grads = VM.loss_and_grads(p32, px, x["labels"], vc)
        res["logits"] = MF.rel(logits, t["logits"])
        res["loss"] = MF.rel(np.reshape(loss, 1), t["loss"])
        res["grads"] = max(MF.rel(grads[k], t["grad." + k]) for k in p32)
    else:
        cfg = M.Config(**spec["config"])
        grown, gcfg = grow.grow_params(to32(x["params"]), cfg, spec["grown"], rows=x["rows"])
        lb = M.forward(to32(x["params"]), x["tokens"], cfg)
        lp = M.forward(grown, x["tokens"], gcfg, grow.grown_taus(cfg, "pinned"))
        lo = M.forward(grown, x["tokens"], gcfg)
        res["logits_base"] = MF.rel(lb, t["logits_base"])
        res["logits_grown_official"] = MF.rel(lo, t["logits_grown_official"])
        res["logits_grown_pinned"] = MF.rel(lp, t["logits_grown_pinned"])
        res["pinned == base bitwise"] = float(np.array_equal(lp, lb))
    return res


# README tolerances per stand-in figure (step1 own grads: in units of lr)
STAND_IN_TOL = {"grads": 2e-4, "step1 (stored grads)": 1e-5, "step1 (own grads) /lr": 1e-2}


def check_stand_in(fixtures):
    print("== float32 stand-in vs the fixtures (max|a-b| / (max|b| + 1e-6)) ==")
    for path, spec in fixtures:
        res = stand_in(path, spec)
        for k, v in res.items():
            if k == "pinned == base bitwise":
                check(v == 1.0, f"{path}: float32 pinned growth is not bitwise the base")
            else:
                tol = STAND_IN_TOL.get(k, 2e-5)
                check(v <= tol, f"{path}: float32 {k} {v:.1e} exceeds the README's {tol:.0e}")
        items = "  ".join(f"{k} {v:.1e}" if "bitwise" not in k else f"{k}: {bool(v)}" for k, v in res.items())
        print(f"  {os.path.basename(path):34s} {items}")


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    fdir = argv[1] if len(argv) > 1 else os.path.join(here, "..", "data")
    known = {s["name"] + ".safetensors": s for s in MF.SPECS}
    paths = sorted(glob.glob(os.path.join(fdir, "*.safetensors")))
    fixtures = [(p, known[os.path.basename(p)]) for p in paths if os.path.basename(p) in known]
    check(len(fixtures) == len(known), f"{fdir}: {len(known) - len(fixtures)} fixture(s) missing")
    rng = np.random.default_rng(20250101)
    check_ops(rng)
    check_layers(rng)
    check_model_fd(fixtures, rng)
    check_guard(rng)
    check_optimizer(rng)
    check_growth(rng)
    check_stand_in(fixtures)
    if FAILURES:
        print(f"{len(FAILURES)} check(s) failed")
        return 1
    print("ok: every self-check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
