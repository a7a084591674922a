"""The register-blocked dense kernels (``fastbp.kernels._gemm`` via ``fastbp.kernels._dense``).

Each kernel is compared with a plain NumPy product in float64 at sizes chosen to reach every
code path: the serial path (small products), the tiled ``prange`` path (at least
``PARALLEL_MIN_WORK`` multiply-adds), 4 x 4 blocks and their row/column remainders, panels of
32/16/8 columns and the narrower remainder, reductions longer than one cache chunk
(``DOT_CHUNK``, ``PANEL_CHUNK``, ``PACK_S``), and the packed products with their padded
edges. Results must be bitwise identical with 1 and 2 Numba threads, and the parallel path
bitwise identical to the serial micro-kernels.
"""

import numba
import numpy as np
import pytest

from fastbp.kernels import _blas, _codes, _dense, _gemm

RELU = _codes.ACTIVATIONS["relu"]
TANH = _codes.ACTIVATIONS["tanh"]
IDENTITY = _codes.ACTIVATIONS["identity"]

# (n, n_in, n_out) -> which paths they reach
SHAPES = [
    (1, 16, 32),  # single row, 1 x 4 dot blocks, one 16-wide panel (tiny_online)
    (1, 32, 1),  # single output: 1 x 1 dot, 1-row panels
    (5, 7, 3),  # everything is a remainder (4 x 1 dots, < 8-wide panels)
    (32, 64, 32),  # serial, exact 4 x 4 blocks and 32-wide panels
    (40, 24, 16),  # serial, transposed-weights forward
    (37, 131, 67),  # serial, odd: remainders of rows, columns, and 32/16/8/<8 panels
    (64, 130, 131),  # parallel (>= PARALLEL_MIN_WORK) with remainders
    (33, 1100, 70),  # parallel; forward reduction longer than DOT_CHUNK, 2 column tiles
    (300, 45, 90),  # parallel; gradient reduction longer than PANEL_CHUNK (n = 300 rows);
    #               forward in 5 x 2 tiles of rows x columns
    (1024, 16, 32),  # parallel, transposed-weights forward (predict of tiny_online)
    (40, 50, 270),  # parallel; delta reduction longer than PANEL_CHUNK (n_out = 270)
    (40, 70, 270),  # packed; delta reduction longer than PACK_S, 64-wide panel + remainder
    (260, 70, 40),  # packed; gradient reduction longer than PACK_S (n = 260 rows)
    (128, 300, 120),  # >= BLAS_MIN_WORK: BLAS with FASTBP_USE_BLAS=1, else tiled loops
]
DTYPES = [np.float32, np.float64]


def _tol(dtype, length):
    if dtype == np.float64:
        return dict(rtol=1e-11, atol=1e-11 * np.sqrt(length))
    return dict(rtol=1e-4, atol=2e-5 * np.sqrt(length))


def _data(shape, dtype, seed=0):
    n, n_in, n_out = shape
    rng = np.random.default_rng(seed)
    a_in = rng.standard_normal((n, n_in)).astype(dtype)
    W = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    delta = rng.standard_normal((n, n_out)).astype(dtype)
    return a_in, W, b, delta


def _run_all(shape, dtype, accumulate_start=None):
    """Run the three kernels; returns their outputs."""
    n, n_in, n_out = shape
    a_in, W, b, delta = _data(shape, dtype)
    a_out = np.full((n, n_out), np.nan, dtype)
    z = np.full((n, n_out), np.nan, dtype)
    _dense.dense_forward(a_in, W, b, a_out, RELU, z)
    d_in = np.full((n, n_in), np.nan, dtype)
    _dense.dense_delta(delta, W, a_in, TANH, d_in)
    gW = np.full((n_out, n_in), np.nan, dtype)
    gb = np.full(n_out, np.nan, dtype)
    _dense.dense_grad(delta, a_in, gW, gb, False)
    return a_out, z, d_in, gW, gb


def _uses_parallel(shape):
    n, n_in, n_out = shape
    return n * n_in * n_out >= _dense.PARALLEL_MIN_WORK


