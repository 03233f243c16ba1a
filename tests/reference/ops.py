"""ops.py -- TokenFormer's building blocks as forward/backward pairs (numpy).

Each `*_forward` returns (output, cache) and its `*_backward` turns the cache
and the output's gradient into the inputs' gradients.  numpy has no
autograd, so every backward is written out (docs/SPEC.md derives them) and
selfcheck.py checks each one against finite differences.  The functions
work in the dtype of their inputs: float64 for the fixtures, float32 for
the stand-in that shows the fixture tolerances are reachable.
"""
import math

import numpy as np

NORM_TYPES = ("l2_norm_gelu", "gelu_l2_norm", "softmax")

_erf = np.frompyfunc(math.erf, 1, 1)   # numpy has no erf; libm's, per element
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def erf(x):
    return np.asarray(_erf(x), dtype=x.dtype)


# ---------------------------------------------------------------------------
# GELU, exact erf form
# ---------------------------------------------------------------------------
def gelu(x):
    return x * 0.5 * (1.0 + erf(x * _SQRT1_2))


def gelu_grad(x):
    """d gelu / dx = Phi(x) + x phi(x)."""
    return 0.5 * (1.0 + erf(x * _SQRT1_2)) + x * (np.exp(-0.5 * x * x) * _INV_SQRT_2PI)


# ---------------------------------------------------------------------------
# Theta: the row-wise normalisation of the Pattention scores
# ---------------------------------------------------------------------------
def default_tau(norm, n):
    """sqrt(n) for the two GELU norms, n for softmax."""
    if norm not in NORM_TYPES:
        raise ValueError(f"unknown norm_activation_type {norm!r}")
    return float(n) if norm == "softmax" else math.sqrt(n)


def _guarded_scale(t, r):
    """t / r row-wise, and 0 where the row norm r is exactly 0: the zero-norm
    guard of include/tokenformer.h (Theta = 0 and a zero gradient for such
    a row, where the official code gives NaN)."""
    return np.divide(t, r, out=np.zeros_like(r), where=r > 0)


def theta_forward(a, norm, tau):
    """a [..., n] -> Theta(a) [..., n], over the last axis."""
    if norm == "l2_norm_gelu":
        r = np.sqrt(np.sum(a * a, axis=-1, keepdims=True))
        z = a * _guarded_scale(tau, r)
        return gelu(z), (norm, tau, a, r, z)
    if norm == "gelu_l2_norm":
        g = gelu(a)
        r = np.sqrt(np.sum(g * g, axis=-1, keepdims=True))
        return g * _guarded_scale(tau, r), (norm, tau, a, r, g)
    if norm == "softmax":
        e = np.exp(a - np.max(a, axis=-1, keepdims=True))   # max-shifted: no overflow
        p = e / np.sum(e, axis=-1, keepdims=True)
        return p * tau, (norm, tau, p)
    raise ValueError(f"unknown norm_activation_type {norm!r}")


def _unit_norm_backward(t, r, tau, dt):
    """Backward of t -> t * tau / ||t||: tau/r (dt - t (t.dt) / r^2), 0 where r = 0."""
    inv = _guarded_scale(1.0, r)
    return _guarded_scale(tau, r) * (dt - t * (np.sum(t * dt, axis=-1, keepdims=True) * inv * inv))


def theta_backward(cache, ds):
    norm = cache[0]
    if norm == "l2_norm_gelu":
        _, tau, a, r, z = cache
        return _unit_norm_backward(a, r, tau, ds * gelu_grad(z))
    if norm == "gelu_l2_norm":
        _, tau, a, r, g = cache
        return _unit_norm_backward(g, r, tau, ds) * gelu_grad(a)
    _, tau, p = cache
    dp = ds * tau
    return p * (dp - np.sum(p * dp, axis=-1, keepdims=True))


# ---------------------------------------------------------------------------
# Pattention: Y = Theta(X K^T) V
# ---------------------------------------------------------------------------
def pattention_forward(x, keys, values, norm, tau=None):
    """x [..., d_in], keys [n, d_in], values [n, d_out] -> y [..., d_out].
    tau None: the default for n."""
    if tau is None:
        tau = default_tau(norm, keys.shape[0])
    s, tcache = theta_forward(x @ keys.T, norm, tau)
    return s @ values, (x, keys, values, s, tcache)


def pattention_backward(cache, dy):
    """-> dx, dkeys, dvalues."""
    x, keys, values, s, tcache = cache
    da = theta_backward(tcache, dy @ values.T)
    n = keys.shape[0]
    dvalues = s.reshape(-1, n).T @ dy.reshape(-1, values.shape[1])
    dkeys = da.reshape(-1, n).T @ x.reshape(-1, keys.shape[1])
    return da @ keys, dkeys, dvalues


