"""Sparse (CSR) inputs: the same results as the dense path, no densified copy, clear errors."""

import tracemalloc
import warnings

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

import fastbp  # noqa: E402
from fastbp._validation.arrays import check_csr  # noqa: E402
from fastbp.kernels._layout import CSRRows  # noqa: E402
from fastbp.kernels._sparse import predict_csr  # noqa: E402


def _data(n=150, n_in=40, density=0.08, seed=0, n_classes=3):
    rng = np.random.default_rng(seed)
    X = sp.random(n, n_in, density=density, random_state=seed, format="csr",
                  data_rvs=lambda k: rng.normal(size=k))
    X = X.tolil()
    X[3] = 0  # an empty row
    X = X.tocsr()
    X.eliminate_zeros()
    y = rng.integers(0, n_classes, n)
    return X, y


def _pair(**kw):
    return [fastbp.Model(**kw) for _ in range(2)]


FIT_CASES = {
    "sgd-tanh-ce": (dict(layer_sizes=[40, 7, 3], activation="tanh", loss="cross_entropy"),
                    dict(epochs=3, batch_size=16, learning_rate=0.1)),
    "adam-relu-dropout": (dict(layer_sizes=[40, 9, 5, 3], loss="cross_entropy", dropout=0.2),
                          dict(epochs=2, batch_size=10, optimizer="adam", l2=1e-3,
                               clip_norm=1.0)),
    "online-se": (dict(layer_sizes=[40, 4, 1], activation="logistic"),
                  dict(epochs=1, batch_size=1, learning_rate=0.05)),
    "no-hidden-bce": (dict(layer_sizes=[40, 1], loss="binary_cross_entropy"),
                      dict(epochs=2, batch_size=32, optimizer="rmsprop")),
    "weights-valsplit": (dict(layer_sizes=[40, 6, 3], loss="cross_entropy"),
                         dict(epochs=2, batch_size=20, validation_split=0.2,
                              sample_weight="w")),
    "lbfgs": (dict(layer_sizes=[40, 5, 3], activation="tanh", loss="cross_entropy"),
              dict(epochs=8, optimizer="lbfgs")),
    "poisson": (dict(layer_sizes=[40, 5, 1], activation="tanh", loss="poisson"),
                dict(epochs=2, batch_size=25, optimizer="adam")),
}


def _targets(y, model_kw):
    loss = model_kw.get("loss", "squared_error")
    if loss == "cross_entropy":
        return y
    if loss == "binary_cross_entropy":
        return (y == 1).astype(float)
    if loss == "poisson":
        return y.astype(float)
    return y / 2.0


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_on_csr_equals_fit_on_dense(case):
    model_kw, fit_kw = FIT_CASES[case]
    X, y = _data()
    t = _targets(y, model_kw)
    fit_kw = dict(fit_kw)
    if fit_kw.get("sample_weight") == "w":
        fit_kw["sample_weight"] = np.random.default_rng(5).uniform(0.2, 2, len(y))
    dense, sparse = _pair(dtype="float64", seed=3, **model_kw)
    h_dense = dense.fit(X.toarray(), t, **fit_kw)
    h_sparse = sparse.fit(X, t, **fit_kw)
    np.testing.assert_allclose(sparse.params, dense.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(h_sparse["loss"], h_dense["loss"], rtol=1e-10)
    if "val_loss" in h_dense.keys():
        np.testing.assert_allclose(h_sparse["val_loss"], h_dense["val_loss"], rtol=1e-10)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), rtol=1e-12,
                               atol=1e-14)
    # partial_fit continues the same way
    sparse.partial_fit(X[:50], t[:50], batch_size=8)
    dense.partial_fit(X[:50].toarray(), t[:50], batch_size=8)
    np.testing.assert_allclose(sparse.params, dense.params, rtol=1e-9, atol=1e-12)


