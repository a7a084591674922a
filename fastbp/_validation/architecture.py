"""Architecture checks: layer sizes, the memory they need, and per-layer settings."""

from __future__ import annotations

import numbers
import os

import numpy as np

from .params import Choice, Int, Param, is_bool


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
        [Int()(s, f"layer_sizes[{i}]") for i, s in enumerate(layer_sizes)], dtype=np.int64
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
        scalar = isinstance(value, numbers.Real) and not is_bool(value)
    if scalar:
        return [spec(value, name)] * n_hidden
    raise ValueError(f"{name} must be one {what} or a list of {n_hidden} {plural} (one per "
                     f"hidden layer); got {value!r}.")
