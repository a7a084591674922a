"""L2 penalty, dropout and gradient-norm clipping."""

import numba
import numpy as np
import pytest
from compiled import from_python
from naive_train import loss_grad, weight_mask

from fastbp import Model
from fastbp import kernels as K
from fastbp._validation.arrays import check_targets
from fastbp.kernels._network import (
    backward_pass,
    check_workspace,
    dropout_uniform,
    forward_pass,
    output_delta,
    train_buffers,
)
from fastbp.kernels._updates import clip_grad_norm, grad_norm

SIZES = [3, 5, 4, 2]


def _data(n=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, SIZES[0]))
    y = rng.integers(0, SIZES[-1], n)
    return X, y


# ---------------------------------------------------------------- L2
def test_l2_gradient_matches_central_differences():
    X, y = _data()
    m = Model(SIZES, activation="tanh", loss="cross_entropy", seed=1, dtype="float64")
    l2 = 0.3
    loss, g = m.gradient(X, y, l2=l2)
    p0 = m.params.copy()
    h = 1e-6
    num = np.empty_like(p0)
    for k in range(p0.size):
        m.params[k] = p0[k] + h
        up = m.gradient(X, y, l2=l2)[0]
        m.params[k] = p0[k] - h
        down = m.gradient(X, y, l2=l2)[0]
        m.params[k] = p0[k]
        num[k] = (up - down) / (2 * h)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
    # the penalty reaches weights only
    loss0, g0 = m.gradient(X, y)
    np.testing.assert_allclose(g - g0, l2 * weight_mask(SIZES) * p0, atol=1e-14)
    assert loss - loss0 == pytest.approx(0.5 * l2 * np.sum(weight_mask(SIZES) * p0**2))


def test_l2_shrinks_weights_and_reported_loss_is_data_loss():
    X, y = _data(n=30)
    a = Model(SIZES, activation="relu", loss="cross_entropy", seed=2)
    b = Model(SIZES, activation="relu", loss="cross_entropy", seed=2)
    a.fit(X, y, epochs=20, optimizer="adam", learning_rate=0.01)
    hb = b.fit(X, y, epochs=20, optimizer="adam", learning_rate=0.01, l2=0.5)
    wm = weight_mask(SIZES).astype(bool)
    assert np.sum(b.params[wm] ** 2) < 0.7 * np.sum(a.params[wm] ** 2)
    # history holds the data loss: compare with a no-penalty evaluation of the first epoch
    assert hb["loss"][0] == pytest.approx(a.history["loss"][0], rel=1e-6)


# ---------------------------------------------------------------- dropout
def test_dropout_is_seeded_and_deterministic():
    X, y = _data(n=40)
    kw = dict(activation="relu", loss="cross_entropy", dropout=0.5)
    a = Model(SIZES, seed=3, **kw)
    b = Model(SIZES, seed=3, **kw)
    c = Model(SIZES, seed=3, activation="relu", loss="cross_entropy")
    for m in (a, b, c):
        m.fit(X, y, epochs=3, batch_size=8, learning_rate=0.1)
    assert np.array_equal(a.params, b.params)
    assert not np.allclose(a.params, c.params)


def test_dropout_independent_of_thread_count():
    X, y = _data(n=40)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            m = Model(SIZES, seed=4, activation="tanh", loss="cross_entropy", dropout=[0.3, 0.6])
            m.fit(X, y, epochs=2, batch_size=16, learning_rate=0.1)
            results.append(m.params.copy())
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(results[0], r) for r in results)


def test_dropout_is_off_at_predict_and_evaluate():
    X, y = _data(n=20)
    m = Model(SIZES, seed=5, activation="relu", loss="cross_entropy", dropout=0.5)
    m.fit(X, y, epochs=2)
    ref = Model(SIZES, seed=5, activation="relu", loss="cross_entropy")
    ref.params[:] = m.params
    assert np.array_equal(m.predict(X), ref.predict(X))
    assert np.array_equal(m.predict(X), m.predict(X))
    assert m.evaluate(X, y) == ref.evaluate(X, y)


@numba.njit
def batch_gradient_dropout(X, T, net, ws, step):
    """Mean loss of one batch (all rows of ``X``) and its gradient into ``net.grads`` under
    the dropout mask of step ``step``: what the epoch drivers differentiate."""
    n = X.shape[0]
    sizes, a_off = net.sizes, ws.a_off
    check_workspace(net, ws, n, 0)
    K.input_block(ws.act, sizes, a_off, n)[:, :] = X
    lay = train_buffers(net, ws, step)
    forward_pass(lay, n)
    value = output_delta(
        K.output_z(ws.z_out, sizes, n), K.output_block(ws.act, sizes, a_off, n), T,
        net.loss_code, net.out_code, 1.0 / n, K.output_block(ws.delta, sizes, a_off, n),
    )
    backward_pass(lay, n, False)
    return value


def _masks(model, n, step):
    """The masks the kernel uses, rebuilt from ``dropout_uniform`` (scaled 0 or 1/(1-p))."""
    masks, unit0 = [], 0
    for h, rate in enumerate(model.dropout):
        k = SIZES[h + 1]
        seed = model.network.drop_seed
        u = np.array([[from_python(dropout_uniform)(seed, step, i, unit0 + j) for j in range(k)]
                      for i in range(n)])
        masks.append(np.where(u < rate, 0.0, 1.0 / (1.0 - rate)))
        unit0 += k
    return masks


