"""Row-wise activations and their derivatives, expressed through the activation value.

Every supported hidden activation has a derivative that is a function of its output
``a = f(z)`` alone, so the forward pass stores only ``a`` (half the memory of storing ``z``
too); the output layer's ``z`` is kept separately for numerically stable losses.
"""

import numpy as np
from numba import njit

from ._codes import IDENTITY, LEAKY_RELU, LEAKY_SLOPE, LOGISTIC, RELU, SOFTMAX, TANH


@njit(inline="always", cache=True)
def _sigmoid(x):
    # branch so that exp never overflows
    if x >= 0:
        return 1 / (1 + np.exp(-x))
    e = np.exp(x)
    return e / (1 + e)


@njit(cache=True, nogil=True)
def activate_row(z, code):
    """Apply activation ``code`` to the 1-D row ``z`` in place."""
    n = z.shape[0]
    if code == IDENTITY:
        return
    elif code == LOGISTIC:
        for j in range(n):
            z[j] = _sigmoid(z[j])
    elif code == TANH:
        for j in range(n):
            z[j] = np.tanh(z[j])
    elif code == RELU:
        for j in range(n):
            if z[j] < 0:  # NaN < 0 is False: a NaN stays visible
                z[j] = 0
    elif code == LEAKY_RELU:
        slope = z.dtype.type(LEAKY_SLOPE)
        for j in range(n):
            if z[j] < 0:
                z[j] = z[j] * slope
    elif code == SOFTMAX:
        m = z[0]
        for j in range(1, n):
            if z[j] > m:
                m = z[j]
        s = z.dtype.type(0)
        for j in range(n):
            e = np.exp(z[j] - m)
            z[j] = e
            s += e
        inv = 1 / s
        for j in range(n):
            z[j] = z[j] * inv


@njit(cache=True, nogil=True)
def multiply_derivative_row(d, a, code):
    """``d[k] *= f'(z[k])`` for the 1-D rows ``d`` and ``a = f(z)`` (elementwise activations)."""
    n = d.shape[0]
    one = d.dtype.type(1)
    if code == IDENTITY:
        return
    elif code == LOGISTIC:
        for k in range(n):
            d[k] *= a[k] * (one - a[k])
    elif code == TANH:
        for k in range(n):
            d[k] *= one - a[k] * a[k]
    elif code == RELU:
        for k in range(n):
            if a[k] <= 0:  # NaN <= 0 is False: a NaN is never hidden by a zero
                d[k] = 0
    else:  # LEAKY_RELU: a > 0 exactly when z > 0 because the slope is positive
        slope = d.dtype.type(LEAKY_SLOPE)
        for k in range(n):
            if a[k] <= 0:
                d[k] *= slope
