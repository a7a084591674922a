"""Compiled drivers: a whole epoch, batched prediction and whole-data-set loss/gradient.

Each runs its entire loop in compiled code: Python is entered once per call, not per step.
"""

import numpy as np

from ._cache import njit
from ._codes import (
    BINARY_CROSS_ENTROPY,
    CROSS_ENTROPY,
    STATUS_NONFINITE_LOSS,
    STATUS_NONFINITE_PARAMS,
    STATUS_OK,
)
from ._layout import KernelArgs, OptimizerArgs, WorkspaceArrays
from ._llvm import as_array, flat_rows, prefetch, rt
from ._llvm import borrowed as _borrowed
from ._llvm import view2d as _view2d
from ._network import (
    _block,
    _view,
    backward_pass,
    check_workspace,
    count_correct,
    forward_pass,
    inference_buffers,
    no_dropout_buffers,
    output_delta,
    output_delta_flat,
    train_buffers,
    with_input,
    without_kept_z,
)
from ._updates import _sgd_step, clip_grad_norm_flat, optimizer_step_flat, plain_sgd, sgd_step


# ------------------------------------------------------------------ argument checks
# The public drivers take arrays from user code: inconsistent shapes or an out-of-range row
# index must raise, never read or write outside an array. The checks are O(1), plus one
# pass over ``order``.
@njit(cache=True, nogil=True)
def _check_data(X, T, sizes):
    if X.shape[1] != sizes[0]:
        raise ValueError("X must have sizes[0] columns (the input layer's width)")
    if T.shape[0] != X.shape[0] or T.shape[1] != sizes[sizes.shape[0] - 1]:
        raise ValueError("T must have X's rows and sizes[-1] columns (one target per output)")


@njit(cache=True, nogil=True)
def _check_order(order, n, SW):
    for i in range(order.shape[0]):
        if order[i] < 0 or order[i] >= n:
            raise ValueError("order holds a row index outside 0 .. len(X) - 1")
    if SW.shape[0] != 0 and SW.shape[0] != n:
        raise ValueError("SW must be empty or hold one weight per row of X")


@njit(cache=True, nogil=True)
def check_batch(net, ws, batch_size, first):
    """A training driver's checks: ``1 <= batch_size <= ws.capacity``, ``ws`` holds a batch
    (``check_workspace``) and its training buffers (``raw``, ``t_buf``, ``w_buf``) one."""
    if batch_size < 1 or batch_size > ws.capacity:
        raise ValueError("batch_size must be between 1 and the workspace's capacity")
    check_workspace(net, ws, batch_size, first)
    if ws.raw.shape[0] < ws.act.shape[0] or ws.w_buf.shape[0] < batch_size or \
            ws.t_buf.shape[0] < batch_size * net.sizes[net.sizes.shape[0] - 1]:
        raise ValueError("raw, t_buf or w_buf is too short for the layout")
    if net.drop_rates.shape[0] + 2 < net.sizes.shape[0]:
        raise ValueError("drop_rates needs one entry per hidden layer")


@njit(inline="always", cache=True, nogil=True)
def borrow(net, ws):
    """The bundles with their arrays borrowed (``_llvm.borrowed``): no reference counting
    where a step loop passes them on. Only for use inside the call that received them."""
    net = KernelArgs(_borrowed(net.params), _borrowed(net.grads), _borrowed(net.sizes),
                     _borrowed(net.w_off), _borrowed(net.b_off), _borrowed(net.act_codes),
                     net.loss_code, net.out_code, _borrowed(net.drop_rates), net.drop_seed)
    ws = WorkspaceArrays(_borrowed(ws.act), _borrowed(ws.delta), _borrowed(ws.a_off),
                         _borrowed(ws.z_out), _borrowed(ws.t_buf), _borrowed(ws.raw),
                         _borrowed(ws.w_buf), ws.capacity)
    return net, ws


@njit(inline="always", cache=True, nogil=True)
def borrow_opt(opt):
    """``opt`` with its arrays borrowed (see ``borrow``)."""
    return OptimizerArgs(opt.kind, _borrowed(opt.hyper), _borrowed(opt.state),
                         _borrowed(opt.counters))


