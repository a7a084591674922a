"""The three products of a dense layer, with the elementwise work fused in, over flat buffers.

For weight layer ``p`` (unit layer ``p`` -> ``p + 1``) and a batch of ``n`` rows held in
the workspace (``fastbp.kernels._layout``):

- ``OP_FORWARD``: ``a^(p+1) = f(a^p @ W.T + b)``; keeps the output layer's ``z``; applies
  inverted dropout to hidden layers while training (the undropped values go to ``raw``);
- ``OP_DELTA``:   ``delta^p = (delta^(p+1) @ W) * f'(a^p)`` (``f'`` from the undropped
  values when layer ``p`` drops units, then the same mask);
- ``OP_GRAD``:    ``gW (+)= delta^(p+1).T @ a^p``, ``gb (+)= delta^(p+1)`` summed over rows.

``layer_op`` splits a product into tiles of the output (``_gemm.gemm_tile``; the epilogue
runs on each tile while it is in cache). A product of fewer than ``PARALLEL_MIN_WORK``
multiply-adds runs its tiles serially, with no parallel-region launch, as does any product
when Numba's thread count is 1 (one thread never launches a parallel region); a larger one
runs them in one ``prange`` (``_tiles_parallel``) whose tiles are handed out one at a time, so
that a thread slowed down by another process on its core does not hold the others back.
A product of one row (online learning) is matrix-vector work: loops without packing that
compute each element exactly as the tiles do.

Every output element is computed by the same instructions in the same order whatever tile
or thread computes it (see ``fastbp.kernels._gemm``), so results are bitwise identical for
any number of threads, and the tiling may follow the thread count.
"""

import numpy as np
from numba import carray, prange, types

from ._activations import activate_flat as activate
from ._activations import multiply_derivative_flat as multiply_derivative
from ._activations import relu, relu_grad
from ._cache import njit
from ._codes import IDENTITY, RELU, SOFTMAX
from ._flat import c_array, deref, flat
from ._gemm import (
    MR,
    Operand,
    a_packed,
    gemm_tile,
    mc_rows,
    nr_cols,
    outer,
    pack_a,
    panel_width,
    row_times,
    row_times_transposed,
)
from ._llvm import (
    BorrowedArray,
    elem_bytes,
    flat_rows,
    ptr_at,
    rt,
    threads,
    view2d,
    wide_vectors,
)

OP_FORWARD = 0
OP_DELTA = 1
OP_GRAD = 2
#: the backward sweep of one row (``row_ops`` only): every layer's gradient and delta
OP_BACKWARD = 3

#: multiply-adds below which a product runs serially (no parallel-region launch). A launch
#: costs ~2-5 us (much more when the cores are shared); 2^19 multiply-adds take ~5-10 us.
PARALLEL_MIN_WORK = 1 << 19

#: a parallel product is cut into about ``TILES_PER_THREAD`` tiles per thread, of at least
#: ``TILE_WORK`` multiply-adds, handed out one at a time: a thread slowed down by another
#: process takes fewer of them, and each operand is re-packed by few tiles (the tiling may
#: follow the thread count: it changes no result, see ``_gemm``)
TILES_PER_THREAD = 4
TILE_WORK = 1 << 17


# ------------------------------------------------------------------ dropout
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_S32 = np.uint64(32)


