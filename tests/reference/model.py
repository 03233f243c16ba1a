"""model.py -- the TokenFormer language model in numpy: configuration,
parameters (names, shapes, official init), the transformer layer, the trunk,
the tied-embedding language model, its loss and hand-written gradients.

Parameters are a flat {name: array} dict with the names of
include/tokenformer.h; gradients are a dict of the same names.  The layer
and the trunk (layers + final LayerNorm) take embeddings, a `causal` flag
and an optional rotary table, and read only the fields of `Config` they
need, so another model (image patches through a Pattention set, a learned
position embedding, bidirectional attention, a classification head) builds
on them without a second copy of the layer.
"""
import math
from dataclasses import asdict, dataclass, fields

import numpy as np

import ops

ATTN_SETS = ("query", "key", "value", "proj")
KEYS, VALUES = ".key_param_tokens", ".value_param_tokens"


@dataclass
class Config:
    """The model keys of the official YAML configs (field order = the order
    of the fixtures' metadata)."""
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    qkv_slot_num: int
    proj_slot_num: int
    ffn_slot_num: int
    rotary_pct: float = 0.25
    rotary_emb_base: int = 10000
    norm_activation_type: str = "l2_norm_gelu"
    vocab_size: int = 256
    seq_length: int = 16
    layernorm_epsilon: float = 1e-5

    @property
    def head_dim(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("num_attention_heads must divide hidden_size")
        return self.hidden_size // self.num_attention_heads

    @property
    def rotary_ndims(self):
        """int(head_dim * rotary_pct), the whole head when rotary_pct == 1."""
        r = self.head_dim if self.rotary_pct == 1 else int(self.head_dim * self.rotary_pct)
        if r % 2:
            raise ValueError("rotate_half needs an even number of rotary dims")
        return r

    def replace(self, **changes):
        return type(self)(**{**asdict(self), **changes})

    def to_strings(self):
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_strings(cls, d):
        """From string values (safetensors metadata); other keys are ignored."""
        return cls(**{f.name: f.type(d[f.name]) for f in fields(cls) if f.name in d})


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------
def layer_sets(i):
    """The Pattention sets of layer i, in canonical order."""
    return [f"layers.{i}.attention.{s}" for s in ATTN_SETS] + [f"layers.{i}.mlp"]


def pattention_sets(num_layers):
    return [p for i in range(num_layers) for p in layer_sets(i)]


def slot_num(cfg, prefix):
    if prefix.endswith(".mlp"):
        return cfg.ffn_slot_num
    if prefix.endswith(".proj"):
        return cfg.proj_slot_num
    return cfg.qkv_slot_num


def trunk_param_shapes(cfg):
    """{name: shape} of every layer and the final norm."""
    d = cfg.hidden_size
    shapes = {}
    for p in pattention_sets(cfg.num_layers):
        shapes[p + KEYS] = (slot_num(cfg, p), d)
        shapes[p + VALUES] = (slot_num(cfg, p), d)
    shapes["final_norm.weight"] = (d,)
    shapes["final_norm.bias"] = (d,)
    return shapes


def param_shapes(cfg):
    """{name: shape} of the language model, in canonical (file) order."""
    return {"embed.weight": (cfg.vocab_size, cfg.hidden_size), **trunk_param_shapes(cfg)}


def decays(name):
    """Weight decay applies to everything but the final LayerNorm."""
    return not name.startswith("final_norm.")


def value_std(cfg):
    """wang_init: 2 / L / sqrt(d)."""
    return 2.0 / cfg.num_layers / math.sqrt(cfg.hidden_size)


def init_params(cfg, rng, ln_jitter=0.0, key_std=0.02):
    """Official init, drawn from the numpy Generator rng in name order: keys
    and embedding N(0, key_std), values N(0, value_std(cfg)), final norm
    weight 1 and bias 0, each plus ln_jitter * N(0, 1) (> 0 in the fixtures,
    so that the affine part is tested)."""
    return draw_params(param_shapes(cfg), value_std(cfg), rng, ln_jitter, key_std)


def draw_params(shapes, vstd, rng, ln_jitter=0.0, key_std=0.02):
    """{name: shape} drawn in order: values N(0, vstd), final norm 1 and 0
    (plus ln_jitter * N(0, 1)), everything else N(0, key_std)."""
    out = {}
    for name, shape in shapes.items():
        z = rng.standard_normal(shape)
        if name == "final_norm.weight":
            out[name] = 1.0 + ln_jitter * z
        elif name == "final_norm.bias":
            out[name] = ln_jitter * z
        elif name.endswith(VALUES):
            out[name] = vstd * z
        else:
            out[name] = key_std * z
    return out


def zero_grads(params):
    return {k: np.zeros_like(v) for k, v in params.items()}


# ---------------------------------------------------------------------------
# the transformer layer
# ---------------------------------------------------------------------------
def _pset_forward(params, prefix, x, cfg, taus):
    tau = None if taus is None else taus.get(prefix)
    return ops.pattention_forward(x, params[prefix + KEYS], params[prefix + VALUES],
                                  cfg.norm_activation_type, tau)


def _pset_backward(prefix, cache, dy, grads):
    dx, dk, dv = ops.pattention_backward(cache, dy)
    grads[prefix + KEYS] += dk
    grads[prefix + VALUES] += dv
    return dx


def _split_heads(y, H):
    B, T, d = y.shape
    return y.reshape(B, T, H, d // H).transpose(0, 2, 1, 3)


def _merge_heads(y):
    B, H, T, hd = y.shape
    return y.transpose(0, 2, 1, 3).reshape(B, T, H * hd)


def layer_forward(params, i, x, cfg, causal=True, rope=None, taus=None):
    """Layer i on x [B, T, d] (pre-LN, two residuals):
        u = LN(x); q, k, v = Pq(u), Pk(u), Pv(u), split into heads;
        rotary on q, k if rope = (cos, sin) [T, r] is given;
        o = softmax(q k^T / sqrt(head_dim)) v (causal or not), heads merged;
        h = x + Pproj(o); out = h + Pffn(LN(h)).
    taus: {set prefix: tau} overrides the default tau of those sets."""
    H, eps = cfg.num_attention_heads, cfg.layernorm_epsilon
    sets = layer_sets(i)
    u, c_ln1 = ops.layer_norm_forward(x, eps)
    qkv, c_qkv = [], []
    for prefix in sets[:3]:
        y, c = _pset_forward(params, prefix, u, cfg, taus)
        qkv.append(_split_heads(y, H))
        c_qkv.append(c)
    q, k, v = qkv
    if rope is not None:
        q, k = ops.rotary_forward(q, *rope), ops.rotary_forward(k, *rope)
    o, c_att = ops.attention_forward(q, k, v, causal)
    a, c_proj = _pset_forward(params, sets[3], _merge_heads(o), cfg, taus)
    h = x + a
    u2, c_ln2 = ops.layer_norm_forward(h, eps)
    f, c_ffn = _pset_forward(params, sets[4], u2, cfg, taus)
    return h + f, (sets, H, rope, c_ln1, c_qkv, c_att, c_proj, c_ln2, c_ffn)


def layer_backward(cache, dout, grads):
    """Accumulates the layer's parameter gradients into grads; returns dx."""
    sets, H, rope, c_ln1, c_qkv, c_att, c_proj, c_ln2, c_ffn = cache
    dh = dout + ops.layer_norm_backward(c_ln2, _pset_backward(sets[4], c_ffn, dout, grads))[0]
    do = _split_heads(_pset_backward(sets[3], c_proj, dh, grads), H)
    dq, dk, dv = ops.attention_backward(c_att, do)
    if rope is not None:
        dq, dk = ops.rotary_backward(dq, *rope), ops.rotary_backward(dk, *rope)
    du = sum(_pset_backward(prefix, c, _merge_heads(dy), grads)
             for prefix, c, dy in zip(sets[:3], c_qkv, (dq, dk, dv)))
    return dh + ops.layer_norm_backward(c_ln1, du)[0]


def trunk_forward(params, x, cfg, causal=True, rope=None, taus=None):
    """Every layer, then the final LayerNorm (weight, bias): [B, T, d] -> [B, T, d]."""
    caches = []
    for i in range(cfg.num_layers):
        x, c = layer_forward(params, i, x, cfg, causal, rope, taus)
        caches.append(c)
    y, c_fn = ops.layer_norm_forward(x, cfg.layernorm_epsilon,
                                     params["final_norm.weight"], params["final_norm.bias"])
    return y, (caches, c_fn)


def trunk_backward(cache, dy, grads):
    caches, c_fn = cache
    dx, dw, db = ops.layer_norm_backward(c_fn, dy)
    grads["final_norm.weight"] += dw
    grads["final_norm.bias"] += db
    for c in reversed(caches):
        dx = layer_backward(c, dx, grads)
    return dx


# ---------------------------------------------------------------------------
# the language model: embedding lookup, causal trunk with rotary, tied head
# ---------------------------------------------------------------------------
def lm_rope(cfg, T, dtype=np.float64):
    return ops.rotary_tables(np.arange(T), cfg.rotary_ndims, cfg.rotary_emb_base, dtype)


def lm_forward(params, tokens, cfg, taus=None):
    """tokens int [B, T] -> logits [B, T, V] = trunk(embed[tokens]) embed^T."""
    E = params["embed.weight"]
    xf, c_trunk = trunk_forward(params, E[tokens], cfg, causal=True,
                                rope=lm_rope(cfg, tokens.shape[1], E.dtype), taus=taus)
    return xf @ E.T, (tokens, xf, c_trunk)


def lm_backward(params, cache, dlogits, grads):
    """Accumulates every gradient of the language model into grads; the
    embedding gets the output head's and the lookup's contributions."""
    tokens, xf, c_trunk = cache
    E = params["embed.weight"]
    d = E.shape[1]
    dE = grads["embed.weight"]
    dE += dlogits.reshape(-1, E.shape[0]).T @ xf.reshape(-1, d)
    dx = trunk_backward(c_trunk, dlogits @ E, grads)
    np.add.at(dE, tokens.reshape(-1), dx.reshape(-1, d))


def forward(params, tokens, cfg, taus=None):
    return lm_forward(params, tokens, cfg, taus)[0]


def loss(params, tokens, targets, cfg, taus=None):
    """Mean cross-entropy of the next-token predictions over all B*T positions."""
    logits = forward(params, tokens, cfg, taus)
    return ops.cross_entropy_forward(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))[0]


def loss_and_grads(params, tokens, targets, cfg, taus=None):
    """-> logits [B, T, V], loss (scalar), {name: d loss / d param}."""
    logits, cache = lm_forward(params, tokens, cfg, taus)
    V = logits.shape[-1]
    loss_value, c_ce = ops.cross_entropy_forward(logits.reshape(-1, V), targets.reshape(-1))
    grads = zero_grads(params)
    lm_backward(params, cache, ops.cross_entropy_backward(c_ce).reshape(logits.shape), grads)
    return logits, loss_value, grads
