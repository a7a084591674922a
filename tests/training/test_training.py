"""SGD training: a hand-worked step, epochs vs the NumPy reference, determinism, data sets."""

import naive
import numba
import numpy as np
import pytest
from conftest import one_hot_targets

import fastbp
from fastbp.kernels import _dense


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hand_worked_sgd_step(dtype):
    """One SGD step on a 2-2-1 relu/identity network, every number worked out by hand.

    x = (1, 2), t = 1, W1 = [[.5, .25], [-1, .25]], b1 = (.25, 0), W2 = [[1, .5]], b2 = .5
    z1 = (1.25, -.5) -> a1 = (1.25, 0);  z2 = a2 = 1.25 + .5 = 1.75;  E = 1/2 (.75)^2 = .28125
    delta2 = .75;  dW2 = delta2 a1 = (.9375, 0);  db2 = .75
    delta1 = W2^T delta2 * relu'(z1) = (.75, .375) * (1, 0) = (.75, 0)
    dW1 = delta1 x^T = [[.75, 1.5], [0, 0]];  db1 = (.75, 0)
    lr = .5: W1 = [[.125, -.5], [-1, .25]], b1 = (-.125, 0), W2 = [[.53125, .5]], b2 = .125
    All values are dyadic, so they are exact in float32 and float64.
    """
    m = fastbp.Model([2, 2, 1], activation="relu", loss="squared_error", dtype=dtype, seed=0)
    m.weights[0][:] = [[0.5, 0.25], [-1.0, 0.25]]
    m.biases[0][:] = [0.25, 0.0]
    m.weights[1][:] = [[1.0, 0.5]]
    m.biases[1][:] = [0.5]
    h = m.fit(np.array([[1.0, 2.0]]), np.array([1.0]), epochs=1, batch_size=1, learning_rate=0.5)
    assert h["loss"] == [0.28125]
    expected = np.array([0.125, -0.5, -1.0, 0.25, -0.125, 0.0, 0.53125, 0.5, 0.125], dtype=dtype)
    assert m.params.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(m.params, expected)
    np.testing.assert_array_equal(m.grads, [0.75, 1.5, 0, 0, 0.75, 0, 0.9375, 0, 0.75])


@pytest.mark.parametrize(
    "n,batch_size",
    [(10, 1), (10, 4), (10, 10), (10, None), (10, 64)],
    ids=["online", "partial-last-batch", "full", "full-None", "clamped"],
)
@pytest.mark.parametrize("loss", ["squared_error", "cross_entropy", "binary_cross_entropy"])
def test_epoch_matches_reference_sgd(n, batch_size, loss):
    rng = np.random.default_rng(n)
    sizes = [3, 5, 2]
    m = fastbp.Model(sizes, activation="tanh", loss=loss, dtype="float64", seed=4)
    X = rng.normal(size=(n, 3))
    if loss == "cross_entropy":
        y = rng.integers(0, 2, size=n)
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, size=(n, 2)).astype(float)
    else:
        y = rng.normal(size=(n, 2))
    T = one_hot_targets(y, loss, 2)
    p0 = m.params.copy()
    h = m.fit(X, y, epochs=1, batch_size=batch_size, learning_rate=0.1, shuffle=False)
    bs = n if batch_size is None else min(batch_size, n)
    p_ref, loss_ref = naive.sgd_epoch(
        p0, sizes, X, T, ["tanh", m.output], loss, bs, 0.1, np.arange(n)
    )
    np.testing.assert_allclose(m.params, p_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h["loss"][0], loss_ref, rtol=1e-12)


