"""Argument checking for the public API.

Every failure raises ``TypeError`` or ``ValueError`` naming the argument, what was expected,
what was given, and how to fix it. Checks never modify their inputs.
"""

from __future__ import annotations

import difflib
import numbers
import os

import numpy as np

FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


# ----------------------------------------------------------------- parameter tables
# Scalar parameters are checked declaratively: a table maps each parameter name to one of the
# specs below, and ``check_params`` checks (and converts) them all before anything changes.
# ``Model``, the optimizers, schedules and callbacks, and the scikit-learn estimators share
# these specs, so a parameter is described and reported the same way everywhere.


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _fmt(x) -> str:
    if not np.isfinite(x):
        return "inf" if x > 0 else "-inf"
    return repr(int(x)) if float(x).is_integer() else repr(x)


class Param:
    """One entry of a parameter table; ``none=True`` also accepts ``None``."""

    none = False

    def check(self, value, name: str):  # pragma: no cover - every spec overrides it
        raise NotImplementedError

    def __call__(self, value, name: str):
        if value is None and self.none:
            return None
        return self.check(value, name)


class Int(Param):
    """A Python or NumPy integer (not a bool) in ``[lo, hi]``."""

    def __init__(self, lo: int = 1, hi: int | None = 2**62, none: bool = False,
                 inf: bool = False):
        self.lo, self.hi, self.none, self.inf = lo, hi, none, inf

    def check(self, value, name):
        if self.inf and isinstance(value, numbers.Real) and not _is_bool(value) and (
                value == np.inf):
            return np.inf
        if _is_bool(value) or not isinstance(value, numbers.Integral):
            raise TypeError(
                f"{name} must be an integer >= {self.lo}; got {type(value).__name__} {value!r}."
            )
        if value < self.lo:
            raise ValueError(f"{name} must be an integer >= {self.lo}; got {value}.")
        if self.hi is not None and value > self.hi:
            raise ValueError(f"{name} must be an integer <= {self.hi}; got {value}.")
        return int(value)


class Real(Param):
    """A finite real number (Python or NumPy, not a bool) within the given bounds."""

    def __init__(self, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False,
                 none: bool = False):
        self.lo, self.hi, self.lo_open, self.hi_open, self.none = lo, hi, lo_open, hi_open, none

    def bounds(self) -> str:
        if self.lo is not None and self.hi is not None:
            lb, rb = ("(" if self.lo_open else "["), (")" if self.hi_open else "]")
            return f"in {lb}{_fmt(self.lo)}, {_fmt(self.hi)}{rb}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}"
        return ""

    def check(self, value, name):
        if _is_bool(value) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number; got {type(value).__name__} "
                            f"{value!r}.")
        v = float(value)
        bad = not np.isfinite(v)
        if self.lo is not None:
            bad |= v <= self.lo if self.lo_open else v < self.lo
        if self.hi is not None:
            bad |= v >= self.hi if self.hi_open else v > self.hi
        if bad:
            bounds = self.bounds()
            # a bounded interval says "finite" already
            what = "a number" if bounds.startswith("in ") else "a finite number"
            raise ValueError(f"{name} must be {what}{' ' + bounds if bounds else ''}; "
                             f"got {value!r}.")
        return v


class Bool(Param):
    """``True``/``False`` (Python or NumPy bool; ``ints=True`` also takes integers)."""

    def __init__(self, ints: bool = False, none: bool = False):
        self.ints, self.none = ints, none

    def check(self, value, name):
        if _is_bool(value) or (self.ints and isinstance(value, numbers.Integral)):
            return bool(value)
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}.")


class Choice(Param):
    """One of a set of names; a wrong name gets the closest valid one as a suggestion.

    ``aliases`` maps other accepted spellings to their canonical name."""

    def __init__(self, choices, none: bool = False, aliases: dict | None = None):
        self.choices, self.none, self.aliases = tuple(choices), none, dict(aliases or {})

    def check(self, value, name):
        if not isinstance(value, str):
            raise TypeError(
                f"{name} must be a string, one of {sorted(self.choices)}; got "
                f"{type(value).__name__} {value!r}."
            )
        if value in self.choices:
            return value
        if value in self.aliases:
            return self.aliases[value]
        key = value.lower().replace("-", "_")
        for alias, canonical in self.aliases.items():
            if alias.lower().replace("-", "_") == key:
                return canonical
        close = difflib.get_close_matches(value, list(self.choices) + list(self.aliases), n=1)
        hint = f" Did you mean {self.aliases.get(close[0], close[0])!r}?" if close else ""
        raise ValueError(
            f"{name}={value!r} is not supported; expected one of {sorted(self.choices)}.{hint}"
        )


def check_params(values: dict, table: dict, prefix: str = "", error=None) -> dict:
    """Check every entry of ``values`` against its spec in ``table``; returns the converted
    values. ``prefix`` is put before each name in messages (e.g. "SGD "); ``error``, if
    given, is the exception class raised instead of ``TypeError``/``ValueError`` (it is
    given the same message)."""
    out = {}
    for name, value in values.items():
        try:
            out[name] = table[name](value, prefix + name)
        except (TypeError, ValueError) as exc:
            if error is None:
                raise
            raise error(str(exc)) from None
    return out


def check_choice(value, choices, name: str) -> str:
    """``value`` must be one of ``choices`` (strings); suggests the closest valid name."""
    return Choice(choices)(value, name)


def check_int(value, name: str, minimum: int = 1, maximum: int | None = 2**62) -> int:
    """A Python/NumPy integer (not bool) in ``[minimum, maximum]``."""
    return Int(minimum, maximum)(value, name)


