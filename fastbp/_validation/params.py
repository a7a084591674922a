"""Parameter checks: the declarative specs (``Param``: ``Int``, ``Real``, ``Bool``,
``Choice``) that parameter tables are made of, ``check_params``, and the few parameters
that are not a table entry (``check_dtype``, ``check_n_threads``, ``check_path``).

A table maps each parameter name to a spec, and ``check_params`` checks (and converts) them
all before anything changes. ``Model``, ``fit``'s options, the optimizers, schedules and
callbacks, and the scikit-learn estimators share these specs, so a parameter is described
and reported the same way everywhere: every failure raises ``TypeError`` or ``ValueError``
naming the parameter, what was expected and what was given.
"""

from __future__ import annotations

import difflib
import numbers
import os

import numpy as np

FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def is_bool(value) -> bool:
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
        if self.inf and isinstance(value, numbers.Real) and not is_bool(value) and (
                value == np.inf):
            return np.inf
        if is_bool(value) or not isinstance(value, numbers.Integral):
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
        if is_bool(value) or not isinstance(value, numbers.Real):
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
        if is_bool(value) or (self.ints and isinstance(value, numbers.Integral)):
            return bool(value)
        raise TypeError(f"{name} must be True or False; got {type(value).__name__} {value!r}.")


def name_key(name: str) -> str:
    """How loose names are compared: without regard to case, ``-``, ``_`` or spaces
    (``LeakyReLU``, ``leaky-relu`` and ``leaky_relu`` are one name)."""
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


class Choice(Param):
    """One of a set of names; a wrong name gets the closest valid one as a suggestion.

    ``aliases`` maps other accepted spellings (other libraries' names) to their canonical
    name; with aliases, the names and the aliases are matched loosely (``name_key``), so
    ``"ReLU"``, ``"RELU"`` and ``"relu"`` are one name. Aliases of names outside
    ``choices`` are ignored, so one alias table serves several choices. ``unsupported``:
    loose names of things other libraries have and fastbp does not, refused with a message
    that says so instead of suggesting a look-alike."""

    def __init__(self, choices, none: bool = False, aliases: dict | None = None,
                 unsupported=()):
        self.choices, self.none = tuple(choices), none
        self.aliases = {a: c for a, c in (aliases or {}).items() if c in self.choices}
        self.loose = None
        if aliases is not None:
            self.loose = {name_key(a): c for a, c in self.aliases.items()}
            self.loose.update({name_key(c): c for c in self.choices})
        self.unsupported = frozenset(name_key(u) for u in unsupported)

    def check(self, value, name):
        if not isinstance(value, str):
            raise TypeError(
                f"{name} must be a string, one of {sorted(self.choices)}; got "
                f"{type(value).__name__} {value!r}."
            )
        if value in self.choices:
            return value
        if self.loose is None:
            close = difflib.get_close_matches(value, self.choices, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
        else:
            key = name_key(value)
            if key in self.loose:
                return self.loose[key]
            close = difflib.get_close_matches(key, list(self.loose), n=1)
            hint = f" Did you mean {self.loose[close[0]]!r}?" if close else ""
            if key in self.unsupported:
                hint = " fastbp does not implement it."
            hint = (" Other libraries' names are accepted too, in any case (e.g. "
                    f"{', '.join(repr(a) for a in list(self.aliases)[:3])}).{hint}"
                    if self.aliases else hint)
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


def check_dtype(dtype) -> type:
    """``"float32"``/``"float64"`` or the NumPy equivalents."""
    try:
        name = None if dtype is None else np.dtype(dtype).name
    except Exception:  # np.dtype raises TypeError, ValueError, SyntaxError, ...
        name = None
    if name not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}.")
    return FLOAT_DTYPES[name]


def check_n_threads(value):
    """``None`` or an integer in ``[1, numba.config.NUMBA_NUM_THREADS]``."""
    if value is None:
        return None
    from numba import config

    return Int(1, int(config.NUMBA_NUM_THREADS))(value, "n_threads")


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