def test_predict_gradient_evaluate_every_sparse_format():
    X, y = _data(n=1300)  # more rows than one chunk of a whole-data-set pass
    m = fastbp.Model([40, 6, 3], activation="tanh", loss="cross_entropy", dtype="float64",
                     seed=0)
    m.biases[0][:] = 0.1
    D = X.toarray()
    E, g = m.gradient(D, y)
    ev = m.evaluate(D, y)
    p = m.predict(D)
    sw = np.random.default_rng(2).uniform(0.5, 2, len(y))
    Ew, gw = m.gradient(D, y, sample_weight=sw, l2=0.1)
    X32 = X.astype(np.float32)
    np.testing.assert_allclose(m.gradient(X32, y)[1], m.gradient(X32.toarray(), y)[1],
                               rtol=1e-10, atol=1e-13)
    for S in (X, X.tocsc(), X.tocoo(), sp.csr_array(X),
              sp.csr_matrix((X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64)),
                            shape=X.shape)):
        E2, g2 = m.gradient(S, y)
        np.testing.assert_allclose(E2, E, rtol=1e-12)
        np.testing.assert_allclose(g2, g, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(m.predict(S), p, rtol=1e-12, atol=1e-15)
        ev2 = m.evaluate(S, y)
        assert ev2["accuracy"] == ev["accuracy"]
        np.testing.assert_allclose(ev2["loss"], ev["loss"], rtol=1e-12)
        np.testing.assert_allclose(m.loss_value(S, y), ev["loss"], rtol=1e-12)
    Ew2, gw2 = m.gradient(X, y, sample_weight=sw, l2=0.1)
    np.testing.assert_allclose(Ew2, Ew, rtol=1e-12)
    np.testing.assert_allclose(gw2, gw, rtol=1e-10, atol=1e-13)


def test_unsorted_indices_and_duplicates_are_summed():
    rng = np.random.default_rng(1)
    rows = np.array([0, 0, 0, 1, 2, 2])
    cols = np.array([5, 1, 5, 0, 3, 2])
    vals = rng.normal(size=6)
    coo = sp.coo_matrix((vals, (rows, cols)), shape=(3, 6))
    m = fastbp.Model([6, 4, 2], dtype="float64", seed=0)
    dense = coo.toarray()  # duplicates summed
    unsorted = sp.csr_matrix((vals, cols, np.array([0, 3, 4, 6])), shape=(3, 6))
    assert not unsorted.has_sorted_indices
    np.testing.assert_allclose(m.predict(unsorted), m.predict(dense), rtol=1e-12)
    t = rng.normal(size=(3, 2))
    np.testing.assert_allclose(m.gradient(unsorted, t)[1], m.gradient(dense, t)[1],
                               rtol=1e-10, atol=1e-14)


def test_float32_csr_fit_matches_dense():
    X, y = _data(seed=4)
    dense, sparse = _pair(layer_sizes=[40, 8, 3], loss="cross_entropy", seed=1)
    dense.fit(X.toarray(), y, epochs=2, batch_size=8, optimizer="adam")
    sparse.fit(X, y, epochs=2, batch_size=8, optimizer="adam")
    assert sparse.params.dtype == np.float32
    np.testing.assert_allclose(sparse.params, dense.params, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X.toarray()), atol=1e-5)


def test_same_result_for_any_thread_count():
    """Batches large enough for the parallel layer-0 gradient (above
    PARALLEL_MIN_WORK multiply-adds): bitwise the same for 1 and 2 threads, and the
    dense path's result up to rounding."""
    from fastbp.kernels._dense import PARALLEL_MIN_WORK

    n_in, batch, hidden = 10_000, 128, 64
    X, y = _data(n=512, n_in=n_in, density=0.007, seed=2)
    assert (X[:batch].nnz + n_in) * hidden >= PARALLEL_MIN_WORK
    out = []
    for n_threads in (1, 2):
        m = fastbp.Model([n_in, hidden, 3], loss="cross_entropy", dtype="float64", seed=0)
        m.fit(X, y, epochs=2, batch_size=batch, optimizer="adam", n_threads=n_threads)
        out.append(m.params.copy())
        assert np.array_equal(m.predict(X, n_threads=n_threads),
                              m.predict(X, n_threads=1))
    assert np.array_equal(out[0], out[1])
    dense = fastbp.Model([n_in, hidden, 3], loss="cross_entropy", dtype="float64", seed=0)
    dense.fit(X.toarray(), y, epochs=2, batch_size=batch, optimizer="adam")
    np.testing.assert_allclose(out[0], dense.params, rtol=1e-9, atol=1e-12)