@njit(inline="always", cache=True)
def _mix64(x):
    """SplitMix64 finalizer: a bijective scramble of a uint64."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


@njit(cache=True, nogil=True)
def dropout_uniform(seed, step, row, unit):
    """Counter-based uniform in [0, 1) for one (step, batch row, hidden unit).

    A pure function of its integer arguments (hash of the counters), so a dropout mask can
    be regenerated in the backward pass and is identical for any thread count or order of
    evaluation. ``unit`` numbers hidden units across all hidden layers.
    """
    h = _mix64(np.uint64(seed) ^ _mix64(np.uint64(step) * _GOLDEN))
    h = _mix64(h ^ _mix64(np.uint64(row) + (np.uint64(unit) << _S32)))
    return np.float64(h >> _S11) * (1.0 / 9007199254740992.0)


@njit(inline="always", cache=True, nogil=True)
def unit0(sizes, l):
    """Index of unit layer ``l``'s first unit among all hidden units (dropout's ``unit``)."""
    s = 0
    for q in range(1, l):
        s += sizes[q]
    return s


@njit(error_model="numpy", cache=True, nogil=True)
def _dropout_kernel(Z, R, save, i0, i1, j0, j1, rate, seed, step, u0):
    """Inverted dropout on the block ``[i0:i1, j0:j1]`` of ``Z``: each element kept (times
    ``1 / (1 - rate)``) or zeroed by ``dropout_uniform(seed, step, row, u0 + column)``;
    with ``save``, the values before the mask go to ``R`` first."""
    s = Z.dtype.type(1.0 / (1.0 - rate))
    zero = Z.dtype.type(0)
    for i in range(i0, i1):
        for j in range(np.uint64(j0), np.uint64(j1)):
            if save:
                R[i, j] = Z[i, j]
            keep = dropout_uniform(seed, step, i, u0 + j) >= rate
            Z[i, j] = Z[i, j] * s if keep else zero


#: dropout, compiled at the first step with a positive rate (``_flat``, lazy; ``layer_op``
#: makes that first call before it runs a product's tiles on threads)
_dropout = flat(_dropout_kernel, lambda dtype: types.none(
    c_array(dtype, 2), c_array(dtype, 2), types.boolean, types.int64,
    types.int64, types.int64, types.int64, types.float64, types.int64, types.int64,
    types.int64), lazy=True)


# ------------------------------------------------------------------ epilogues
@njit(inline="always", error_model="numpy", cache=True, nogil=True)
def _forward_epilogue(lay, p, n, i0, i1, j0, j1):
    """Bias, kept ``z`` (output layer), activation and dropout on the block of a^(p+1)."""
    params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drop, seed, \
        step, x, x0 = lay
    L = sizes.shape[0] - 1
    n_out = sizes[p + 1]
    Z = view2d(act, a_off[p + 1], n, n_out)
    b = carray(ptr_at(params, b_off[p]), (n_out,))
    code = codes[p]
    zero = Z.dtype.type(0)
    # the bias, in the same pass as the kept z of the output layer (unless ``z_out`` is
    # empty: predict keeps none) or a hidden ReLU; other activations after it
    # (a ReLU output without it takes the ReLU twice: the same bits)
    if p == L - 1 and z_out.shape[0] > 0:
        Zk = view2d(z_out, 0, n, n_out)
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                x = Z[i, j] + b[j]
                Zk[i, j] = x
                Z[i, j] = x
    elif code == RELU:
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                Z[i, j] = relu(Z[i, j] + b[j], zero)
    else:
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                Z[i, j] = Z[i, j] + b[j]
    if code != SOFTMAX and code != IDENTITY and (code != RELU or p == L - 1):
        activate(Z, i0, i1, j0, j1, code)  # (softmax needs whole rows: at the end)
    if p < L - 1 and p < drop.shape[0] and drop[p] > 0:
        _dropout(Z, view2d(raw, a_off[p + 1], n, n_out), rt(True), i0, i1, j0, j1, drop[p],
                 seed, step, unit0(sizes, p + 1))
    if code == SOFTMAX and j0 == 0 and j1 == n_out:  # whole rows (else: ``_layer_op``)
        activate(Z, i0, i1, j0, j1, code)


@njit(inline="always", error_model="numpy", cache=True, nogil=True)
def _delta_epilogue(lay, p, n, i0, i1, j0, j1):
    """``* f'`` (and the dropout mask) on the block of delta^p (``p >= 1``)."""
    params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drop, seed, \
        step, x, x0 = lay
    n_in = sizes[p]
    D = view2d(delta, a_off[p], n, n_in)
    dropped = p - 1 < drop.shape[0] and drop[p - 1] > 0
    A = view2d(raw if dropped else act, a_off[p], n, n_in)
    if codes[p - 1] == RELU:  # as multiply_derivative computes it, without the call
        zero = D.dtype.type(0)
        for i in range(i0, i1):
            for j in range(np.uint64(j0), np.uint64(j1)):
                D[i, j] = relu_grad(D[i, j], A[i, j], zero)
    else:
        multiply_derivative(D, A, i0, i1, j0, j1, codes[p - 1])
    if dropped:
        _dropout(D, D, rt(False), i0, i1, j0, j1, drop[p - 1], seed, step, unit0(sizes, p))


@njit(inline="always", error_model="numpy", cache=True, nogil=True)
def _bias_grad(lay, p, n, j0, j1, accumulate):
    """``gb[j] (+)= sum_i delta^(p+1)[i, j]`` for ``j0 <= j < j1``, rows summed in order."""
    params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drop, seed, \
        step, x, x0 = lay
    n_out = sizes[p + 1]
    D = view2d(delta, a_off[p + 1], n, n_out)
    gb = carray(ptr_at(grads, b_off[p]), (n_out,))
    if not accumulate:
        for j in range(np.uint64(j0), np.uint64(j1)):
            gb[j] = 0
    for i in range(n):
        for j in range(np.uint64(j0), np.uint64(j1)):
            gb[j] += D[i, j]


