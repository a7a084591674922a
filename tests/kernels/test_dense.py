"""The dense-layer products (``fastbp.kernels._dense`` over ``_gemm``'s micro-kernel) against
NumPy in float64, at shapes that reach every code path: one row (matrix-vector loops), the
serial tiles and the parallel tiles, wide and narrow panels with padded edges, reductions
longer than one packed chunk (``KC``) and more rows than one tile (``mc_rows``). Results must
not change a bit with the tiling or the thread count."""

import numba
import numpy as np
import pytest
from compiled import from_python

from fastbp.kernels import _codes, _dense, _gemm, _layout
from fastbp.kernels import _network as _network_kernels

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=3e-5, atol=3e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}
# (n, n_in, n_out)
SHAPES = [
    (1, 16, 32),  # one row: dot and axpy loops
    (1, 300, 3),
    (5, 7, 3),  # every block is an edge block, narrow panels
    (32, 64, 32),  # the small workload's first layer
    (37, 131, 67),  # edges everywhere, a wide and a narrow-edge panel, K > KC
    (150, 70, 90),  # more rows than one float64 tile
    (64, 300, 200),  # parallel tiles
    (260, 70, 40),  # parallel, gradient reduction over 260 rows (> KC)
    (150, 32, 64),  # B's rows exactly one panel (read in place), over 150 rows (> KC)
    (45, 20, 60),  # mid panels (4 x 2 vectors) with edges: float32 all three products
    (33, 30, 16),  # mid panels in float64, an 8-row narrow forward in float32
    (300, 20, 4),  # gradient: A's steps MR apart, one register block, read in place
    (40, 24, 300),  # gradient: A's steps 300 apart, packed (lazy pack_a) in both dtypes
]


@numba.njit
def _op(op, lay, p, n, accumulate):
    _dense.layer_op(op, lay, p, n, accumulate)


def _network(rng, dtype, n, n_in, n_out, code=_codes.TANH, out_code=_codes.TANH, drop=0.0):
    """A 2-layer network [3, n_in, n_out] in flat buffers, its workspace filled with random
    activations and deltas; returns ``(lay, views)``."""
    sizes = np.array([3, n_in, n_out], np.int64)
    w_off, b_off, n_params = _layout.param_offsets(sizes)
    a_off, total = _layout.workspace_offsets(sizes, n)
    params = rng.normal(size=n_params).astype(dtype)
    grads = np.full(n_params, np.nan, dtype)
    act = rng.uniform(0.05, 0.95, size=total).astype(dtype)
    delta = rng.normal(size=total).astype(dtype)
    raw = act.copy()
    z_out = np.full(n * n_out, np.nan, dtype)
    codes = np.array([code, out_code], np.int64)
    drops = np.array([drop], np.float64)
    lay = (params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drops,
           np.int64(7), np.int64(3), act, a_off[0])  # (layer-0 input: the workspace's)
    W = params[w_off[1]:w_off[1] + n_in * n_out].reshape(n_out, n_in)
    b = params[b_off[1]:b_off[1] + n_out]
    a_in = act[a_off[1]:a_off[1] + n * n_in].reshape(n, n_in)
    a_out = act[a_off[2]:a_off[2] + n * n_out].reshape(n, n_out)
    d_out = delta[a_off[2]:a_off[2] + n * n_out].reshape(n, n_out)
    d_in = delta[a_off[1]:a_off[1] + n * n_in].reshape(n, n_in)
    gW = grads[w_off[1]:w_off[1] + n_in * n_out].reshape(n_out, n_in)
    gb = grads[b_off[1]:b_off[1] + n_out]
    return lay, dict(W=W, b=b, a_in=a_in, a_out=a_out, d_out=d_out, d_in=d_in, gW=gW, gb=gb,
                     z=z_out.reshape(n, n_out))


def _f(z, code):
    return {_codes.IDENTITY: z, _codes.TANH: np.tanh(z), _codes.RELU: np.maximum(z, 0),
            _codes.LOGISTIC: 1 / (1 + np.exp(-z))}[code]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("code", [_codes.IDENTITY, _codes.TANH, _codes.RELU, _codes.SOFTMAX])
