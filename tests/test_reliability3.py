"""Third reliability pass (issue 22): inputs in the forms the warm-up compiled, imports from
PyTorch that fastbp cannot reproduce, warm starts with a new activation, FIFOs planted where
files are read or cleaned up, assigned weights that overflow, fork while another thread
trains, and the smaller ones (cross-entropy of huge logits, sparse targets, directory-like
file names)."""

import gc
import os
import sys

import numpy as np
import pytest

import fastbp


# ------------------------------------------------------------ read-only inputs, warm-up forms
def _fastbp_signatures() -> dict:
    from numba.core.registry import CPUDispatcher

    return {o.py_func.__qualname__: set(o.signatures) for o in gc.get_objects()
            if isinstance(o, CPUDispatcher) and o.py_func.__module__.startswith("fastbp")}


def _read_only(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def _everything(X, Y, y, sw, Xs):
    """What the warm-up runs (Model dense and sparse, estimators), on these arrays."""
    import warnings

    from fastbp.sklearn import MLPClassifier, MLPRegressor

    out = []
    for data in (X, Xs):
        m = fastbp.Model([4, 5, 2], dtype="float64", seed=0)
        m.fit(data, Y, sample_weight=sw, epochs=1, batch_size=8, validation_data=(data, Y))
        m.fit(data, Y, epochs=1, optimizer="lbfgs")
        value, grad = m.gradient(data, Y)
        out += [m.params.copy(), m.predict(data), np.array(m.evaluate(data, Y)["loss"]),
                np.array(value), grad.copy()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est, target in ((MLPRegressor(hidden_layer_sizes=(5,), max_iter=2, random_state=0), Y),
                            (MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0), y)):
            est.fit(X, target, sample_weight=sw)
            out += [est.predict(X), est.model_.params.copy()]
    return out


def test_read_only_inputs_reach_the_kernels_in_the_compiled_forms():
    """pandas 3's ``np.asarray(DataFrame)``, ``np.load(mmap_mode="r")``: read-only arrays
    used to need their own compiled signatures (8-13 s after a warm-up)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 4))
    Y = rng.normal(size=(24, 2))
    y = rng.integers(0, 3, size=24)
    sw = rng.uniform(0.5, 1.5, size=24)
    Xs = sp.csr_matrix(np.where(X > 0, X, 0))
    writable = _everything(X, Y, y, sw, Xs)
    before = _fastbp_signatures()
    Xs_ro = sp.csr_matrix((_read_only(Xs.data), _read_only(Xs.indices.astype(np.int64)),
                           _read_only(Xs.indptr.astype(np.int64))), shape=Xs.shape)
    read_only = _everything(_read_only(X), _read_only(Y), _read_only(y), _read_only(sw),
                            Xs_ro)
    assert _fastbp_signatures() == before  # nothing compiled for the read-only arrays
    for a, b in zip(writable, read_only, strict=True):
        assert np.array_equal(a, b)


def test_read_only_arrays_are_aliased_not_copied_nor_written():
    from fastbp._validation.arrays import check_X

    X = _read_only(np.arange(12.0).reshape(4, 3))
    out = check_X(X, np.float64, 3)
    assert out.flags.writeable and np.shares_memory(out, X)
    assert not X.flags.writeable  # the caller's array is as it was
    m = fastbp.Model([3, 2], dtype="float64", seed=0)
    m.fit(X, _read_only(np.ones((4, 2))), epochs=2)
    assert np.array_equal(X, np.arange(12.0).reshape(4, 3))
    # an unaligned array is copied into an aligned one
    buf = np.zeros(12 * 8 + 1, dtype=np.uint8)
    unaligned = np.frombuffer(buf.data, dtype=np.float64, count=12, offset=1).reshape(4, 3)
    assert not unaligned.flags.aligned
    assert check_X(unaligned, np.float64, 3).flags.aligned


def test_pandas_frames_reach_the_kernels_in_the_compiled_forms():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(24, 1))
    y = rng.normal(size=24)
    m = fastbp.Model([1, 3, 1], dtype="float64", seed=0)
    m.fit(X, y, epochs=1, batch_size=8)
    m.predict(X)
    before = _fastbp_signatures()
    df = pd.DataFrame({"a": X[:, 0]})
    m2 = fastbp.Model([1, 3, 1], dtype="float64", seed=0)
    m2.fit(df, pd.Series(y), epochs=1, batch_size=8)
    assert np.array_equal(m2.predict(df), m.predict(X))
    assert _fastbp_signatures() == before
