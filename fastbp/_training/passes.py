"""Whole-data-set passes and training steps over dense or CSR inputs.

One entry point per pass, used by ``Model``, the training loop and L-BFGS: each picks the
dense driver (``fastbp.kernels._drivers``) for an ndarray ``X`` and the CSR driver
(``fastbp.kernels._sparse``) for a ``fastbp.kernels._layout.CSRRows``, with the matching workspace
(a sparse one has no input block). The caller holds ``net.lock``.

Dense passes all run ``data_pass`` with arrays of one type per dtype (C-contiguous, the
model's dtype), so that predicting, evaluating and taking a gradient after a first
``predict`` compile nothing more.
"""

from __future__ import annotations

import numpy as np

from ..kernels._drivers import PASS_GRADIENT, PASS_LOSS, PASS_PREDICT, data_pass
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


def _dense(mode, net, X, T=None, SW=None, out=None, *, k=None, ws=None, row_scaled=False):
    """``data_pass`` over a dense ``X``: ``T``, ``SW`` and ``out`` default to arrays with
    no rows, ``k`` (``KernelArgs``) to the network's, ``ws`` to the chunk workspace."""
    empty = np.zeros((0, int(net.sizes[-1])), dtype=X.dtype)
    if ws is None:
        ws = chunk_workspace(net, X).arrays(dropout=False)
    return data_pass(mode, X, empty if T is None else T, np.zeros(0, X.dtype) if SW is None else SW,
                     net.args() if k is None else k, ws, empty if out is None else out,
                     bool(row_scaled))


def predict_all(net, X, out: np.ndarray) -> np.ndarray:
    """Output activations of every row of ``X`` into ``out`` (n, n_out)."""
    if is_csr(X):
        from ..kernels._sparse import predict_csr

        predict_csr(X, net.args(), chunk_workspace(net, X).arrays(dropout=False), out)
    else:
        _dense(PASS_PREDICT, net, X, out=out)
    return out


def mean_loss(net, X, T) -> float:
    """Mean loss over the rows of ``X`` (float64)."""
    if is_csr(X):
        from ..kernels._sparse import loss_csr

        return loss_csr(X, T, net.args(), chunk_workspace(net, X).arrays(dropout=False))
    return _dense(PASS_LOSS, net, X, T)[0]


def loss_and_accuracy(net, X, T, SW=None) -> tuple[float, float]:
    """The loss over the rows of ``X`` (the mean, or ``sum_i w_i E_i / sum_i w_i`` with
    sample weights ``SW``) and the fraction of rows classified as ``T`` says (0 for a
    regression loss); dense inputs in one pass."""
    if not is_csr(X):
        value, correct = _dense(PASS_LOSS, net, X, T, SW)
        return float(value), correct / X.shape[0]
    if SW is None:
        value = mean_loss(net, X, T)
    else:
        value = loss_and_gradient(net, X, T, SW, np.empty_like(net.grads))
    return float(value), accuracy(net, X, T)


def accuracy(net, X, T) -> float:
    """Fraction of the rows of ``X`` classified as ``T`` says."""
    out = np.empty_like(T)
    if is_csr(X):
        from ..kernels._drivers import count_correct

        return count_correct(predict_all(net, X, out), T, net.loss_code) / X.shape[0]
    return _dense(PASS_PREDICT, net, X, T, out=out)[1] / X.shape[0]


def loss_and_gradient(net, X, T, SW, grads, row_scaled: bool = False, ws=None) -> float:
    """``sum_i w_i E_i / sum_i w_i`` (``SW`` empty: the mean) and its gradient into
    ``grads``; ``ws`` (a ``Workspace``) defaults to the chunk workspace."""
    ws = (chunk_workspace(net, X) if ws is None else ws).arrays(dropout=False)
    k = net.args()._replace(grads=grads)
    if is_csr(X):
        from ..kernels._sparse import loss_and_gradient_csr

        return loss_and_gradient_csr(X, T, SW, k, ws, bool(row_scaled))
    return _dense(PASS_GRADIENT, net, X, T, SW, k=k, ws=ws, row_scaled=row_scaled)[0]
