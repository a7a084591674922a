"""One matrix-product micro-kernel, with packing routines that handle the transposes.

Every product of a dense layer is ``C (+)= A @ B`` with ``A`` ``(M, K)``, ``B`` ``(K, N)``
and ``C`` ``(M, N)``, each operand given as a flat buffer, an offset and the strides of its
two axes, so the transposed operands (``W.T`` in the forward pass, ``delta.T`` in the
weight gradient) need no copies and no separate kernels:

- forward: ``a_out = a_in @ W.T`` (``B[k, j] = W[j, k]``: strides ``(1, n_in)``)
- delta: ``delta_in = delta @ W``
- weight gradient: ``gW = delta.T @ a_in`` (``A[j, i] = delta[i, j]``: strides ``(1, n_out)``)

``gemm_tile`` computes a block of ``C`` the BLIS way: per chunk of ``KC`` reduction steps
it copies each ``NR``-column panel of ``B`` into a contiguous buffer (``pack_b``;
zero-padded at the edges) and runs the ``MR x NR`` register-blocked micro-kernel over it
and ``A``: read in place when its rows are contiguous, or its columns (``delta.T``: a
block's ``MR`` values of a step are adjacent) with steps at most ``A_INPLACE_STRIDE``
bytes apart; otherwise its rows are first copied ``MR`` rows interleaved (``pack_a``).
The micro-kernels (``_micro``) are vector IR: accumulator vectors in registers,
``4 x 64`` float32 (``4 x 32`` float64), sixteen 512-bit registers, for wide products;
``4 x 32`` (``4 x 16``) or ``8 x 16`` (``8 x 8``) for narrower ones (``panel_width``).
The packing buffers live on the stack of the calling thread, so nothing is allocated.

Every element of ``C`` is the same sum in the same order wherever it lies: per ``KC``
chunk, a fused multiply-add per reduction step into its own accumulator lane, chunks added
in order. Which tile, panel or thread computes it does not change a bit, so products are
reproducible for any tiling and thread count; the panel width depends on the product's
shape only. The only fast-math flag is ``contract`` (the fused multiply-adds):
no reassociation, so the rounding does not depend on how LLVM optimises a caller.
"""

from typing import NamedTuple

import numpy as np
from numba import carray, types

from ._cache import njit
from ._flat import c_array, flat
from ._llvm import (
    borrowed,
    elem_bytes,
    outer_rows,
    panel_fma,
    panel_fma2,
    ptr_at,
    rt,
    stack,
    transpose_block,
    wide_vectors,
)
from ._micro import micro_kernel

#: fused multiply-adds only: the micro-kernel's ``acc += a * b`` has one possible fusion
FMA = {"contract"}

#: rows of one register block
MR = 4

#: reduction steps per packed chunk (a float32 wide panel of B is then 32 KiB: L1-resident)
KC = 128

#: bytes of a tile's rows of A for one chunk (``MC`` rows x ``KC`` steps) when A is packed:
#: sets ``mc_rows``, and the stack buffer of a packed A
A_PACK_BYTES = 1 << 16

#: the same when A is read in place (its rows contiguous): a taller tile, its chunk of A
#: still in L2 while each packed panel of B passes over all its rows, so that a product
#: of many rows (predict) packs B a quarter as often as with 128 rows; measured on one
#: core: the forward products of predict 0.89-0.91x -> 0.96-1.03x OpenBLAS (784 -> 256,
#: 1,024 rows), a wide (1024-2048-2048-10) training step 6% faster
A_INPLACE_BYTES = 1 << 19

#: largest step (bytes) between a column-contiguous A's reduction steps read in place: wider
#: steps put a chunk's cache lines in few L1 sets, and A is packed
A_INPLACE_STRIDE = 1024

#: bytes of the stack buffer that holds one packed panel of B (KC x NR)
B_PACK_BYTES = 1 << 15

#: bytes per row of a register block: wide (4 x 512-bit), mid (2 x 512-bit) and narrow
#: (1 x 512-bit)
WIDE_BYTES = 256
MID_BYTES = 128
NARROW_BYTES = 64

#: panel widths (``gemm_tile``'s ``width``): ``panel_width`` picks one by the product's N
NARROW, MID, WIDE = 0, 1, 2

_a_stack = stack(A_PACK_BYTES)
_b_stack = stack(B_PACK_BYTES)



@njit(cache=True, nogil=True)
def mc_rows(itemsize, packed):
    """Most rows of C per tile: a tile's rows of A, one chunk of steps, fill
    ``A_PACK_BYTES`` (A ``packed``) or ``A_INPLACE_BYTES`` (read in place); they stay in L2
    while the tile's panels pass."""
    return (A_PACK_BYTES if packed else A_INPLACE_BYTES) // (KC * itemsize)


