"""Sparse inputs: the first layer over CSR rows, and the drivers that use it.

A CSR matrix reaches the drivers as a ``CSRRows`` bundle (``fastbp.kernels._layout``) and
the layer-0 kernels as its three arrays: ``Xd`` (values, the model's dtype), ``Xi``
(column of each value, int64) and ``Xp`` (row ``r`` holds ``Xd[Xp[r]:Xp[r + 1]]``, int64,
``n + 1`` entries). The input layer is never stored dense: a batch is read from the
CSR arrays directly through the epoch's row order (no gather, no per-step allocation), and

- forward of weight layer 0: ``z[r, o] = b[o] + sum_k x_k W[o, j_k]`` over the non-zeros
  ``(j_k, x_k)`` of row ``r``, one row ``o`` of ``W`` (row-major ``(n_out, n_in)``) at a
  time for all batch rows, so that it stays in cache while it is read at the batch's
  columns; the usual epilogue (activation, kept ``z``, dropout) follows;
- weight gradient of layer 0: ``gW[o, j_k] (+)= delta[r, o] * x_k`` over the batch's
  non-zeros, row ``o`` of ``gW`` owned by one loop iteration, rows of the batch in order:
  the same sums in the same order whatever the thread count. ``delta`` of the input layer
  is never computed.

The gradient (zeroing and scatter over the whole ``gW``) runs serially below
``PARALLEL_MIN_WORK`` element updates and otherwise as one ``prange`` over chunks of units,
each row of ``gW`` written by one iteration. The forward product is serial: in parallel
over units, threads would write neighbouring elements of the same rows of ``z`` (false
sharing), which measured slower than one thread.

The workspace of a sparse pass has an empty input block (``Network.workspace(cap,
sparse=True)``: offsets computed with ``sizes[0] = 0``), so memory is the CSR plus the
model plus the hidden layers' activations. Every other layer runs the dense ``layer_op``.

A CSR with a column index outside ``[0, n_in)`` or a decreasing ``Xp`` raises
``ValueError`` (checked on the rows each pass reads, as it reads them).
"""

import numpy as np
from numba import carray, prange, types

from ._activations import activate_flat as activate
from ._cache import njit
from ._codes import SOFTMAX, STATUS_NONFINITE_LOSS, STATUS_NONFINITE_PARAMS, STATUS_OK
from ._dense import (
    OP_DELTA,
    OP_FORWARD,
    OP_GRAD,
    PARALLEL_MIN_WORK,
    _bias_grad,
    _forward_epilogue,
    lay_type,
    layer_op,
)
from ._drivers import (
    account_batch,
    all_finite,
    apply_update,
    borrow,
    borrow_opt,
    check_batch,
    consecutive_run,
    counts_correct,
    gather_targets,
    weights_scale,
)
from ._flat import c_array, deref, flat
from ._llvm import as_array, ptr_at, rt, view2d
from ._llvm import borrowed as _borrowed
from ._network import (
    _view,
    batch_loss,
    inference_buffers,
    no_dropout_buffers,
    output_delta_flat,
    train_buffers,
)

#: chunks of units the parallel layer-0 gradient is cut into (a constant, not the thread
#: count; the results do not depend on it)
UNIT_CHUNKS = 64

__all__ = ["csr_forward", "csr_weight_grad", "loss_and_gradient_csr", "loss_csr",
           "predict_csr", "train_steps_csr"]


# ------------------------------------------------------------------ checks
@njit(cache=True, nogil=True)
def _check_csr(X, sizes, n_rows_T):
    """The CSR bundle ``X`` against the network's input width and the targets' rows
    (``n_rows_T < 0``: no targets). Its column indices are checked as the rows are read."""
    Xd, Xi, Xp = X.data, X.indices, X.indptr
    if Xp.shape[0] < 1 or Xd.shape[0] != Xi.shape[0]:
        raise ValueError("CSR arrays: indptr needs n + 1 entries and data/indices one length")
    if n_rows_T >= 0 and Xp.shape[0] - 1 != n_rows_T:
        raise ValueError("T must have one row per CSR row (indptr has n + 1 entries)")
    if Xp[0] != 0 or Xp[Xp.shape[0] - 1] > Xi.shape[0]:
        raise ValueError("CSR indptr must start at 0 and end at most at len(indices)")
    if sizes[0] < 1 or X.n_cols != sizes[0]:
        raise ValueError("the CSR's n_cols must equal sizes[0] (the input width, >= 1)")


