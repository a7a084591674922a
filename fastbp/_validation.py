"""Argument checking for the public API.

Every failure raises ``TypeError`` or ``ValueError`` naming the argument, what was expected,
what was given, and how to fix it. Checks never modify their inputs.
"""

from __future__ import annotations

import difflib
import numbers

import numpy as np

FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def check_choice(value, choices, name: str) -> str:
    """``value`` must be one of ``choices`` (strings); suggests the closest valid name."""
    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be a string, one of {sorted(choices)}; got {type(value).__name__} "
            f"{value!r}."
        )
    if value not in choices:
        close = difflib.get_close_matches(value, list(choices), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"{name}={value!r} is not supported; expected one of {sorted(choices)}.{hint}"
        )
    return value


def check_int(value, name: str, minimum: int = 1) -> int:
    """A Python/NumPy integer (not bool) ``>= minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer >= {minimum}; got {type(value).__name__} {value!r}."
        )
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}.")
    return int(value)


def check_positive_float(value, name: str, allow_zero: bool = False) -> float:
    """A finite real number ``> 0`` (or ``>= 0`` when ``allow_zero``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}.")
    v = float(value)
    ok = np.isfinite(v) and (v >= 0 if allow_zero else v > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value!r}.")
    return v


def check_dtype(dtype) -> type:
    """``"float32"``/``"float64"`` or the NumPy equivalents."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
    return FLOAT_DTYPES[name]


def _numeric_array(value, name: str) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array; got a {type(value).__name__}.")
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


def check_finite(arr: np.ndarray, name: str) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or infinity (first at index {tuple(int(i) for i in bad)}); "
            "remove or impute those values before calling."
        )


def check_X(X, dtype, n_features: int, name: str = "X") -> np.ndarray:
    """2-D, non-empty, finite, ``n_features`` columns; returned C-contiguous in ``dtype``."""
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
    check_finite(arr, name)
    return np.ascontiguousarray(arr, dtype=dtype)


def check_targets(y, n_samples: int, loss: str, n_out: int, dtype, name: str = "y") -> np.ndarray:
    """Targets for ``loss`` as a C-contiguous ``(n_samples, n_out)`` array of ``dtype``.

    - squared_error: ``(n,)`` when ``n_out == 1``, else ``(n, n_out)``.
    - cross_entropy: integer class labels ``(n,)`` in ``[0, n_out)`` (one-hot encoded here),
      or ``(n, n_out)`` non-negative rows summing to 1 (one-hot or probabilities).
    - binary_cross_entropy: values in ``[0, 1]``, ``(n,)`` when ``n_out == 1``, else
      ``(n, n_out)`` (multi-label).
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
        T[np.arange(n_samples), arr.astype(np.int64)] = 1
        return T
    if arr.ndim == 1:
        if n_out != 1:
            raise ValueError(
                f"{name} is 1-D but the output layer has {n_out} units; pass {name} of shape "
                f"(n_samples, {n_out})."
            )
        arr = arr.reshape(-1, 1)
    if arr.shape[1] != n_out:
        raise ValueError(
            f"{name} has {arr.shape[1]} columns but the output layer has {n_out} units."
        )
    T = np.ascontiguousarray(arr, dtype=dtype)
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
    return T
