"""The three matrix products of one dense layer, with the elementwise work fused in.

All three are ``parallel=True`` Numba functions that fall back to a plain serial loop when
the layer is too small to repay a parallel launch (``PARALLEL_MIN_WORK`` multiply-adds).
Each parallel iteration owns a disjoint output row and sums in a fixed order, so results are
bitwise independent of the number of threads.

Shapes (``n`` = rows in the batch):

- ``dense_forward``:   a_out (n, n_out) = f(a_in (n, n_in) @ W.T + b)
- ``dense_delta``:     delta_in (n, n_in) = (delta (n, n_out) @ W) * f'(a_in)
- ``dense_grad``:      gW (n_out, n_in) (+)= delta.T @ a_in,  gb (n_out,) (+)= delta.sum(0)
"""

from numba import njit, prange

from ._activations import activate_row, multiply_derivative_row

#: fastmath flags that keep NaN and inf meaningful (DESIGN.md): reassociation lets LLVM
#: vectorise the dot-product reductions; results stay independent of the thread count.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

#: multiply-adds below which a product runs serially (no parallel-region launch)
PARALLEL_MIN_WORK = 1 << 16


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def _forward_row(a_in, W, b, a_out, code, z_keep, i):
    n_in = a_in.shape[1]
    n_out = W.shape[0]
    for j in range(n_out):
        s = b[j]
        for k in range(n_in):
            s += a_in[i, k] * W[j, k]
        a_out[i, j] = s
    if z_keep.shape[0] > 0:
        for j in range(n_out):
            z_keep[i, j] = a_out[i, j]
    activate_row(a_out[i], code)


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def dense_forward(a_in, W, b, a_out, code, z_keep):
    """``a_out = f(a_in @ W.T + b)`` row by row; ``z_keep`` receives z if it has rows.

    Parameters
    ----------
    a_in : (n, n_in) array
    W : (n_out, n_in) array
    b : (n_out,) array
    a_out : (n, n_out) array, written
    code : int, activation code (``fastbp._codes``)
    z_keep : (n, n_out) or (0, n_out) array, written when it has rows
    """
    n, n_in = a_in.shape
    if n < 2 or n * n_in * W.shape[0] < PARALLEL_MIN_WORK:
        for i in range(n):
            _forward_row(a_in, W, b, a_out, code, z_keep, i)
    else:
        for i in prange(n):
            _forward_row(a_in, W, b, a_out, code, z_keep, i)


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def _delta_row(delta, W, a_in, code, delta_in, i):
    n_out, n_in = W.shape
    for k in range(n_in):
        delta_in[i, k] = 0
    for j in range(n_out):
        d = delta[i, j]
        for k in range(n_in):
            delta_in[i, k] += d * W[j, k]
    multiply_derivative_row(delta_in[i], a_in[i], code)


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def dense_delta(delta, W, a_in, code, delta_in):
    """Back-propagate one layer: ``delta_in = (delta @ W) * f'(a_in)``.

    Parameters
    ----------
    delta : (n, n_out) array, dE/dz of this layer
    W : (n_out, n_in) array
    a_in : (n, n_in) array, activation of the previous layer (``a_in = f(z_in)``)
    code : int, activation code of the previous layer
    delta_in : (n, n_in) array, written with dE/dz of the previous layer
    """
    n = delta.shape[0]
    if n < 2 or n * W.shape[0] * W.shape[1] < PARALLEL_MIN_WORK:
        for i in range(n):
            _delta_row(delta, W, a_in, code, delta_in, i)
    else:
        for i in prange(n):
            _delta_row(delta, W, a_in, code, delta_in, i)


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def _grad_row(delta, a_in, gW, gb, accumulate, j):
    n, n_in = a_in.shape
    if not accumulate:
        gb[j] = 0
        for k in range(n_in):
            gW[j, k] = 0
    for i in range(n):
        d = delta[i, j]
        gb[j] += d
        for k in range(n_in):
            gW[j, k] += d * a_in[i, k]


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def dense_grad(delta, a_in, gW, gb, accumulate):
    """Weight and bias gradient of one layer: ``gW (+)= delta.T @ a_in``, ``gb (+)= sum_i delta``.

    Parameters
    ----------
    delta : (n, n_out) array
    a_in : (n, n_in) array
    gW : (n_out, n_in) array, written (added to when ``accumulate``)
    gb : (n_out,) array, written (added to when ``accumulate``)
    accumulate : bool
    """
    n_out, n_in = gW.shape
    if n_out < 2 or delta.shape[0] * n_out * n_in < PARALLEL_MIN_WORK:
        for j in range(n_out):
            _grad_row(delta, a_in, gW, gb, accumulate, j)
    else:
        for j in prange(n_out):
            _grad_row(delta, a_in, gW, gb, accumulate, j)