# ---------------------------------------------------------------------------
# LayerNorm over the last axis (biased variance), with or without affine
# ---------------------------------------------------------------------------
def layer_norm_forward(x, eps, weight=None, bias=None):
    xc = x - np.mean(x, axis=-1, keepdims=True)
    sigma = np.sqrt(np.mean(xc * xc, axis=-1, keepdims=True) + eps)
    xhat = xc / sigma
    y = xhat if weight is None else xhat * weight + bias
    return y, (xhat, sigma, weight)


def layer_norm_backward(cache, dy):
    """-> dx, dweight, dbias (the last two None without affine).
    dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sigma, exact with eps."""
    xhat, sigma, weight = cache
    dweight = dbias = None
    dxhat = dy
    if weight is not None:
        d = dy.shape[-1]
        dweight = np.sum((dy * xhat).reshape(-1, d), axis=0)
        dbias = np.sum(dy.reshape(-1, d), axis=0)
        dxhat = dy * weight
    dx = (dxhat - np.mean(dxhat, axis=-1, keepdims=True)
          - xhat * np.mean(dxhat * xhat, axis=-1, keepdims=True)) / sigma
    return dx, dweight, dbias


# ---------------------------------------------------------------------------
# Rotary position embedding, GPT-NeoX convention (rotate_half), partial
# ---------------------------------------------------------------------------
def rotary_tables(positions, r, base, dtype=np.float64):
    """cos, sin [len(positions), r] for the first r (even) dims of a head:
    inv_freq[j] = base^(-2j/r), angle = pos * inv_freq, the r/2 angles
    repeated for both halves.  Built in float64, returned in dtype."""
    j = np.arange(0, r, 2, dtype=np.float64)
    inv_freq = 1.0 / (float(base) ** (j / r))
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]
    ang = np.concatenate([ang, ang], axis=-1)
    return np.cos(ang).astype(dtype), np.sin(ang).astype(dtype)


def rotary_forward(x, cos, sin):
    """x [..., T, head_dim]: its first r = cos.shape[-1] dims, halves (x1, x2),
    become (x1 c - x2 s, x2 c + x1 s); the other dims pass through."""
    h = cos.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:2 * h]
    y = x.copy()
    y[..., :h] = x1 * cos[:, :h] - x2 * sin[:, :h]
    y[..., h:2 * h] = x2 * cos[:, h:] + x1 * sin[:, h:]
    return y


def rotary_backward(dy, cos, sin):
    """The transpose of the rotation: (dy1 c + dy2 s, dy2 c - dy1 s)."""
    h = cos.shape[-1] // 2
    d1, d2 = dy[..., :h], dy[..., h:2 * h]
    dx = dy.copy()
    dx[..., :h] = d1 * cos[:, :h] + d2 * sin[:, h:]
    dx[..., h:2 * h] = d2 * cos[:, h:] - d1 * sin[:, :h]
    return dx


# ---------------------------------------------------------------------------
# Scaled dot-product attention, causal or bidirectional
# ---------------------------------------------------------------------------
def attention_forward(q, k, v, causal):
    """q, k, v [..., T, head_dim] -> softmax(q k^T / sqrt(head_dim)) v; causal
    masks key positions after the query's."""
    T = q.shape[-2]
    s = (q @ np.swapaxes(k, -1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.triu(np.ones((T, T), dtype=bool), 1), -np.inf, s)
    e = np.exp(s - np.max(s, axis=-1, keepdims=True))
    p = e / np.sum(e, axis=-1, keepdims=True)
    return p @ v, (q, k, v, p)


def attention_backward(cache, do):
    """-> dq, dk, dv.  Masked probabilities are exactly 0, so is their gradient."""
    q, k, v, p = cache
    dv = np.swapaxes(p, -1, -2) @ do
    dp = do @ np.swapaxes(v, -1, -2)
    ds = p * (dp - np.sum(p * dp, axis=-1, keepdims=True)) / math.sqrt(q.shape[-1])
    return ds @ k, np.swapaxes(ds, -1, -2) @ q, dv


# ---------------------------------------------------------------------------
# Mean cross-entropy
# ---------------------------------------------------------------------------
def cross_entropy_forward(logits, targets):
    """logits [N, C], integer targets [N] -> mean over N of -log softmax."""
    m = np.max(logits, axis=-1, keepdims=True)
    lse = m + np.log(np.sum(np.exp(logits - m), axis=-1, keepdims=True))
    rows = np.arange(logits.shape[0])
    loss = np.mean(lse[:, 0] - logits[rows, targets])
    return loss, (logits, targets, lse)


def cross_entropy_backward(cache, dloss=1.0):
    """-> dlogits = (softmax(logits) - onehot(targets)) * dloss / N."""
    logits, targets, lse = cache
    d = np.exp(logits - lse)
    d[np.arange(logits.shape[0]), targets] -= 1.0
    return d * (dloss / logits.shape[0])
