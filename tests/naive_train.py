"""Slow, obvious NumPy references for the training features (no fastbp code is used).

A tiny MLP on a flat parameter vector with the documented layout (per layer ``W`` row-major
``(n_out, n_in)`` then ``b``), its loss and gradient, and the ``torch.optim`` update
formulas written out plainly, one optimizer per function.
"""

from __future__ import annotations

import numpy as np


def offsets(sizes):
    """[(w_lo, w_hi, b_lo, b_hi, n_in, n_out)] per layer."""
    out, pos = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        w_lo = pos
        pos += n_in * n_out
        out.append((w_lo, pos, pos, pos + n_out, n_in, n_out))
        pos += n_out
    return out


def weight_mask(sizes):
    """1 on weight entries, 0 on bias entries."""
    offs = offsets(sizes)
    mask = np.zeros(offs[-1][3])
    for w_lo, w_hi, *_ in offs:
        mask[w_lo:w_hi] = 1
    return mask


def _act(name, z):
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "logistic":
        return 1 / (1 + np.exp(-z))
    if name == "identity":
        return z
    raise ValueError(name)


def _dact(name, z):
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "logistic":
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    return np.ones_like(z)


def loss_grad(theta, sizes, hidden, loss, X, T, sw=None, masks=None):
    """Mean (or ``sw``-weighted mean) loss and its gradient, float64.

    ``loss``: "squared_error" (identity output), "cross_entropy" (softmax) or
    "binary_cross_entropy" (logistic). ``masks``: optional list of (n, units) arrays
    (already scaled, 0 or 1/(1-p)) multiplied into each hidden activation.
    """
    X = np.asarray(X, np.float64)
    T = np.asarray(T, np.float64)
    n = X.shape[0]
    w = np.ones(n) if sw is None else np.asarray(sw, np.float64)
    offs = offsets(sizes)
    a, zs, acts = X, [], [X]
    for p, (w_lo, w_hi, b_lo, b_hi, n_in, n_out) in enumerate(offs):
        W = theta[w_lo:w_hi].reshape(n_out, n_in)
        z = a @ W.T + theta[b_lo:b_hi]
        zs.append(z)
        if p < len(offs) - 1:
            a = _act(hidden, z)
            if masks is not None:
                a = a * masks[p]
        else:
            a = z
        acts.append(a)
    z = zs[-1]
    if loss == "squared_error":
        E = 0.5 * ((z - T) ** 2).sum(1)
        d = z - T
    elif loss == "cross_entropy":
        m = z.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(z - m).sum(1))
        E = (T * (lse[:, None] - z)).sum(1)
        sm = np.exp(z - lse[:, None])
        d = sm * T.sum(1, keepdims=True) - T
    else:
        E = (np.maximum(z, 0) - T * z + np.log1p(np.exp(-np.abs(z)))).sum(1)
        d = 1 / (1 + np.exp(-z)) - T
    sc = w / w.sum()
    d = d * sc[:, None]
    grad = np.zeros_like(theta)
    for p in range(len(offs) - 1, -1, -1):
        w_lo, w_hi, b_lo, b_hi, n_in, n_out = offs[p]
        grad[w_lo:w_hi] = (d.T @ acts[p]).ravel()
        grad[b_lo:b_hi] = d.sum(0)
        if p > 0:
            W = theta[w_lo:w_hi].reshape(n_out, n_in)
            d = (d @ W) * _dact(hidden, zs[p - 1])
            if masks is not None:
                d = d * masks[p - 1]
    return float((sc * E).sum()), grad


# ---------------------------------------------------------------- torch.optim formulas
# ``g`` is the data gradient, ``l2m`` = l2 * weight_mask (coupled weight decay on weights)


def sgd(p, g, st, t, lr, l2m, momentum=0.0, dampening=0.0, nesterov=False):
    g = g + l2m * p
    if momentum != 0:
        st["b"] = g.copy() if t == 1 else momentum * st["b"] + (1 - dampening) * g
        g = g + momentum * st["b"] if nesterov else st["b"]
    return p - lr * g


def adam(p, g, st, t, lr, l2m, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, wmask=None):
    b1, b2 = betas
    g = g + l2m * p
    if weight_decay:  # AdamW: decoupled decay (on weights only when wmask is given)
        p = p * (1 - lr * weight_decay * (1.0 if wmask is None else wmask))
    st.setdefault("m", np.zeros_like(p))
    st.setdefault("v", np.zeros_like(p))
    st["m"] = b1 * st["m"] + (1 - b1) * g
    st["v"] = b2 * st["v"] + (1 - b2) * g * g
    mhat = st["m"] / (1 - b1**t)
    vhat = st["v"] / (1 - b2**t)
    return p - lr * mhat / (np.sqrt(vhat) + eps)


def rmsprop(p, g, st, t, lr, l2m, alpha=0.99, eps=1e-8, momentum=0.0, centered=False):
    g = g + l2m * p
    st.setdefault("s", np.zeros_like(p))
    st.setdefault("b", np.zeros_like(p))
    st.setdefault("ga", np.zeros_like(p))
    st["s"] = alpha * st["s"] + (1 - alpha) * g * g
    if centered:
        st["ga"] = alpha * st["ga"] + (1 - alpha) * g
        d = np.sqrt(st["s"] - st["ga"] ** 2) + eps
    else:
        d = np.sqrt(st["s"]) + eps
    if momentum > 0:
        st["b"] = momentum * st["b"] + g / d
        return p - lr * st["b"]
    return p - lr * g / d


def adagrad(p, g, st, t, lr, l2m, lr_decay=0.0, eps=1e-10, initial_accumulator_value=0.0):
    g = g + l2m * p
    st.setdefault("s", np.full_like(p, initial_accumulator_value))
    st["s"] = st["s"] + g * g
    clr = lr / (1 + (t - 1) * lr_decay)
    return p - clr * g / (np.sqrt(st["s"]) + eps)
