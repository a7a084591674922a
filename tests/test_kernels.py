"""Each compiled kernel against a plain NumPy computation, on serial- and parallel-path sizes."""

import naive
import numpy as np
import pytest

from fastbp.kernels import _codes, _dense, _layout
from fastbp.kernels._network import batch_loss, output_delta
from fastbp.kernels._updates import sgd_step

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
# (n, n_in, n_out): tiny (serial), single row (serial), and large enough for the parallel path
SHAPES = [(3, 5, 4), (1, 300, 300), (70, 40, 30), (33, 97, 65)]


def _rand(rng, shape, dtype):
    return rng.normal(size=shape).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ["identity", "logistic", "tanh", "relu", "leaky_relu", "softmax"])
def test_dense_forward(dtype, shape, act):
    n, n_in, n_out = shape
    rng = np.random.default_rng(0)
    a_in, W = _rand(rng, (n, n_in), dtype), _rand(rng, (n_out, n_in), dtype)
    b = _rand(rng, n_out, dtype)
    a_out = np.full((n, n_out), np.nan, dtype)
    z_keep = np.full((n, n_out), np.nan, dtype)
    _dense.dense_forward(a_in, W, b, a_out, _codes.ACTIVATIONS[act], z_keep)
    z_ref = a_in.astype(float) @ W.T.astype(float) + b
    np.testing.assert_allclose(z_keep, z_ref, **TOL[dtype])
    np.testing.assert_allclose(a_out, naive.activation(z_ref, act), **TOL[dtype])
    # without z_keep rows, z is not stored and a is the same
    a2 = np.empty_like(a_out)
    _dense.dense_forward(a_in, W, b, a2, _codes.ACTIVATIONS[act], np.empty((0, n_out), dtype))
    np.testing.assert_array_equal(a2, a_out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("act", ["identity", "logistic", "tanh", "relu", "leaky_relu"])
def test_dense_delta(dtype, shape, act):
    n, n_in, n_out = shape
    rng = np.random.default_rng(1)
    delta, W = _rand(rng, (n, n_out), dtype), _rand(rng, (n_out, n_in), dtype)
    z_in = rng.normal(size=(n, n_in))
    a_in = naive.activation(z_in, act).astype(dtype)
    out = np.full((n, n_in), np.nan, dtype)
    _dense.dense_delta(delta, W, a_in, _codes.ACTIVATIONS[act], out)
    ref = (delta.astype(float) @ W.astype(float)) * naive.derivative(z_in, act)
    np.testing.assert_allclose(out, ref, rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_dense_grad(dtype, shape):
    n, n_in, n_out = shape
    rng = np.random.default_rng(2)
    delta, a_in = _rand(rng, (n, n_out), dtype), _rand(rng, (n, n_in), dtype)
    gW, gb = np.full((n_out, n_in), np.nan, dtype), np.full(n_out, np.nan, dtype)
    _dense.dense_grad(delta, a_in, gW, gb, False)
    gW_ref = delta.T.astype(float) @ a_in.astype(float)
    tol = dict(rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 20)
    np.testing.assert_allclose(gW, gW_ref, **tol)
    np.testing.assert_allclose(gb, delta.astype(float).sum(0), **TOL[dtype])
    _dense.dense_grad(delta, a_in, gW, gb, True)  # accumulate: doubles
    np.testing.assert_allclose(gW, 2 * gW_ref, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "loss,out",
    [("squared_error", "identity"), ("squared_error", "tanh"), ("squared_error", "softmax"),
     ("cross_entropy", "softmax"), ("binary_cross_entropy", "logistic")],
)
def test_output_delta_and_batch_loss(dtype, loss, out):
    rng = np.random.default_rng(3)
    n, m = 6, 4
    z = _rand(rng, (n, m), dtype)
    a = naive.activation(z.astype(float), out).astype(dtype)
    if loss == "cross_entropy":
        T = np.eye(m)[rng.integers(0, m, n)].astype(dtype)
    elif loss == "binary_cross_entropy":
        T = rng.integers(0, 2, (n, m)).astype(dtype)
    else:
        T = _rand(rng, (n, m), dtype)
    delta = np.empty((n, m), dtype)
    E = output_delta(z, a, T, _codes.LOSSES[loss], _codes.ACTIVATIONS[out], 1.0 / n, delta)
    E_ref = naive.loss(a.astype(float), z.astype(float), T.astype(float), loss)
    np.testing.assert_allclose(E, E_ref, rtol=TOL[dtype]["rtol"] * 10)
    np.testing.assert_allclose(batch_loss(z, a, T, _codes.LOSSES[loss]) / n, E, rtol=1e-12)
    g = naive.dloss_da(a.astype(float), T.astype(float), loss)
    if out == "softmax":
        ref = np.stack([(np.diag(r) - np.outer(r, r)) @ gr for r, gr in zip(a.astype(float), g)])
    else:
        ref = g * naive.derivative(z.astype(float), out)
    np.testing.assert_allclose(delta, ref, rtol=TOL[dtype]["rtol"] * 50, atol=TOL[dtype]["atol"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [10, (1 << 18) + 3])  # serial and parallel paths
def test_sgd_update(dtype, size):
    rng = np.random.default_rng(4)
    p, g = _rand(rng, size, dtype), _rand(rng, size, dtype)
    ref = p - dtype(0.125) * g
    sgd_step(p, g, 0.125)
    np.testing.assert_array_equal(p, ref)


def test_layout_offsets():
    sizes = np.array([3, 4, 2], dtype=np.int64)
    w_off, b_off, n = _layout.param_offsets(sizes)
    assert list(w_off) == [0, 16] and list(b_off) == [12, 24] and n == 26
    a_off, total = _layout.workspace_offsets(sizes, 5)
    assert list(a_off) == [0, 15, 35] and total == 45
    assert w_off.dtype == np.int64 and a_off.dtype == np.int64
