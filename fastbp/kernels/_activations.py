"""Activations and their derivatives on blocks of 2-D arrays, through the activation value.

Every supported hidden activation has a derivative that is a function of its output
``a = f(z)`` alone, so the forward pass stores only ``a`` (half the memory of storing ``z``
too); the output layer's ``z`` is kept separately for numerically stable losses.

The elementwise loops are written as selects, not branches, and the transcendental
functions are ``fastbp.kernels._vmath``'s branch-free ones, so that LLVM vectorises every
loop here (NumPy's ``np.exp``/``np.tanh`` compile to one libm call per element). A NaN
stays a NaN through every activation and derivative: divergence must stay visible.
"""

import numpy as np
from numba import carray, types

from ._cache import njit
from ._codes import EXP, IDENTITY, LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, RELU, SOFTMAX, TANH
from ._flat import c_array, flat
from ._llvm import ptr_at, wide_vectors
from ._vmath import vexp, vlogistic, vtanh


@njit(inline="always", cache=True, nogil=True)
def relu(x, zero):
    """ReLU of a scalar (``zero`` of its type), a select: ``NaN < 0`` is False, so a NaN
    stays visible. The layer epilogues fuse it with the bias; ``activate`` applies it."""
    return zero if x < zero else x


@njit(inline="always", cache=True, nogil=True)
def relu_grad(d, a, zero):
    """``d * relu'(z)`` from ``a = relu(z)``: ``NaN <= 0`` is False, so a NaN is never hidden
    by a zero."""
    return zero if a <= zero else d


@njit(inline="always", error_model="numpy", cache=True, nogil=True)
def _softmax(z, i0, i1, j0, j1):
    """The softmax of rows ``i0 .. i1`` over columns ``j0 .. j1``: per row, ``exp(z - max)``
    divided by its sum (in column order). The exponentials of whole rows in one loop over
    the block (a row of few classes alone is too short a loop for vectors)."""
    for i in range(i0, i1):
        m = z[i, j0]
        for j in range(np.uint64(j0 + 1), np.uint64(j1)):
            m = max(m, z[i, j])
        for j in range(np.uint64(j0), np.uint64(j1)):
            z[i, j] -= m
    n_cols = z.shape[1]
    whole = j0 == 0 and j1 == n_cols  # the block's rows are one run of memory
    runs, run = (1, (i1 - i0) * n_cols) if whole else (i1 - i0, j1 - j0)
    for q in range(runs):
        e = carray(ptr_at(z.reshape(-1), (i0 + q) * n_cols + j0), (run,))
        for k in range(np.uint64(run)):
            e[k] = vexp(e[k])
    for i in range(i0, i1):
        s = z.dtype.type(0)
        for j in range(np.uint64(j0), np.uint64(j1)):  # the sum, in order
            s += z[i, j]
        inv = 1 / s
        for j in range(np.uint64(j0), np.uint64(j1)):
            z[i, j] = z[i, j] * inv


_I = types.int64


@njit(error_model="numpy", cache=True, nogil=True)
def _squashing_block(z, i0, i1, j0, j1, code):
    """The logistic (``code == LOGISTIC``) or tanh activation of ``z[i0:i1, j0:j1]``, in
    place."""
    wide_vectors()
    if code == LOGISTIC:
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                z[i, j] = vlogistic(z[i, j])
    else:
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                z[i, j] = vtanh(z[i, j])


# the two activations whose vectorised functions take the most code, compiled at the first
# use of either (``_flat``, lazy), so that a network without them never compiles them
_squashing = flat(_squashing_block, lambda dtype: types.none(c_array(dtype, 2), _I, _I, _I,
                                                               _I, _I), lazy=True)


@njit(error_model="numpy", cache=True, nogil=True)
def activate(z, i0, i1, j0, j1, code):
    """Apply activation ``code`` in place to the block ``z[i0:i1, j0:j1]`` of a 2-D array.

    Softmax needs whole rows (``j0 = 0``, ``j1 = z.shape[1]``). The logistic and tanh
    activations are compiled at their first call (``_flat``, lazy); call ``activate`` on an
    empty block (``i0 == i1``) before a parallel region, so that they are compiled on the
    thread that entered compiled code (``_dense._layer_op`` does).
    """
    wide_vectors()
    # unsigned column indices: no negative-index wraparound, so the loops vectorise
    if code == IDENTITY:
        return
    elif code == LOGISTIC or code == TANH:
        _squashing(z, i0, i1, j0, j1, code)
    elif code == RELU:
        zero = z.dtype.type(0)
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                z[i, j] = relu(z[i, j], zero)
    elif code == LEAKY_RELU:
        slope = z.dtype.type(LEAKY_SLOPE)
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                x = z[i, j]
                z[i, j] = x * slope if x < 0 else x
    elif code == EXP:
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                z[i, j] = vexp(z[i, j])
    elif code == SOFTMAX and i1 > i0:
        _softmax(z, i0, i1, j0, j1)


@njit(error_model="numpy", cache=True, nogil=True)
def multiply_derivative(d, a, i0, i1, k0, k1, code):
    """``d[i, k] *= f'(z[i, k])`` on the block ``[i0:i1, k0:k1]`` of the 2-D arrays ``d`` and
    ``a = f(z)`` (elementwise activations)."""
    wide_vectors()
    one = d.dtype.type(1)
    if code == IDENTITY:
        return
    elif code == LOGISTIC:
        for i in range(i0, i1):
            for k in range(np.uint64(k0), np.uint64(k1)):
                d[i, k] *= a[i, k] * (one - a[i, k])
    elif code == TANH:
        for i in range(i0, i1):
            for k in range(np.uint64(k0), np.uint64(k1)):
                d[i, k] *= one - a[i, k] * a[i, k]
    elif code == RELU:
        zero = d.dtype.type(0)
        for i in range(i0, i1):
            for k in range(np.uint64(k0), np.uint64(k1)):
                d[i, k] = relu_grad(d[i, k], a[i, k], zero)
    else:  # LEAKY_RELU: a > 0 exactly when z > 0 because the slope is positive
        slope = d.dtype.type(LEAKY_SLOPE)
        for i in range(i0, i1):
            for k in range(np.uint64(k0), np.uint64(k1)):
                d[i, k] = d[i, k] * slope if a[i, k] <= 0 else d[i, k]


#: ``activate`` and ``multiply_derivative`` compiled once per dtype and called through a
#: pointer (see ``_flat``) by the layer kernels (each activation's vectorised loops are
#: then emitted once, not in every kernel and at every call site)
activate_flat = flat(activate, lambda dtype: types.none(c_array(dtype, 2), _I, _I, _I, _I,
                                                          _I))
multiply_derivative_flat = flat(multiply_derivative, lambda dtype: types.none(
    c_array(dtype, 2), c_array(dtype, 2), _I, _I, _I, _I, _I))
