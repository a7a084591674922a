"""Large products through BLAS (SciPy's, as Numba's ``np.dot`` calls it) -- opt-in.

**Off by default.** Set the environment variable ``FASTBP_USE_BLAS=1`` before importing
fastbp to enable it. It is opt-in because OpenBLAS does not give bitwise-identical results
for different BLAS thread counts (measured: float32 and float64 GEMMs of 128 x 300 x 120
differ in the last bit with 1 vs 2 OpenBLAS threads), which breaks the rule that the same
seed gives the same parameters whatever the thread count. With a fixed BLAS thread count
(``OPENBLAS_NUM_THREADS`` or ``threadpoolctl``) runs are reproducible again.

For products of at least ``BLAS_MIN_WORK`` multiply-adds an optimised GEMM (packing,
cache- and register-blocking tuned per CPU) is faster than Numba loop kernels, in particular
on CPUs where LLVM prefers 256-bit vectors. The helpers here are chosen at compile time:
with SciPy present and C-contiguous operands they run the product through BLAS and return
``True``; otherwise (no SciPy, or strided views from user code) they compile to ``return
False`` and the caller uses its own loop kernels.

Rules kept (DESIGN.md):

- BLAS is only ever called from serial code, never inside a ``prange``: while BLAS threads
  work, Numba's are idle, so the two pools never compete for the cores.
- Results do not depend on the Numba thread count (BLAS does not see it); they may depend
  on the BLAS thread count (see above).
"""

import importlib.util
import os

import numpy as np
from numba.core import types
from numba.extending import overload

#: BLAS is used when asked for (``FASTBP_USE_BLAS=1``) and SciPy (which Numba's np.dot
#: needs) is installed. The choice is part of the disk cache's stamp (``fastbp._cache``).
USE_BLAS = os.environ.get("FASTBP_USE_BLAS", "0") == "1"
HAVE_BLAS = USE_BLAS and importlib.util.find_spec("scipy") is not None

#: multiply-adds from which dense products go through BLAS
BLAS_MIN_WORK = 1 << 22


def _contiguous(*arrays):
    return HAVE_BLAS and all(
        isinstance(a, types.Array) and a.layout == "C" and a.ndim == 2 for a in arrays
    )


def gemm_nt(A, B, C):
    """``C = A @ B.T`` through BLAS; ``True`` if done, ``False`` if not possible here."""


def gemm_nn(A, B, C):
    """``C = A @ B`` through BLAS; ``True`` if done, ``False`` if not possible here."""


def gemm_tn(A, B, C):
    """``C = A.T @ B`` through BLAS; ``True`` if done, ``False`` if not possible here."""


@overload(gemm_nt)
def _gemm_nt(A, B, C):
    if _contiguous(A, B, C):
        def impl(A, B, C):
            np.dot(A, B.T, C)
            return True
    else:
        def impl(A, B, C):
            return False
    return impl


@overload(gemm_nn)
def _gemm_nn(A, B, C):
    if _contiguous(A, B, C):
        def impl(A, B, C):
            np.dot(A, B, C)
            return True
    else:
        def impl(A, B, C):
            return False
    return impl


@overload(gemm_tn)
def _gemm_tn(A, B, C):
    if _contiguous(A, B, C):
        def impl(A, B, C):
            np.dot(A.T, B, C)
            return True
    else:
        def impl(A, B, C):
            return False
    return impl
