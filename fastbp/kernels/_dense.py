"""The three matrix products of one dense layer, with the elementwise work fused in.

Shapes (``n`` = rows in the batch):

- ``dense_forward``:   a_out (n, n_out) = f(a_in (n, n_in) @ W.T + b)
- ``dense_delta``:     delta_in (n, n_in) = (delta (n, n_out) @ W) * f'(a_in)
- ``dense_grad``:      gW (n_out, n_in) (+)= delta.T @ a_in,  gb (n_out,) (+)= delta.sum(0)

How they are computed (see ``fastbp.kernels._gemm`` for the register-blocked micro-kernels):

- the forward product is a dot-product form (both operands contiguous along ``n_in``),
  computed in 4 x 4 output blocks: 16 vector accumulators, each loaded value used 4 times;
- the delta and gradient products are rank-1-update forms, computed in panels of 4 output
  rows x ``PANEL`` columns whose accumulators live in a fixed-size stack buffer, so LLVM
  keeps them in vector registers for the whole reduction (no load/store per step); large
  ones (``packs``) copy their operands into contiguous stack buffers first and run 4 x 64
  register blocks over them (``packed_product``).

Strategy by size: a product of fewer than ``PARALLEL_MIN_WORK`` multiply-adds runs serially
(no parallel-region launch, which costs more than such a product) in the dispatcher itself,
a plain compiled function, so that small layers never even call a ``parallel=True`` one; a
larger one is split into tiles whose size and number depend only on the shapes, one
``prange`` iteration per tile (``_forward_tiles``, ``_delta_tiles``, ``_grad_tiles``).
Every output element is computed by the same instruction sequence in the same order
whichever path, tile or thread computes it (tile boundaries are multiples of the blocking),
so results are bitwise independent of the number of threads. The serial/parallel and
packed/unpacked choices depend only on the shapes. Products of at least ``BLAS_MIN_WORK``
multiply-adds on C-contiguous operands go through BLAS instead (``fastbp.kernels._blas``, opt-in),
called from serial code only, so BLAS threads and Numba threads never run at the same time;
the elementwise work around them is serial.
"""

import numpy as np
from numba import njit, prange

from ._activations import activate, multiply_derivative
from ._blas import BLAS_MIN_WORK, gemm_nn, gemm_nt, gemm_tn
from ._codes import SOFTMAX
from ._gemm import (
    BLOCK,
    DOT_GROUP,
    FASTMATH,
    PACK_R,
    PACK_W,
    PANEL,
    TRANSPOSE_MAX,
    column_sums,
    dot_block,
    packed_product,
    panel_product,
    row_product,
    transposed_forward,
)

#: multiply-adds below which a product runs serially (no parallel-region launch). A launch
#: costs ~2-5 us (much more when the cores are shared); 2^19 multiply-adds take ~5-10 us.
PARALLEL_MIN_WORK = 1 << 19

#: rows of the batch per parallel tile (forward and delta); a multiple of ``BLOCK``
TILE_ROWS = 16

#: gradient rows per parallel tile; a multiple of ``BLOCK``
TILE_GRAD_ROWS = 16

#: columns of a parallel tile of the packed gradient product (rows: ``PACK_R``)
TILE_PACK_COLS = 2 * PACK_W

#: rows of a parallel tile of the packed delta product (columns: ``PACK_W``)
TILE_DELTA_ROWS = 4 * PACK_R

#: rows x columns of a parallel forward tile (dot-product form, elementwise activation): a
#: tile reads its slice of W once, not once per 16 rows; multiples of ``DOT_GROUP``
FORWARD_TILE_ROWS = 64
FORWARD_TILE_COLS = 64


@njit(cache=True, nogil=True)
def forward_transposes(n, n_in, n_out):
    """Whether ``dense_forward`` uses the transposed-weights form for these shapes."""
    # measured: pays off for short reductions (n_in < 64) and outputs that split into
    # register-resident panels (n_out a multiple of 8); slower otherwise
    return n >= 2 * BLOCK and n_out % 8 == 0 and n_in < 64 and n_in * n_out <= TRANSPOSE_MAX


