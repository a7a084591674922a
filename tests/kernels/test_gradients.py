"""Forward and gradient of the compiled kernels vs the NumPy reference and finite differences."""

import itertools

import naive
import numpy as np
import pytest
from conftest import make_targets, one_hot_targets

import fastbp

HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu"]
LOSS_OUTPUT = [
    ("squared_error", "identity"),
    ("squared_error", "logistic"),
    ("squared_error", "tanh"),
    ("squared_error", "relu"),
    ("squared_error", "leaky_relu"),
    ("squared_error", "softmax"),
    ("cross_entropy", "softmax"),
    ("binary_cross_entropy", "logistic"),
    ("poisson", "exp"),
]
ARCHS = [[3, 2], [3, 4, 2], [3, 5, 4, 3]]  # 1, 2 and 3 weight layers


def _model(sizes, hidden, loss, output, dtype="float64", seed=0):
    m = fastbp.Model(sizes, activation=hidden, loss=loss, output=output, dtype=dtype, seed=seed)
    # non-zero biases so that bias gradients are tested on a generic point
    rng = np.random.default_rng(seed + 1)
    for b in m.biases:
        b[:] = rng.normal(scale=0.3, size=b.shape)
    return m


def _cases():
    for sizes, hidden, (loss, output) in itertools.product(ARCHS, HIDDEN, LOSS_OUTPUT):
        if len(sizes) == 2 and hidden != "relu":
            continue  # no hidden layer: the hidden activation is irrelevant
        yield sizes, hidden, loss, output


CASES = list(_cases())
IDS = [f"{'-'.join(map(str, s))}-{h}-{l}-{o}" for s, h, l, o in CASES]


