"""Array checks: data, targets and weights checked and converted once for the kernels.

``check_X`` takes any real array, pandas frame or SciPy sparse matrix (as
``fastbp.kernels._layout.CSRRows``, never densified; SciPy is imported only when a sparse
input is given); ``check_targets`` the targets of each loss; ``check_sample_weight`` and
``check_class_weight`` the per-row weights, which ``rescale_sample_weight`` brings to mean
1. Every failure raises ``TypeError`` or ``ValueError`` naming the argument, what was
expected and how to fix it; checks never modify their inputs.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

from ..kernels._layout import CSRRows
from .params import Choice, Real


def _is_pandas(value) -> bool:
    """A pandas DataFrame or Series (checked by type, without importing pandas)."""
    return type(value).__module__.startswith("pandas") and hasattr(value, "to_numpy") and (
        hasattr(value, "dtypes") or hasattr(value, "dtype"))


def _from_pandas(value, name: str) -> np.ndarray:
    """A DataFrame or Series of real columns as a NumPy array: float64 when the columns'
    dtypes differ (``pd.get_dummies`` mixes int, float and bool) or are pandas' nullable
    ones (``Int64``, ``Float64``, ``boolean``), else its own dtype. Other columns raise
    ``TypeError``; missing values of nullable columns (``pd.NA``) raise ``ValueError``."""
    frame = hasattr(value, "columns")
    columns = list(value.columns) if frame else [None]
    dtypes = list(value.dtypes) if frame else [value.dtype]
    nullable = False
    for i, (col, dt) in enumerate(zip(columns, dtypes)):
        where = name if col is None else f"{name} column {col!r}"
        if getattr(dt, "kind", "O") not in "biuf":
            raise TypeError(
                f"{where} has dtype {dt}; {name} must hold real numbers (bool, int or float). "
                "Encode categories and strings as numbers first (e.g. pd.get_dummies)."
            )
        if not isinstance(dt, np.dtype):  # a pandas nullable dtype: may hold pd.NA
            nullable = True
            missing = np.asarray((value.iloc[:, i] if frame else value).isna(), dtype=bool)
            if missing.any():
                raise ValueError(
                    f"{where} has {int(missing.sum())} missing value(s) (pd.NA), the first in "
                    f"row {int(np.argmax(missing))}; missing values are not supported. Drop "
                    f"or impute them first (e.g. {name}.dropna() or {name}.fillna(...))."
                )
    if nullable or len({np.dtype(dt) for dt in dtypes}) > 1:
        return value.to_numpy(dtype=np.float64)
    return np.asarray(value)


def _numeric_array(value, name: str) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array; got a {type(value).__name__}.")
    if is_sparse(value):  # np.asarray would make a 0-d object array of it
        raise TypeError(
            f"{name} is a sparse matrix; {name} must be a dense array (only X may be "
            f"sparse). Pass {name}.toarray()."
        )
    if _is_pandas(value):
        return _from_pandas(value, name)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (bool, int or float); got dtype {arr.dtype}. "
            "Convert it with np.asarray(..., dtype=float) after encoding any categories."
        )
    return arr


#: elements per block of the finiteness check: its temporary mask stays this small (256 KiB),
#: however large the array (an ``np.memmap`` of a file bigger than memory included)
FINITE_BLOCK = 1 << 18


def _first_nonfinite(arr: np.ndarray):
    """Index tuple of the first NaN/inf of ``arr`` (C order), or ``None``; checked by
    blocks of rows so the temporary mask stays small."""
    if arr.ndim == 0 or arr.size <= FINITE_BLOCK:
        if np.isfinite(arr).all():
            return None
        return tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    rows = max(1, FINITE_BLOCK // max(1, arr.size // arr.shape[0]))
    for start in range(0, arr.shape[0], rows):
        block = arr[start:start + rows]
        if not np.isfinite(block).all():
            first = np.argwhere(~np.isfinite(block))[0]
            return (start + int(first[0]),) + tuple(int(i) for i in first[1:])
    return None


def check_finite(arr: np.ndarray, name: str, original: np.ndarray | None = None) -> None:
    """NaN/inf in ``arr`` raise; ``original`` (the array before conversion to ``arr``'s
    dtype) tells an overflow in the conversion from a non-finite input."""
    bad = _first_nonfinite(arr) if arr.dtype.kind == "f" else None
    if bad is not None:
        if original is not None and np.isfinite(original[bad]):
            raise ValueError(
                f"{name}{list(bad)} = {original[bad].item()!r} does not fit in {arr.dtype} "
                f"(it overflows to {arr[bad]}); rescale the values or use a float64 model."
            )
        raise ValueError(
            f"{name} contains NaN or infinity (first at index {bad}); "
            "remove or impute those values before calling."
        )


def as_finite(arr: np.ndarray, dtype, name: str) -> np.ndarray:
    """``arr`` as a C-contiguous array of ``dtype`` in the form the kernels are compiled
    for (``kernel_array``), checked finite after the conversion (a float64 value beyond
    float32's range becomes inf there)."""
    with np.errstate(over="ignore", invalid="ignore"):  # reported just below
        out = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(out, name, arr)
    return kernel_array(out)


class _Alias:
    """Holds a read-only array and describes its memory as writable (see ``kernel_array``)."""

    __slots__ = ("__array_interface__", "_array")

    def __init__(self, arr: np.ndarray):
        interface = dict(arr.__array_interface__)
        interface["data"] = (interface["data"][0], False)  # (pointer, read-only flag)
        self.__array_interface__ = interface
        self._array = arr  # keeps the memory alive as long as the alias


def kernel_array(arr: np.ndarray) -> np.ndarray:
    """``arr`` (C-contiguous, native byte order) as the kernels' compiled signatures take
    it: aligned and writable.

    Numba compiles separate machine code for read-only and for unaligned arrays, which the
    warm-up (and a warm cache) would not hold: pandas 3's ``np.asarray(DataFrame)`` and
    ``Series``, ``np.load(mmap_mode="r")``, ``np.frombuffer`` give read-only arrays. A
    read-only array is passed as a writable alias of the same memory, with no copy: the
    kernels only read their inputs (``X``, targets, weights), so the alias is never written.
    An unaligned one is copied."""
    if not arr.flags.aligned:
        return np.array(arr, order="C")
    if arr.flags.writeable:
        return arr
    return np.asarray(_Alias(arr))


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


def check_X(X, dtype, n_features: int, name: str = "X", accept_sparse: bool = False):
    """2-D, non-empty, finite, ``n_features`` columns; returned C-contiguous in ``dtype``.

    ``accept_sparse``: a SciPy sparse matrix/array (any format) is returned as
    ``fastbp.kernels._layout.CSRRows`` (never densified); otherwise it is refused."""
    if is_sparse(X):
        if not accept_sparse:
            raise TypeError(
                f"{name} is a sparse matrix, which this function does not take; pass "
                f"{name}.toarray() (Model.fit, predict, evaluate and gradient take sparse "
                "input as it is)."
            )
        return check_csr(X, dtype, n_features, name)
    arr = _numeric_array(X, name)
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 1:
            hint = " Use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample."
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}.{hint}"
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples); pass at least one sample.")
    if arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features but the model's input layer has {n_features}; "
            "pass data with matching columns or build the model with layer_sizes[0] = "
            f"{arr.shape[1]}."
        )
    return as_finite(arr, dtype, name)


