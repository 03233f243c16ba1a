"""grow.py -- incremental scaling in numpy: new parameter tokens appended to
every Pattention set (zero or random keys, random values), the two scale
policies, and the optimizer moments growing with the tensors."""
import numpy as np

import ops
from model import KEYS, VALUES, pattention_sets, slot_num, value_std

KEY_INITS = ("zero", "random")          # zero: the paper; random: the official release
SCALE_POLICIES = ("pinned", "follow_n")


def new_rows(rng, extra, d_in, d_out, key_init="zero", key_std=0.02, vstd=0.02):
    """New keys [extra, d_in] (zero, or N(0, key_std)) and values [extra, d_out]
    ~ N(0, vstd), drawn from the numpy Generator rng (keys first)."""
    if key_init not in KEY_INITS:
        raise ValueError(f"unknown key init {key_init!r}")
    keys = np.zeros((extra, d_in)) if key_init == "zero" else key_std * rng.standard_normal((extra, d_in))
    return keys, vstd * rng.standard_normal((extra, d_out))


def grow_params(params, cfg, new_slots, rng=None, key_init="zero", key_std=0.02, vstd=None,
                rows=None):
    """Grows every layer's query/key/value sets to new_slots["qkv_slot_num"]
    tokens, proj to "proj_slot_num", mlp to "ffn_slot_num" (missing: as is),
    appending the new tokens after the old ones.  The new rows come from
    `rows` ({set prefix: (keys, values)}, e.g. read back from a fixture) or
    are drawn per set in canonical order by new_rows (vstd None: the model's
    value_std).  Returns (grown params, grown config); other tensors are
    shared, not copied."""
    gcfg = cfg.replace(**new_slots)
    vstd = value_std(cfg) if vstd is None else vstd
    out = dict(params)
    for p in pattention_sets(cfg.num_layers):
        n_old, n_new = slot_num(cfg, p), slot_num(gcfg, p)
        if n_new < n_old:
            raise ValueError(f"{p}: cannot shrink from {n_old} to {n_new} tokens")
        K, V = params[p + KEYS], params[p + VALUES]
        if rows is not None:
            Kn, Vn = rows[p]
        else:
            Kn, Vn = new_rows(rng, n_new - n_old, K.shape[1], V.shape[1], key_init, key_std, vstd)
        if Kn.shape != (n_new - n_old, K.shape[1]) or Vn.shape != (n_new - n_old, V.shape[1]):
            raise ValueError(f"{p}: new rows of the wrong shape")
        out[p + KEYS] = np.concatenate([K, Kn.astype(K.dtype)])
        out[p + VALUES] = np.concatenate([V, Vn.astype(V.dtype)])
    return out, gcfg


def grown_taus(cfg, policy, taus=None):
    """The tau overrides of the model after growing a model of config cfg
    whose sets had the overrides taus (None: none): "pinned" keeps every
    set's tau (its override, else the default at the old n); "follow_n"
    drops them (every set's default at its new n, as the official code)."""
    if policy not in SCALE_POLICIES:
        raise ValueError(f"unknown scale policy {policy!r}")
    if policy == "follow_n":
        return None
    taus = taus or {}
    return {p: taus.get(p, ops.default_tau(cfg.norm_activation_type, slot_num(cfg, p)))
            for p in pattention_sets(cfg.num_layers)}


def grow_state(state, grown):
    """Optimizer moments {name: (m, v)} for the grown params: new rows zero."""
    out = {}
    for k, (m, v) in state.items():
        pad = [(0, grown[k].shape[0] - m.shape[0])] + [(0, 0)] * (m.ndim - 1)
        out[k] = (np.pad(m, pad), np.pad(v, pad))
    return out