@pytest.mark.parametrize("sizes,hidden,loss,output", CASES, ids=IDS)
@pytest.mark.parametrize("n", [1, 4])
def test_gradient_matches_reference_and_finite_differences(sizes, hidden, loss, output, n):
    rng = np.random.default_rng(sum(sizes) * 7 + n)
    m = _model(sizes, hidden, loss, output)
    X = rng.normal(size=(n, sizes[0]))
    y = make_targets(rng, loss, n, sizes[-1])
    T = one_hot_targets(y, loss, sizes[-1])
    acts = m.activations + [m.output]

    E, g = m.gradient(X, y)
    E_ref, g_ref = naive.loss_and_gradient(m.params, sizes, X, T, acts, loss)
    np.testing.assert_allclose(E, E_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-12)

    def f(p):
        return naive.loss(*_out(p), T, loss)

    def _out(p):
        Ws, bs = naive.unpack(p, sizes)
        zs, as_ = naive.forward(Ws, bs, X, acts)
        return as_[-1], zs[-1]

    g_fd = naive.central_difference(f, m.params)
    np.testing.assert_allclose(g, g_fd, rtol=1e-5, atol=1e-7)
    # the kernels' own loss, differenced, agrees too (loss kernel consistent with gradient)
    saved = m.params.copy()

    def f_kernel(p):
        m.params[:] = p
        return m.loss_value(X, y)

    g_fd_kernel = naive.central_difference(f_kernel, saved)
    m.params[:] = saved
    np.testing.assert_allclose(g, g_fd_kernel, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("sizes,hidden,loss,output", CASES[::3], ids=IDS[::3])
def test_predict_matches_reference(sizes, hidden, loss, output):
    rng = np.random.default_rng(3)
    m = _model(sizes, hidden, loss, output)
    X = rng.normal(size=(7, sizes[0]))
    Ws, bs = naive.unpack(m.params, sizes)
    _, as_ = naive.forward(Ws, bs, X, m.activations + [m.output])
    np.testing.assert_allclose(m.predict(X), as_[-1], rtol=1e-12, atol=1e-14)


def test_chunked_dataset_gradient_equals_reference():
    """More rows than one chunk: per-chunk gradients are accumulated, scaled by 1/n."""
    rng = np.random.default_rng(0)
    sizes = [4, 6, 3]
    m = _model(sizes, "tanh", "cross_entropy", None)
    n = m.network.chunk_rows + 77
    X = rng.normal(size=(n, 4))
    y = rng.integers(0, 3, size=n)
    E, g = m.gradient(X, y)
    E_ref, g_ref = naive.loss_and_gradient(
        m.params, sizes, X, one_hot_targets(y, "cross_entropy", 3), ["tanh", "softmax"],
        "cross_entropy",
    )
    np.testing.assert_allclose(E, E_ref, rtol=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(m.predict(X).sum(axis=1), 1, rtol=1e-12)


def test_one_hot_and_soft_targets_for_cross_entropy():
    rng = np.random.default_rng(1)
    m = _model([3, 4, 3], "relu", "cross_entropy", None)
    X = rng.normal(size=(5, 3))
    y = rng.integers(0, 3, size=5)
    E1, g1 = m.gradient(X, y)
    E2, g2 = m.gradient(X, one_hot_targets(y, "cross_entropy", 3))
    assert E1 == E2 and np.array_equal(g1, g2)
    soft = rng.dirichlet(np.ones(3), size=5)
    E3, g3 = m.gradient(X, soft)
    E_ref, g_ref = naive.loss_and_gradient(
        m.params, [3, 4, 3], X, soft, ["relu", "softmax"], "cross_entropy"
    )
    np.testing.assert_allclose(E3, E_ref, rtol=1e-12)
    np.testing.assert_allclose(g3, g_ref, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_huge_logits_stay_finite(loss):
    """Logits of +-1e4 must not overflow into inf/NaN losses or gradients."""
    m = fastbp.Model([2, 3], loss=loss, dtype="float64", seed=0)
    m.weights[0][:] = [[1e4, 0], [-1e4, 0], [0, 1e4]]
    X = np.array([[1.0, 0.0], [-1.0, 1.0]])
    y = np.array([1, 2]) if loss == "cross_entropy" else np.array([[0, 1, 0], [1, 0, 1.0]])
    E, g = m.gradient(X, y)
    assert np.isfinite(E) and np.isfinite(g).all()
    # CE: row 1 has z = (1e4, -1e4, 0) with label 1, loss 2e4; row 2 has z = (-1e4, 1e4, 1e4)
    # with label 2, loss log(2). Computed naively, both would overflow or give log(0).
    if loss == "cross_entropy":
        np.testing.assert_allclose(E, (2e4 + np.log(2)) / 2, rtol=1e-12)
    out = m.predict(X)
    assert np.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
    m32 = fastbp.Model([2, 3], loss=loss, dtype="float32", seed=0)
    m32.weights[0][:] = m.weights[0]
    E32, g32 = m32.gradient(X, y)
    assert np.isfinite(E32) and np.isfinite(g32).all()


def test_poisson_targets_must_be_non_negative():
    m = _model([3, 4, 1], "tanh", "poisson", None)
    X = np.ones((3, 3))
    with pytest.raises(ValueError, match="loss='poisson' must be >= 0"):
        m.fit(X, np.array([1.0, -0.5, 2.0]), epochs=1)
    with pytest.raises(ValueError, match="loss='poisson' must be >= 0"):
        m.gradient(X, np.array([1.0, -0.5, 2.0]))
    with pytest.raises(ValueError, match="needs output in"):
        fastbp.Model([3, 1], loss="poisson", output="identity")
    assert m.output == "exp" and (m.predict(X) > 0).all()


def test_poisson_loss_is_half_deviance_and_zero_at_the_targets():
    """E = mean_i sum_j t log(t / a) - t + a: 0 when a = t, with t = 0 allowed."""
    m = fastbp.Model([2, 2], loss="poisson", dtype="float64", seed=0)
    m.weights[0][:] = 0
    T = np.array([[0.5, 2.0]])
    m.biases[0][:] = np.log(T[0])
    X = np.zeros((1, 2))
    assert abs(m.loss_value(X, T)) < 1e-15
    m.biases[0][:] = 0.0  # a = 1
    T0 = np.array([[0.0, 3.0]])
    np.testing.assert_allclose(m.loss_value(X, T0), (0 - 0 + 1) + (3 * np.log(3) - 3 + 1),
                               rtol=1e-14)
    E, g = m.gradient(X, T0)
    np.testing.assert_allclose(m.biases[0] * 0 + g[-2:], [1.0, -2.0], rtol=1e-14)
