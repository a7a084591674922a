"""Register-blocked matrix-product micro-kernels used by ``fastbp._dense``.

Two forms cover the three products of a dense layer:

``dot_block``  -- ``C[i, j] = b[j] + sum_k A[i, k] * B[j, k]`` (both operands contiguous along
    ``k``; the forward product ``a_in @ W.T``). Outputs are computed in ``BLOCK x BLOCK``
    blocks: 16 independent reductions over ``k`` that LLVM vectorises along ``k``, each value
    loaded from ``A`` or ``B`` feeding 4 multiply-adds.

``panel_product`` -- ``C[r, k] (+)= sum_s P[s, r] * Q[s, k]`` (a sum of rank-1 updates along
    the contiguous rows of ``Q``; ``delta @ W`` with ``P = delta.T`` and ``delta.T @ a_in``
    with ``P = delta``). Outputs are computed in panels of ``BLOCK`` rows x ``PANEL`` columns
    whose accumulators live in a fixed-size stack buffer (``_stack_panel``): with the panel
    width a compile-time constant, LLVM promotes the buffer to vector registers, so the
    inner loop is ``BLOCK`` broadcasts, one vector load per ``16`` columns and
    ``BLOCK * PANEL`` multiply-adds, with no loads or stores of the output.

Every output element is produced by one fixed sequence of operations that depends only on
its position relative to the blocking (never on which thread or tile computes it), which
is what makes the parallel kernels bitwise reproducible for any thread count. No function
here allocates: the panel buffer is an ``alloca`` in the caller's stack frame.
"""

from llvmlite import ir
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

#: fastmath flags that keep NaN and inf meaningful (DESIGN.md)
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

#: rows (and, for ``dot_block``, columns) of one register block
BLOCK = 4

#: columns of one ``panel_product`` panel (2 AVX-512 float32 vectors, 4 float64 vectors)
PANEL = 32

_PANEL_ELEMENTS = BLOCK * PANEL


@intrinsic
def _stack_panel(typingctx, dtype):
    """A pointer to ``BLOCK * PANEL`` uninitialised elements of ``dtype`` on the stack.

    The ``alloca`` is placed in the entry block of the function it is inlined into, so it is
    made once per call of that function (never per loop iteration) and needs no free.
    """
    dt = dtype.dtype
    sig = types.CPointer(dt)(dtype)

    def codegen(context, builder, signature, args):
        lty = context.get_data_type(dt)
        return cgutils.alloca_once(
            builder, lty, size=ir.Constant(ir.IntType(64), _PANEL_ELEMENTS)
        )

    return sig, codegen


