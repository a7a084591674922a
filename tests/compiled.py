"""Python entry points for fastbp's internal compiled kernels, for the tests.

Internal kernels are compiled without a Python wrapper (``fastbp.kernels._cache.njit``
without ``entry``): they are called from compiled code only. ``from_python(kernel)`` is an
``@njit`` function that calls ``kernel`` with its arguments, so a test can call it from
Python as the compiled callers do.
"""

import functools

import numba


@functools.cache
def from_python(kernel):
    """``kernel`` (an internal ``njit`` dispatcher), callable from Python."""

    @numba.njit
    def call(*args):
        return kernel(*args)

    return call