@njit(cache=True, nogil=True)
def _gather(src, order, start, m, dst):
    """``dst[r] = src[order[start + r]]`` for ``r < m`` (the batch's rows, in order)."""
    n_cols = src.shape[1]
    for r in range(m):
        row = order[start + r]
        for c in range(np.uint64(n_cols)):  # unsigned: no wraparound, a vector copy
            dst[r, c] = src[row, c]


#: bytes per prefetch hint: a cache line
_LINE = 64


@njit(inline="always", cache=True, nogil=True)
def _prefetch_rows(src, order, start, m):
    """Hint the cache lines of rows ``order[start : start + m]`` of ``src`` (the next batch's
    inputs or targets: rows scattered over the data set, which the hardware's prefetchers do
    not foresee, and which a step then waits for)."""
    step = max(1, _LINE // src.itemsize)
    for r in range(start, min(start + m, order.shape[0])):
        row = order[r]
        for c in range(0, src.shape[1], step):
            prefetch(src, row, c)


@njit(cache=True, nogil=True)
def _copy_rows(src, s0, d0, m, dst):
    """``dst[d0 + r] = src[s0 + r]`` for ``r < m`` (a plain loop: Numba's 2-D slice
    assignment costs about 1 ns per element, several times this)."""
    n_cols = src.shape[1]
    for r in range(m):
        for c in range(np.uint64(n_cols)):
            dst[d0 + r, c] = src[s0 + r, c]


@njit(cache=True, nogil=True, entry=True)
def train_epoch_sgd(X, T, order, net, ws, batch_size, learning_rate):
    """One epoch of minibatch SGD over the rows ``X[order]``.

    Batches are consecutive slices of ``order`` (a permutation for shuffled training, or
    ``arange(n)``); the last, partial batch is used. Each step computes the mean loss of the
    batch, back-propagates it and applies ``params -= learning_rate * grads``.

    Parameters
    ----------
    X : (n, n_in) float array
    T : (n, n_out) float array, targets (one-hot for class labels)
    order : (n,) int64 array, row order of this epoch
    net : KernelArgs, the network (``params`` updated, ``grads`` overwritten); no dropout
    ws : WorkspaceArrays for at least ``batch_size`` rows
    batch_size : int, 1 <= batch_size <= ``ws.capacity``
    learning_rate : float

    Returns
    -------
    float
        Mean over the epoch's samples of the loss measured before each update.
    """
    _check_data(X, T, net.sizes)
    _check_order(order, X.shape[0], X[:0, 0])
    check_batch(net, ws, batch_size, rt(0))
    X, T, order = _borrowed(X), _borrowed(T), _borrowed(order)
    net, ws = borrow(net, ws)
    sizes, act, delta, a_off = net.sizes, ws.act, ws.delta, ws.a_off
    n = order.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    lay = no_dropout_buffers(net, ws)
    total = 0.0
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        _gather(X, order, start, m, _block(act, sizes, a_off, 0, m))
        t = _view(ws.t_buf, 0, m, n_out)
        _gather(T, order, start, m, t)
        forward_pass(lay, m)
        total += m * output_delta(  # (as_array: the public kernels' one signature)
            as_array(_view(ws.z_out, 0, m, n_out)), as_array(_block(act, sizes, a_off, L, m)),
            as_array(t), net.loss_code, net.act_codes[L - 1], 1.0 / m,
            as_array(_block(delta, sizes, a_off, L, m)),
        )
        backward_pass(lay, m, rt(False))
        sgd_step(as_array(net.params), as_array(net.grads), learning_rate)
    return total / n


@njit(inline="always", cache=True, nogil=True)
def weights_scale(SW, n):
    """``(weighted, scale)`` of a whole-data-set pass: ``scale = 1 / sum(SW)`` (summed in
    float64, in order), or ``1 / n`` when ``SW`` is empty (unit weights)."""
    wsum = 0.0
    for i in range(SW.shape[0]):
        wsum += np.float64(SW[i])
    return SW.shape[0] > 0, (1.0 / wsum if SW.shape[0] > 0 else 1.0 / n)


#: the passes of ``data_pass``
PASS_PREDICT = 0
PASS_LOSS = 1
PASS_GRADIENT = 2


@njit(cache=True, nogil=True, entry=True)
def data_pass(mode, X, T, SW, net, ws, out, row_scaled):
    """One pass over every row of ``X`` in chunks of ``ws.capacity`` rows (a number fixed by
    the caller, not by the thread count), with no dropout: the kernel behind ``predict``,
    ``loss`` and ``loss_and_gradient_weighted``, so that a model's predictions, losses and
    gradients all run one compiled function (compiled once per dtype).

    Parameters
    ----------
    mode : int
        ``PASS_PREDICT``: the output activations into ``out``. ``PASS_LOSS``: the loss.
        ``PASS_GRADIENT``: the loss and its gradient, written into ``net.grads`` (chunks
        accumulated in order).
    X : (n, n_in) float array
    T : (n, n_out) float array of targets; for ``PASS_PREDICT`` it may have no rows
    SW : (n,) float array of sample weights, or empty for unit weights
    net : KernelArgs (its dropout is not applied)
    ws : WorkspaceArrays, any capacity
    out : (n, n_out) float array, written by ``PASS_PREDICT`` (else it may have no rows)
    row_scaled : bool, the loss summed as ``output_delta_weighted`` does with ``row_scaled``

    Returns
    -------
    (float, int)
        The loss (``PASS_PREDICT``: 0): ``sum_i w_i E_i / sum_i w_i``, the mean for unit
        weights; and the rows whose outputs match ``T`` (``count_correct``; 0 when ``T``
        has no rows, and for ``PASS_GRADIENT``).
    """
    n = X.shape[0]
    sizes = net.sizes
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    if X.shape[1] != sizes[0]:
        raise ValueError("X must have sizes[0] columns (the input layer's width)")
    if T.shape[1] != n_out or (T.shape[0] != n and (mode != PASS_PREDICT or T.shape[0] != 0)):
        raise ValueError("T must have X's rows and sizes[-1] columns (one target per output)")
    if mode == PASS_PREDICT and (out.shape[0] != n or out.shape[1] != n_out):
        raise ValueError("out must have X's rows and sizes[-1] columns")
    if SW.shape[0] != 0 and SW.shape[0] != n:
        raise ValueError("SW must be empty or hold one weight per row of X")
    # C-contiguous views for the loss kernel (``output_delta_flat``); the facade's arrays
    # are already, a strided array from user code is copied
    T, SW = np.ascontiguousarray(T), np.ascontiguousarray(SW)
    lay = inference_buffers(net, ws, n, rt(0))
    if mode == PASS_PREDICT:  # no loss: the output layer's z is not kept
        lay = without_kept_z(lay)
    act, delta, a_off, cap = ws.act, ws.delta, ws.a_off, ws.capacity
    weighted, scale = weights_scale(SW, n)
    total = 0.0
    correct = 0
    for start in range(0, n, cap):
        m = min(cap, n - start)
        if X.flags.c_contiguous:  # the chunk's inputs read where they are
            lay_m = with_input(lay, X, start)
        else:
            _copy_rows(X, start, rt(0), m, _block(act, sizes, a_off, 0, m))
            lay_m = lay
        forward_pass(lay_m, m)
        a_out = _block(act, sizes, a_off, L, m)
        if T.shape[0] == n and mode != PASS_GRADIENT:
            correct += count_correct(as_array(a_out), T[start : start + m], net.loss_code)
        if mode == PASS_PREDICT:
            _copy_rows(a_out, rt(0), start, m, out)
        else:
            # the unweighted loss as a sum of row losses (scale 1: its delta is not used),
            # divided by n at the end
            total += output_delta_flat(
                _view(ws.z_out, 0, m, n_out), a_out, T[start : start + m],
                SW[start : start + m] if weighted else SW, net.loss_code,
                net.act_codes[L - 1], scale if weighted or mode == PASS_GRADIENT else 1.0,
                _block(delta, sizes, a_off, L, m), row_scaled, rt(False),
            )[0]
            if mode == PASS_GRADIENT:
                backward_pass(lay_m, m, start > 0)
    if mode == PASS_LOSS and not weighted:
        total /= n
    return total, correct


@njit(cache=True, nogil=True, entry=True)
def predict(X, net, ws, out):
    """Output activations of all rows of ``X`` into ``out``, in chunks of ``ws.capacity``
    rows.

    Parameters
    ----------
    X : (n, n_in) float array
    net : KernelArgs (no dropout)
    ws : WorkspaceArrays, any capacity
    out : (n, n_out) float array, written
    """
    data_pass(PASS_PREDICT, X, out[:0], net.params[:0], net, ws, out, rt(False))


@njit(cache=True, nogil=True, entry=True)
def loss(X, T, net, ws):
    """Mean loss over all rows of ``X`` (float64), evaluated in chunks of ``ws.capacity``
    rows (``net``: no dropout)."""
    return data_pass(PASS_LOSS, X, T, net.params[:0], net, ws, T[:0], rt(False))[0]


@njit(cache=True, nogil=True, entry=True)
def loss_and_gradient(X, T, net, ws):
    """Mean loss over all rows of ``X`` and its gradient, written into ``net.grads``.

    The data set is processed in chunks of ``ws.capacity`` rows (a number fixed by the
    caller, not by the thread count), gradients accumulated in chunk order.

    Returns
    -------
    float
        The mean loss (float64).
    """
    return loss_and_gradient_weighted(X, T, net.params[:0], net, ws, rt(False))


@njit(cache=True, nogil=True)
def _gather_vec(src, order, start, m, dst):
    for r in range(m):
        dst[r] = src[order[start + r]]


@njit(inline="always", cache=True, nogil=True)
def _gather_batch(X, T, SW, order, start, m, sizes, act, a_off, t_buf, w_buf):
    """The batch ``order[start : start + m]``, into the workspace where it must be copied.

    Inputs: consecutive rows of a C-contiguous ``X`` (no shuffle, or an order that keeps
    runs) are read in place; others are copied to the layer-0 block of ``act``. Targets go
    to ``t_buf``, sample weights (if ``SW`` is not empty) to ``w_buf``. Returns
    ``(t, w, wsum, row0)``: views of the batch's targets ``(m, n_out)`` and weights
    (``(m,)``, or empty for unit weights), the sum of the weights (``m`` for unit weights),
    and the first row of the inputs read in place (``with_input``), or -1 when they were
    copied. No allocation.
    """
    run0 = consecutive_run(order, start, m)
    t, w, wsum = gather_targets(T, SW, order, start, m, sizes[sizes.shape[0] - 1], t_buf,
                                w_buf, run0)
    if run0 >= 0 and X.flags.c_contiguous:
        return t, w, wsum, run0
    _gather(X, order, start, m, _block(act, sizes, a_off, 0, m))
    return t, w, wsum, np.int64(-1)


@njit(inline="always", cache=True, nogil=True)
def consecutive_run(order, start, m):
    """``order[start]`` when ``order[start : start + m]`` are consecutive rows (a block of
    a C-contiguous array that can be read in place), else -1. A shuffled order is told at
    its second row."""
    if m < 1:
        return -1
    row0 = order[start]
    for r in range(1, m):
        if order[start + r] != row0 + r:
            return -1
    return row0


@njit(inline="always", cache=True, nogil=True)
def gather_targets(T, SW, order, start, m, n_out, t_buf, w_buf, run0):
    """The batch's targets, copied to ``t_buf`` unless its rows are consecutive (``run0``,
    ``consecutive_run``'s answer, at least 0: then read in place), and weights (if ``SW``
    is not empty) copied to ``w_buf``; returns ``(t, w, wsum)`` as ``_gather_batch`` does
    (the CSR driver, whose inputs are read in place, uses this alone)."""
    if SW.shape[0] > 0:
        w = w_buf[:m]
        _gather_vec(SW, order, start, m, w)
        wsum = 0.0
        for r in range(m):
            wsum += np.float64(w[r])
    else:
        w = w_buf[:0]
        wsum = np.float64(m)
    if run0 >= 0 and T.flags.c_contiguous:
        # consecutive rows: the targets read where they are (rows checked by _check_order)
        t = _view2d(flat_rows(T), run0 * n_out, m, n_out)
    else:
        t = _view(t_buf, 0, m, n_out)
        _gather(T, order, start, m, t)
    return t, w, wsum


@njit(cache=True, nogil=True, entry=True)
def train_epoch(X, T, SW, order, net, ws, opt, lr, l2, clip_norm, batch_size):
    """One epoch of minibatch training with any per-step optimizer.

    ``train_steps`` over all batches of the epoch (see there for the parameters); no
    divergence check stops it early.

    Parameters
    ----------
    X, T, SW, order : the data, sample weights (or empty) and the epoch's row order
    net : KernelArgs, the network, with its dropout rates and seed
    ws : WorkspaceArrays for at least ``batch_size`` rows
    opt : OptimizerArgs, ``counters[0]`` advanced by one per step
    lr, l2, clip_norm : learning rate, L2 coefficient, maximum gradient norm (<= 0: none)
    batch_size : int, 1 <= batch_size <= ``ws.capacity``

    Returns
    -------
    (float, float)
        Weighted mean over the epoch (``sum w_i E_i / sum w_i``) of the loss measured before
        each update, and the
        fraction of rows classified correctly before each update (0 for regression).
    """
    _check_data(X, T, net.sizes)
    _check_order(order, X.shape[0], SW)
    check_batch(net, ws, batch_size, rt(0))
    if opt.counters.shape[0] < 1:
        raise ValueError("counters needs one entry")
    n = order.shape[0]
    acc = np.zeros(5)
    n_batches = (n + batch_size - 1) // batch_size
    train_steps(X, T, SW, order, net, ws, opt, lr, l2, clip_norm, batch_size, rt(False), rt(0),
                n_batches, acc, rt(False))
    total = acc[0]
    if acc[1] > 0:
        total /= acc[1]
    return total, acc[2] / n


@njit(cache=True, nogil=True, entry=True)
def all_finite(a):
    """True when every element of the contiguous array ``a`` is finite."""
    flat = a.reshape(-1)
    for i in range(flat.shape[0]):
        if not np.isfinite(flat[i]):
            return False
    return True


@njit(inline="always", cache=True, nogil=True)
def account_batch(acc, m, wsum, batch_loss_value, correct, norm_weights):
    """Add a batch to an epoch's sums ``acc``: [0] weighted loss, [1] rows or weight, [2]
    correct predictions (``output_delta_counted``'s count), [3] the first batch's loss (NaN
    until set). Shared by the dense and CSR epoch drivers."""
    acc[0] += m * batch_loss_value
    acc[1] += m if norm_weights else wsum
    if acc[3] != acc[3]:
        acc[3] = batch_loss_value
    acc[2] += correct


@njit(inline="always", cache=True, nogil=True)
def counts_correct(loss_code):
    """Whether a loss has an accuracy (``count_correct``): the classifiers' losses."""
    return loss_code == CROSS_ENTROPY or loss_code == BINARY_CROSS_ENTROPY


@njit(inline="always", cache=True, nogil=True)
def apply_update(net, opt, lr, l2, clip_norm, step, scale, norm_weights):
    """The end of a training step, after the gradient: clipping (``clip_norm > 0``), the
    step counter (``opt.counters[0] = step``) and the optimizer update with its L2 term
    (scaled by ``scale`` under scikit-learn's ``norm_weights``, see ``train_steps``).

    Returns the step's L2 penalty ``l2 / 2 * scale * sum W**2`` under ``norm_weights``
    (scikit-learn reports it in the loss), else 0. Shared by the epoch drivers (dense and
    CSR) and ``apply_step``.
    """
    if clip_norm > 0:
        clip_grad_norm_flat(net.grads, clip_norm)
    opt.counters[0] = step
    l2_step = l2 * scale if norm_weights else l2
    if plain_sgd(opt.kind, opt.hyper, l2_step):
        # as ``optimizer_step`` runs it, without its per-step checks and two calls
        _sgd_step(net.params, net.grads, lr)
        return 0.0
    sq = optimizer_step_flat(net.params, net.grads, opt.state, opt.kind, opt.hyper, lr, step,
                             l2_step, net.sizes, net.w_off, net.b_off)
    return 0.5 * l2_step * sq if norm_weights else 0.0


@njit(cache=True, nogil=True, entry=True)
def train_steps(X, T, SW, order, net, ws, opt, lr, l2, clip_norm, batch_size, norm_weights,
                start_batch, stop_batch, acc, check):
    """Batches ``start_batch .. stop_batch - 1`` of an epoch of minibatch training.

    Batch ``b`` is the rows ``order[b * batch_size : (b + 1) * batch_size]``; the last,
    partial batch is used. Each step: gather the batch, the forward pass (with dropout),
    weighted mean loss and output delta, the backward pass, optional global-norm clipping
    of the data gradient, then ``optimizer_step`` with the L2 penalty on weights.
    ``counters[0]`` (the optimizer's step number ``t``) is incremented before each update
    and also seeds the dropout mask. Running an epoch as several calls over consecutive
    batch ranges gives bitwise the same result as one call over all of them (the training
    loop does this so that an interrupt is honoured between calls of bounded duration).

    Parameters
    ----------
    X : (n, n_in) float array
    T : (n, n_out) float array, targets
    SW : (n,) float array of sample weights (>= 0), or empty for unit weights
    order : (n,) int64 array, row order of this epoch
    net : KernelArgs, the layout and buffers (``params``, ``grads``, ..., ``drop_seed``)
    ws : WorkspaceArrays for ``batch_size`` rows (``raw`` may be ``act`` without dropout)
    opt : OptimizerArgs, ``(kind, hyper, state, counters)``; ``counters[0]`` is updated
    lr : float, learning rate of this epoch
    l2 : float, L2 coefficient on weights (0 = none)
    clip_norm : float, maximum global gradient norm (<= 0 = no clipping)
    batch_size : int, 1 <= batch_size <= workspace capacity
    norm_weights : bool
        False (``Model``): a batch of ``m`` rows minimises ``sum_i w_i E_i / m``; with
        weights of mean 1 over the data (as ``Model.fit`` rescales them) its gradient is an
        unbiased estimate of the gradient of the weighted mean over the data set. True
        (scikit-learn): it minimises ``sum_i w_i E_i / sum_i w_i + l2 / (2 sum_i w_i) *
        sum W**2``, the epoch loss is averaged over rows, and ``acc[4]`` accumulates the L2
        term.
    start_batch, stop_batch : int, the range of batches to run
    acc : (5,) float64 array, accumulated in place: ``[sum_batches m * loss, sum of the
        weights (rows when unweighted or norm_weights), rows classified correctly, first
        loss, sum_batches m * L2 term]``; the fourth entry receives the loss of the first
        batch run while it holds NaN
    check : bool
        Divergence check: stop before the update of the first batch whose loss is not
        finite, and check after the last batch that ``params`` and ``state`` are finite.

    Returns
    -------
    (int, int)
        Status (``STATUS_OK``, ``STATUS_NONFINITE_LOSS``, ``STATUS_NONFINITE_PARAMS``) and
        the index of the batch after the last one whose update was applied
        (``stop_batch`` unless a non-finite loss stopped the run early).
    """
    # borrowed arrays: no reference counting in the step loop (see ``_borrowed``)
    net, ws = borrow(net, ws)
    opt = borrow_opt(opt)
    X, T, SW, order = _borrowed(X), _borrowed(T), _borrowed(SW), _borrowed(order)
    acc = _borrowed(acc)
    sizes, act, delta, a_off = net.sizes, ws.act, ws.delta, ws.a_off
    n = order.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    counting = counts_correct(net.loss_code)
    for b in range(start_batch, stop_batch):
        start = b * batch_size
        m = min(batch_size, n - start)
        t, w, wsum, row0 = _gather_batch(X, T, SW, order, start, m, sizes, act, a_off,
                                         ws.t_buf, ws.w_buf)
        if b + 1 < stop_batch:  # the next batch's rows load while this one trains
            _prefetch_rows(X, order, start + batch_size, batch_size)
            _prefetch_rows(T, order, start + batch_size, batch_size)
        step = opt.counters[0] + 1
        lay = train_buffers(net, ws, step)
        if row0 >= 0:  # the batch's inputs read where they are
            lay = with_input(lay, X, row0)
        forward_pass(lay, m)
        a_out = _block(act, sizes, a_off, L, m)
        scale = 1.0 / wsum if norm_weights else 1.0 / m
        batch_loss_value, correct = output_delta_flat(
            _view(ws.z_out, 0, m, n_out), a_out, t, w, net.loss_code, net.act_codes[L - 1],
            scale, _block(delta, sizes, a_off, L, m), norm_weights, counting,
        )
        if check and not np.isfinite(batch_loss_value):
            return STATUS_NONFINITE_LOSS, b
        account_batch(acc, m, wsum, batch_loss_value, correct, norm_weights)
        backward_pass(lay, m, rt(False))
        penalty = apply_update(net, opt, lr, l2, clip_norm, step, scale, norm_weights)
        if norm_weights:
            acc[4] += penalty * m
    if check and not (all_finite(as_array(net.params))
                      and all_finite(opt.state.reshape(-1))):
        return STATUS_NONFINITE_PARAMS, stop_batch
    return STATUS_OK, stop_batch


@njit(cache=True, nogil=True, entry=True)
def loss_and_gradient_weighted(X, T, SW, net, ws, row_scaled=False):
    """``loss_and_gradient`` with sample weights: loss ``sum_i w_i E_i / sum_i w_i``.

    ``row_scaled``: sum the loss as ``output_delta_weighted`` does with ``row_scaled``
    (the scikit-learn estimators' rounding).

    ``SW`` is an (n,) float array, or empty for unit weights (then identical to
    ``loss_and_gradient``). Chunks of ``ws.capacity`` rows, accumulated in chunk order.
    """
    return data_pass(PASS_GRADIENT, X, T, SW, net, ws, T[:0], row_scaled)[0]


# ------------------------------------------------------------------ data-parallel steps
# A step of ``train_steps`` split in two so that the flat gradient can be summed across MPI
# ranks in between (``fastbp.distributed``): ``local_step_gradient`` (gather this rank's rows,
# forward, loss, output delta scaled by ``1 / M`` with ``M`` the rows of the *global* batch,
# backward) and ``apply_step`` (clipping and the optimizer update).


@njit(cache=True, nogil=True, entry=True)
def local_step_gradient(X, T, SW, order, start, m, scale, net, ws, step, totals):
    """This rank's contribution to the gradient of one step, written into ``net.grads``.

    Parameters
    ----------
    X : (n, n_in) float array, this rank's shard
    T : (n, n_out) float array, its targets
    SW : (n,) float array of sample weights (global mean 1), or empty for unit weights
    order : (n,) int64 array, this epoch's row order of the shard
    start, m : int, the step takes rows ``order[start:start + m]`` (``m`` may be 0)
    scale : float, ``1 / M`` with ``M`` the rows of the global batch (all ranks)
        (local SGD: ``1 / m``)
    net : KernelArgs, the network; its dropout rates and seed give the masks
    ws : WorkspaceArrays for at least ``m`` rows
    step : int, the step number (the dropout mask of this step)
    totals : (3,) float64 array, accumulates ``[sum w_i E_i, sum w_i, correct rows]``
    """
    if m == 0:
        net.grads[:] = 0
        return
    _check_data(X, T, net.sizes)
    if start < 0 or start + m > order.shape[0]:
        raise ValueError("the step's rows order[start:start + m] must lie inside order")
    _check_order(order[start : start + m], X.shape[0], SW)
    check_batch(net, ws, m, rt(0))
    sizes = net.sizes
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    t, w, wsum, row0 = _gather_batch(X, T, SW, order, start, m, sizes, ws.act, ws.a_off,
                                     ws.t_buf, ws.w_buf)
    lay = train_buffers(net, ws, step)
    if row0 >= 0:
        lay = with_input(lay, X, row0)
    forward_pass(lay, m)
    a_out = _block(ws.act, sizes, ws.a_off, L, m)
    e, correct = output_delta_flat(
        _view(ws.z_out, 0, m, n_out), a_out, t, w, net.loss_code, net.act_codes[L - 1],
        scale, _block(ws.delta, sizes, ws.a_off, L, m), rt(False),
        counts_correct(net.loss_code),
    )
    totals[0] += e / scale
    totals[1] += wsum
    totals[2] += correct
    backward_pass(lay, m, rt(False))


@njit(cache=True, nogil=True, entry=True)
def apply_step(net, opt, lr, l2, clip_norm):
    """Clip (if ``clip_norm > 0``) and apply the optimizer to the averaged gradient in
    ``net.grads`` (``apply_update``, with ``Model``'s L2 convention).

    ``opt.counters[0]`` (the step number ``t``) is incremented first, as in ``train_epoch``.
    Returns False, and changes nothing, when the gradient is not finite.
    """
    if not all_finite(as_array(net.grads)):
        return False
    apply_update(net, opt, lr, l2, clip_norm, opt.counters[0] + 1, 1.0, rt(False))
    return True