@njit(inline="always", cache=True, nogil=True)
def _row_range(Xi, Xp, order, row0, r):
    """Index range in ``Xd``/``Xi`` of batch row ``r``: CSR row ``order[row0 + r]``, or
    ``row0 + r`` when ``order`` is empty."""
    row = row0 + r if order.shape[0] == 0 else order[row0 + r]
    k0, k1 = Xp[row], Xp[row + 1]
    if k0 < 0 or k1 < k0 or k1 > Xi.shape[0]:
        raise ValueError("CSR indptr must be non-decreasing and within len(indices)")
    return k0, k1


# ------------------------------------------------------------------ layer 0
@njit(error_model="numpy", cache=True, nogil=True)
def _forward_units(Xd, Xi, Xp, order, row0, lay, n, o0, o1):
    """``z[r, o] = sum_k x_k W[o, j_k]`` for units ``o0 <= o < o1``, one row of ``W`` at a
    time for all batch rows (it stays in cache while they read it)."""
    params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drop, seed, \
        step, x, x0 = lay
    n_in, n_out = sizes[0], sizes[1]
    Z = view2d(act, a_off[1], n, n_out)
    W = view2d(params, w_off[0], n_out, n_in)
    zero = Z.dtype.type(0)
    for o in range(o0, o1):
        for r in range(n):
            k0, k1 = _row_range(Xi, Xp, order, row0, r)
            s = zero
            for k in range(k0, k1):
                s += Xd[k] * W[o, Xi[k]]
            Z[r, o] = s


@njit(error_model="numpy", cache=True, nogil=True)
def _grad_units(Xd, Xi, Xp, order, row0, lay, n, accumulate, o0, o1):
    """``gW[o, j_k] (+)= delta[r, o] * x_k`` for units ``o0 <= o < o1``: row ``o`` of
    ``gW`` (zeroed first unless ``accumulate``), batch rows in order."""
    params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, codes, drop, seed, \
        step, x, x0 = lay
    n_in, n_out = sizes[0], sizes[1]
    D = view2d(delta, a_off[1], n, n_out)
    for o in range(o0, o1):
        g = carray(ptr_at(grads, w_off[0] + o * n_in), (n_in,))
        if not accumulate:
            for j in range(np.uint64(n_in)):
                g[j] = 0
        for r in range(n):
            d = D[r, o]
            k0, k1 = _row_range(Xi, Xp, order, row0, r)
            for k in range(k0, k1):
                g[Xi[k]] += d * Xd[k]


