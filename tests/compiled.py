"""Python entry points for fastbp's internal compiled kernels, for the tests.

Internal kernels are compiled without a Python wrapper (``fastbp.kernels._cache.njit``
without ``entry``): they are called from compiled code only. ``from_python(kernel)`` calls
``kernel`` through an ``@njit`` function of the same arguments, so a test can call it from
Python as the compiled callers do (``inline="always"`` kernels included).
"""

import functools

import numba


@functools.cache
def _trampoline(kernel, n_args):
    names = ", ".join(f"a{i}" for i in range(n_args))
    scope = {"kernel": kernel}
    exec(f"def call({names}):\n    return kernel({names})\n", scope)  # noqa: S102
    return numba.njit(scope["call"])


def from_python(kernel):
    """``kernel`` (an internal ``njit`` dispatcher), callable from Python."""
    return lambda *args: _trampoline(kernel, len(args))(*args)
