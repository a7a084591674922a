"""Optimizer updates over the whole flat parameter buffer."""

from numba import njit, prange

from ._dense import FASTMATH

#: elements below which the update runs serially
_PARALLEL_MIN_ELEMENTS = 1 << 18


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def sgd_update(params, grads, learning_rate):
    """Plain gradient descent, ``params -= learning_rate * grads``, in place.

    Parameters
    ----------
    params, grads : (n_params,) float arrays of one dtype
    learning_rate : float
    """
    lr = params.dtype.type(learning_rate)
    n = params.shape[0]
    if n < _PARALLEL_MIN_ELEMENTS:
        for k in range(n):
            params[k] -= lr * grads[k]
    else:
        for k in prange(n):
            params[k] -= lr * grads[k]