def check_targets(y, n_samples: int, loss: str, n_out: int, dtype, name: str = "y") -> np.ndarray:
    """Targets for ``loss`` as a C-contiguous ``(n_samples, n_out)`` array of ``dtype``.

    - squared_error: ``(n,)`` when ``n_out == 1``, else ``(n, n_out)``.
    - cross_entropy: integer class labels ``(n,)`` in ``[0, n_out)`` (one-hot encoded here),
      or ``(n, n_out)`` non-negative rows summing to 1 (one-hot or probabilities).
    - binary_cross_entropy: values in ``[0, 1]``, ``(n,)`` when ``n_out == 1``, else
      ``(n, n_out)`` (multi-label).
    - poisson: values ``>= 0`` (counts or rates), shaped as for squared_error.
    """
    arr = _numeric_array(y, name)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D; got shape {arr.shape}.")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} samples but X has {n_samples}; X and {name} must have "
            "the same length."
        )
    check_finite(arr, name)
    if loss == "cross_entropy" and arr.ndim == 1:
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise ValueError(
                f"{name} must hold integer class labels for loss='cross_entropy' (or be a 2-D "
                "one-hot array); got non-integer values."
            )
        if arr.dtype.kind == "b":
            raise TypeError(
                f"{name} holds booleans; for loss='cross_entropy' pass integer class labels "
                "0..n_classes-1 (for two classes, y.astype(int))."
            )
        lo, hi = arr.min(), arr.max()
        if lo < 0 or hi >= n_out:
            raise ValueError(
                f"{name} holds class labels in [{lo}, {hi}] but the output layer has {n_out} "
                f"units, so labels must lie in [0, {n_out - 1}]. Map labels to 0..n_classes-1 "
                "(e.g. np.unique(y, return_inverse=True)) or widen the output layer."
            )
        T = np.zeros((n_samples, n_out), dtype=dtype)
        # one flat index per row (half the time of indexing rows and columns apart)
        T.reshape(-1)[np.arange(0, n_samples * n_out, n_out) + arr.astype(np.int64,
                                                                           copy=False)] = 1
        return T
    if arr.ndim == 1:
        if n_out != 1:
            raise ValueError(
                f"{name} is 1-D but the output layer has {n_out} units; pass {name} of shape "
                f"(n_samples, {n_out}).{_label_hint(arr, loss, n_out, name)}"
            )
        arr = arr.reshape(-1, 1)
    if arr.shape[1] != n_out:
        raise ValueError(
            f"{name} has {arr.shape[1]} columns but the output layer has {n_out} units."
            + (_label_hint(arr, loss, n_out, name) if arr.shape[1] == 1 else "")
        )
    T = as_finite(arr, dtype, name)
    if loss == "cross_entropy":
        if (T < 0).any() or not np.allclose(T.sum(axis=1), 1, atol=1e-3):
            raise ValueError(
                f"{name} for loss='cross_entropy' must be one-hot or probability rows "
                "(non-negative, each row summing to 1); or pass 1-D integer class labels."
            )
    elif loss == "binary_cross_entropy":
        if (T < 0).any() or (T > 1).any():
            raise ValueError(
                f"{name} for loss='binary_cross_entropy' must lie in [0, 1]; got values in "
                f"[{T.min()}, {T.max()}]."
            )
    elif loss == "poisson":
        check_poisson_targets(T, name)
    return T


