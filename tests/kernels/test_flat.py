"""Flat kernels (fastbp.kernels._flat): compiled once, called through a pointer."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit, types

from fastbp.kernels import _flat
from fastbp.kernels._codes import CROSS_ENTROPY
from fastbp.kernels._drivers import count_correct
from fastbp.kernels._llvm import BorrowedArray, as_array, borrowed


def _scaled_sum(a, k):
    if k < 0:
        raise ValueError("k must be >= 0")
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * k
    return s


_kernel = njit(_scaled_sum)
scaled_sum = _flat.flat(_kernel, lambda dtype: types.float64(types.Array(dtype, 1, "C"),
                                                             types.int64))


def _bundle_sum(ref, k):
    a, b = _flat.deref(ref)
    return a.sum() * k + b.sum()


_bundle_kernel = njit(_bundle_sum)
bundle_sum = _flat.flat(_bundle_kernel, lambda dtype: types.float64(
    types.CPointer(types.UniTuple(types.Array(dtype, 1, "C"), 2)), types.int64))


@njit
def call_scaled_sum(a, k):
    return scaled_sum(a, k) + 1.0


@njit
def call_bundle_sum(a, b, k):
    return bundle_sum((a, b), k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_call_returns_the_kernels_value(dtype):
    a = np.arange(5, dtype=dtype)
    assert call_scaled_sum(a, 3) == 31.0
    assert len(_kernel.overloads) >= 1


def test_exceptions_propagate_to_the_caller():
    with pytest.raises(ValueError, match="k must be >= 0"):
        call_scaled_sum(np.arange(3.0), -1)


def test_bundle_by_reference_keeps_reference_counts():
    a, b = np.arange(4.0), np.ones(3)
    ra, rb = sys.getrefcount(a), sys.getrefcount(b)
    for _ in range(1000):
        assert call_bundle_sum(a, b, 2) == 15.0
    assert (sys.getrefcount(a), sys.getrefcount(b)) == (ra, rb)


def _borrowed_bundle_sum(ref, k):
    a, b = _flat.deref(ref)  # borrowed arrays: no reference counting on them
    return a.sum() * k + b.sum()


_borrowed_bundle = _flat.flat(njit(_borrowed_bundle_sum), lambda dtype: types.float64(
    types.CPointer(types.UniTuple(BorrowedArray(dtype, 1, "C"), 2)), types.int64))


@njit
def call_borrowed_bundle(a, b, k):
    return _borrowed_bundle((a, b), k)


@njit
def borrow_and_count(a, t, reps):
    """``as_array`` of an owned and of a borrowed array, passed to a public kernel."""
    s = 0
    for _ in range(reps):
        rows = a[:2]  # an array with an owner (a slice's reference), made in compiled code
        s += count_correct(as_array(rows), as_array(rows), CROSS_ENTROPY)
        s += count_correct(as_array(borrowed(t)), as_array(borrowed(t)), CROSS_ENTROPY)
    return s


def test_borrowed_bundles_and_as_array_keep_reference_counts():
    """A bundle that the kernel takes as borrowed arrays (``lay_type``'s kind) is passed from
    ordinary ones; ``as_array`` of an owned array is a new reference, of a borrowed one
    nothing to count: the caller's reference counts end where they began."""
    a, b = np.arange(4.0), np.ones(3)
    ra, rb = sys.getrefcount(a), sys.getrefcount(b)
    for _ in range(1000):
        assert call_borrowed_bundle(a, b, 2) == 15.0
    assert (sys.getrefcount(a), sys.getrefcount(b)) == (ra, rb)
    out = np.eye(3)
    ro = sys.getrefcount(out)
    assert borrow_and_count(out, out, 1000) == 5000
    assert sys.getrefcount(out) == ro


def test_a_plain_array_passed_to_a_flat_kernel_arrives_without_its_owner():
    """A flat kernel's array argument is borrowed: the cast from the caller's ordinary array
    clears its owner, so that ``as_array`` of it in the kernel counts nothing. With the
    owner kept, the loss kernel's call of ``count_correct`` freed a reference of the
    distributed step's workspace views each step: heap corruption (``malloc(): unaligned
    tcache chunk``) within a few steps."""
    import fastbp
    from fastbp.kernels._drivers import local_step_gradient

    m = fastbp.Model([3, 4, 2], loss="cross_entropy", dtype="float32", seed=0, dropout=0.5)
    net = m.kernel_args()._replace(drop_seed=1)
    ws = m.network.workspace(2).arrays()
    X, T = np.zeros((2, 3), np.float32), np.eye(2, dtype=np.float32)
    order, totals = np.arange(2, dtype=np.int64), np.zeros(3)
    arrays = (ws.act, ws.delta, ws.t_buf, X, T, m.params)
    refs = [sys.getrefcount(a) for a in arrays]
    for _ in range(200):
        local_step_gradient(X, T, np.zeros(0, np.float32), order, 0, 2, 0.5, net, ws,
                            np.int64(1), totals)
    assert [sys.getrefcount(a) for a in arrays] == refs
    assert totals[1] == 400 and np.isfinite(totals[0])


def test_an_entry_kernel_refuses_a_borrowed_array_by_name():
    """Numba would convert a NumPy array from Python to a borrowed signature of a kernel
    with an entry point and never release what unboxing acquired: such a signature is
    refused at compile time, with the fix in the message."""
    @njit
    def bad(a):
        return count_correct(borrowed(a), borrowed(a), CROSS_ENTROPY)

    with pytest.raises(TypeError, match="count_correct takes ordinary arrays.*as_array"):
        bad(np.eye(2))


def test_a_call_with_other_types_names_the_kernel():
    @njit
    def bad(a):
        return scaled_sum(a, 1)

    with pytest.raises(Exception, match="_scaled_sum.*takes"):
        bad(np.arange(6.0)[::2])  # a strided view: layout "A"


def test_cached_callers_find_their_kernels_in_a_new_process(tmp_path):
    """A driver loaded from the cache reaches the flat kernels it calls (compiled or loaded
    on first use in that process) and computes the same bits."""
    code = textwrap.dedent("""
        import numpy as np, fastbp
        rng = np.random.default_rng(0)
        X = rng.normal(size=(300, 6)).astype(np.float32)
        y = rng.integers(0, 3, 300)
        m = fastbp.Model([6, 8, 3], loss="cross_entropy", seed=0, dtype="float32")
        m.fit(X, y, epochs=2, batch_size=16)
        print(m.params.tobytes().hex()[:64], m.predict(X[:5]).tobytes().hex()[:64])
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), FASTBP_COMPILE_NOTICE="1")
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=600) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    assert "compiling" in runs[0].stderr and "compiling" not in runs[1].stderr
    assert runs[0].stdout == runs[1].stdout


def _lazy_sum(a, k):
    return a.sum() * k


_lazy_kernel = njit(_lazy_sum)
lazy_sum = _flat.flat(_lazy_kernel, lambda dtype: types.float64(types.Array(dtype, 1, "C"),
                                                                types.int64), lazy=True)


@njit
def call_lazy_sum(a, k, take):
    return lazy_sum(a, k) if take else 0.0


def test_a_lazy_kernel_compiles_at_its_first_call_not_with_its_caller():
    a = np.arange(4, dtype=np.float32)
    assert call_lazy_sum(a, 2, False) == 0.0  # the caller compiled, the path not taken
    assert len(_lazy_kernel.overloads) == 0
    assert call_lazy_sum(a, 2, True) == 12.0
    assert len(_lazy_kernel.overloads) == 1


def test_compile_all_compiles_the_lazy_kernels_too():
    _flat.compile_all("float64")
    assert any(sig[0] == types.Array(types.float64, 1, "C")
               for sig in _lazy_kernel.overloads)


def _checked_sum(a, k):
    if k < 0:
        raise ValueError("k must be >= 0")
    return a.sum() * k


_fallback_kernel = njit(_checked_sum)
fallback_sum = _flat.flat(_fallback_kernel, lambda dtype: types.float64(
    types.Array(dtype, 1, "C"), types.int64), lazy=True, fallback=True)


@njit
def call_fallback_sum(a, k):
    return fallback_sum(a, k)


def test_a_fallback_kernel_takes_other_argument_types_as_an_ordinary_call():
    a = np.arange(8.0)
    assert call_fallback_sum(a[::2], 2) == 24.0  # strided: not the flat signature
    assert call_fallback_sum(a, 2) == 56.0  # the flat signature: through the pointer
    with pytest.raises(ValueError, match="k must be >= 0"):
        call_fallback_sum(a[::2], -1)


def test_two_flat_kernels_of_one_name_are_refused():
    def other(a, k):
        return 0.0

    other.__name__ = "_scaled_sum"  # another function under a registered kernel's name
    with pytest.raises(ValueError, match="already"):
        _flat.flat(njit(other), lambda dtype: types.float64(types.Array(dtype, 1, "C"),
                                                            types.int64))