# --------------------------------------------------------------------------- dot-product form
@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _dot_4x4(A, B, b, C, i, j):
    K = A.shape[1]
    z = C.dtype.type(0)
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = z
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = z
    for k in range(K):
        a0 = A[i, k]
        a1 = A[i + 1, k]
        a2 = A[i + 2, k]
        a3 = A[i + 3, k]
        w0 = B[j, k]
        w1 = B[j + 1, k]
        w2 = B[j + 2, k]
        w3 = B[j + 3, k]
        s00 += a0 * w0
        s01 += a0 * w1
        s02 += a0 * w2
        s03 += a0 * w3
        s10 += a1 * w0
        s11 += a1 * w1
        s12 += a1 * w2
        s13 += a1 * w3
        s20 += a2 * w0
        s21 += a2 * w1
        s22 += a2 * w2
        s23 += a2 * w3
        s30 += a3 * w0
        s31 += a3 * w1
        s32 += a3 * w2
        s33 += a3 * w3
    b0, b1, b2, b3 = b[j], b[j + 1], b[j + 2], b[j + 3]
    C[i, j] = s00 + b0
    C[i, j + 1] = s01 + b1
    C[i, j + 2] = s02 + b2
    C[i, j + 3] = s03 + b3
    C[i + 1, j] = s10 + b0
    C[i + 1, j + 1] = s11 + b1
    C[i + 1, j + 2] = s12 + b2
    C[i + 1, j + 3] = s13 + b3
    C[i + 2, j] = s20 + b0
    C[i + 2, j + 1] = s21 + b1
    C[i + 2, j + 2] = s22 + b2
    C[i + 2, j + 3] = s23 + b3
    C[i + 3, j] = s30 + b0
    C[i + 3, j + 1] = s31 + b1
    C[i + 3, j + 2] = s32 + b2
    C[i + 3, j + 3] = s33 + b3


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _dot_4x1(A, B, b, C, i, j):
    K = A.shape[1]
    z = C.dtype.type(0)
    s0 = s1 = s2 = s3 = z
    for k in range(K):
        w = B[j, k]
        s0 += A[i, k] * w
        s1 += A[i + 1, k] * w
        s2 += A[i + 2, k] * w
        s3 += A[i + 3, k] * w
    C[i, j] = s0 + b[j]
    C[i + 1, j] = s1 + b[j]
    C[i + 2, j] = s2 + b[j]
    C[i + 3, j] = s3 + b[j]


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _dot_1x4(A, B, b, C, i, j):
    K = A.shape[1]
    z = C.dtype.type(0)
    s0 = s1 = s2 = s3 = z
    for k in range(K):
        a = A[i, k]
        s0 += a * B[j, k]
        s1 += a * B[j + 1, k]
        s2 += a * B[j + 2, k]
        s3 += a * B[j + 3, k]
    C[i, j] = s0 + b[j]
    C[i, j + 1] = s1 + b[j + 1]
    C[i, j + 2] = s2 + b[j + 2]
    C[i, j + 3] = s3 + b[j + 3]


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _dot_1x1(A, B, b, C, i, j):
    K = A.shape[1]
    s = C.dtype.type(0)
    for k in range(K):
        s += A[i, k] * B[j, k]
    C[i, j] = s + b[j]


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def dot_block(A, B, b, C, i0, i1, j0, j1):
    """``C[i, j] = b[j] + sum_k A[i, k] * B[j, k]`` for ``i0 <= i < i1``, ``j0 <= j < j1``.

    ``A`` (n, K), ``B`` (m, K), ``b`` (m,), ``C`` (n, m). Row blocks start at ``i0`` and column
    blocks at ``j0``; callers keep both multiples of ``BLOCK`` for reproducible tiling.
    """
    i0 = max(i0, 0)  # see panel_product
    j0 = max(j0, 0)
    i = i0
    while i + BLOCK <= i1:
        j = j0
        while j + BLOCK <= j1:
            _dot_4x4(A, B, b, C, i, j)
            j += BLOCK
        while j < j1:
            _dot_4x1(A, B, b, C, i, j)
            j += 1
        i += BLOCK
    while i < i1:
        j = j0
        while j + BLOCK <= j1:
            _dot_1x4(A, B, b, C, i, j)
            j += BLOCK
        while j < j1:
            _dot_1x1(A, B, b, C, i, j)
            j += 1
        i += 1