def _label_hint(arr: np.ndarray, loss: str, n_out: int, name: str) -> str:
    """A hint for integer class labels given to a squared-error model (the default loss)."""
    if loss != "squared_error" or arr.size == 0 or arr.dtype.kind not in "biuf":
        return ""
    if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
        return ""
    if arr.min() < 0 or arr.max() >= n_out:
        return ""
    return (
        f" {name} looks like integer class labels: for classification build the model "
        "with loss='cross_entropy' (a softmax output, which takes the labels as they are), "
        "e.g. Model([n_in, ..., n_classes], loss='cross_entropy'); the default loss "
        "'squared_error' is for regression targets."
    )


def check_poisson_targets(T, name: str = "y") -> None:
    """Raise ``ValueError`` unless every target is ``>= 0`` (the Poisson loss's domain)."""
    if (T < 0).any():
        raise ValueError(
            f"{name} for loss='poisson' must be >= 0 (counts, rates or other non-negative "
            f"values); got a minimum of {T.min()}. Use loss='squared_error' for targets that "
            "can be negative."
        )


def check_sample_weight(sample_weight, n_samples: int, dtype) -> np.ndarray:
    """1-D, ``n_samples`` long, finite, non-negative, not all zero; returned in ``dtype``."""
    arr = _numeric_array(sample_weight, "sample_weight")
    if arr.ndim != 1 or arr.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must be 1-D with one weight per sample ({n_samples}); got shape "
            f"{arr.shape}."
        )
    check_finite(arr, "sample_weight")
    if (arr < 0).any():
        raise ValueError(
            f"sample_weight must be >= 0; got a minimum of {arr.min()}. Drop samples instead "
            "of giving them negative weight."
        )
    if not (arr > 0).any():
        raise ValueError("sample_weight is zero for every sample; at least one must be > 0.")
    out = as_finite(arr, dtype, "sample_weight")
    if not (out > 0).any():
        raise ValueError(f"sample_weight is zero for every sample once converted to {out.dtype}"
                         " (the weights are too small); rescale them.")
    return out