@njit(parallel=True, cache=True, nogil=True)
def _grad_parallel_kernel(Xd, Xi, Xp, order, row0, lay_ref, n, accumulate, per):
    """``_grad_units`` for all units in chunks of ``per``, one ``prange`` iteration each:
    every row of ``gW`` is written by one iteration, so the result does not depend on the
    thread count (nor on ``per``)."""
    lay = deref(lay_ref)  # the caller's tuple, passed by reference (see ``_flat``)
    n_out = lay[6][1]
    for c in prange((n_out + per - 1) // per):
        o0 = c * per
        _grad_units(Xd, Xi, Xp, order, row0, lay, n, accumulate, o0, min(n_out, o0 + per))


_C1 = c_array(types.int64, 1)

#: compiled at the first sparse gradient big enough for threads (``_flat``, lazy)
_grad_parallel = flat(_grad_parallel_kernel, lambda dtype: types.none(
    c_array(dtype, 1), _C1, _C1, _C1, types.int64, types.CPointer(lay_type(dtype)),
    types.int64, types.boolean, types.int64), lazy=True, fallback=True)


@njit(inline="always", cache=True, nogil=True)
def _csr_parts(X):
    """The ``CSRRows``' data, column indices and row pointers, borrowed (no reference
    counting, and the types training passes on: one signature per CSR kernel)."""
    return _borrowed(X.data), _borrowed(X.indices), _borrowed(X.indptr)


@njit(inline="always", cache=True, nogil=True)
def _pass_buffers(net, ws, n):
    """``inference_buffers``' checks for a pass over ``n`` rows, then ``(net, ws, lay)``
    with the buffers borrowed, as training's bundle has them (``csr_forward`` and
    ``csr_backward`` keep one signature)."""
    inference_buffers(net, ws, n, rt(1))
    net, ws = borrow(net, ws)
    return net, ws, no_dropout_buffers(net, ws)


@njit(error_model="numpy", cache=True, nogil=True)
def csr_forward(Xd, Xi, Xp, order, row0, lay, n):
    """Forward pass of weight layer 0 for ``n`` CSR rows, then the dense layers above.

    Batch row ``r`` is CSR row ``order[row0 + r]`` (``row0 + r`` with an empty ``order``).
    ``lay`` is ``layer_op``'s tuple over a sparse workspace (no input block).
    """
    sizes, codes = lay[6], lay[10]
    n_in, n_out = sizes[0], sizes[1]
    for r in range(n):  # check the rows' columns once, before the products
        k0, k1 = _row_range(Xi, Xp, order, row0, r)
        for k in range(k0, k1):
            j = Xi[k]
            if j < 0 or j >= n_in:
                raise ValueError("CSR column index outside 0 .. n_in - 1")
    _forward_units(Xd, Xi, Xp, order, row0, lay, n, rt(0), n_out)
    _forward_epilogue(lay, rt(0), n, rt(0), n, rt(0), n_out)
    if codes[0] == SOFTMAX:
        activate(view2d(lay[2], lay[9][1], n, n_out), rt(0), n, rt(0), n_out, codes[0])
    for p in range(1, sizes.shape[0] - 1):
        layer_op(rt(OP_FORWARD), lay, p, n, rt(False))


@njit(error_model="numpy", cache=True, nogil=True)
def csr_weight_grad(Xd, Xi, Xp, order, row0, lay, n, accumulate):
    """``gW^0 (+)= delta^1.T @ X_batch`` from the batch's non-zeros, and ``gb^0``.

    Row ``o`` of ``gW`` sums ``delta[r, o] * x`` over the batch rows in order (zeroed
    first unless ``accumulate``)."""
    sizes = lay[6]
    nnz = 0
    for r in range(n):
        k0, k1 = _row_range(Xi, Xp, order, row0, r)
        nnz += k1 - k0
    n_out = sizes[1]
    work = (nnz + (0 if accumulate else sizes[0])) * n_out  # scatter and zeroing
    if work < PARALLEL_MIN_WORK or n_out < 2:
        _grad_units(Xd, Xi, Xp, order, row0, lay, n, accumulate, rt(0), n_out)
    else:
        _grad_parallel(Xd, Xi, Xp, order, row0, lay, n, accumulate,
                       max(1, (n_out + UNIT_CHUNKS - 1) // UNIT_CHUNKS))
    _bias_grad(lay, rt(0), n, rt(0), sizes[1], accumulate)


@njit(inline="always", cache=True, nogil=True)
def csr_backward(Xd, Xi, Xp, order, row0, lay, n, accumulate):
    """The backward sweep from the output delta: dense layers, then layer 0 from the CSR."""
    for p in range(lay[6].shape[0] - 2, 0, -1):
        layer_op(rt(OP_GRAD), lay, p, n, accumulate)
        layer_op(rt(OP_DELTA), lay, p, n, rt(False))
    csr_weight_grad(Xd, Xi, Xp, order, row0, lay, n, accumulate)


# ------------------------------------------------------------------ drivers
@njit(cache=True, nogil=True, entry=True)
def train_steps_csr(X, T, SW, order, net, ws, opt, lr, l2, clip_norm, batch_size,
                    norm_weights, start_batch, stop_batch, acc, check):
    """``_drivers.train_steps`` with a ``CSRRows`` ``X`` (see the module doc).

    The batch's rows are read from the CSR arrays through ``order``; targets and weights
    are gathered into ``ws``'s ``t_buf``/``w_buf`` as in the dense driver. ``ws`` is a
    sparse workspace (no input block). Same arguments and results otherwise.
    """
    sizes = net.sizes
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    n_rows = X.indptr.shape[0] - 1
    _check_csr(X, sizes, T.shape[0])
    if T.shape[1] != n_out or (SW.shape[0] != 0 and SW.shape[0] != n_rows):
        raise ValueError("T must have sizes[-1] columns and SW be empty or one per row")
    for i in range(order.shape[0]):
        if order[i] < 0 or order[i] >= n_rows:
            raise ValueError("order holds a row index outside 0 .. n - 1")
    check_batch(net, ws, batch_size, rt(1))
    if opt.counters.shape[0] < 1 or acc.shape[0] < 5:
        raise ValueError("counters needs one entry and acc five")
    # borrowed arrays: no reference counting in the step loop (see ``_borrowed``)
    net, ws = borrow(net, ws)
    opt = borrow_opt(opt)
    Xd, Xi, Xp = _csr_parts(X)
    T, SW, order, acc = _borrowed(T), _borrowed(SW), _borrowed(order), _borrowed(acc)
    act, delta, a_off = ws.act, ws.delta, ws.a_off
    n = order.shape[0]
    for b in range(start_batch, stop_batch):
        start = b * batch_size
        m = min(batch_size, n - start)
        t, w, wsum = gather_targets(T, SW, order, start, m, n_out, ws.t_buf, ws.w_buf,
                                    consecutive_run(order, start, m))
        step = opt.counters[0] + 1
        lay = train_buffers(net, ws, step)
        csr_forward(Xd, Xi, Xp, order, start, lay, m)
        a_out = view2d(act, a_off[L], m, n_out)
        scale = 1.0 / wsum if norm_weights else 1.0 / m
        batch_loss_value, correct = output_delta_flat(
            _view(ws.z_out, 0, m, n_out), a_out, t, w, net.loss_code, net.act_codes[L - 1],
            scale, view2d(delta, a_off[L], m, n_out), norm_weights,
            counts_correct(net.loss_code),
        )
        if check and not np.isfinite(batch_loss_value):
            return STATUS_NONFINITE_LOSS, b
        account_batch(acc, m, wsum, batch_loss_value, correct, norm_weights)
        csr_backward(Xd, Xi, Xp, order, start, lay, m, rt(False))
        penalty = apply_update(net, opt, lr, l2, clip_norm, step, scale, norm_weights)
        if norm_weights:
            acc[4] += penalty * m
    if check and not (all_finite(as_array(net.params))
                      and all_finite(opt.state.reshape(-1))):
        return STATUS_NONFINITE_PARAMS, stop_batch
    return STATUS_OK, stop_batch


@njit(cache=True, nogil=True, entry=True)
def predict_csr(X, net, ws, out):
    """Output activations of all rows of the ``CSRRows`` ``X`` into ``out`` (n, n_out),
    ``ws.capacity`` rows at a time (``ws``: a sparse workspace)."""
    sizes = net.sizes
    _check_csr(X, sizes, rt(-1))
    Xd, Xi, Xp = _csr_parts(X)
    n = Xp.shape[0] - 1
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    if out.shape[0] != n or out.shape[1] != n_out:
        raise ValueError("out must have one row per CSR row and sizes[-1] columns")
    net, ws, lay = _pass_buffers(net, ws, n)
    cap = ws.capacity
    for start in range(0, n, cap):
        m = min(cap, n - start)
        csr_forward(Xd, Xi, Xp, _borrowed(Xp[:0]), start, lay, m)
        a = view2d(ws.act, ws.a_off[L], m, n_out)
        for r in range(m):
            for c in range(n_out):
                out[start + r, c] = a[r, c]


@njit(cache=True, nogil=True, entry=True)
def loss_csr(X, T, net, ws):
    """Mean loss over all rows of the ``CSRRows`` ``X`` (float64), ``ws.capacity`` rows at
    a time."""
    sizes = net.sizes
    _check_csr(X, sizes, T.shape[0])
    Xd, Xi, Xp = _csr_parts(X)
    n = Xp.shape[0] - 1
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    if T.shape[1] != n_out:
        raise ValueError("T must have sizes[-1] columns")
    net, ws, lay = _pass_buffers(net, ws, n)
    cap = ws.capacity
    total = 0.0
    for start in range(0, n, cap):
        m = min(cap, n - start)
        csr_forward(Xd, Xi, Xp, _borrowed(Xp[:0]), start, lay, m)
        total += batch_loss(as_array(_view(ws.z_out, 0, m, n_out)),  # (its one signature)
                            as_array(view2d(ws.act, ws.a_off[L], m, n_out)),
                            T[start : start + m], net.loss_code)
    return total / n


@njit(cache=True, nogil=True, entry=True)
def loss_and_gradient_csr(X, T, SW, net, ws, row_scaled):
    """``_drivers.loss_and_gradient_weighted`` over the rows of the ``CSRRows`` ``X``: loss
    ``sum_i w_i E_i / sum_i w_i`` (mean without weights) and its gradient into
    ``net.grads``, chunks of ``ws.capacity`` rows accumulated in order."""
    sizes = net.sizes
    _check_csr(X, sizes, T.shape[0])
    Xd, Xi, Xp = _csr_parts(X)
    n = Xp.shape[0] - 1
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    if T.shape[1] != n_out or (SW.shape[0] != 0 and SW.shape[0] != n):
        raise ValueError("T must have sizes[-1] columns and SW be empty or one per row")
    net, ws, lay = _pass_buffers(net, ws, n)
    act, delta, a_off, cap = ws.act, ws.delta, ws.a_off, ws.capacity
    weighted, scale = weights_scale(SW, n)
    total = 0.0
    for start in range(0, n, cap):
        m = min(cap, n - start)
        csr_forward(Xd, Xi, Xp, _borrowed(Xp[:0]), start, lay, m)
        total += output_delta_flat(
            _view(ws.z_out, 0, m, n_out), view2d(act, a_off[L], m, n_out),
            T[start : start + m], SW[start : start + m] if weighted else SW, net.loss_code,
            net.act_codes[L - 1], scale, view2d(delta, a_off[L], m, n_out), row_scaled,
            rt(False),
        )[0]
        csr_backward(Xd, Xi, Xp, _borrowed(Xp[:0]), start, lay, m, start > 0)
    return total