def test_bad_sparse_input_is_refused_clearly():
    X, y = _data()
    m = fastbp.Model([40, 4, 3], loss="cross_entropy", dtype="float64")
    with pytest.raises(ValueError, match="41 features but the model's input layer has 40"):
        m.fit(sp.random(10, 41, density=0.1, format="csr"), y[:10])
    bad = X.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        m.predict(bad)
    with pytest.raises(ValueError, match="empty"):
        m.predict(sp.csr_matrix((0, 40)))
    with pytest.raises(ValueError, match="samples but X has"):
        m.fit(X, y[:-1])


def test_compiled_kernel_checks_the_csr_it_reads():
    """User code calling the CSR kernel with inconsistent arrays gets ValueError."""
    m = fastbp.Model([5, 3, 2], dtype="float64", seed=0)
    net, ws = m.kernel_args(), m.allocate_workspace(4, sparse=True)
    out = np.zeros((2, 2))
    data = np.ones(3)
    indptr = np.array([0, 2, 3], dtype=np.int64)
    for indices, ptr, n_cols, match in [
        (np.array([0, 5, 1], dtype=np.int64), indptr, 5, "column index"),
        (np.array([0, -1, 1], dtype=np.int64), indptr, 5, "column index"),
        (np.array([0, 1, 1], dtype=np.int64), np.array([0, 3, 2], dtype=np.int64), 5,
         "indptr"),
        (np.array([0, 1, 1], dtype=np.int64), np.array([0, 2, 9], dtype=np.int64), 5,
         "indptr"),
        (np.array([0, 1, 1], dtype=np.int64), indptr, 6, "n_cols"),
    ]:
        with pytest.raises(ValueError, match=match):
            predict_csr(CSRRows(data, indices, ptr, n_cols), net, ws, out)
    # a workspace that claims more rows than its buffers hold
    small = m.allocate_workspace(1, sparse=True)._replace(capacity=2)
    rows = CSRRows(data, np.array([0, 1, 1], dtype=np.int64), indptr, 5)
    with pytest.raises(ValueError, match="fewer rows"):
        predict_csr(rows, net, small, out)


def test_csr_rows_take_and_check():
    X, _ = _data(n=20)
    rows = check_csr(X, np.float64, 40)
    assert isinstance(rows, CSRRows) and rows.indices.dtype == np.int64
    pick = np.array([5, 0, 19, 3])
    np.testing.assert_array_equal(rows.take(pick).toarray(), X.toarray()[pick])