def check_positive_float(value, name: str, allow_zero: bool = False) -> float:
    """A finite real number ``> 0`` (or ``>= 0`` when ``allow_zero``)."""
    return Real(0.0, lo_open=not allow_zero)(value, name)


def check_dtype(dtype) -> type:
    """``"float32"``/``"float64"`` or the NumPy equivalents."""
    try:
        name = None if dtype is None else np.dtype(dtype).name
    except Exception:  # np.dtype raises TypeError, ValueError, SyntaxError, ...
        name = None
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
    return FLOAT_DTYPES[name]


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
    from ._sparse import is_sparse

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


def check_finite(arr: np.ndarray, name: str, original: np.ndarray | None = None) -> None:
    """NaN/inf in ``arr`` raise; ``original`` (the array before conversion to ``arr``'s
    dtype) tells an overflow in the conversion from a non-finite input."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
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


def check_n_threads(value):
    """``None`` or an integer in ``[1, numba.config.NUMBA_NUM_THREADS]``."""
    if value is None:
        return None
    from numba import config

    return check_int(value, "n_threads", 1, int(config.NUMBA_NUM_THREADS))


def check_path(path, name: str = "path"):
    """A ``str``, ``bytes`` or ``os.PathLike`` file name."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(
            f"{name} must be a file name (str or os.PathLike); got {type(path).__name__} "
            f"{path!r}."
        )
    path = os.fspath(path)
    if not path or "\x00" in (path if isinstance(path, str) else path.decode("latin-1")):
        raise ValueError(f"{name} must be a non-empty file name without NUL bytes; got {path!r}.")
    return path


def rescale_sample_weight(sw: np.ndarray, dtype) -> np.ndarray:
    """Per-row weights (float64, >= 0, some > 0) rescaled to mean 1, in ``dtype``."""
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = sw / sw.mean()
    if not np.isfinite(scaled).all():  # the sum overflowed: scale down first
        scaled = sw / sw.max()
        scaled = scaled / scaled.mean()
    out = np.ascontiguousarray(scaled, dtype=dtype)
    if not np.isfinite(out).all() or not (out > 0).any():
        raise ValueError("sample_weight (times class_weight) spans too many orders of "
                         "magnitude to rescale to mean 1; clip the extreme weights.")
    return out


def check_X(X, dtype, n_features: int, name: str = "X", accept_sparse: bool = False):
    """2-D, non-empty, finite, ``n_features`` columns; returned C-contiguous in ``dtype``.

    ``accept_sparse``: a SciPy sparse matrix/array (any format) is returned as
    ``fastbp._sparse.CSRRows`` (never densified); otherwise it is refused."""
    from ._sparse import check_csr, is_sparse

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
        T[np.arange(n_samples), arr.astype(np.int64)] = 1
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


def check_bool(value, name: str) -> bool:
    """``True``/``False`` (Python or NumPy bool)."""
    return Bool()(value, name)


def check_fraction(value, name: str, lo_open: bool = False) -> float:
    """A real number in ``[0, 1)`` (``(0, 1)`` when ``lo_open``)."""
    return Real(0.0, 1.0, lo_open=lo_open, hi_open=True)(value, name)


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


def class_indices(T: np.ndarray, loss: str) -> np.ndarray:
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
    cls = class_indices(T, loss)
    if isinstance(class_weight, str):
        check_choice(class_weight, ("balanced",), "class_weight")
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
        table[int(key)] = check_positive_float(w, f"class_weight[{key}]", allow_zero=True)
    return table[cls]


# ----------------------------------------------------------------- model construction
def check_layer_sizes(layer_sizes) -> np.ndarray:
    """At least two positive integers; returned as an int64 array."""
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__len__"):
        raise TypeError(
            f"layer_sizes must be a sequence of integers such as [64, 32, 10]; got "
            f"{layer_sizes!r}."
        )
    if len(layer_sizes) < 2:
        raise ValueError(
            f"layer_sizes needs at least an input and an output size, e.g. [4, 1]; got "
            f"{list(layer_sizes)!r}."
        )
    return np.array(
        [check_int(s, f"layer_sizes[{i}]") for i, s in enumerate(layer_sizes)], dtype=np.int64
    )


def check_memory(sizes, itemsize: int) -> None:
    """Refuse architectures whose parameter and gradient buffers cannot fit in memory
    (rather than let the operating system kill the process while initialising)."""
    s = [int(v) for v in sizes]
    n_params = sum(a * b + b for a, b in zip(s[:-1], s[1:]))
    need = 2 * n_params * itemsize
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 1 << 46
    if need > physical:
        raise MemoryError(
            f"layer_sizes={s} has {n_params} parameters, needing {need / 2**30:.1f} GiB "
            f"for parameters and gradients, more than this machine's "
            f"{physical / 2**30:.1f} GiB of memory; use smaller layers."
        )


def check_per_layer(value, n_hidden: int, name: str, spec: Param, what: str,
                    plural: str) -> list:
    """One value for every hidden layer, or a list of ``n_hidden`` values."""
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) == n_hidden:
        return [spec(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(spec, Choice):
        scalar = isinstance(value, str)
    else:
        scalar = isinstance(value, numbers.Real) and not _is_bool(value)
    if scalar:
        return [spec(value, name)] * n_hidden
    raise ValueError(f"{name} must be one {what} or a list of {n_hidden} {plural} (one per "
                     f"hidden layer); got {value!r}.")
