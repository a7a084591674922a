"""Compiled drivers: a whole epoch, batched prediction and whole-data-set loss/gradient.

Each runs its entire loop in compiled code: Python is entered once per call, not per step.
"""

from numba import njit

from ._network import _block, backward, batch_loss, forward, output_delta
from ._optim import sgd_update


@njit(cache=True, nogil=True)
def _gather(src, order, start, m, dst):
    """``dst[r] = src[order[start + r]]`` for ``r < m`` (the batch's rows, in order)."""
    n_cols = src.shape[1]
    for r in range(m):
        row = order[start + r]
        for c in range(n_cols):
            dst[r, c] = src[row, c]


@njit(cache=True, nogil=True)
def train_epoch_sgd(
    X, T, order, params, grads, sizes, w_off, b_off, act_codes, loss_code,
    batch_size, learning_rate, act, delta, a_off, z_out, t_buf,
):
    """One epoch of minibatch SGD over the rows ``X[order]``.

    Batches are consecutive slices of ``order`` (a permutation for shuffled training, or
    ``arange(n)``); the last, partial batch is used. Each step computes the mean loss of the
    batch, back-propagates it and applies ``params -= learning_rate * grads``.

    Parameters
    ----------
    X : (n, n_in) float array
    T : (n, n_out) float array, targets (one-hot for class labels)
    order : (n,) int64 array, row order of this epoch
    params, grads : (n_params,) float arrays
    sizes, w_off, b_off, act_codes : int64 layout arrays
    loss_code : int
    batch_size : int, 1 <= batch_size <= workspace capacity
    learning_rate : float
    act, delta, a_off, z_out : workspace for ``batch_size`` rows
    t_buf : float array of at least ``batch_size * n_out`` elements

    Returns
    -------
    float
        Mean over the epoch's samples of the loss measured before each update.
    """
    n = order.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    total = 0.0
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        _gather(X, order, start, m, _block(act, sizes, a_off, 0, m))
        t = t_buf[: m * n_out].reshape((m, n_out))
        _gather(T, order, start, m, t)
        forward(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, m)
        total += m * output_delta(
            z_out[: m * n_out].reshape((m, n_out)), _block(act, sizes, a_off, L, m), t,
            loss_code, act_codes[L - 1], 1.0 / m, _block(delta, sizes, a_off, L, m),
        )
        backward(params, grads, sizes, w_off, b_off, act_codes, act, delta, a_off, m, False)
        sgd_update(params, grads, learning_rate)
    return total / n


@njit(cache=True, nogil=True)
def predict_into(X, params, sizes, w_off, b_off, act_codes, act, a_off, z_out, out):
    """Output activations of all rows of ``X`` into ``out``, in chunks of the workspace capacity.

    Parameters
    ----------
    X : (n, n_in) float array
    out : (n, n_out) float array, written
    act, a_off, z_out : workspace; its capacity is ``(a_off[1] - a_off[0]) // n_in``
    """
    n = X.shape[0]
    L = sizes.shape[0] - 1
    cap = (a_off[1] - a_off[0]) // sizes[0]
    for start in range(0, n, cap):
        m = min(cap, n - start)
        a0 = _block(act, sizes, a_off, 0, m)
        a0[:, :] = X[start : start + m]
        forward(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, m)
        out[start : start + m] = _block(act, sizes, a_off, L, m)


@njit(cache=True, nogil=True)
def dataset_loss(X, T, params, sizes, w_off, b_off, act_codes, loss_code, act, a_off, z_out):
    """Mean loss over all rows of ``X`` (float64), evaluated in workspace-sized chunks."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    cap = (a_off[1] - a_off[0]) // sizes[0]
    total = 0.0
    for start in range(0, n, cap):
        m = min(cap, n - start)
        _block(act, sizes, a_off, 0, m)[:, :] = X[start : start + m]
        forward(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, m)
        total += batch_loss(
            z_out[: m * n_out].reshape((m, n_out)), _block(act, sizes, a_off, L, m),
            T[start : start + m], loss_code,
        )
    return total / n


@njit(cache=True, nogil=True)
def dataset_gradient(
    X, T, params, grads, sizes, w_off, b_off, act_codes, loss_code, act, delta, a_off, z_out,
):
    """Mean loss over all rows of ``X`` and its gradient, written into ``grads``.

    The data set is processed in chunks of the workspace capacity (a number fixed by the
    caller, not by the thread count), gradients accumulated in chunk order.

    Returns
    -------
    float
        The mean loss (float64).
    """
    n = X.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    cap = (a_off[1] - a_off[0]) // sizes[0]
    total = 0.0
    for start in range(0, n, cap):
        m = min(cap, n - start)
        _block(act, sizes, a_off, 0, m)[:, :] = X[start : start + m]
        forward(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, m)
        total += output_delta(
            z_out[: m * n_out].reshape((m, n_out)), _block(act, sizes, a_off, L, m),
            T[start : start + m], loss_code, act_codes[L - 1], 1.0 / n,
            _block(delta, sizes, a_off, L, m),
        )
        backward(params, grads, sizes, w_off, b_off, act_codes, act, delta, a_off, m, start > 0)
    return total