def test_forward_product(dtype, shape, code):
    n, n_in, n_out = shape
    lay, v = _network(np.random.default_rng(0), dtype, n, n_in, n_out, out_code=code)
    z_ref = v["a_in"].astype(float) @ v["W"].astype(float).T + v["b"]
    _op(_dense.OP_FORWARD, lay, 1, n, False)
    np.testing.assert_allclose(v["z"], z_ref, **TOL[dtype])  # the output layer keeps z
    if code == _codes.SOFTMAX:
        e = np.exp(z_ref - z_ref.max(1, keepdims=True))
        ref = e / e.sum(1, keepdims=True)
    else:
        ref = _f(z_ref, code)
    np.testing.assert_allclose(v["a_out"], ref, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_delta_and_gradient_products(dtype, shape):
    n, n_in, n_out = shape
    lay, v = _network(np.random.default_rng(1), dtype, n, n_in, n_out)
    a_in, d_out = v["a_in"].astype(float), v["d_out"].astype(float)
    ref = (d_out @ v["W"].astype(float)) * (1 - a_in**2)  # tanh' from a = tanh(z)
    _op(_dense.OP_DELTA, lay, 1, n, False)
    np.testing.assert_allclose(v["d_in"], ref, **TOL[dtype])
    _op(_dense.OP_GRAD, lay, 1, n, False)
    tol = dict(rtol=TOL[dtype]["rtol"] * 10, atol=TOL[dtype]["atol"] * 10)
    np.testing.assert_allclose(v["gW"], d_out.T @ a_in, **tol)
    np.testing.assert_allclose(v["gb"], d_out.sum(0), **tol)
    _op(_dense.OP_GRAD, lay, 1, n, True)  # accumulate: doubles
    np.testing.assert_allclose(v["gW"], 2 * d_out.T @ a_in, **tol)
    np.testing.assert_allclose(v["gb"], 2 * d_out.sum(0), **tol)


@numba.njit
def _all_tiles(op, lay, p, n, tm, tn, accumulate=False):
    M, N, K = _dense.op_shape(op, p, n, lay[6])
    n_tiles = ((M + tm - 1) // tm) * ((N + tn - 1) // tn)
    for t in range(n_tiles):
        _dense._tile(op, t, tm, tn, lay, p, n, accumulate)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(37, 131, 67), (150, 70, 90), (64, 300, 200)])
def test_every_tiling_gives_the_same_bits(dtype, shape):
    """Tiles may be any multiple of the register block: every element is the same sum."""
    n, n_in, n_out = shape
    mr = _gemm.MR
    nr = 256 // np.dtype(dtype).itemsize if n_out >= 256 // np.dtype(dtype).itemsize else \
        64 // np.dtype(dtype).itemsize
    results = {}
    mc = from_python(_gemm.mc_rows)(np.dtype(dtype).itemsize, True)  # (any A: packed)
    for op in (_dense.OP_FORWARD, _dense.OP_DELTA, _dense.OP_GRAD):
        outs = []
        for tm, tn in ((mr, nr), (3 * mr, 2 * nr), (mc, 10**6)):
            lay, v = _network(np.random.default_rng(2), dtype, n, n_in, n_out)
            _all_tiles(op, lay, 1, n, tm, tn)
            key = {_dense.OP_FORWARD: "a_out", _dense.OP_DELTA: "d_in", _dense.OP_GRAD: "gW"}[op]
            outs.append(v[key].copy())
        for o in outs[1:]:
            assert o.tobytes() == outs[0].tobytes()
        results[op] = outs[0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_products_are_independent_of_the_thread_count(dtype):
    n, n_in, n_out = 64, 300, 200  # above PARALLEL_MIN_WORK
    assert n * n_in * n_out >= _dense.PARALLEL_MIN_WORK
    outs = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            lay, v = _network(np.random.default_rng(3), dtype, n, n_in, n_out, drop=0.3)
            for op in (_dense.OP_FORWARD, _dense.OP_DELTA, _dense.OP_GRAD):
                _op(op, lay, 1, n, False)
            outs.append(b"".join(v[k].tobytes() for k in ("a_out", "d_in", "gW", "gb")))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert outs[0] == outs[1]


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_stays_visible(dtype):
    lay, v = _network(np.random.default_rng(4), dtype, 6, 9, 5, code=_codes.RELU,
                      out_code=_codes.RELU)
    v["a_in"][2, 3] = np.nan
    _op(_dense.OP_FORWARD, lay, 1, 6, False)
    assert np.isnan(v["a_out"][2]).all() and np.isfinite(np.delete(v["a_out"], 2, 0)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 16, 32), (1, 200, 20), (1, 300, 3), (1, 1100, 5),
                                   (1, 131, 300)])
