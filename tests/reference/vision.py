"""vision.py -- the ViT-style TokenFormer image classifier in numpy, on the
language model's trunk (model.trunk_forward / trunk_backward with
causal=False, rope=None): images cut into p x p patches, each flattened
(row, column, channel) and projected by the Pattention set patch_embed, a
learned position embedding pos_embed [P, d] added, the trunk (layers and
final LayerNorm), mean pooling over each image's P rows, the Pattention
head [d -> num_classes], cross-entropy over the classes.  Names and math
as include/tokenformer.h states them (the vision section)."""
from dataclasses import asdict, dataclass

import numpy as np

import model as M
import ops

PATCH, HEAD = "patch_embed", "head"


@dataclass
class VisionConfig:
    """tf_vision_params (field order = the fixtures' metadata order)."""
    image_size: int
    channels: int
    patch_size: int
    num_classes: int
    patch_slot_num: int
    head_slot_num: int
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    qkv_slot_num: int
    proj_slot_num: int
    ffn_slot_num: int
    norm_activation_type: str = "l2_norm_gelu"
    layernorm_epsilon: float = 1e-5

    @property
    def grid(self):
        return self.image_size // self.patch_size

    @property
    def num_patches(self):
        return self.grid * self.grid

    @property
    def patch_dim(self):
        return self.patch_size * self.patch_size * self.channels

    def trunk(self):
        """The trunk's Config (what the library's tf_model_get_params says:
        seq_length P, vocab_size K, no rotary)."""
        return M.Config(self.num_layers, self.hidden_size, self.num_attention_heads,
                        self.qkv_slot_num, self.proj_slot_num, self.ffn_slot_num,
                        rotary_pct=0.0, norm_activation_type=self.norm_activation_type,
                        vocab_size=self.num_classes, seq_length=self.num_patches,
                        layernorm_epsilon=self.layernorm_epsilon)

    def replace(self, **changes):
        return type(self)(**{**asdict(self), **changes})

    def to_strings(self):
        return {k: str(v) for k, v in asdict(self).items()}


def param_shapes(vc):
    """{name: shape} in the library's table order."""
    d, shapes = vc.hidden_size, {"pos_embed": (vc.num_patches, vc.hidden_size)}
    trunk = M.trunk_param_shapes(vc.trunk())
    shapes.update({k: v for k, v in trunk.items() if not k.startswith("final_norm.")})
    shapes[PATCH + M.KEYS] = (vc.patch_slot_num, vc.patch_dim)
    shapes[PATCH + M.VALUES] = (vc.patch_slot_num, d)
    shapes[HEAD + M.KEYS] = (vc.head_slot_num, d)
    shapes[HEAD + M.VALUES] = (vc.head_slot_num, vc.num_classes)
    shapes["final_norm.weight"] = (d,)
    shapes["final_norm.bias"] = (d,)
    return shapes


def init_params(vc, rng, ln_jitter=0.0, key_std=0.02):
    """The library's conventions, drawn from rng in table order: keys and
    pos_embed N(0, key_std), values N(0, 2/L/sqrt(d)), final norm 1 and 0
    (plus ln_jitter * N(0, 1))."""
    return M.draw_params(param_shapes(vc), M.value_std(vc.trunk()), rng, ln_jitter, key_std)


def patches(vc, pixels):
    """pixels [B, H, W] or [B, H, W, C] -> [B, P, p*p*C], patches row-major
    over the grid, each flattened (row, column, channel)."""
    B, G, p = pixels.shape[0], vc.grid, vc.patch_size
    x = pixels.reshape(B, G, p, G, p, vc.channels).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(B, G * G, vc.patch_dim)


def forward(params, pixels, vc, taus=None):
    """-> logits [B, K], cache."""
    cfg = vc.trunk()
    pt = patches(vc, pixels)
    e, c_patch = M._pset_forward(params, PATCH, pt, cfg, None)
    xf, c_trunk = M.trunk_forward(params, e + params["pos_embed"], cfg, causal=False, rope=None,
                                  taus=taus)
    pooled = xf.mean(axis=1)
    logits, c_head = M._pset_forward(params, HEAD, pooled, cfg, None)
    return logits, (c_patch, c_trunk, c_head, xf.shape[1])


def backward(cache, dlogits, grads):
    c_patch, c_trunk, c_head, P = cache
    dpooled = M._pset_backward(HEAD, c_head, dlogits, grads)
    dxf = np.repeat(dpooled[:, None, :] / P, P, axis=1)
    dx = M.trunk_backward(c_trunk, dxf, grads)
    grads["pos_embed"] += dx.sum(axis=0)
    M._pset_backward(PATCH, c_patch, dx, grads)


def loss(params, pixels, labels, vc, taus=None):
    return ops.cross_entropy_forward(forward(params, pixels, vc, taus)[0], labels)[0]


def loss_and_grads(params, pixels, labels, vc, taus=None):
    """-> logits [B, K], loss, {name: d loss / d param}."""
    logits, cache = forward(params, pixels, vc, taus)
    value, c_ce = ops.cross_entropy_forward(logits, labels)
    grads = M.zero_grads(params)
    backward(cache, ops.cross_entropy_backward(c_ce), grads)
    return logits, value, grads
