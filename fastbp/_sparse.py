"""Sparse inputs: SciPy sparse matrices checked and held as CSR arrays for the kernels.

``check_csr`` converts any ``scipy.sparse`` matrix or array once (CSC, COO, ... to CSR;
values to the model's dtype; indices to int64) into a ``CSRRows``; the data are never
densified. The training engine and ``Model`` pass a ``CSRRows`` where they would pass a
dense ``X``, and the passes of ``fastbp._training.passes`` pick the CSR kernels
(``fastbp.kernels._sparse``) for it. SciPy is imported only when a sparse input is given.
"""

from __future__ import annotations

import sys

import numpy as np

from ._validation import check_finite, kernel_array
from .kernels._layout import CSRRows

__all__ = ["CSRRows", "check_csr", "is_sparse"]


def is_sparse(X) -> bool:
    """Whether ``X`` is a SciPy sparse matrix or array (or already a ``CSRRows``)."""
    if isinstance(X, CSRRows):
        return True
    sp = sys.modules.get("scipy.sparse")  # no sparse input can exist without SciPy loaded
    return sp is not None and sp.issparse(X)


def check_csr(X, dtype, n_features: int, name: str = "X") -> CSRRows:
    """``X`` (any SciPy sparse format) as ``CSRRows`` of ``dtype``: 2-D, non-empty, finite,
    ``n_features`` columns. Copies only what must change (format, dtype, index width)."""
    if isinstance(X, CSRRows):
        return X
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {X.shape}.")
    n, n_cols = X.shape
    if n == 0:
        raise ValueError(f"{name} is empty (0 samples); pass at least one sample.")
    if n_cols != n_features:
        raise ValueError(
            f"{name} has {n_cols} features but the model's input layer has {n_features}; "
            "pass data with matching columns or build the model with layer_sizes[0] = "
            f"{n_cols}."
        )
    if X.format != "csr":
        X = X.tocsr()
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers; got sparse dtype {X.dtype}.")
    nnz = int(X.indptr[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        data = np.ascontiguousarray(X.data[:nnz], dtype=dtype)
    check_finite(data, f"{name}.data", X.data[:nnz])
    indices = np.ascontiguousarray(X.indices[:nnz], dtype=np.int64)
    indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
    if nnz and (indices.min() < 0 or indices.max() >= n_cols):
        raise ValueError(f"{name} has column indices outside 0 .. {n_cols - 1}.")
    if (np.diff(indptr) < 0).any() or indptr[0] != 0:
        raise ValueError(f"{name}.indptr must start at 0 and be non-decreasing.")
    return CSRRows(kernel_array(data), kernel_array(indices), kernel_array(indptr),
                   int(n_cols))
