"""Slow, obvious NumPy reference for fastbp's kernels (float64 throughout).

Written independently of the kernels: derivatives are taken with respect to z (not
expressed through a), the output delta is dE/da times the activation's Jacobian (a full
matrix for softmax), and losses are written straight from their definitions.
"""

import numpy as np

LEAKY_SLOPE = 0.01


def activation(z, name):
    if name == "identity":
        return z.copy()
    if name == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def derivative(z, name):
    """Elementwise f'(z)."""
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(float)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE)
    if name == "exp":
        return np.exp(z)
    raise ValueError(name)


def unpack(params, sizes):
    """Flat params -> lists of W (n_out, n_in) and b (n_out,), copies in float64."""
    Ws, bs, pos = [], [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        Ws.append(np.array(params[pos : pos + n_out * n_in], dtype=float).reshape(n_out, n_in))
        pos += n_out * n_in
        bs.append(np.array(params[pos : pos + n_out], dtype=float))
        pos += n_out
    return Ws, bs


def pack(Ws, bs):
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(Ws, bs)])


def forward(Ws, bs, X, acts):
    """acts: one name per weight layer (hidden..., output). Returns lists zs, as (as[0] = X)."""
    a = np.asarray(X, dtype=float)
    zs, as_ = [], [a]
    for W, b, name in zip(Ws, bs, acts):
        z = a @ W.T + b
        a = activation(z, name)
        zs.append(z)
        as_.append(a)
    return zs, as_


def loss(a, z, T, name):
    """Mean over rows of the per-sample loss."""
    n = a.shape[0]
    if name == "squared_error":
        return 0.5 * np.sum((a - T) ** 2) / n
    if name == "cross_entropy":
        m = z.max(axis=1, keepdims=True)
        log_softmax = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
        return -np.sum(T * log_softmax) / n
    if name == "binary_cross_entropy":
        p = 1.0 / (1.0 + np.exp(-z))
        return -np.sum(T * np.log(p) + (1 - T) * np.log(1 - p)) / n
    if name == "poisson":  # half Poisson deviance, t log(t / a) = 0 at t = 0
        safe = np.where(T > 0, T, 1.0)
        return np.sum(np.where(T > 0, T * np.log(safe / a), 0.0) - T + a) / n
    raise ValueError(name)


def dloss_da(a, T, name):
    """dE/da for the batch-mean loss."""
    n = a.shape[0]
    if name == "squared_error":
        return (a - T) / n
    if name == "cross_entropy":
        return -T / a / n
    if name == "binary_cross_entropy":
        return (-(T / a) + (1 - T) / (1 - a)) / n
    if name == "poisson":
        return (1.0 - T / a) / n
    raise ValueError(name)


def loss_and_gradient(params, sizes, X, T, acts, loss_name):
    """Batch-mean loss and its flat gradient (float64) by plain backpropagation."""
    Ws, bs = unpack(params, sizes)
    zs, as_ = forward(Ws, bs, X, acts)
    E = loss(as_[-1], zs[-1], T, loss_name)
    g = dloss_da(as_[-1], T, loss_name)
    if acts[-1] == "softmax":
        a = as_[-1]
        # per row: J = diag(a) - a a^T (symmetric), delta = J g
        delta = np.stack([(np.diag(r) - np.outer(r, r)) @ gr for r, gr in zip(a, g)])
    else:
        delta = g * derivative(zs[-1], acts[-1])
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for p in range(len(Ws) - 1, -1, -1):
        dWs[p] = delta.T @ as_[p]
        dbs[p] = delta.sum(axis=0)
        if p > 0:
            delta = (delta @ Ws[p]) * derivative(zs[p - 1], acts[p - 1])
    return E, pack(dWs, dbs)


def sgd_epoch(params, sizes, X, T, acts, loss_name, batch_size, lr, order):
    """One epoch of minibatch SGD over X[order]; returns new params and mean pre-update loss."""
    params = np.array(params, dtype=float)
    total = 0.0
    n = len(order)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        E, g = loss_and_gradient(params, sizes, X[idx], T[idx], acts, loss_name)
        total += E * len(idx)
        params = params - lr * g
    return params, total / n


def central_difference(f, params, eps=1e-6):
    """Central finite-difference gradient of scalar f at params (float64)."""
    x = np.array(params, dtype=float)
    g = np.empty_like(x)
    for k in range(x.size):
        old = x[k]
        x[k] = old + eps
        fp = f(x)
        x[k] = old - eps
        fm = f(x)
        x[k] = old
        g[k] = (fp - fm) / (2 * eps)
    return g