def rescale_sample_weight(sw: np.ndarray, dtype, across=None) -> np.ndarray:
    """Per-row weights (float64, >= 0, some > 0) rescaled to mean 1, in ``dtype``.

    ``across(value, op)``, if given, combines a number over every process (``op``: "sum"
    or "max"; ``fastbp.distributed``): the mean is then that of every process's rows."""
    across = across or (lambda value, op: value)
    n = across(sw.shape[0], "sum")
    with np.errstate(over="ignore", invalid="ignore"):
        mean = across(sw.sum(), "sum") / n
        scaled = sw / mean
    if across(int(not (np.isfinite(mean) and np.isfinite(scaled).all())), "max"):
        scaled = sw / across(sw.max(), "max")  # the sum overflowed: scale down first
        scaled = scaled / (across(scaled.sum(), "sum") / n)
    out = np.ascontiguousarray(scaled, dtype=dtype)
    if not np.isfinite(out).all() or not across(int((out > 0).any()), "max"):
        raise ValueError("sample_weight (times class_weight) spans too many orders of "
                         "magnitude to rescale to mean 1; clip the extreme weights.")
    return out


def _class_indices(T: np.ndarray, loss: str) -> np.ndarray:
    """The class of each target row: argmax for cross-entropy, ``t >= 0.5`` for a single
    binary cross-entropy output."""
    if loss == "cross_entropy":
        return np.argmax(T, axis=1)
    return (T[:, 0] >= 0.5).astype(np.int64)


def check_class_weight(class_weight, T: np.ndarray, loss: str) -> np.ndarray:
    """Per-row weights (float64) from ``class_weight``: a dict ``{class: weight}`` (missing
    classes weigh 1) or ``"balanced"`` (``n / (n_classes * count[c])`` over the classes
    present, as scikit-learn)."""
    if loss in ("squared_error", "poisson") or (loss == "binary_cross_entropy" and T.shape[1] != 1):
        raise ValueError(
            f"class_weight needs single-label classification (loss='cross_entropy', or "
            f"'binary_cross_entropy' with one output); this model has loss={loss!r} with "
            f"{T.shape[1]} outputs. Use sample_weight instead."
        )
    n_classes = T.shape[1] if loss == "cross_entropy" else 2
    cls = _class_indices(T, loss)
    if isinstance(class_weight, str):
        Choice(("balanced",))(class_weight, "class_weight")
        counts = np.bincount(cls, minlength=n_classes).astype(np.float64)
        present = counts > 0
        table = np.ones(n_classes)
        table[present] = len(cls) / (present.sum() * counts[present])
        return table[cls]
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"class_weight must be a dict {{class: weight}} or 'balanced'; got "
            f"{type(class_weight).__name__} {class_weight!r}."
        )
    table = np.ones(n_classes)
    for key, w in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Integral) or not (
            0 <= key < n_classes
        ):
            raise ValueError(
                f"class_weight keys must be class labels 0..{n_classes - 1}; got {key!r}."
            )
        table[int(key)] = Real(0.0)(w, f"class_weight[{key}]")
    return table[cls]