@njit(inline="always", cache=True, nogil=True)
def a_packed(cs, itemsize, rows):
    """Whether ``gemm_tile`` packs an A of ``rows`` rows whose reduction steps are ``cs``
    elements apart: A is read in place when its rows are contiguous (``cs == 1``), or its
    columns (delta.T) with steps close enough that a chunk's cache lines stay apart in L1;
    else packed, MR-interleaved. Steps exactly ``MR`` apart are the packed layout, which a
    register block tells by its strides alone: such an A is packed unless it has at most
    ``MR`` rows (one block: then no row of a second block is ever addressed; the weight
    gradient of a layer of ``MR`` units)."""
    return cs != 1 and ((cs == MR and rows > MR) or cs * itemsize > A_INPLACE_STRIDE)


@njit(cache=True, nogil=True)
def nr_cols(itemsize, width):
    """Columns of one micro-kernel panel of width ``width`` (``NARROW``, ``MID``, ``WIDE``)."""
    return (WIDE_BYTES if width == WIDE else MID_BYTES if width == MID else NARROW_BYTES) \
        // itemsize


@njit(inline="always", cache=True, nogil=True)
def panel_width(N, itemsize):
    """The panel width for a product of ``N`` columns: ``WIDE`` panels for at least a wide
    panel's columns; else ``MID`` (4 rows x 2 vectors) where its panels pad ``N`` to no more
    columns than the narrow ones (4 rows x 2 vectors take half the loads per multiply-add of
    8 rows x 1: measured 1.1-1.5x faster on such shapes), else ``NARROW``. A function of
    the shape only (and every width rounds alike anyway: see the module docstring)."""
    nn = NARROW_BYTES // itemsize
    nm = MID_BYTES // itemsize
    if N * itemsize >= WIDE_BYTES:
        return WIDE
    if N > nn and (N + nm - 1) // nm * nm == (N + nn - 1) // nn * nn:
        return MID
    return NARROW


