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
    ws = chunk_workspace(net, X).arrays(dropout=False)
    if is_csr(X):
        from ..kernels._sparse import predict_csr

        predict_csr(X, net.args(), ws, out)
    else:
        predict(X, net.args(), ws, out)
    return out


def mean_loss(net, X, T) -> float:
    """Mean loss over the rows of ``X`` (float64)."""
    ws = chunk_workspace(net, X).arrays(dropout=False)
    if is_csr(X):
        from ..kernels._sparse import loss_csr

        return loss_csr(X, T, net.args(), ws)
    return loss(X, T, net.args(), ws)


def accuracy(net, X, T) -> float:
    """Fraction of the rows of ``X`` classified as ``T`` says."""
    out = predict_all(net, X, np.empty_like(T))
    return count_correct(out, T, net.loss_code) / X.shape[0]


def loss_and_gradient(net, X, T, SW, grads, row_scaled: bool = False, ws=None) -> float:
    """``sum_i w_i E_i / sum_i w_i`` (``SW`` empty: the mean) and its gradient into
    ``grads``; ``ws`` (a ``Workspace``) defaults to the chunk workspace."""
    ws = (chunk_workspace(net, X) if ws is None else ws).arrays(dropout=False)
    k = net.args()._replace(grads=grads)
    if is_csr(X):
        from ..kernels._sparse import loss_and_gradient_csr

        return loss_and_gradient_csr(X, T, SW, k, ws, bool(row_scaled))
    return loss_and_gradient_weighted(X, T, SW, k, ws, bool(row_scaled))