# ------------------------------------------------------------------ tiles
@njit(inline="always", cache=True, nogil=True)
def op_shape(op, p, n, sizes):
    """``(M, N, K)`` of the product ``op`` of layer ``p`` over ``n`` rows."""
    n_in, n_out = sizes[p], sizes[p + 1]
    if op == OP_FORWARD:
        return n, n_out, n_in
    if op == OP_DELTA:
        return n, n_in, n_out
    return n_out, n_in, n


@njit(cache=True, nogil=True, optimised_by_callers=True)
def tile_grid(M, N, K, target, mc, nr):
    """Tile height and width ``(tm, tn)`` for about ``target`` tiles of an ``M x N x K``
    product (``tm`` a multiple of ``MR`` up to ``mc``, ``tn`` of ``nr``), chosen to pack the
    least: every column of tiles packs all its rows of A (``M x K``), every row of tiles
    packs all its panels of B (``K x N``)."""
    panels = (N + nr - 1) // nr
    best_cost, best_tm, best_tn, best_tiles = -1, mc, N, 0
    for cb in range(1, min(target, panels) + 1):
        tn = (panels + cb - 1) // cb * nr
        cols = (N + tn - 1) // tn
        rb = (target + cols - 1) // cols
        tm = min(mc, max(MR, ((M + rb - 1) // rb + MR - 1) // MR * MR))
        rows = (M + tm - 1) // tm
        tiles = min(rows * cols, target)
        cost = cols * M * K + rows * K * N
        if tiles > best_tiles or (tiles == best_tiles and cost < best_cost):
            best_cost, best_tm, best_tn, best_tiles = cost, tm, tn, tiles
    return best_tm, best_tn


def lay_type(dtype):
    """The type of ``layer_op``'s buffer tuple for a float dtype, as the kernels receive it
    (by reference: its arrays borrowed, see ``_llvm.BorrowedArray``). Its last two members,
    ``x`` and ``x0``, give the layer-0 input: row ``i`` at ``x[x0 + i * sizes[0]:]``
    (``act`` and ``a_off[0]``, or the rows of a batch read in place)."""
    f = BorrowedArray(dtype, 1, "C")
    i = BorrowedArray(types.int64, 1, "C")
    return types.Tuple((f, f, f, f, f, f, i, i, i, i, i, BorrowedArray(types.float64, 1, "C"),
                        types.int64, types.int64, f, types.int64))


@njit(inline="always", cache=True, nogil=True)
def _layer_input(lay, p):
    """The buffer and offset of weight layer ``p``'s input rows: the layer-0 input (``x``,
    ``x0``: the workspace's block, or a batch read in place) or activations ``p``."""
    return (lay[14], lay[15]) if p == 0 else (lay[2], lay[9][p])


@njit(error_model="numpy", cache=True, nogil=True)
def _epilogue_kernel(op, lay_ref, p, n, i0, i1, j0, j1, accumulate):
    """The elementwise work on the block ``i0 .. i1`` x ``j0 .. j1`` of product ``op``'s
    output, while it is in cache: ``_forward_epilogue``, ``_delta_epilogue``, or the bias
    gradient of units ``i0 .. i1`` (the weight gradient's block with ``j0 == 0``)."""
    lay = deref(lay_ref)
    if op == OP_FORWARD:
        _forward_epilogue(lay, p, n, i0, i1, j0, j1)
    elif op == OP_DELTA:
        _delta_epilogue(lay, p, n, i0, i1, j0, j1)
    elif j0 == 0:
        _bias_grad(lay, p, n, i0, i1, accumulate)


_I = types.int64

# the epilogue, compiled once per dtype and called through a pointer (``_flat``) by the
# tile and the one-row kernels
_epilogue = flat(_epilogue_kernel, lambda dtype: types.none(
    _I, types.CPointer(lay_type(dtype)), _I, _I, _I, _I, _I, _I, types.boolean))


@njit(error_model="numpy", cache=True, nogil=True)
def _tile_kernel(op, t, tm, tn, lay_ref, p, n, accumulate):
    """Tile ``t`` (row-major over ``tm x tn`` tiles of the output) of product ``op``, then
    its epilogue."""
    lay = deref(lay_ref)  # the caller's tuple, passed by reference (see ``_flat``)
    wide_vectors()
    params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drop, seed, \
        step, x, x0 = lay
    M, N, K = op_shape(op, p, n, sizes)
    n_out = sizes[p + 1]
    add = accumulate and op == OP_GRAD
    n_tn = (N + tn - 1) // tn
    ti = t // n_tn
    i0 = ti * tm
    j0 = (t - ti * n_tn) * tn
    i1 = min(M, i0 + tm)
    j1 = min(N, j0 + tn)
    a_in, i0_in = _layer_input(lay, p)
    if op == OP_FORWARD:  # a_out = a_in @ W.T: B = W.T, transposed while packed
        gemm_tile(Operand(a_in, i0_in, K, rt(1)), Operand(params, w_off[p], rt(1), K),
                  Operand(act, a_off[p + 1], N, rt(1)), i0, i1, j0, j1, K, rt(False),
                  panel_width(N, elem_bytes(act)))
    else:
        # C (+)= A @ B, B's rows contiguous: delta_in = delta @ W, gW = delta.T @ a_in
        if op == OP_DELTA:
            A, a0, ars, acs = delta, a_off[p + 1], n_out, 1
            B, b0 = params, w_off[p]
            C, c0 = delta, a_off[p]
        else:
            A, a0, ars, acs = delta, a_off[p + 1], 1, n_out
            B, b0 = a_in, i0_in
            C, c0 = grads, w_off[p]
        gemm_tile(Operand(A, a0, ars, acs), Operand(B, b0, N, rt(1)), Operand(C, c0, N, rt(1)),
                  i0, i1, j0, j1, K, add, panel_width(N, elem_bytes(act)))
    _epilogue(op, lay_ref, p, n, i0, i1, j0, j1, accumulate)


@njit(error_model="numpy", cache=True, nogil=True)
def _row_kernel(op, lay_ref, p0, p1, n, accumulate):
    """Matrix-vector products with their epilogues. ``n > 1``: the forward product of the
    one-unit layer ``p0`` for ``n`` rows (``OP_FORWARD``; one fused multiply-add chain per
    row, as the tiles compute it, without a 16-column panel for one column). ``n == 1``:
    the products of a batch of one row (online learning), for the weight layers
    ``p0 .. p1 - 1``: ``OP_FORWARD`` upwards (softmax included), ``OP_GRAD`` or
    ``OP_DELTA`` of each layer downwards, or ``OP_BACKWARD``, the backward sweep (each
    layer's gradient, then its delta below it if ``p > 0``). The matrix-vector loops of
    ``_gemm`` compute what the tiles would, without packing, and the tiles' epilogue runs on
    each whole row; one call runs a whole pass, so that a step of a small network costs a
    few calls, not a few per layer."""
    lay = deref(lay_ref)
    params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drop, seed, \
        step, x, x0 = lay
    if n > 1:  # C[i] = sum_k w[k] * a[i, k]: the rows of a are the "matrix"
        n_in = sizes[p0]
        a_in, i0_in = _layer_input(lay, p0)
        row_times_transposed(params, w_off[p0], a_in, i0_in, n_in, act, a_off[p0 + 1], n,
                             n_in)
        _forward_epilogue(lay, p0, n, rt(0), n, rt(0), rt(1))
        return
    if op == OP_FORWARD:
        for p in range(p0, p1):
            n_in, n_out = sizes[p], sizes[p + 1]
            a_in, i0_in = _layer_input(lay, p)
            row_times_transposed(a_in, i0_in, params, w_off[p], n_in, act, a_off[p + 1],
                                 n_out, n_in)
            _forward_epilogue(lay, p, rt(1), rt(0), rt(1), rt(0), n_out)
        return
    for p in range(p1 - 1, p0 - 1, -1):
        n_in, n_out = sizes[p], sizes[p + 1]
        if op != OP_DELTA:
            a_in, i0_in = _layer_input(lay, p)
            outer(delta, a_off[p + 1], n_out, a_in, i0_in, n_in, grads, w_off[p], accumulate)
            _bias_grad(lay, p, rt(1), rt(0), n_out, accumulate)
        if op == OP_DELTA or (op == OP_BACKWARD and p > 0):
            row_times(delta, a_off[p + 1], params, w_off[p], n_in, delta, a_off[p], n_in, n_out)
            _delta_epilogue(lay, p, rt(1), rt(0), rt(1), rt(0), n_in)


#: ``_row_kernel`` compiled once per dtype and called through a pointer (see ``_flat``):
#: ``layer_op`` on one row and the whole passes of ``_network`` share it
row_ops = flat(_row_kernel, lambda dtype: types.none(
    _I, types.CPointer(lay_type(dtype)), _I, _I, _I, types.boolean), lazy=True)


# the tile kernel, compiled once per dtype and called through a pointer (``_flat``): the
# parallel and serial paths share one copy
_tile = flat(_tile_kernel, lambda dtype: types.none(
    _I, _I, _I, _I, types.CPointer(lay_type(dtype)), _I, _I, types.boolean))


@njit(parallel=True, cache=True, nogil=True)
def _tiles_parallel_kernel(op, n_tiles, tm, tn, lay_ref, p, n, accumulate):
    """All tiles of a product, one ``prange`` iteration each, handed out one at a time."""
    for t in prange(n_tiles):
        _tile(op, np.int64(t), tm, tn, lay_ref, p, n, accumulate)


#: compiled once per dtype, at the first product big enough for threads (``_flat``, lazy)
_tiles_parallel = flat(_tiles_parallel_kernel, lambda dtype: types.none(
    _I, _I, _I, _I, types.CPointer(lay_type(dtype)), _I, _I, types.boolean), lazy=True)


@njit(cache=True, nogil=True)
def _layer_op(op, lay_ref, p, n, accumulate):
    """Run product ``op`` of weight layer ``p`` over the ``n`` rows in the workspace.

    Parameters
    ----------
    op : int, ``OP_FORWARD``, ``OP_DELTA`` (``p >= 1``) or ``OP_GRAD``
    lay : tuple ``(params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off,
        act_codes, drop_rates, drop_seed, step, x, x0)`` (``lay_type``): the flat buffers,
        layout and dropout (``drop_rates`` may be empty: no dropout; ``raw`` may be ``act``
        then; ``z_out`` may be empty: the output layer's ``z`` is not kept), and the
        layer-0 input (``x``, ``x0``: the workspace's block or rows read in place)
    p : int, the weight layer
    n : int, rows in the batch
    accumulate : bool, ``OP_GRAD`` adds to ``grads`` instead of overwriting
    """
    lay = deref(lay_ref)  # the caller's tuple, passed by reference (see ``_flat``)
    params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drop, seed, \
        step, x, x0 = lay
    M, N, K = op_shape(op, p, n, sizes)
    if n == 1 or (op == OP_FORWARD and N == 1):  # the softmax included
        row_ops(op, lay, p, p + 1, n, accumulate)
        return
    # (forward: A is a_in; delta: delta; gradient: delta.T, its steps n_out apart)
    a_pack = op == OP_GRAD and a_packed(sizes[p + 1], elem_bytes(act), M)
    mc = mc_rows(elem_bytes(act), a_pack)
    work = M * N * K
    whole_rows = True  # each tile's epilogue had whole rows (the softmax included)
    if work < PARALLEL_MIN_WORK or threads() == 1:
        for t in range((M + mc - 1) // mc):
            _tile(op, t, mc, N, lay, p, n, accumulate)
    else:
        target = max(1, min(TILES_PER_THREAD * threads(), work // TILE_WORK))
        nr = nr_cols(elem_bytes(act), panel_width(N, elem_bytes(act)))
        tm, tn = tile_grid(M, N, K, target, mc, nr)
        n_tiles = ((M + tm - 1) // tm) * ((N + tn - 1) // tn)
        # the epilogue's kernels that compile at their first call (an activation, dropout)
        # compile on this thread, not on the region's: called here on an empty block
        empty = view2d(act, rt(0), rt(0), rt(1))
        if op == OP_FORWARD:
            activate(empty, rt(0), rt(0), rt(0), rt(0), codes[p])
        if a_pack:  # (lazy: see ``_gemm.pack_a``)
            pack_a(flat_rows(empty), rt(0), rt(1), rt(1), rt(0), rt(0), rt(0), rt(0),
                   flat_rows(empty))
        for q in range(drop.shape[0]):
            if drop[q] > 0:
                _dropout(empty, empty, rt(False), rt(0), rt(0), rt(0), rt(0), rt(0.0), rt(0),
                         rt(0), rt(0))
                break
        _tiles_parallel(op, n_tiles, tm, tn, lay, p, n, accumulate)
        whole_rows = tn >= N
    if op == OP_FORWARD and codes[p] == SOFTMAX and not whole_rows:
        n_out = sizes[p + 1]
        activate(view2d(act, a_off[p + 1], n, n_out), rt(0), n, rt(0), n_out, codes[p])


#: ``layer_op`` compiled once per dtype and called through a pointer (see ``_flat``)
layer_op = flat(_layer_op, lambda dtype: types.none(
    _I, types.CPointer(lay_type(dtype)), _I, _I, types.boolean))


__all__ = ["MR", "OP_BACKWARD", "OP_DELTA", "OP_FORWARD", "OP_GRAD", "PARALLEL_MIN_WORK",
           "dropout_uniform", "layer_op", "op_shape", "row_ops", "unit0"]