def test_dropout_mask_rate_and_gradient_against_numpy_with_fixed_mask():
    X, y = _data(n=12)
    m = Model(SIZES, seed=6, activation="tanh", loss="cross_entropy", dtype="float64",
              dropout=[0.25, 0.5])
    T = check_targets(y, 12, "cross_entropy", 2, np.float64)
    net = m.kernel_args()
    ws = m.allocate_workspace(12)
    step = 7

    def kernel_loss_grad(params):
        grads = np.zeros_like(params)
        loss = batch_gradient_dropout(X, T, net._replace(params=params, grads=grads), ws, step)
        return loss, grads

    masks = _masks(m, 12, step)
    assert any((mk == 0).any() for mk in masks) and all((mk > 0).any() for mk in masks)
    loss, g = kernel_loss_grad(m.params.copy())
    ref_loss, ref_g = loss_grad(m.params, SIZES, "tanh", "cross_entropy", X, np.eye(2)[y],
                                masks=masks)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(g, ref_g, rtol=1e-10, atol=1e-12)
    # central differences of the kernel's own loss with the mask held fixed
    p0 = m.params.copy()
    num = np.empty_like(p0)
    for k in range(p0.size):
        p = p0.copy()
        p[k] += 1e-6
        up = kernel_loss_grad(p)[0]
        p[k] -= 2e-6
        num[k] = (up - kernel_loss_grad(p)[0]) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_dropout_uniform_drops_the_requested_fraction():
    u = np.array([from_python(dropout_uniform)(123, s, i, j) for s in range(1, 5) for i in range(50)
                  for j in range(25)])
    assert 0 <= u.min() and u.max() < 1
    assert abs((u < 0.3).mean() - 0.3) < 0.02
    assert abs(u.mean() - 0.5) < 0.02


@pytest.mark.parametrize("bad", [1.0, -0.1, [0.1], "0.5", [0.1, 1.5]])
def test_bad_dropout_is_rejected(bad):
    with pytest.raises((TypeError, ValueError), match="dropout"):
        Model(SIZES, dropout=bad)


# ---------------------------------------------------------------- clipping
def test_clip_grad_norm_kernel():
    g = np.array([3.0, 4.0, 0.0])
    assert grad_norm(g) == 5.0
    c = g.copy()
    assert clip_grad_norm(c, 10.0) == 5.0
    assert np.array_equal(c, g)  # below the threshold: untouched
    c = g.copy()
    clip_grad_norm(c, 1.0)
    np.testing.assert_allclose(c, g * (1.0 / (5.0 + 1e-6)))
    c32 = g.astype(np.float32)
    clip_grad_norm(c32, 2.5)
    np.testing.assert_allclose(c32, g * 2.5 / (5 + 1e-6), rtol=1e-6)


def test_clipping_in_training_matches_reference_step():
    X, y = _data(n=10)
    m = Model(SIZES, seed=7, activation="tanh", loss="cross_entropy", dtype="float64")
    p0 = m.params.copy()
    _, g = loss_grad(p0, SIZES, "tanh", "cross_entropy", X, np.eye(2)[y])
    max_norm = 0.1 * np.linalg.norm(g)
    m.fit(X, y, epochs=1, batch_size=None, shuffle=False, learning_rate=0.5,
          clip_norm=max_norm, l2=0.1)
    # torch order: clip the data gradient, then the optimizer adds the L2 term
    gc = g * max_norm / (np.linalg.norm(g) + 1e-6)
    expected = p0 - 0.5 * (gc + 0.1 * weight_mask(SIZES) * p0)
    np.testing.assert_allclose(m.params, expected, atol=1e-14)


# ---------------------------------------------------------------- weighted output delta
@pytest.mark.parametrize("loss", ["squared_error", "cross_entropy", "binary_cross_entropy"])
def test_output_delta_weighted_folds_row_weights_into_the_scale(loss):
    from fastbp.kernels._network import output_delta, output_delta_weighted

    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3))
    if loss == "cross_entropy":
        a = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        t, out = np.eye(3)[rng.integers(0, 3, 5)], 5
    elif loss == "binary_cross_entropy":
        a, t, out = 1 / (1 + np.exp(-z)), rng.integers(0, 2, (5, 3)).astype(float), 1
    else:
        a, t, out = np.tanh(z), rng.normal(size=(5, 3)), 2
    code = {"squared_error": 0, "cross_entropy": 1, "binary_cross_entropy": 2}[loss]
    d1, d2, d3 = (np.empty_like(z) for _ in range(3))
    e1 = output_delta(z, a, t, code, out, 0.2, d1)
    e2 = from_python(output_delta_weighted)(z, a, t, np.ones(5), code, out, 0.2, d2)
    assert e1 == e2 and np.array_equal(d1, d2)  # unit weights: bitwise the unweighted kernel
    w = np.array([0.0, 1.0, 2.0, 0.5, 3.0])
    e3 = from_python(output_delta_weighted)(z, a, t, w, code, out, 0.2, d3)
    rows = np.array([output_delta(z[i:i + 1], a[i:i + 1], t[i:i + 1], code, out, 1.0,
                                  np.empty((1, 3))) for i in range(5)])
    assert e3 == pytest.approx(0.2 * (w * rows).sum(), rel=1e-14)
    np.testing.assert_allclose(d3, d1 * w[:, None], rtol=1e-14)
