"""The loss kernels, the plain SGD step and the layout against plain NumPy computations (the
dense products are in test_dense.py)."""

import naive
import numpy as np
import pytest
from compiled import from_python

from fastbp.kernels import _codes, _layout
from fastbp.kernels._network import batch_loss, output_delta
from fastbp.kernels._updates import sgd_step

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}


def _rand(rng, shape, dtype):
    return rng.normal(size=shape).astype(dtype)


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_cross_entropy_has_the_bits_of_the_row_by_row_loss(dtype):
    """``_ce_blocks`` (up to ``CE_COLS`` classes, ``CE_ROWS`` rows at a time) sums each row's
    loss bit for bit as ``_row_loss`` does: extreme, infinite and NaN logits, soft and
    one-hot targets, weights, partial blocks, and wider rows (the row-by-row path). The
    same pass writes the delta of the row loop, and counts the rows ``count_correct``
    counts (ties, NaN)."""
    from numba import njit

    from fastbp.kernels._drivers import count_correct
    from fastbp.kernels._network import CE_COLS, _row_loss, output_delta_counted

    @njit
    def row_by_row(z, a, t, w, scale, row_scaled):
        total = 0.0
        for i in range(z.shape[0]):
            e = _row_loss(z, a, t, _codes.CROSS_ENTROPY, i)
            if w.shape[0] > 0 and row_scaled:
                total += e * (scale * np.float64(w[i]))
            elif w.shape[0] > 0:
                total += np.float64(w[i]) * e
            else:
                total += e
        return total if w.shape[0] > 0 and row_scaled else total * scale

    def first_max(row):  # the first column whose value beats all before it, as a loop
        j = 0
        for k in range(1, len(row)):
            j = k if row[k] > row[j] else j
        return j

    def first_max_count(a, t):
        return sum(first_max(ar) == first_max(tr) for ar, tr in zip(a, t, strict=True))

    rng = np.random.default_rng(3)
    for trial in range(60):
        n, m = int(rng.integers(1, 40)), int(rng.integers(1, CE_COLS + 12))
        z = (rng.normal(size=(n, m)) * [1.0, 1e3, 1e9, 1e30][trial % 4]).astype(dtype)
        if trial % 5 == 0:
            z[rng.integers(n), rng.integers(m)] = [np.inf, -np.inf, np.nan][trial % 3]
        a = np.full((n, m), 1.0 / m, dtype)
        t = np.zeros((n, m), dtype)
        t[np.arange(n), rng.integers(0, m, n)] = 1
        if trial % 3 == 0:
            t = (rng.random((n, m)) * (rng.random((n, m)) > 0.5)).astype(dtype)
        # outputs with ties (a coarse grid) and a NaN now and then, for the count
        a = (np.round(rng.random((n, m)) * 4) / 4).astype(dtype)
        if trial % 7 == 0:
            a[rng.integers(n), rng.integers(m)] = np.nan
            a[rng.integers(n), 0] = np.nan
        if trial % 11 == 0:
            a[rng.integers(n)] = [-np.inf, -0.0, 0.0][trial % 3]
        w = rng.random(n).astype(dtype) if trial % 2 else np.zeros(0, dtype)
        row_scaled = trial % 4 == 1
        delta = np.empty_like(z)
        got, correct = from_python(output_delta_counted)(
            z, a, t, w, _codes.CROSS_ENTROPY, _codes.SOFTMAX, 1.0 / n, delta, row_scaled, True)
        want = row_by_row(z, a, t, w, 1.0 / n, row_scaled)
        assert correct == first_max_count(a, t), (trial, n, m)
        assert count_correct(a, t, _codes.CROSS_ENTROPY) == correct
        # the row loop's delta: (a_k sum_j t_j - t_k) * scale w_i, in the model's dtype
        tsum = np.cumsum(t, axis=1, dtype=dtype)[:, -1:]
        sc = (np.float64(1.0 / n) * (w if w.size else np.ones(n))).astype(dtype)[:, None]
        assert delta.tobytes() == ((a * tsum - t) * sc).tobytes(), (trial, n, m)
        assert np.float64(got).tobytes() == np.float64(want).tobytes() or (
            np.isnan(got) and np.isnan(want)), (trial, n, m, got, want)
        got_b = batch_loss(z, a, t, _codes.CROSS_ENTROPY)
        want_b = row_by_row(z, a, t, np.zeros(0, dtype), 1.0, False)
        assert np.float64(got_b).tobytes() == np.float64(want_b).tobytes() or (
            np.isnan(got_b) and np.isnan(want_b))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_four_at_a_time_keep_the_one_row_bits(dtype):
    """``activate``'s softmax takes four rows at a time: every row has the bits it gets
    alone (a one-row batch, or the last rows of a block), whatever its position."""
    from fastbp.kernels._activations import activate

    rng = np.random.default_rng(5)
    for n, m in ((13, 10), (8, 1), (5, 70), (4, 3)):
        z = (rng.normal(size=(n, m)) * 20).astype(dtype)
        z[1, 0] = np.inf
        z[2, -1] = np.nan
        block = z.copy()
        from_python(activate)(block, 0, n, 0, m, _codes.SOFTMAX)
        for i in range(n):
            row = z[i : i + 1].copy()
            from_python(activate)(row, 0, 1, 0, m, _codes.SOFTMAX)
            assert row.tobytes() == block[i : i + 1].tobytes(), (n, m, i)