@njit(inline="always", cache=True, nogil=True)
def _row_offset(r, last, block_stride, a_rs):
    """Offset of row ``r`` (at most ``last``) of a two-block register block."""
    q = min(r, last)
    return np.int64((q // MR) * block_stride + (q % MR) * a_rs)


@njit(cache=True, nogil=True, optimised_by_callers=True)
def _two_block_rows(last, kc, a_rs, a_ks):
    """Offsets of the ``2 MR`` rows of a two-block register block: the second block ``MR``
    rows on, i.e. ``MR * kc`` values on when A is packed MR-interleaved (rows 1 apart,
    steps ``MR`` apart), ``MR`` rows on when read in place; rows past ``last`` repeat it."""
    bs = MR * kc if a_rs == 1 and a_ks == MR else MR * a_rs
    return (_row_offset(0, last, bs, a_rs), _row_offset(1, last, bs, a_rs),
            _row_offset(2, last, bs, a_rs), _row_offset(3, last, bs, a_rs),
            _row_offset(4, last, bs, a_rs), _row_offset(5, last, bs, a_rs),
            _row_offset(6, last, bs, a_rs), _row_offset(7, last, bs, a_rs))


@njit(inline="always", cache=True, nogil=True)
def _block_rows(last, a_rs):
    """Offsets of the ``MR`` rows of a one-block register block (rows past ``last``
    repeat it)."""
    return (np.int64(0), np.int64(min(1, last) * a_rs), np.int64(min(2, last) * a_rs),
            np.int64(min(3, last) * a_rs))


#: the register blocks (``_micro``): ``MR`` rows x 4 vectors (wide), x 2 vectors (mid), and
#: ``2 MR`` rows x 1 vector (narrow: eight independent sums keep both fused multiply-add
#: units busy, where one block's four would wait on each other's latency)
_wide_k, _mid_k, _narrow_k = micro_kernel(MR, 4), micro_kernel(MR, 2), micro_kernel(2 * MR, 1)


@njit(inline="always", cache=True, nogil=True)
def micro(Ap, ap0, a_rs, a_ks, Bp, kc, C, c0, ldc, rows, cols, accumulate, width):
    """``C[c0 + r * ldc + j] (+)= sum_k A[r, k] * Bp[k * NR + j]`` for the ``rows x cols``
    valid part of one register block of width ``width``. Row ``r`` of the A block, step
    ``k``, is ``Ap[ap0 + r * a_rs + k * a_ks]`` (A itself, its rows or its columns
    contiguous); the narrow block's second ``MR`` rows start ``MR`` rows on (``MR * kc``
    values on when packed MR-interleaved: rows 1 apart, steps ``MR`` apart). Rows past
    ``rows`` repeat the last valid row (computed, never stored), so nothing past A's last
    row is read."""
    last = rows - 1
    if width == NARROW:
        _narrow_k(Ap, ap0, _two_block_rows(last, kc, a_rs, a_ks), a_ks, Bp, kc, C, c0, ldc,
                  rows, cols, accumulate)
    elif width == WIDE:
        _wide_k(Ap, ap0, _block_rows(last, a_rs), a_ks, Bp, kc, C, c0, ldc, rows, cols,
                accumulate)
    else:
        _mid_k(Ap, ap0, _block_rows(last, a_rs), a_ks, Bp, kc, C, c0, ldc, rows, cols,
               accumulate)


@njit(error_model="numpy", cache=True, nogil=True)
def _pack_a_kernel(A, off, rs, cs, i0, mc, k0, kc, Ap):
    """Rows ``i0 .. i0 + mc`` of ``A`` (element ``(i, k)`` at ``A[off + i*rs + k*cs]``, the
    columns contiguous, e.g. ``delta.T``), reduction steps ``k0 .. k0 + kc``, into ``Ap`` in
    blocks of ``MR`` rows (block ``b`` at ``b * MR * kc``, rows past ``mc`` zero),
    MR-interleaved: the block's ``MR`` values of a step are contiguous.
    Returns the layout inside a block, ``(a_rs, a_ks) = (1, MR)``. (An A whose rows are
    contiguous is read in place.)"""
    wide_vectors()
    z = Ap.dtype.type(0)
    for b in range((mc + MR - 1) // MR):
        dst = carray(ptr_at(Ap, b * MR * kc), (kc, MR))
        n_valid = min(MR, mc - b * MR)
        src = carray(ptr_at(A, off + (i0 + b * MR) * rs + k0 * cs),
                     ((kc - 1) * cs + (n_valid - 1) * rs + 1,))
        for k in range(kc):
            for r in range(MR):
                dst[k, r] = src[k * cs + min(r, n_valid - 1) * rs] if r < n_valid else z
    return 1, MR


#: compiled at the first product that packs A (``_flat``, lazy): only the weight gradient of
#: a layer of more than 256 float32 (128 float64) units packs A (``a_packed``), so most
#: networks never compile it. ``_dense._layer_op`` makes the first call before a
#: product's tiles run on threads.
pack_a = flat(_pack_a_kernel, lambda dtype: types.UniTuple(types.int64, 2)(
    c_array(dtype, 1), types.int64, types.int64, types.int64, types.int64, types.int64,
    types.int64, types.int64, c_array(dtype, 1)), lazy=True)


@njit(error_model="numpy", cache=True, nogil=True, optimised_by_callers=True)
def pack_b(B, off, rs, cs, k0, kc, j0, nc, nr, Bp):
    """Steps ``k0 .. k0 + kc`` x columns ``j0 .. j0 + nc`` of ``B`` (element ``(k, j)`` at
    ``B[off + k*rs + j*cs]``) into the ``(kc, nr)`` panel ``Bp``, zero past ``nc``."""
    wide_vectors()
    z = Bp.dtype.type(0)
    dst = carray(ptr_at(Bp, 0), (kc, nr))
    if cs == 1:  # rows of the panel are contiguous in B: copies
        for k in range(kc):
            row = carray(ptr_at(B, off + (k0 + k) * rs + j0), (nc,))
            for j in range(nc):
                dst[k, j] = row[j]
            for j in range(nc, nr):
                dst[k, j] = z
    else:  # columns are contiguous (B = W.T, rs == 1): a transpose, by register blocks
        v = 64 // elem_bytes(Bp)
        flat = carray(ptr_at(Bp, 0), (kc * nr,))
        if nc < nr:  # a last, partial panel: zeros first (vector stores)
            for e in range(np.uint64(kc * nr)):
                flat[e] = z
        jb, kb = nc - nc % v, kc - kc % v
        for j in range(0, jb, v):
            for k in range(0, kb, v):
                transpose_block(B, off + (k0 + k) * rs + (j0 + j) * cs, cs, flat, k * nr + j, nr)
        # the columns past the last whole block, and the steps past it in the others
        unr = np.uint64(nr)
        for j in range(np.uint64(nc if jb < nc or kb < kc else 0)):
            col = carray(ptr_at(B, off + k0 * rs + (j0 + np.int64(j)) * cs), (kc,))
            for k in range(np.uint64(kb if np.int64(j) < jb else 0), np.uint64(kc)):
                flat[k * unr + j] = col[k]


class Operand(NamedTuple):
    """A matrix operand of ``gemm_tile``: element ``(i, j)`` is ``buf[off + i * rs + j * cs]``.

    Build it in compiled code with run-time strides (``rt(1)``, not ``1``: a literal would
    make a separate compiled ``gemm_tile``).
    """

    buf: np.ndarray
    off: int
    rs: int
    cs: int


@njit(error_model="numpy", cache=True, nogil=True, optimised_by_callers=True)
def gemm_tile(a, b, c, i0, i1, j0, j1, K, accumulate, width):
    """``C[i, j] (+)= sum_k A[i, k] * B[k, j]`` for ``i0 <= i < i1`` (at most ``mc_rows``
    rows, as A is packed or not: ``a_packed``) and ``j0 <= j < j1``, with ``A``, ``B`` and
    ``C`` the ``Operand`` s ``a``, ``b``, ``c`` (``C``'s rows contiguous: ``c.cs`` is 1)."""
    wide_vectors()
    A, B, C = borrowed(a.buf), borrowed(b.buf), borrowed(c.buf)  # no reference counting
    # (borrowed as A is: one signature of the micro-kernel and the packing routines)
    Ap = borrowed(carray(_a_stack(C.dtype), (A_PACK_BYTES // elem_bytes(C),)))
    Bp = borrowed(carray(_b_stack(C.dtype), (B_PACK_BYTES // elem_bytes(C),)))
    nr = nr_cols(elem_bytes(C), width)
    mc = i1 - i0
    ldc = c.rs
    for k0 in range(0, K, KC):
        kc = min(KC, K - k0)
        acc = accumulate or k0 > 0
        packed = a_packed(a.cs, elem_bytes(C), mc)
        if packed:
            pack_a(A, a.off, a.rs, a.cs, i0, mc, k0, kc, Ap)
        for j in range(j0, j1, nr):
            nc = min(nr, j1 - j)
            if b.cs == 1 and b.rs == nr and nc == nr:
                # B's rows are exactly a panel's (a product of one panel's columns): the
                # panel is B itself, read in place
                Bk = borrowed(carray(ptr_at(B, b.off + k0 * nr + j), (kc * nr,)))
            else:
                pack_b(B, b.off, b.rs, b.cs, k0, kc, j, nc, nr, Bp)
                Bk = Bp
            step = 2 * MR if width == NARROW else MR  # rows per register block
            for ib in range(0, mc, step):
                rows = min(step, mc - ib)
                c0 = c.off + (i0 + ib) * ldc + j
                if packed:
                    micro(Ap, ib * kc, rt(1), rt(MR), Bk, kc, C, c0, ldc, rows, nc, acc, width)
                else:
                    micro(A, a.off + (i0 + ib) * a.rs + k0 * a.cs, a.rs, a.cs, Bk, kc, C,
                          c0, ldc, rows, nc, acc, width)


# ------------------------------------------------------------------ one row (online learning)
# With one row the products are matrix-vector work, and packing would cost as much as the
# product: these loops skip it. Each computes every element with the same operations in the
# same order as the tile kernels above (the same chunks and fused multiply-adds),
# so a row's result does not depend on how many rows share its batch: ``predict(X[:1])`` is
# ``predict(X)[:1]`` bit for bit.
_ROW_BYTES = 1 << 12
_row_stack = stack(_ROW_BYTES)
_lanes_stack = stack(2 * 64)
_wt_stack = stack(2 * KC * 64)


@njit(inline="always", error_model="numpy", cache=True, nogil=True)
def _fill_panel(W, w0, ldw, j, cols, k0, kc, Wt, off, v):
    """``Wt[off + k*v + u] = W[w0 + (j + u)*ldw + k0 + k]`` for ``k < kc``, ``u < v``
    (zeros past ``cols`` rows): a panel of ``cols`` rows of W, transposed."""
    z = Wt.dtype.type(0)
    kb = kc - kc % v if cols == v else 0
    for k in range(0, kb, v):
        transpose_block(W, w0 + j * ldw + k0 + k, ldw, Wt, off + k * v, v)
    if kb < kc:  # the steps past the last whole block, or a panel's last rows
        uv = np.uint64(v)
        P = carray(ptr_at(Wt, off), (kc * v,))
        if cols < v:
            for e in range(np.uint64(kc * v)):
                P[e] = z
        for u in range(np.uint64(cols)):
            src = carray(ptr_at(W, w0 + (j + np.int64(u)) * ldw + k0), (kc,))
            for k in range(np.uint64(kb), np.uint64(kc)):
                P[k * uv + u] = src[k]


@njit(inline="always", error_model="numpy", cache=True, nogil=True)
def _store_panel(acc, a0, C, c0, cols, first):
    """``C[c0 + u] (+)= acc[a0 + u]`` for ``u < cols`` (``first``: the first chunk)."""
    out = carray(ptr_at(C, c0), (cols,))
    if first:
        for u in range(np.uint64(cols)):
            out[u] = acc[a0 + u]
    else:
        for u in range(np.uint64(cols)):
            out[u] = out[u] + acc[a0 + u]


@njit(fastmath=FMA, error_model="numpy", cache=True, nogil=True)
def row_times_transposed(x, x0, W, w0, ldw, C, c0, N, K):
    """``C[c0 + j] = sum_k x[x0 + k] * W[w0 + j*ldw + k]`` for ``j < N``: one row of the
    forward product, as ``gemm_tile`` computes it."""
    wide_vectors()
    x, W, C = borrowed(x), borrowed(W), borrowed(C)
    # gemm_tile's order: per KC chunk a chain of fused multiply-adds from zero, chunks added.
    # Panels of v rows of W are first copied transposed (in-register block transposes), so
    # that each step is one vector multiply-add over v outputs; two panels at a time, so
    # that two independent chains share each step. (Unsigned loop indices over carray
    # views: no negative-index wraparound, which would turn the loads into gathers.)
    v = 64 // elem_bytes(C)
    acc = carray(_lanes_stack(C.dtype), (2 * v,))
    Wt = carray(_wt_stack(C.dtype), (2 * KC * v,))  # two KC x v panels, row-major
    z = C.dtype.type(0)
    for j in range(0, N, 2 * v):
        cols = min(v, N - j)
        cols2 = min(v, N - j - v)  # the second panel's rows (<= 0: none)
        if cols <= 2:  # one or two outputs: scalar chains beat packing a panel
            for jj in range(j, N):
                r = carray(ptr_at(W, w0 + jj * ldw), (K,))
                for k0 in range(0, K, KC):
                    s = z
                    for k in range(k0, min(K, k0 + KC)):
                        s += x[x0 + k] * r[k]
                    C[c0 + jj] = s if k0 == 0 else C[c0 + jj] + s
            break
        for k0 in range(0, K, KC):
            kc = min(KC, K - k0)
            _fill_panel(W, w0, ldw, j, cols, k0, kc, Wt, 0, v)
            if cols2 > 0:
                _fill_panel(W, w0, ldw, j + v, cols2, k0, kc, Wt, KC * v, v)
                panel_fma2(Wt, KC * v, x, x0 + k0, kc, acc, 0)
                _store_panel(acc, v, C, c0 + j + v, cols2, k0 == 0)
            else:
                panel_fma(Wt, x, x0 + k0, kc, acc, 0)
            _store_panel(acc, 0, C, c0 + j, cols, k0 == 0)


@njit(fastmath=FMA, error_model="numpy", cache=True, nogil=True)
def row_times(a, a0, B, b0, ldb, C, c0, N, K):
    """``C[c0 + j] = sum_k a[a0 + k] * B[b0 + k*ldb + j]`` for ``j < N`` (one row of the
    delta product), as ``gemm_tile`` computes it."""
    wide_vectors()
    a, B, C = borrowed(a), borrowed(B), borrowed(C)
    P = _ROW_BYTES // elem_bytes(C)
    acc = carray(_row_stack(C.dtype), (P,))
    z = C.dtype.type(0)
    for j0 in range(0, N, P):
        pc = min(P, N - j0)
        for k0 in range(0, K, KC):
            for u in range(np.uint64(pc)):
                acc[u] = z
            for k in range(k0, min(K, k0 + KC)):
                ak = a[a0 + k]
                row = carray(ptr_at(B, b0 + k * ldb + j0), (pc,))
                for u in range(np.uint64(pc)):
                    acc[u] += ak * row[u]
            out = carray(ptr_at(C, c0 + j0), (pc,))
            if k0 == 0:
                for u in range(np.uint64(pc)):
                    out[u] = acc[u]
            else:
                for u in range(np.uint64(pc)):
                    out[u] = out[u] + acc[u]


@njit(error_model="numpy", cache=True, nogil=True)
def outer(d, d0, M, a, a0, N, C, c0, accumulate):
    """``C[c0 + i*N + j] (+)= d[d0 + i] * a[a0 + j]``: the weight gradient of one row, as
    ``gemm_tile`` computes it (a product from zero, then added: no fused multiply-add)."""
    wide_vectors()
    outer_rows(d, d0, M, a, a0, N, C, c0, accumulate)
