"""Third reliability pass (issue 22): inputs in the forms the warm-up compiled, imports from
PyTorch that fastbp cannot reproduce, warm starts with a new activation, FIFOs planted where
files are read or cleaned up, assigned weights that overflow, fork while another thread
trains, and the smaller ones (cross-entropy of huge logits, sparse targets, directory-like
file names)."""

import os
import sys

import numpy as np
import pytest

import fastbp


# ------------------------------------------------------------ read-only inputs, warm-up forms
def _fastbp_signatures() -> dict:
    """``{kernel: its compiled signatures}`` for every compiled function of fastbp."""
    from numba.core.dispatcher import Dispatcher

    out = {}
    for name, module in list(sys.modules.items()):
        if name == "fastbp" or name.startswith("fastbp."):
            for obj in list(vars(module).values()):
                if isinstance(obj, Dispatcher):
                    out[f"{obj.py_func.__module__}.{obj.py_func.__qualname__}"] = set(
                        obj.signatures)
    return out


def _read_only_signatures() -> list:
    """fastbp's compiled signatures that take a read-only array (none should exist)."""
    from numba import types

    return [(name, sig) for name, sigs in _fastbp_signatures().items() for sig in sigs
            if any(isinstance(t, types.Array) and not t.mutable for t in sig)]


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
        kw = dict(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
        for est, target in ((MLPRegressor(**kw), Y), (MLPClassifier(**kw), y)):
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
    assert _read_only_signatures() == []
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
    assert _read_only_signatures() == []


# ------------------------------------------------------------ warm starts honour activation
def _classification(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 0.8)
    return X, y


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_warm_start_trains_with_a_new_activation_as_scikit_learn(solver):
    """fastbp kept training with the old activation; ``Model.from_sklearn(est)`` (which
    reads ``est.activation``) then disagreed with ``est.predict_proba`` by 0.34."""
    import warnings

    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    from fastbp.sklearn import MLPClassifier

    X, y = _classification()
    probs = []
    for cls in (MLPClassifier, SkMLPClassifier):
        est = cls(hidden_layer_sizes=(6,), activation="relu", solver=solver, max_iter=20,
                  random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
            est.set_params(activation="tanh", warm_start=True).fit(X, y)
        probs.append(est.predict_proba(X))
        np.testing.assert_allclose(fastbp.Model.from_sklearn(est).predict(X), probs[-1],
                                   rtol=1e-7, atol=1e-9)
    assert est.activation == "tanh" and list(est.coefs_[0].shape) == [4, 6]
    np.testing.assert_allclose(probs[0], probs[1], rtol=1e-6, atol=1e-8)


def test_partial_fit_and_predict_use_the_current_activation():
    import warnings

    from sklearn.neural_network import MLPRegressor as SkMLPRegressor

    from fastbp.sklearn import MLPRegressor

    X, y = _classification()
    target = X[:, 0] - X[:, 1]
    preds = []
    for cls in (MLPRegressor, SkMLPRegressor):
        est = cls(hidden_layer_sizes=(5,), activation="logistic", max_iter=5, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, target)
        est.set_params(activation="identity")
        first = est.predict(X)  # the fitted weights, the new activation
        est.partial_fit(X, target)
        preds.append((first, est.predict(X)))
    for a, b in zip(*preds, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_warm_start_with_another_loss_is_refused():
    import warnings

    from fastbp.sklearn import MLPRegressor

    X, _ = _classification()
    est = MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, np.abs(X[:, 0]))
    before = est.model_.params.copy()
    with pytest.raises(ValueError, match=r"loss='poisson' differs from the loss the network "
                                         r"was built for \('squared_error'"):
        est.set_params(loss="poisson", warm_start=True).fit(X, np.abs(X[:, 0]))
    assert np.array_equal(est.model_.params, before)


def test_model_set_activation_keeps_weights_and_state():
    X, y = _classification()
    m = fastbp.Model([4, 5, 5, 3], activation="relu", loss="cross_entropy", seed=0)
    m.fit(X, y, epochs=2, optimizer="adam")
    params, steps = m.params.copy(), m.optimizer_steps
    m.set_activation(["tanh", "logistic"])
    assert m.activations == ["tanh", "logistic"]
    assert np.array_equal(m.params, params) and m.optimizer_steps == steps
    ref = fastbp.Model([4, 5, 5, 3], activation=["tanh", "logistic"], loss="cross_entropy")
    ref.params[...] = params
    assert np.array_equal(m.predict(X), ref.predict(X))
    with pytest.raises(ValueError, match="activation"):
        m.set_activation("swish")
    assert m.activations == ["tanh", "logistic"]


# ------------------------------------------------------------ assigned weights that overflow
def test_assigned_weights_overflowing_float32_are_refused_naming_layer_and_value():
    """1e39 became inf after the cast, unchecked; the next partial_fit blamed the data."""
    import warnings

    from fastbp.sklearn import MLPRegressor

    X, _ = _classification()
    X32, y32 = X.astype(np.float32), X[:, 0].astype(np.float32)
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X32, y32)
    assert est.model_.dtype == np.float32
    before = est.model_.params.copy()
    coefs = [c.astype(np.float64) for c in est.coefs_]
    coefs[1][2, 0] = 1e39
    match = r"coefs_\[1\]\[2, 0\] = 1e\+39 does not fit in float32 \(it overflows to inf\)"
    with pytest.raises(ValueError, match=match):
        est.coefs_ = coefs
    with pytest.raises(ValueError, match=match):
        est.coefs_[1] = coefs[1]
    bias = [b.astype(np.float64) for b in est.intercepts_]
    bias[0][1] = -1e39
    with pytest.raises(ValueError, match=r"intercepts_\[0\]\[1\] = -1e\+39"):
        est.intercepts_ = bias
    assert np.array_equal(est.model_.params, before)
    # weights given to an unfitted estimator, trained on float32 data
    fresh = MLPRegressor(hidden_layer_sizes=(3,), random_state=0)
    fresh.coefs_, fresh.intercepts_ = coefs, [b.astype(np.float64) for b in est.intercepts_]
    with pytest.raises(ValueError, match=match):
        fresh.partial_fit(X32, y32)
    # Model.params
    m = fastbp.Model([2, 3, 1], dtype="float32", seed=0)
    p = m.params.astype(np.float64)
    p[7] = -1e39
    with pytest.raises(ValueError, match=r"params\[7\] = -1e\+39 \(layer 0's biases\) does "
                                         r"not fit in float32"):
        m.params = p
    assert np.isfinite(m.params).all()


# ------------------------------------------------------------ FIFOs and directory-like names
def _finishes(fn, fifo, timeout=30.0):
    """``fn()``'s result (or exception) if it returns within ``timeout`` s; a call blocked
    opening ``fifo`` is released (a writer arrives and leaves) and the test fails."""
    import threading

    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass
        thread.join(10)
        pytest.fail(f"blocked on the FIFO {fifo}")
    return out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_planted_fifo_never_hangs_save_to_onnx_or_load(tmp_path):
    """save's clean-up of stale temporary files opened every matching name for reading
    first: a FIFO there hung save and to_onnx forever, holding the model's lock."""
    from fastbp import _io

    m = fastbp.Model([3, 4, 2], seed=0)
    for name, write in (("m.npz", m.save), ("m.onnx", m.to_onnx)):
        if name.endswith(".onnx"):
            pytest.importorskip("onnx")
        fifo = tmp_path / ("." + name + _io.TMP_INFIX + "0123456789ab")
        os.mkfifo(fifo)
        os.utime(fifo, (1, 1))  # old enough to count as stale
        out = _finishes(lambda write=write, name=name: write(tmp_path / name), fifo)
        assert "error" not in out, out
        assert (tmp_path / name).is_file() and fifo.exists()  # only regular files removed
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    out = _finishes(lambda: fastbp.Model.load(fifo), fifo)
    assert isinstance(out.get("error"), OSError) and "Not a regular file" in str(out["error"])
    with pytest.raises(IsADirectoryError):
        fastbp.Model.load(tmp_path)


@pytest.mark.parametrize("writer", ["save", "to_onnx"])
def test_a_directory_like_path_is_refused(tmp_path, writer):
    """``to_onnx("x.onnx/")`` wrote the file ``x.onnx``; ``open("x.onnx/", "w")`` refuses."""
    if writer == "to_onnx":
        pytest.importorskip("onnx")
    m = fastbp.Model([3, 2], seed=0)
    with pytest.raises(IsADirectoryError, match="ends in a path separator"):
        getattr(m, writer)(str(tmp_path / "x.out") + os.sep)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------ fork while another thread trains
FORK_WHILE_TRAINING = """
import os, sys, threading, time
import numpy as np
import fastbp

rng = np.random.default_rng(0)
X = rng.normal(size=(512, 8)).astype(np.float32)
y = rng.integers(0, 3, size=512)
m = fastbp.Model([8, 16, 3], loss="cross_entropy", seed=0)
m.fit(X[:64], y[:64], epochs=1)
m.predict(X[:4])  # compiled (or loaded) before anything runs in another thread
training, stop = threading.Event(), threading.Event()

def callback(epoch, logs):
    training.set()
    return stop.is_set()

thread = threading.Thread(target=m.fit, args=(X, y),
                          kwargs=dict(epochs=10**6, batch_size=8, callbacks=[callback]))
thread.start()
training.wait()  # the other thread holds the model's lock for the whole fit
pid = os.fork()
if pid == 0:
    m.predict(X[:4])
    os.write(1, b"child predicted\\n")
    os._exit(0)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    print("child hung", flush=True)
stop.set()
thread.join()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_fork_while_another_thread_trains_leaves_the_model_usable_in_the_child():
    """The child got the model's lock in its held state, and hung in predict."""
    import subprocess

    root = os.path.dirname(os.path.dirname(fastbp.__file__))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", FORK_WHILE_TRAINING], env=env, text=True,
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "child predicted" in r.stdout and "hung" not in r.stdout, r.stdout


# ------------------------------------------------------------ the smaller ones
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_of_huge_logits_does_not_cancel(dtype):
    """``(max + log s) - z`` rounded ``log s`` away: 0.0 for equal logits of 1e16."""
    m = fastbp.Model([1, 3], loss="cross_entropy", dtype=dtype, seed=0)
    m.weights[0][...] = 0
    X = np.ones((2, 1))
    y = np.array([0, 2])
    for big, want in ((1e16, np.log(3)), (-1e17, np.log(3)), (4e15, np.log(3))):
        m.biases[0][...] = big
        assert m.loss_value(X, y) == pytest.approx(want, rel=1e-12)
    m.biases[0][...] = [1e16, 1e16 - 2**31, 1e16 - 2**31]
    assert m.loss_value(X, y) == pytest.approx((0 + 2**31) / 2, rel=1e-12)


def test_sparse_targets_and_weights_are_refused_clearly():
    import scipy.sparse as sp

    from fastbp.sklearn import MLPRegressor

    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(10, 3)), rng.random((10, 2))
    m = fastbp.Model([3, 2], loss="binary_cross_entropy", seed=0)
    with pytest.raises(TypeError, match=r"y is a sparse matrix.*Pass y.toarray\(\)"):
        m.fit(X, sp.csr_matrix(Y))
    with pytest.raises(TypeError, match=r"y is a sparse matrix"):
        m.evaluate(X, sp.csr_matrix(Y))
    with pytest.raises(TypeError, match=r"sample_weight is a sparse matrix"):
        m.fit(X, Y, sample_weight=sp.csr_matrix(np.ones((1, 10))))
    with pytest.raises(TypeError, match=r"y is a sparse matrix; MLPRegressor takes dense"):
        MLPRegressor(max_iter=2).fit(X, sp.csr_matrix(Y))
