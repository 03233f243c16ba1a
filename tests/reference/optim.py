"""optim.py -- the optimizer of include/tokenformer.h in numpy: global-norm
gradient clipping, AdamW with decoupled weight decay (torch.optim.AdamW
semantics), gradient accumulation and the warmup + cosine schedule."""
import math
from dataclasses import dataclass

import numpy as np

from model import decays


@dataclass
class AdamW:
    lr: float = 1e-3             # peak learning rate
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    clip_grad: float = 1.0       # 0 disables clipping
    min_lr: float = 0.0          # end of the cosine
    warmup_steps: int = 0
    decay_steps: int = 0         # 0: no decay
    grad_accum_steps: int = 1

    # the keys a fixture's metadata carries (the schedule's only when used)
    STEP_KEYS = ("lr", "beta1", "beta2", "eps", "weight_decay", "clip_grad")
    SCHEDULE_KEYS = ("min_lr", "warmup_steps", "decay_steps", "grad_accum_steps")

    def to_strings(self):
        out = {k: repr(float(getattr(self, k))) for k in self.STEP_KEYS}
        if (self.warmup_steps, self.decay_steps, self.grad_accum_steps) != (0, 0, 1):
            out.update({k: repr(getattr(self, k)) for k in self.SCHEDULE_KEYS})
        return out

    @classmethod
    def from_strings(cls, d):
        kinds = {"warmup_steps": int, "decay_steps": int, "grad_accum_steps": int}
        return cls(**{k: kinds.get(k, float)(d[k]) for k in cls.STEP_KEYS + cls.SCHEDULE_KEYS
                      if k in d})


def lr_at(hp, t):
    """The learning rate of step t = 1, 2, ...: linear warmup to lr over
    warmup_steps, then (if decay_steps > warmup_steps) a cosine from lr to
    min_lr ending at step decay_steps and min_lr after; else lr."""
    if t < 1:
        return 0.0
    if hp.warmup_steps > 0 and t <= hp.warmup_steps:
        return hp.lr * t / hp.warmup_steps
    if hp.decay_steps > hp.warmup_steps:
        if t >= hp.decay_steps:
            return hp.min_lr
        progress = (t - hp.warmup_steps) / (hp.decay_steps - hp.warmup_steps)
        return hp.min_lr + (hp.lr - hp.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return hp.lr


def global_norm(grads):
    """L2 norm over every gradient together, accumulated in float64."""
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))


def zero_state(params):
    """Fresh moments: {name: (m, v)} zeros, for step 1."""
    return {k: (np.zeros_like(p), np.zeros_like(p)) for k, p in params.items()}


def adamw_step(params, grads, hp, state=None, step=1):
    """One optimizer step t = step from the accumulated grads.
    Returns (new params, new state, gradient norm before clipping):
      g = grad / grad_accum_steps;  c = min(1, clip_grad / (||g||_2 + 1e-6))
      m = beta1 m + (1 - beta1) c g;  v = beta2 v + (1 - beta2) (c g)^2
      p = p (1 - lr_t weight_decay)            (decays(name) only)
      p = p - lr_t / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)"""
    g_all = {k: g / hp.grad_accum_steps for k, g in grads.items()}
    norm = global_norm(g_all)
    coef = min(1.0, hp.clip_grad / (norm + 1e-6)) if hp.clip_grad > 0 else 1.0
    lr = lr_at(hp, step)
    bc1, bc2 = 1.0 - hp.beta1 ** step, 1.0 - hp.beta2 ** step
    state = state or zero_state(params)
    new_params, new_state = {}, {}
    for k, p in params.items():
        g = g_all[k] * coef
        m, v = state[k]
        m = hp.beta1 * m + (1.0 - hp.beta1) * g
        v = hp.beta2 * v + (1.0 - hp.beta2) * g * g
        q = p * (1.0 - lr * hp.weight_decay) if decays(k) else p
        new_params[k] = q - (lr / bc1) * m / (np.sqrt(v) / math.sqrt(bc2) + hp.eps)
        new_state[k] = (m, v)
    return new_params, new_state, norm