def test_shuffled_epoch_uses_a_permutation():
    """With shuffle, the epoch equals reference SGD over some permutation: the one seeded."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(9, 3)), rng.normal(size=9)
    m = fastbp.Model([3, 4, 1], activation="logistic", dtype="float64", seed=11)
    p0 = m.params.copy()
    m.fit(X, y, epochs=1, batch_size=2, learning_rate=0.2, shuffle=True)
    # the model's shuffle stream is the second child of SeedSequence(seed)
    shuffle_ss = np.random.SeedSequence(11).spawn(2)[1]
    order = np.arange(9)
    np.random.Generator(np.random.PCG64(shuffle_ss)).shuffle(order)
    assert not np.array_equal(order, np.arange(9))
    p_ref, _ = naive.sgd_epoch(p0, [3, 4, 1], X, y.reshape(-1, 1), ["logistic", "identity"],
                               "squared_error", 2, 0.2, order)
    np.testing.assert_allclose(m.params, p_ref, rtol=1e-12, atol=1e-14)


def _train(seed, dtype="float32", sizes=(8, 16, 3), n=200, epochs=3, batch_size=16):
    rng = np.random.default_rng(99)
    X = rng.normal(size=(n, sizes[0]))
    y = rng.integers(0, sizes[-1], size=n)
    m = fastbp.Model(list(sizes), activation="relu", loss="cross_entropy", dtype=dtype, seed=seed)
    m.fit(X, y, epochs=epochs, batch_size=batch_size, learning_rate=0.05)
    return m


def test_same_seed_same_parameters_bit_for_bit():
    a, b, c = _train(7), _train(7), _train(8)
    assert np.array_equal(a.params, b.params)
    assert a.history["loss"] == b.history["loss"]
    assert not np.array_equal(a.params, c.params)


def test_seed_none_is_recorded_and_reproducible():
    a = fastbp.Model([3, 2])
    b = fastbp.Model([3, 2], seed=a.seed)
    assert np.array_equal(a.params, b.params)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bitwise_equal_across_thread_counts(dtype):
    # layer sizes chosen so every product takes its parallel path (work >= PARALLEL_MIN_WORK)
    sizes, batch = (64, 128, 96, 10), 64
    assert batch * 64 * 128 >= _dense.PARALLEL_MIN_WORK
    max_threads = numba.config.NUMBA_NUM_THREADS
    if max_threads < 2:
        pytest.skip("needs at least 2 Numba threads")
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2, max_threads):
            numba.set_num_threads(threads)
            m = _train(3, dtype=dtype, sizes=sizes, n=300, epochs=2, batch_size=batch)
            X = np.random.default_rng(5).normal(size=(1500, sizes[0]))
            results.append((m.params.copy(), m.predict(X), m.gradient(X, np.zeros(1500, int))[1]))
    finally:
        numba.set_num_threads(before)
    for other in results[1:]:
        for x, y in zip(results[0], other):
            assert np.array_equal(x, y)


def test_float32_agrees_with_float64():
    m64 = _train(5, dtype="float64", epochs=2)
    m32 = _train(5, dtype="float32", epochs=2)
    assert m32.params.dtype == np.float32 and m64.params.dtype == np.float64
    np.testing.assert_allclose(m32.params, m64.params, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(m32.history["loss"], m64.history["loss"], rtol=1e-4)
    X = np.random.default_rng(1).normal(size=(50, 8))
    p32 = m32.predict(X)
    assert p32.dtype == np.float32
    np.testing.assert_allclose(p32, m64.predict(X), rtol=1e-4, atol=1e-5)
    y = np.arange(50) % 3
    m32.params[:] = m64.params  # same point: loss and gradient agree to float32 precision
    E32, g32 = m32.gradient(X, y)
    E64, g64 = m64.gradient(X, y)
    np.testing.assert_allclose(E32, E64, rtol=1e-5)
    np.testing.assert_allclose(g32, g64, rtol=1e-3, atol=1e-5)


def test_digits_reaches_95_percent():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = datasets.load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = model_selection.train_test_split(
        X / 16.0, y, test_size=0.25, random_state=0, stratify=y
    )
    m = fastbp.Model([64, 64, 10], activation="relu", loss="cross_entropy", seed=0)
    h = m.fit(Xtr, ytr, epochs=30, batch_size=32, learning_rate=0.1)
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    acc = (m.predict(Xte).argmax(axis=1) == yte).mean()
    assert acc >= 0.95, acc


def test_regression_drives_squared_error_down():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(512, 2))
    y = np.sin(2 * X[:, 0]) * np.cos(X[:, 1])
    m = fastbp.Model([2, 32, 32, 1], activation="tanh", loss="squared_error", seed=1)
    before = m.loss_value(X, y)
    h = m.fit(X, y, epochs=100, batch_size=16, learning_rate=0.05)
    after = m.loss_value(X, y)
    assert after < 0.05 * before, (before, after)
    assert h["loss"][-1] < h["loss"][0]
    np.testing.assert_allclose(after, 0.5 * np.mean((m.predict(X)[:, 0] - y) ** 2), rtol=1e-5)