def test_shapes_cover_both_paths():
    assert any(_uses_parallel(s) for s in SHAPES)
    assert any(s[0] * s[1] * s[2] >= _blas.BLAS_MIN_WORK for s in SHAPES)
    assert any(not _uses_parallel(s) for s in SHAPES)
    assert any(s[1] > _gemm.DOT_CHUNK and _uses_parallel(s) for s in SHAPES)
    assert any(s[0] > _gemm.PANEL_CHUNK for s in SHAPES)
    transposed = [s for s in SHAPES if _dense.forward_transposes(*s)]
    assert any(_uses_parallel(s) for s in transposed)
    assert any(not _uses_parallel(s) for s in transposed)
    assert any(s[2] > _gemm.PANEL_CHUNK for s in SHAPES)
    packed = [s for s in SHAPES if _dense.packs(*s)]
    longest = max(_gemm.PACK_S.values())
    assert any(s[0] > longest for s in packed) and any(s[2] > longest for s in packed)
    assert any(s[1] % _gemm.PACK_W for s in packed) and any(s[2] % _gemm.PACK_R for s in packed)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_match_numpy(shape, dtype):
    n, n_in, n_out = shape
    a_in, W, b, delta = _data(shape, dtype)
    a_out, z, d_in, gW, gb = _run_all(shape, dtype)
    A64, W64, D64 = a_in.astype(float), W.astype(float), delta.astype(float)
    z_ref = A64 @ W64.T + b
    np.testing.assert_allclose(z, z_ref, **_tol(dtype, n_in))
    np.testing.assert_allclose(a_out, np.maximum(z_ref, 0), **_tol(dtype, n_in))
    d_ref = (D64 @ W64) * (1 - A64 * A64)  # tanh' through the activation value
    np.testing.assert_allclose(d_in, d_ref, **_tol(dtype, n_out * 10))
    np.testing.assert_allclose(gW, D64.T @ A64, **_tol(dtype, n))
    np.testing.assert_allclose(gb, D64.sum(0), **_tol(dtype, n))
    # accumulate adds exactly the same products again
    gW2, gb2 = gW.copy(), gb.copy()
    _dense.dense_grad(delta, a_in, gW2, gb2, True)
    np.testing.assert_allclose(gW2, 2 * (D64.T @ A64), **_tol(dtype, 2 * n))
    np.testing.assert_allclose(gb2, 2 * D64.sum(0), **_tol(dtype, 2 * n))


def _uses_blas(shape):
    n, n_in, n_out = shape
    return _blas.HAVE_BLAS and n * n_in * n_out >= _blas.BLAS_MIN_WORK


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [s for s in SHAPES if _uses_parallel(s) and not _uses_blas(s)])
def test_parallel_path_equals_serial_micro_kernels(shape, dtype):
    """The tiled prange path gives bitwise the serial micro-kernels' results."""
    n, n_in, n_out = shape
    a_in, W, b, delta = _data(shape, dtype)
    a_out, z, d_in, gW, gb = _run_all(shape, dtype)
    z_ser = np.empty_like(z)
    if _dense.forward_transposes(n, n_in, n_out):
        _gemm.transposed_forward(a_in, W, z_ser, 0, n)
        z_ser += b
    else:
        _gemm.dot_block(a_in, W, b, z_ser, 0, n, 0, n_out)
    np.testing.assert_array_equal(z, z_ser)
    d_id = np.empty_like(d_in)  # identity activation: the bare product
    _dense.dense_delta(delta, W, a_in, IDENTITY, d_id)
    d_ser = np.empty_like(d_in)
    g_ser = np.empty_like(gW)
    if _dense.packs(n, n_in, n_out):  # either loop order gives the same bits
        _gemm.packed_product(delta.T, W, d_ser, 0, n, 0, n_in, False, False)
        _gemm.packed_product(delta, a_in, g_ser, 0, n_out, 0, n_in, False, True)
    else:
        _gemm.panel_product(delta.T, W, d_ser, 0, n, 0, n_in, False)
        _gemm.panel_product(delta, a_in, g_ser, 0, n_out, 0, n_in, False)
    np.testing.assert_array_equal(d_id, d_ser)
    np.testing.assert_array_equal(gW, g_ser)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_bitwise_independent_of_thread_count(shape, dtype):
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    if threads < 2:
        pytest.skip("needs at least 2 Numba threads")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run_all(shape, dtype)
        numba.set_num_threads(threads)
        two = _run_all(shape, dtype)
    finally:
        numba.set_num_threads(before)
    for x, y in zip(one, two):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_blas_path_with_fixed_blas_threads_is_reproducible(dtype):
    """Opt-in BLAS path: reproducible for a fixed BLAS thread count (not across counts)."""
    if not _blas.HAVE_BLAS:
        pytest.skip("BLAS path not enabled (FASTBP_USE_BLAS=1) or SciPy missing")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    shape = next(s for s in SHAPES if _uses_blas(s))
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        one = _run_all(shape, dtype)
        two = _run_all(shape, dtype)
    for x, y in zip(one, two):
        np.testing.assert_array_equal(x, y)


def test_nan_stays_visible():
    """fastmath flags must not hide a NaN (no nnan/ninf)."""
    shape = (64, 130, 131)
    a_in, W, b, delta = _data(shape, np.float32)
    a_in[3, 7] = np.nan
    a_out = np.empty((64, 131), np.float32)
    _dense.dense_forward(a_in, W, b, a_out, IDENTITY, np.empty((0, 131), np.float32))
    assert np.isnan(a_out[3]).all() and np.isfinite(np.delete(a_out, 3, axis=0)).all()
    gW = np.empty((131, 130), np.float32)
    gb = np.empty(131, np.float32)
    _dense.dense_grad(delta, a_in, gW, gb, False)
    assert np.isnan(gW[:, 7]).all() and np.isfinite(np.delete(gW, 7, axis=1)).all()