# -------------------------------------------------------------------------- rank-update form
@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _panel_4(P, Q, C, r, k0, accumulate):
    """``C[r:r+4, k0:k0+PANEL] (+)= P[:, r:r+4].T @ Q[:, k0:k0+PANEL]``, registers only."""
    acc = carray(_stack_panel(C.dtype), (BLOCK, PANEL))
    z = C.dtype.type(0)
    for kk in range(PANEL):
        acc[0, kk] = z
        acc[1, kk] = z
        acc[2, kk] = z
        acc[3, kk] = z
    for s in range(P.shape[0]):
        p0 = P[s, r]
        p1 = P[s, r + 1]
        p2 = P[s, r + 2]
        p3 = P[s, r + 3]
        for kk in range(PANEL):
            q = Q[s, k0 + kk]
            acc[0, kk] += p0 * q
            acc[1, kk] += p1 * q
            acc[2, kk] += p2 * q
            acc[3, kk] += p3 * q
    if accumulate:
        for rr in range(BLOCK):
            for kk in range(PANEL):
                C[r + rr, k0 + kk] += acc[rr, kk]
    else:
        for rr in range(BLOCK):
            for kk in range(PANEL):
                C[r + rr, k0 + kk] = acc[rr, kk]


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _panel_1(P, Q, C, r, k0, accumulate):
    """One row: ``C[r, k0:k0+PANEL] (+)= P[:, r] @ Q[:, k0:k0+PANEL]``."""
    acc = carray(_stack_panel(C.dtype), (BLOCK, PANEL))
    z = C.dtype.type(0)
    for kk in range(PANEL):
        acc[0, kk] = z
    for s in range(P.shape[0]):
        p0 = P[s, r]
        for kk in range(PANEL):
            acc[0, kk] += p0 * Q[s, k0 + kk]
    if accumulate:
        for kk in range(PANEL):
            C[r, k0 + kk] += acc[0, kk]
    else:
        for kk in range(PANEL):
            C[r, k0 + kk] = acc[0, kk]


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _panel_4_narrow(P, Q, C, r, k0, w, accumulate):
    """``_panel_4`` for a last panel of ``w < PANEL`` columns."""
    acc = carray(_stack_panel(C.dtype), (BLOCK, PANEL))
    z = C.dtype.type(0)
    for kk in range(w):
        acc[0, kk] = z
        acc[1, kk] = z
        acc[2, kk] = z
        acc[3, kk] = z
    for s in range(P.shape[0]):
        p0 = P[s, r]
        p1 = P[s, r + 1]
        p2 = P[s, r + 2]
        p3 = P[s, r + 3]
        for kk in range(w):
            q = Q[s, k0 + kk]
            acc[0, kk] += p0 * q
            acc[1, kk] += p1 * q
            acc[2, kk] += p2 * q
            acc[3, kk] += p3 * q
    for rr in range(BLOCK):
        for kk in range(w):
            if accumulate:
                C[r + rr, k0 + kk] += acc[rr, kk]
            else:
                C[r + rr, k0 + kk] = acc[rr, kk]


@njit(fastmath=FASTMATH, cache=True, nogil=True, inline="always")
def _panel_1_narrow(P, Q, C, r, k0, w, accumulate):
    acc = carray(_stack_panel(C.dtype), (BLOCK, PANEL))
    z = C.dtype.type(0)
    for kk in range(w):
        acc[0, kk] = z
    for s in range(P.shape[0]):
        p0 = P[s, r]
        for kk in range(w):
            acc[0, kk] += p0 * Q[s, k0 + kk]
    for kk in range(w):
        if accumulate:
            C[r, k0 + kk] += acc[0, kk]
        else:
            C[r, k0 + kk] = acc[0, kk]


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def panel_product(P, Q, C, r0, r1, k0, k1, accumulate):
    """``C[r, k] (+)= sum_s P[s, r] * Q[s, k]`` for ``r0 <= r < r1``, ``k0 <= k < k1``.

    ``P`` (S, R), ``Q`` (S, K), ``C`` (R, K). Panels start at ``k0`` and row blocks at
    ``r0``; callers keep ``k0`` a multiple of ``PANEL`` and ``r0`` of ``BLOCK``.
    """
    # clamping the starts to >= 0 lets LLVM drop Numba's negative-index wraparound from the
    # hot loops (without it, the panel accumulators are not kept in registers: ~5x slower)
    r0 = max(r0, 0)
    k0 = max(k0, 0)
    k = k0
    while k < k1:
        w = min(PANEL, k1 - k)
        r = r0
        while r + BLOCK <= r1:
            if w == PANEL:
                _panel_4(P, Q, C, r, k, accumulate)
            else:
                _panel_4_narrow(P, Q, C, r, k, w, accumulate)
            r += BLOCK
        while r < r1:
            if w == PANEL:
                _panel_1(P, Q, C, r, k, accumulate)
            else:
                _panel_1_narrow(P, Q, C, r, k, w, accumulate)
            r += 1
        k += PANEL


@njit(fastmath=FASTMATH, cache=True, nogil=True)
def column_sums(D, out, j0, j1, accumulate):
    """``out[j] (+)= sum_i D[i, j]`` for ``j0 <= j < j1``, summing rows in order."""
    if not accumulate:
        for j in range(j0, j1):
            out[j] = 0
    for i in range(D.shape[0]):
        for j in range(j0, j1):
            out[j] += D[i, j]


__all__ = ["BLOCK", "FASTMATH", "PANEL", "column_sums", "dot_block", "panel_product"]