def test_training_never_densifies_the_data():
    """A wide CSR (100,000 columns) trains with traced peak memory near the CSR plus the
    model, far below a dense copy (tracemalloc sees NumPy's allocations)."""
    n, n_in = 5000, 100_000
    X = sp.random(n, n_in, density=0.0005, format="csr", random_state=0, dtype=np.float32)
    y = np.random.default_rng(0).integers(0, 2, n)
    m = fastbp.Model([n_in, 16, 2], loss="cross_entropy", seed=0)
    m.fit(X[:64], y[:64], epochs=1, batch_size=32, optimizer="adam")  # compile, optimizer state
    csr_bytes = X.data.nbytes + X.indices.nbytes * 2 + X.indptr.nbytes * 2  # int64 copies
    model_bytes = m.params.nbytes * 4  # params, grads, Adam's two moments
    tracemalloc.start()
    try:
        m.fit(X, y, epochs=1, batch_size=200, optimizer="adam")
        m.predict(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * (csr_bytes + model_bytes), (peak, csr_bytes, model_bytes)
    assert peak < n * n_in * 4 / 20  # a dense copy would be 2 GB


def test_sklearn_estimators_take_csr_without_densifying():
    sk = pytest.importorskip("sklearn.neural_network")
    from fastbp.sklearn import MLPClassifier, MLPRegressor

    X, y = _data(n=120)
    kw = dict(hidden_layer_sizes=(6,), max_iter=5, random_state=0, batch_size=16,
              learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MLPClassifier(**kw).fit(X, y)
        dense = MLPClassifier(**kw).fit(X.toarray(), y)
        theirs = sk.MLPClassifier(**kw).fit(X, y)
        es = MLPClassifier(early_stopping=True, **kw).fit(X.tocsc(), y)
        es_sk = sk.MLPClassifier(early_stopping=True, **kw).fit(X.tocsc(), y)
        reg = MLPRegressor(solver="lbfgs", **kw).fit(X, y / 2.0)
        reg_sk = sk.MLPRegressor(solver="lbfgs", **kw).fit(X, y / 2.0)
    for a, b, c in zip(ours.coefs_ + ours.intercepts_, dense.coefs_ + dense.intercepts_,
                       theirs.coefs_ + theirs.intercepts_, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a, c, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-8)
    np.testing.assert_allclose(es.validation_scores_, es_sk.validation_scores_)
    np.testing.assert_allclose(reg.predict(X), reg_sk.predict(X), rtol=1e-7, atol=1e-9)
    ours.partial_fit(X[:30], y[:30])
    theirs.partial_fit(X[:30], y[:30])
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-8, atol=1e-10)


def test_csr_kernels_from_user_code():
    """The public CSR drivers with the model's arguments and a sparse workspace."""
    from fastbp import kernels as K
    from fastbp.kernels._codes import STATUS_OK

    X, y = _data(n=60)
    m = fastbp.Model([40, 5, 3], loss="cross_entropy", dtype="float64", seed=0)
    ws = m.allocate_workspace(16, sparse=True)
    assert ws.act.shape[0] == 16 * (5 + 3)  # no input block
    rows = check_csr(X, np.float64, 40)
    out = np.empty((60, 3))
    assert isinstance(rows, K.CSRRows)
    K.predict_csr(rows, m.kernel_args(), ws, out)
    np.testing.assert_array_equal(out, m.predict(X))
    T = np.eye(3)[y]
    E = K.loss_csr(rows, T, m.kernel_args(), ws)
    np.testing.assert_allclose(E, m.loss_value(X, y), rtol=1e-12)
    grads = np.zeros_like(m.params)
    E2 = K.loss_and_gradient_csr(rows, T, T[:0, 0], m.kernel_args()._replace(grads=grads),
                                 m.allocate_workspace(60, sparse=True), False)  # one chunk
    E_ref, g_ref = m.gradient(X, y)
    assert E2 == E_ref
    np.testing.assert_array_equal(grads, g_ref)

    # an epoch of Adam steps, as Model.fit runs it
    ref = fastbp.Model([40, 5, 3], loss="cross_entropy", dtype="float64", seed=0)
    ref.fit(X, y, epochs=1, batch_size=16, shuffle=False, optimizer="adam", learning_rate=0.01)
    acc = np.zeros(5)
    acc[3] = np.nan
    status, reached = K.train_steps_csr(
        rows, T, T[:0, 0], np.arange(60), m.kernel_args(), ws, m.optimizer_args("adam"),
        0.01, 0.0, 0.0, 16, False, 0, 4, acc, True)
    assert (status, reached) == (STATUS_OK, 4)
    np.testing.assert_array_equal(m.params, ref.params)
    assert acc[0] / acc[1] == ref.history["loss"][-1]


def test_distributed_fit_refuses_sparse_shards_clearly():
    pytest.importorskip("mpi4py")
    from fastbp import distributed

    X, y = _data(n=40)
    m = fastbp.Model([40, 4, 3], loss="cross_entropy", dtype="float64", seed=0)
    with pytest.raises(TypeError, match="dense shards"):
        distributed.fit(m, X, y, epochs=1)