def test_one_row_gives_the_bits_of_the_tiles(dtype, shape):
    """The matrix-vector loops of a one-row batch compute what the tiles compute: a row's
    result does not depend on the size of its batch (chunked predict, online learning).
    The shapes reach the rank-update form with one and several KC chunks (forward
    reductions up to 1100 steps), narrow and wide panels, and delta reductions beyond KC."""
    n, n_in, n_out = shape
    mr = _gemm.MR
    for op, key in ((_dense.OP_FORWARD, "a_out"), (_dense.OP_DELTA, "d_in"),
                    (_dense.OP_GRAD, "gW")):
        for accumulate in ((False, True) if op == _dense.OP_GRAD else (False,)):
            outs = []
            for tiles in (True, False):
                lay, v = _network(np.random.default_rng(5), dtype, n, n_in, n_out, drop=0.2)
                v["gW"][:] = np.random.default_rng(6).normal(size=v["gW"].shape)
                v["gb"][:] = 1.5
                if tiles:
                    _all_tiles(op, lay, 1, n, mr, 10**6, accumulate)
                else:
                    _op(op, lay, 1, n, accumulate)
                outs.append(v[key].tobytes() + v["z"].tobytes() + v["gb"].tobytes())
            assert outs[0] == outs[1], (op, accumulate)


@pytest.mark.parametrize("M,N,K,target", [(128, 256, 784, 8), (256, 784, 128, 8),
                                          (1024, 2048, 1024, 8), (128, 10, 128, 4),
                                          (10, 2048, 256, 8), (4, 16, 3, 64), (300, 70, 9, 16)])
def test_tile_grid_packs_the_least(M, N, K, target):
    """The tile grid has legal tiles (whole register blocks tall, whole panels wide, at most
    ``mc`` rows), reaches the target count where the shape allows, and packs no more than
    any other such grid."""
    mc, nr, mr = 128, 64, _gemm.MR
    tm, tn = from_python(_dense.tile_grid)(M, N, K, target, mc, nr)
    assert tm % mr == 0 and 0 < tm <= mc and tn % nr == 0 and tn > 0

    def grid(tm, tn):
        rows, cols = -(-M // tm), -(-N // tn)
        return min(rows * cols, target), cols * M * K + rows * K * N

    tiles, cost = grid(tm, tn)
    legal = [grid(a, b) for a in range(mr, mc + 1, mr) for b in range(nr, N + nr, nr)]
    assert tiles == max(t for t, _ in legal)
    assert cost == min(c for t, c in legal if t == tiles)


@numba.njit
def _outer(d, M, a, N, C, c0, accumulate):
    _gemm.outer(d, 0, M, a, 0, N, C, c0, accumulate)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_row_gradient_bitwise_and_in_bounds(dtype):
    """``outer`` (``_llvm.outer_rows``: whole vectors, the last one masked) gives
    ``0 + d_i * a_j`` bit for bit (a product rounded once, ``-0`` made ``+0``), added to C
    with ``accumulate``, for widths around one and two vectors, and writes nothing outside
    its ``M x N`` block (masked stores at the tail)."""
    rng = np.random.default_rng(3)
    for M, N in ((3, 1), (2, 7), (5, 8), (4, 16), (3, 17), (2, 33), (1, 40)):
        d = rng.normal(size=M).astype(dtype)
        a = rng.normal(size=N).astype(dtype)
        d[0], a[0] = -1, 0  # a -0 product
        c0 = 5
        C = np.full(c0 + M * N + 40, np.nan, dtype)
        _outer(d, M, a, N, C, c0, False)
        prod = d[:, None] * a[None, :]  # rounded once, in dtype
        want = (dtype(0) + prod).ravel()
        block = C[c0:c0 + M * N]
        assert block.tobytes() == want.tobytes(), (M, N)
        assert np.isnan(C[:c0]).all() and np.isnan(C[c0 + M * N:]).all(), (M, N)
        _outer(d, M, a, N, C, c0, True)
        assert block.tobytes() == (want + (dtype(0) + prod).ravel()).tobytes(), (M, N)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out_code", [_codes.IDENTITY, _codes.RELU, _codes.SOFTMAX])
@pytest.mark.parametrize("n", [1, 37])
def test_an_output_layer_without_kept_z_gives_the_same_bits(dtype, out_code, n):
    """Predict keeps no ``z`` of the output layer (an empty ``z_out``): the activations are
    the bits of a pass that keeps it, and the kept ``z`` is the pre-activation."""
    outs = []
    for keep in (True, False):
        lay, v = _network(np.random.default_rng(8), dtype, n, 20, 6, code=_codes.RELU,
                          out_code=out_code)
        if not keep:  # (as predict's pass does)
            lay = from_python(_network_kernels.without_kept_z)(lay)
            assert lay[5].shape == (0,)
        _op(_dense.OP_FORWARD, lay, 1, n, False)
        outs.append(v["a_out"].copy())
        if keep:
            z = v["a_in"].astype(float) @ v["W"].T.astype(float) + v["b"]
            np.testing.assert_allclose(v["z"], z, **TOL[dtype])
    assert outs[0].tobytes() == outs[1].tobytes()
