"""Whole-network passes over one batch held in the workspace.

``forward`` fills the activation workspace layer by layer; ``output_delta`` turns the output
layer's ``z``/``a`` and the targets into the loss and ``delta^L = dE/dz^L``; ``backward`` runs
the dynamic-programming sweep ``delta^(l-1) = (W^l)^T delta^l * f'(z^(l-1))`` and writes every
layer's gradient. See ``fastbp._layout`` for the buffer layout.
"""

import numpy as np
from numba import njit

from ._activations import multiply_derivative_row
from ._codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, SOFTMAX
from ._dense import dense_delta, dense_forward, dense_grad


@njit(inline="always", cache=True)
def _W(buf, sizes, w_off, p):
    n_in = sizes[p]
    n_out = sizes[p + 1]
    return buf[w_off[p] : w_off[p] + n_out * n_in].reshape((n_out, n_in))


@njit(inline="always", cache=True)
def _b(buf, sizes, b_off, p):
    return buf[b_off[p] : b_off[p] + sizes[p + 1]]


@njit(inline="always", cache=True)
def _block(ws, sizes, a_off, l, n):
    return ws[a_off[l] : a_off[l] + n * sizes[l]].reshape((n, sizes[l]))


@njit(cache=True, nogil=True)
def forward(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, n):
    """Forward pass of the ``n`` input rows already stored in the layer-0 block of ``act``.

    Parameters
    ----------
    params : (n_params,) float array
    sizes : (L + 1,) int64 array, units per layer
    w_off, b_off : (L,) int64 arrays, parameter offsets (``fastbp._layout.param_offsets``)
    act_codes : (L,) int64 array, activation code of each layer (last: output activation)
    act : float array, activation workspace (``fastbp._layout.workspace_offsets``)
    a_off : (L + 1,) int64 array, workspace offsets
    z_out : float array of at least ``n * sizes[L]`` elements, receives the output layer's z
    n : int, rows in the batch
    """
    n_layers = sizes.shape[0] - 1
    for p in range(n_layers):
        if p == n_layers - 1:
            z_keep = z_out[: n * sizes[p + 1]].reshape((n, sizes[p + 1]))
        else:
            z_keep = z_out[:0].reshape((0, sizes[p + 1]))
        dense_forward(
            _block(act, sizes, a_off, p, n),
            _W(params, sizes, w_off, p),
            _b(params, sizes, b_off, p),
            _block(act, sizes, a_off, p + 1, n),
            act_codes[p],
            z_keep,
        )


@njit(cache=True, nogil=True)
def _row_loss(z, a, t, loss_code, i):
    """Loss of row ``i`` in float64; cross-entropies from z, so stable for any logits."""
    m = z.shape[1]
    total = 0.0
    if loss_code == CROSS_ENTROPY:
        mx = z[i, 0]
        for j in range(1, m):
            if z[i, j] > mx:
                mx = z[i, j]
        s = 0.0
        for j in range(m):
            s += np.exp(np.float64(z[i, j]) - mx)
        lse = mx + np.log(s)
        for j in range(m):
            if t[i, j] != 0:  # 0 * (lse - z) must not turn an infinite z into NaN
                total += t[i, j] * (lse - z[i, j])
    elif loss_code == BINARY_CROSS_ENTROPY:
        for j in range(m):
            x = np.float64(z[i, j])
            total += max(x, 0.0) - t[i, j] * x + np.log1p(np.exp(-abs(x)))
    else:
        for j in range(m):
            g = np.float64(a[i, j]) - t[i, j]
            total += 0.5 * g * g
    return total


@njit(cache=True, nogil=True)
def output_delta(z, a, t, loss_code, out_code, scale, delta):
    """Loss of a batch and the output delta ``dE/dz^L``.

    ``E = scale * sum_i E_i``, with ``E_i`` the loss of row ``i`` (``1/2 ||a - t||^2`` for
    squared error, ``-sum_j t_j log softmax(z)_j`` for cross-entropy, the summed logistic
    log-loss for binary cross-entropy). ``scale = 1/n`` gives the batch mean.

    Parameters
    ----------
    z, a : (n, m) arrays, output layer pre-activation and activation
    t : (n, m) array, targets (one-hot or probabilities for cross-entropy)
    loss_code, out_code : int
    scale : float
    delta : (n, m) array, written

    Returns
    -------
    float
        ``E`` in float64.
    """
    n, m = a.shape
    sc = delta.dtype.type(scale)
    total = 0.0
    for i in range(n):
        if loss_code == CROSS_ENTROPY:
            # d/dz_k sum_j t_j (lse(z) - z_j) = a_k sum_j t_j - t_k  (= a_k - t_k for one-hot)
            tsum = t.dtype.type(0)
            for j in range(m):
                tsum += t[i, j]
            for j in range(m):
                delta[i, j] = (a[i, j] * tsum - t[i, j]) * sc
        elif loss_code == BINARY_CROSS_ENTROPY:
            for j in range(m):
                delta[i, j] = (a[i, j] - t[i, j]) * sc
        else:  # squared error, any output activation
            for j in range(m):
                delta[i, j] = a[i, j] - t[i, j]
            if out_code == SOFTMAX:
                # Jacobian-vector product of softmax: a_k (g_k - sum_j g_j a_j)
                ga = delta.dtype.type(0)
                for j in range(m):
                    ga += delta[i, j] * a[i, j]
                for j in range(m):
                    delta[i, j] = a[i, j] * (delta[i, j] - ga)
            else:
                multiply_derivative_row(delta[i], a[i], out_code)
            for j in range(m):
                delta[i, j] *= sc
        total += _row_loss(z, a, t, loss_code, i)
    return total * scale


@njit(cache=True, nogil=True)
def batch_loss(z, a, t, loss_code):
    """Sum over rows of the per-row loss (float64), without computing a delta.

    Parameters
    ----------
    z, a, t : (n, m) arrays
    loss_code : int
    """
    total = 0.0
    for i in range(a.shape[0]):
        total += _row_loss(z, a, t, loss_code, i)
    return total


@njit(cache=True, nogil=True)
def backward(params, grads, sizes, w_off, b_off, act_codes, act, delta, a_off, n, accumulate):
    """Backward sweep from the output delta (already in ``delta``'s last block) to all gradients.

    Writes ``delta`` for every hidden layer and the weight and bias gradients of every layer
    into ``grads`` (same layout as ``params``), added to the existing values when
    ``accumulate`` is true. The gradient is a sum over the batch rows; the averaging factor
    is carried by the output delta (``output_delta``'s ``scale``).

    Parameters
    ----------
    params, grads : (n_params,) float arrays
    sizes, w_off, b_off, act_codes, a_off : int64 layout arrays (see ``forward``)
    act, delta : float workspaces holding this batch's activations and output delta
    n : int, rows in the batch
    accumulate : bool
    """
    n_layers = sizes.shape[0] - 1
    for p in range(n_layers - 1, -1, -1):
        d = _block(delta, sizes, a_off, p + 1, n)
        a_in = _block(act, sizes, a_off, p, n)
        if p > 0:
            dense_delta(
                d, _W(params, sizes, w_off, p), a_in, act_codes[p - 1],
                _block(delta, sizes, a_off, p, n),
            )
        dense_grad(d, a_in, _W(grads, sizes, w_off, p), _b(grads, sizes, b_off, p), accumulate)
