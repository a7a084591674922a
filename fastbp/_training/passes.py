"""Whole-data-set passes and training steps over dense or CSR inputs.

One entry point per pass, used by ``Model``, the training loop and L-BFGS: each picks the
dense driver (``fastbp.kernels._drivers``) for an ndarray ``X`` and the CSR driver
(``fastbp.kernels._sparse``) for a ``fastbp.kernels._layout.CSRRows``, with the matching workspace
(a sparse one has no input block). The caller holds ``net.lock``.
"""

from __future__ import annotations

import numpy as np

from ..kernels._drivers import count_correct, loss, loss_and_gradient_weighted, predict
from ..kernels._layout import CSRRows


def is_csr(X) -> bool:
    """Whether ``X`` is a ``CSRRows`` (else a dense array)."""
    return isinstance(X, CSRRows)


def workspace(net, X, capacity: int):
    """The workspace for batches of ``capacity`` rows of ``X``."""
    return net.workspace(capacity, sparse=True) if is_csr(X) else net.workspace(capacity)


def chunk_workspace(net, X):
    """The workspace for a whole-data-set pass over ``X``."""
    n = X.shape[0]
    return net.chunk_workspace(n, sparse=True) if is_csr(X) else net.chunk_workspace(n)


def predict_all(net, X, out: np.ndarray) -> np.ndarray:
    """Output activations of every row of ``X`` into ``out`` (n, n_out)."""
    ws = chunk_workspace(net, X)
    if is_csr(X):
        from ..kernels._sparse import predict_csr

        predict_csr(X.data, X.indices, X.indptr, net.params, net.sizes, net.w_off, net.b_off,
                    net.act_codes, ws.act, ws.a_off, ws.z_out, ws.capacity, out)
    else:
        predict(X, net.params, net.sizes, net.w_off, net.b_off, net.act_codes, ws.act,
                ws.a_off, ws.z_out, out)
    return out


def mean_loss(net, X, T) -> float:
    """Mean loss over the rows of ``X`` (float64)."""
    ws = chunk_workspace(net, X)
    if is_csr(X):
        from ..kernels._sparse import loss_csr

        return loss_csr(X.data, X.indices, X.indptr, T, net.params, net.sizes, net.w_off,
                        net.b_off, net.act_codes, net.loss_code, ws.act, ws.a_off, ws.z_out,
                        ws.capacity)
    return loss(X, T, net.params, net.sizes, net.w_off, net.b_off, net.act_codes,
                net.loss_code, ws.act, ws.a_off, ws.z_out)


def accuracy(net, X, T) -> float:
    """Fraction of the rows of ``X`` classified as ``T`` says."""
    out = predict_all(net, X, np.empty_like(T))
    return count_correct(out, T, net.loss_code) / X.shape[0]


def loss_and_gradient(net, X, T, SW, grads, row_scaled: bool | None = None, ws=None) -> float:
    """``sum_i w_i E_i / sum_i w_i`` (``SW`` empty: the mean) and its gradient into
    ``grads``; ``ws`` defaults to the chunk workspace. ``row_scaled=None`` leaves the dense
    driver's argument out (its own compiled signature, as ``Model.gradient`` always did)."""
    ws = chunk_workspace(net, X) if ws is None else ws
    if is_csr(X):
        from ..kernels._sparse import loss_and_gradient_csr

        return loss_and_gradient_csr(
            X.data, X.indices, X.indptr, T, SW, net.params, grads, net.sizes, net.w_off,
            net.b_off, net.act_codes, net.loss_code, ws.act, ws.delta, ws.a_off, ws.z_out,
            ws.capacity, bool(row_scaled))
    args = (X, T, SW, net.params, grads, net.sizes, net.w_off, net.b_off, net.act_codes,
            net.loss_code, ws.act, ws.delta, ws.a_off, ws.z_out)
    if row_scaled is None:
        return loss_and_gradient_weighted(*args)
    return loss_and_gradient_weighted(*args, row_scaled)


def train_steps_csr(X, T, SW, order, k, ws, opt, lr, l2, clip_norm, batch_size,
                    norm_weights, start, stop, acc, check):
    """``train_steps`` over the rows of a ``CSRRows`` (same arguments and results)."""
    from ..kernels._sparse import train_steps_csr as steps

    return steps(X.data, X.indices, X.indptr, T, SW, order, k, ws, opt, lr, l2, clip_norm,
                 batch_size, norm_weights, start, stop, acc, check)