@njit(inline="always", cache=True)
def _tile(t, n_rows, n_cols, rows, cols):
    """Bounds ``(r0, r1, c0, c1)`` of tile ``t`` of a ``rows x cols`` tiling (row-major) of
    an ``n_rows x n_cols`` output."""
    n_tc = (n_cols + cols - 1) // cols
    tr = t // n_tc
    r0 = tr * rows
    c0 = (t - tr * n_tc) * cols
    return r0, min(n_rows, r0 + rows), c0, min(n_cols, c0 + cols)


@njit(inline="always", cache=True)
def _n_tiles(n_rows, n_cols, rows, cols):
    return ((n_rows + rows - 1) // rows) * ((n_cols + cols - 1) // cols)


@njit(cache=True, nogil=True)
def packs(n, n_in, n_out):
    """Whether ``dense_delta`` and ``dense_grad`` use the packed products for these shapes:
    parallel-sized products whose ``n_in`` fills at least one ``PACK_W``-wide panel."""
    return n_in >= PACK_W and n * n_in * n_out >= PARALLEL_MIN_WORK


@njit(inline="always", cache=True)
def _keep_and_activate(a_out, z_keep, code, i0, i1, j0, j1):
    """Copy the block ``z = a_out[i0:i1, j0:j1]`` into ``z_keep`` if it has rows, then apply
    the activation to the block in place."""
    if z_keep.shape[0] > 0:
        for i in range(i0, i1):
            for j in range(j0, j1):
                z_keep[i, j] = a_out[i, j]
    activate(a_out, i0, i1, j0, j1, code)


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def _forward_rows(a_in, W, b, a_out, code, z_keep, i0, i1, transpose):
    """Rows ``i0:i1`` of the forward product, bias, kept ``z`` and activation."""
    if transpose:
        transposed_forward(a_in, W, a_out, i0, i1)
        for i in range(i0, i1):
            for j in range(a_out.shape[1]):
                a_out[i, j] += b[j]
    else:
        dot_block(a_in, W, b, a_out, i0, i1, 0, W.shape[0])
    _keep_and_activate(a_out, z_keep, code, i0, i1, 0, a_out.shape[1])


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def _forward_tile(a_in, W, b, a_out, code, z_keep, i0, i1, j0, j1):
    """Block ``[i0:i1, j0:j1]`` of the forward product, bias, kept ``z`` and (elementwise)
    activation."""
    dot_block(a_in, W, b, a_out, i0, i1, j0, j1)
    _keep_and_activate(a_out, z_keep, code, i0, i1, j0, j1)


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _forward_one(a_in, W, b, a_out, code, z_keep):
    """One row (online learning): ``a_out[0] = f(W @ a_in[0] + b)`` as plain dot products,
    with no blocking machinery around them (whose fixed cost exceeds such a product)."""
    n_out, n_in = W.shape
    for j in range(n_out):
        s = W.dtype.type(0)
        # an unsigned index: no negative-index wraparound in the loop, so LLVM vectorises it
        for k in range(np.uint64(n_in)):
            s += a_in[0, k] * W[j, k]
        a_out[0, j] = s + b[j]
    _keep_and_activate(a_out, z_keep, code, 0, 1, 0, n_out)


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _delta_one(delta, W, a_in, code, delta_in):
    """One row: ``delta_in[0] = (delta[0] @ W) * f'(a_in[0])`` as a sum of scaled rows of W."""
    n_out, n_in = W.shape
    z = W.dtype.type(0)
    for k in range(np.uint64(n_in)):
        delta_in[0, k] = z
    for j in range(n_out):
        d = delta[0, j]
        for k in range(np.uint64(n_in)):
            delta_in[0, k] += d * W[j, k]
    multiply_derivative(delta_in, a_in, 0, 1, 0, n_in, code)


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _grad_one(delta, a_in, gW, gb, accumulate):
    """One row: the outer product ``gW (+)= delta[0] a_in[0]^T``, ``gb (+)= delta[0]``."""
    n_out, n_in = gW.shape
    for j in range(n_out):
        d = delta[0, j]
        if accumulate:
            for k in range(np.uint64(n_in)):
                gW[j, k] += d * a_in[0, k]
            gb[j] += d
        else:
            for k in range(np.uint64(n_in)):
                gW[j, k] = d * a_in[0, k]
            gb[j] = d


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def dense_forward(a_in, W, b, a_out, code, z_keep):
    """``a_out = f(a_in @ W.T + b)``; ``z_keep`` receives z if it has rows.

    Parameters
    ----------
    a_in : (n, n_in) array
    W : (n_out, n_in) array
    b : (n_out,) array
    a_out : (n, n_out) array, written
    code : int, activation code (``fastbp.kernels._codes``)
    z_keep : (n, n_out) or (0, n_out) array, written when it has rows
    """
    n, n_in = a_in.shape
    n_out = W.shape[0]
    if n == 1:
        _forward_one(a_in, W, b, a_out, code, z_keep)
    elif n >= BLOCK and n * n_in * n_out >= BLAS_MIN_WORK and gemm_nt(a_in, W, a_out):
        for i in range(n):
            for j in range(n_out):
                a_out[i, j] += b[j]
        _keep_and_activate(a_out, z_keep, code, 0, n, 0, n_out)
    elif n < 2 * TILE_ROWS or n * n_in * n_out < PARALLEL_MIN_WORK:
        _forward_rows(a_in, W, b, a_out, code, z_keep, 0, n, forward_transposes(n, n_in, n_out))
    else:
        _forward_tiles(a_in, W, b, a_out, code, z_keep)


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def _forward_tiles(a_in, W, b, a_out, code, z_keep):
    """``dense_forward``'s product split into tiles, one ``prange`` iteration each."""
    n, n_in = a_in.shape
    n_out = W.shape[0]
    if code == SOFTMAX or forward_transposes(n, n_in, n_out):
        # row tiles: softmax needs whole rows; the transposed form transposes W once per
        # tile, so its tiles are taller
        transpose = forward_transposes(n, n_in, n_out)
        rows = 4 * TILE_ROWS if transpose else TILE_ROWS
        n_tiles = (n + rows - 1) // rows
        for t in prange(n_tiles):
            i0 = t * rows
            _forward_rows(a_in, W, b, a_out, code, z_keep, i0, min(n, i0 + rows), transpose)
    else:
        # 2-D tiles: each reads its slice of W once (``dot_block`` keeps it in cache while
        # the tile's rows pass over it)
        rows, cols = FORWARD_TILE_ROWS, FORWARD_TILE_COLS
        for t in prange(_n_tiles(n, n_out, rows, cols)):
            i0, i1, j0, j1 = _tile(t, n, n_out, rows, cols)
            _forward_tile(a_in, W, b, a_out, code, z_keep, i0, i1, j0, j1)


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def dense_delta(delta, W, a_in, code, delta_in):
    """Back-propagate one layer: ``delta_in = (delta @ W) * f'(a_in)``.

    Parameters
    ----------
    delta : (n, n_out) array, dE/dz of this layer
    W : (n_out, n_in) array
    a_in : (n, n_in) array, activation of the previous layer (``a_in = f(z_in)``)
    code : int, activation code of the previous layer
    delta_in : (n, n_in) array, written with dE/dz of the previous layer
    """
    n = delta.shape[0]
    n_out, n_in = W.shape
    if n == 1:
        _delta_one(delta, W, a_in, code, delta_in)
    elif n < BLOCK:  # a few rows (online learning): a plain loop, whatever the size
        row_product(delta.T, W, delta_in)
        multiply_derivative(delta_in, a_in, 0, n, 0, n_in, code)
    elif n * n_out * n_in >= BLAS_MIN_WORK and gemm_nn(delta, W, delta_in):
        multiply_derivative(delta_in, a_in, 0, n, 0, n_in, code)
    elif n * n_out * n_in < PARALLEL_MIN_WORK:
        panel_product(delta.T, W, delta_in, 0, n, 0, n_in, False)
        multiply_derivative(delta_in, a_in, 0, n, 0, n_in, code)
    else:
        _delta_tiles(delta, W, a_in, code, delta_in)


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def _delta_tiles(delta, W, a_in, code, delta_in):
    """``dense_delta``'s product split into tiles, one ``prange`` iteration each."""
    n = delta.shape[0]
    n_out, n_in = W.shape
    packed = packs(n, n_in, n_out)
    if packed:
        # tiles of TILE_DELTA_ROWS rows x PACK_W columns through packed operands: each
        # tile packs its panel of W once per pass and reuses it for all its rows
        rows, cols = TILE_DELTA_ROWS, PACK_W
    else:
        # tiles of TILE_ROWS rows x PANEL columns: a W panel (n_out x PANEL) stays in cache
        # while the tile's row blocks stream past it
        rows, cols = TILE_ROWS, PANEL
    for t in prange(_n_tiles(n, n_in, rows, cols)):
        i0, i1, k0, k1 = _tile(t, n, n_in, rows, cols)
        if packed:
            packed_product(delta.T, W, delta_in, i0, i1, k0, k1, False, True)
        else:
            panel_product(delta.T, W, delta_in, i0, i1, k0, k1, False)
        multiply_derivative(delta_in, a_in, i0, i1, k0, k1, code)


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def dense_grad(delta, a_in, gW, gb, accumulate):
    """Weight and bias gradient of one layer: ``gW (+)= delta.T @ a_in``, ``gb (+)= sum_i delta``.

    Parameters
    ----------
    delta : (n, n_out) array
    a_in : (n, n_in) array
    gW : (n_out, n_in) array, written (added to when ``accumulate``)
    gb : (n_out,) array, written (added to when ``accumulate``)
    accumulate : bool
    """
    n_out, n_in = gW.shape
    n = delta.shape[0]
    if n == 1:
        _grad_one(delta, a_in, gW, gb, accumulate)
    elif n_out < BLOCK and not accumulate:  # one or a few output units: a plain loop
        row_product(delta, a_in, gW)
        column_sums(delta, gb, 0, n_out, accumulate)
    elif (not accumulate and n * n_out * n_in >= BLAS_MIN_WORK
          and gemm_tn(delta, a_in, gW)):
        column_sums(delta, gb, 0, n_out, False)
    elif n * n_out * n_in < PARALLEL_MIN_WORK:
        panel_product(delta, a_in, gW, 0, n_out, 0, n_in, accumulate)
        column_sums(delta, gb, 0, n_out, accumulate)
    else:
        _grad_tiles(delta, a_in, gW, gb, accumulate)


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True)
def _grad_tiles(delta, a_in, gW, gb, accumulate):
    """``dense_grad``'s product split into tiles, one ``prange`` iteration each."""
    n_out, n_in = gW.shape
    n = delta.shape[0]
    packed = packs(n, n_in, n_out)
    # tiles of PACK_R rows x TILE_PACK_COLS columns through packed operands, else of
    # TILE_GRAD_ROWS rows x PANEL columns
    rows, cols = (PACK_R, TILE_PACK_COLS) if packed else (TILE_GRAD_ROWS, PANEL)
    for t in prange(_n_tiles(n_out, n_in, rows, cols)):
        j0, j1, k0, k1 = _tile(t, n_out, n_in, rows, cols)
        if packed:
            packed_product(delta, a_in, gW, j0, j1, k0, k1, accumulate, False)
        else:
            panel_product(delta, a_in, gW, j0, j1, k0, k1, accumulate)
        if k0 == 0:
            column_sums(delta, gb, j0, j1, accumulate)


assert FORWARD_TILE_ROWS % BLOCK == 0 and FORWARD_TILE_COLS % DOT_GROUP == 0
assert PACK_R % BLOCK == 0 and TILE_PACK_COLS % PACK_W == 0

__all__ = ["BLOCK", "FASTMATH", "PANEL", "PARALLEL_MIN_WORK", "dense_delta", "dense_forward",
           "dense_grad", "packs"]
