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
from ._llvm import borrowed as _borrowed
from ._llvm import rt
from ._network import (
    _block,
    _check_workspace,
    _view,
    backward_pass,
    batch_loss,
    forward_pass,
    output_delta,
    output_delta_weighted,
)
from ._updates import clip_grad_norm, optimizer_step, sgd_step


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
def _capacity(sizes, a_off, act):
    """Rows the workspace holds (checked against its buffer)."""
    if sizes[0] <= 0 or a_off.shape[0] != sizes.shape[0]:
        raise ValueError("a_off does not match sizes")
    cap = (a_off[1] - a_off[0]) // sizes[0]
    if cap < 1:
        raise ValueError("the workspace holds no rows")
    return cap


@njit(cache=True, nogil=True)
def _inference(params, sizes, w_off, b_off, act_codes, act, delta, a_off, z_out, grads):
    """The ``layer_op`` buffers of a pass without dropout."""
    zero = sizes[0] * 0
    return (params, grads, act, delta, act, z_out, sizes, w_off, b_off, a_off, act_codes,
            np.empty(0), zero, zero)


@njit(cache=True, nogil=True)
def _gather(src, order, start, m, dst):
    """``dst[r] = src[order[start + r]]`` for ``r < m`` (the batch's rows, in order)."""
    n_cols = src.shape[1]
    for r in range(m):
        row = order[start + r]
        for c in range(n_cols):
            dst[r, c] = src[row, c]


@njit(cache=True, nogil=True)
def _copy_rows(src, s0, d0, m, dst):
    """``dst[d0 + r] = src[s0 + r]`` for ``r < m`` (a plain loop: Numba's 2-D slice
    assignment costs about 1 ns per element, several times this)."""
    n_cols = src.shape[1]
    for r in range(m):
        for c in range(np.uint64(n_cols)):
            dst[d0 + r, c] = src[s0 + r, c]


@njit(cache=True, nogil=True)
def train_epoch_sgd(
    X, T, order, params, grads, sizes, w_off, b_off, act_codes, loss_code,
    batch_size, learning_rate, act, delta, a_off, z_out, t_buf,
):
    """One epoch of minibatch SGD over the rows ``X[order]``.

    Batches are consecutive slices of ``order`` (a permutation for shuffled training, or
    ``arange(n)``); the last, partial batch is used. Each step computes the mean loss of the
    batch, back-propagates it and applies ``params -= learning_rate * grads``.

    Parameters
    ----------
    X : (n, n_in) float array
    T : (n, n_out) float array, targets (one-hot for class labels)
    order : (n,) int64 array, row order of this epoch
    params, grads : (n_params,) float arrays
    sizes, w_off, b_off, act_codes : int64 layout arrays
    loss_code : int
    batch_size : int, 1 <= batch_size <= workspace capacity
    learning_rate : float
    act, delta, a_off, z_out : workspace for ``batch_size`` rows
    t_buf : float array of at least ``batch_size * n_out`` elements

    Returns
    -------
    float
        Mean over the epoch's samples of the loss measured before each update.
    """
    X, T, order, params, grads = _borrowed(X), _borrowed(T), _borrowed(order), \
        _borrowed(params), _borrowed(grads)
    sizes, w_off, b_off = _borrowed(sizes), _borrowed(w_off), _borrowed(b_off)
    act_codes, a_off = _borrowed(act_codes), _borrowed(a_off)
    act, delta, z_out, t_buf = _borrowed(act), _borrowed(delta), _borrowed(z_out), \
        _borrowed(t_buf)
    _check_data(X, T, sizes)
    _check_order(order, X.shape[0], X[:0, 0])
    if batch_size < 1 or batch_size > _capacity(sizes, a_off, act):
        raise ValueError("batch_size must be between 1 and the workspace's capacity")
    _check_workspace(params, sizes, w_off, b_off, act, a_off, z_out, batch_size)
    if grads.shape[0] != params.shape[0] or delta.shape[0] < act.shape[0] or \
            t_buf.shape[0] < batch_size * sizes[sizes.shape[0] - 1]:
        raise ValueError("grads, delta or t_buf is too short for the layout")
    n = order.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    lay = _inference(params, sizes, w_off, b_off, act_codes, act, delta, a_off, z_out, grads)
    total = 0.0
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        _gather(X, order, start, m, _block(act, sizes, a_off, 0, m))
        t = _view(t_buf, 0, m, n_out)
        _gather(T, order, start, m, t)
        forward_pass(lay, m)
        total += m * output_delta(
            _view(z_out, 0, m, n_out), _block(act, sizes, a_off, L, m), t,
            loss_code, act_codes[L - 1], 1.0 / m, _block(delta, sizes, a_off, L, m),
        )
        backward_pass(lay, m, rt(False))
        sgd_step(params, grads, learning_rate)
    return total / n


@njit(cache=True, nogil=True)
def predict(X, params, sizes, w_off, b_off, act_codes, act, a_off, z_out, out):
    """Output activations of all rows of ``X`` into ``out``, in chunks of the workspace capacity.

    Parameters
    ----------
    X : (n, n_in) float array
    out : (n, n_out) float array, written
    act, a_off, z_out : workspace; its capacity is ``(a_off[1] - a_off[0]) // n_in``
    """
    n = X.shape[0]
    L = sizes.shape[0] - 1
    if X.shape[1] != sizes[0]:
        raise ValueError("X must have sizes[0] columns (the input layer's width)")
    if out.shape[0] != n or out.shape[1] != sizes[L]:
        raise ValueError("out must have X's rows and sizes[-1] columns")
    cap = _capacity(sizes, a_off, act)
    _check_workspace(params, sizes, w_off, b_off, act, a_off, z_out, min(cap, n))
    lay = _inference(params, sizes, w_off, b_off, act_codes, act, act, a_off, z_out, params)
    for start in range(0, n, cap):
        m = min(cap, n - start)
        a0 = _block(act, sizes, a_off, 0, m)
        _copy_rows(X, start, 0, m, a0)
        forward_pass(lay, m)
        _copy_rows(_block(act, sizes, a_off, L, m), 0, start, m, out)


@njit(cache=True, nogil=True)
def loss(X, T, params, sizes, w_off, b_off, act_codes, loss_code, act, a_off, z_out):
    """Mean loss over all rows of ``X`` (float64), evaluated in workspace-sized chunks."""
    _check_data(X, T, sizes)
    n = X.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    cap = _capacity(sizes, a_off, act)
    _check_workspace(params, sizes, w_off, b_off, act, a_off, z_out, min(cap, n))
    lay = _inference(params, sizes, w_off, b_off, act_codes, act, act, a_off, z_out, params)
    total = 0.0
    for start in range(0, n, cap):
        m = min(cap, n - start)
        _copy_rows(X, start, 0, m, _block(act, sizes, a_off, 0, m))
        forward_pass(lay, m)
        total += batch_loss(
            _view(z_out, 0, m, n_out), _block(act, sizes, a_off, L, m),
            T[start : start + m], loss_code,
        )
    return total / n


@njit(cache=True, nogil=True)
def loss_and_gradient(
    X, T, params, grads, sizes, w_off, b_off, act_codes, loss_code, act, delta, a_off, z_out,
):
    """Mean loss over all rows of ``X`` and its gradient, written into ``grads``.

    The data set is processed in chunks of the workspace capacity (a number fixed by the
    caller, not by the thread count), gradients accumulated in chunk order.

    Returns
    -------
    float
        The mean loss (float64).
    """
    return loss_and_gradient_weighted(X, T, X[:0, 0], params, grads, sizes, w_off, b_off,
                                      act_codes, loss_code, act, delta, a_off, z_out,
                                      rt(False))


@njit(cache=True, nogil=True)
def count_correct(a, t, loss_code):
    """Rows of the (n, m) outputs ``a`` that match the targets ``t``.

    Cross-entropy: ``argmax a == argmax t``. Binary cross-entropy: every label right at the
    0.5 threshold (exact match, as scikit-learn's multi-label accuracy). Other losses: 0.
    """
    n, m = a.shape
    correct = 0
    for i in range(n):
        if loss_code == CROSS_ENTROPY:
            ja = 0
            jt = 0
            for j in range(1, m):
                if a[i, j] > a[i, ja]:
                    ja = j
                if t[i, j] > t[i, jt]:
                    jt = j
            if ja == jt:
                correct += 1
        elif loss_code == BINARY_CROSS_ENTROPY:
            ok = True
            for j in range(m):
                if (a[i, j] >= 0.5) != (t[i, j] >= 0.5):
                    ok = False
            if ok:
                correct += 1
    return correct


@njit(cache=True, nogil=True)
def _gather_vec(src, order, start, m, dst):
    for r in range(m):
        dst[r] = src[order[start + r]]


@njit(cache=True, nogil=True)
def _gather_batch(X, T, SW, order, start, m, sizes, act, a_off, t_buf, w_buf):
    """Copy the batch ``order[start : start + m]`` into the workspace.

    Inputs go to the layer-0 block of ``act``, targets to ``t_buf``, sample weights (if
    ``SW`` is not empty) to ``w_buf``. Returns ``(t, w, wsum)``: views of the batch's
    targets ``(m, n_out)`` and weights (``(m,)``, or empty for unit weights) and the sum of
    the weights (``m`` for unit weights). No allocation.
    """
    _gather(X, order, start, m, _block(act, sizes, a_off, 0, m))
    return gather_targets(T, SW, order, start, m, sizes[sizes.shape[0] - 1], t_buf, w_buf)


@njit(inline="always", cache=True, nogil=True)
def gather_targets(T, SW, order, start, m, n_out, t_buf, w_buf):
    """Copy the batch's targets to ``t_buf`` and weights (if ``SW`` is not empty) to
    ``w_buf``; returns ``(t, w, wsum)`` as ``_gather_batch`` does (the CSR driver, whose
    inputs are read in place, uses this alone)."""
    if SW.shape[0] > 0:
        w = w_buf[:m]
        _gather_vec(SW, order, start, m, w)
        wsum = 0.0
        for r in range(m):
            wsum += np.float64(w[r])
    else:
        w = w_buf[:0]
        wsum = np.float64(m)
    t = _view(t_buf, 0, m, n_out)
    _gather(T, order, start, m, t)
    return t, w, wsum


@njit(cache=True, nogil=True)
def train_epoch(
    X, T, SW, order, params, grads, state, opt_kind, hyper, counters, lr, l2, clip_norm,
    drop_rates, drop_seed, sizes, w_off, b_off, act_codes, loss_code, batch_size,
    act, delta, raw, a_off, z_out, t_buf, w_buf,
):
    """One epoch of minibatch training with any per-step optimizer.

    ``train_steps`` over all batches of the epoch (see there for the parameters); no
    divergence check stops it early.

    Returns
    -------
    (float, float)
        Weighted mean over the epoch (``sum w_i E_i / sum w_i``) of the loss measured before
        each update, and the
        fraction of rows classified correctly before each update (0 for regression).
    """
    _check_data(X, T, sizes)
    _check_order(order, X.shape[0], SW)
    if batch_size < 1 or batch_size > _capacity(sizes, a_off, act):
        raise ValueError("batch_size must be between 1 and the workspace's capacity")
    _check_workspace(params, sizes, w_off, b_off, act, a_off, z_out, batch_size)
    if grads.shape[0] != params.shape[0] or delta.shape[0] < act.shape[0] or \
            raw.shape[0] < act.shape[0] or w_buf.shape[0] < batch_size or \
            t_buf.shape[0] < batch_size * sizes[sizes.shape[0] - 1]:
        raise ValueError("grads, delta, raw, t_buf or w_buf is too short for the layout")
    if counters.shape[0] < 1 or drop_rates.shape[0] + 2 < sizes.shape[0]:
        raise ValueError("counters needs one entry and drop_rates one per hidden layer")
    n = order.shape[0]
    acc = np.zeros(5)
    n_batches = (n + batch_size - 1) // batch_size
    net = (params, grads, sizes, w_off, b_off, act_codes, loss_code, act_codes[-1],
           drop_rates, drop_seed)
    ws = (act, delta, a_off, z_out, t_buf, raw, w_buf, batch_size)
    opt = (opt_kind, hyper, state, counters)
    train_steps(X, T, SW, order, net, ws, opt, lr, l2, clip_norm, batch_size, rt(False), rt(0),
                n_batches, acc, rt(False))
    total = acc[0]
    if acc[1] > 0:
        total /= acc[1]
    return total, acc[2] / n


@njit(cache=True, nogil=True)
def all_finite(a):
    """True when every element of the contiguous array ``a`` is finite."""
    flat = a.reshape(-1)
    for i in range(flat.shape[0]):
        if not np.isfinite(flat[i]):
            return False
    return True


@njit(inline="always", cache=True, nogil=True)
def account_batch(acc, m, wsum, batch_loss_value, a_out, t, loss_code, norm_weights):
    """Add a batch to an epoch's sums ``acc``: [0] weighted loss, [1] rows or weight, [2]
    correct predictions, [3] the first batch's loss (NaN until set). Shared by the dense
    and CSR epoch drivers."""
    acc[0] += m * batch_loss_value
    acc[1] += m if norm_weights else wsum
    if acc[3] != acc[3]:
        acc[3] = batch_loss_value
    acc[2] += count_correct(a_out, t, loss_code)


@njit(inline="always", cache=True, nogil=True)
def apply_update(params, grads, state, opt_kind, hyper, lr, step, l2, scale, sizes, w_off,
                 b_off, clip_norm, counters, acc, m, norm_weights):
    """The end of a training step, after the gradient: clipping, the step counter, the
    optimizer update with its L2 term, and (scikit-learn's convention) the penalty in
    ``acc[4]``. Shared by the dense and CSR epoch drivers."""
    if clip_norm > 0:
        clip_grad_norm(grads, clip_norm)
    counters[0] = step
    l2_step = l2 * scale if norm_weights else l2
    sq = optimizer_step(params, grads, state, opt_kind, hyper, lr, step, l2_step, sizes,
                        w_off, b_off)
    if norm_weights:
        acc[4] += 0.5 * l2_step * sq * m


@njit(cache=True, nogil=True)
def train_steps(X, T, SW, order, net, ws, opt, lr, l2, clip_norm, batch_size, norm_weights,
                start_batch, stop_batch, acc, check):
    """Batches ``start_batch .. stop_batch - 1`` of an epoch of minibatch training.

    Batch ``b`` is the rows ``order[b * batch_size : (b + 1) * batch_size]``; the last,
    partial batch is used. Each step: gather the batch, ``forward_train`` (dropout),
    weighted mean loss and output delta, ``backward_train``, optional global-norm clipping
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
    params, grads, sizes, w_off, b_off, act_codes, loss_code, _, drop_rates, drop_seed = net
    act, delta, a_off, z_out, t_buf, raw, w_buf, _ = ws
    opt_kind, hyper, state, counters = opt
    # borrowed arrays: no reference counting in the step loop (see ``_borrowed``)
    X, T, SW, order = _borrowed(X), _borrowed(T), _borrowed(SW), _borrowed(order)
    params, grads, state = _borrowed(params), _borrowed(grads), _borrowed(state)
    hyper, counters, drop_rates = _borrowed(hyper), _borrowed(counters), _borrowed(drop_rates)
    sizes, w_off, b_off = _borrowed(sizes), _borrowed(w_off), _borrowed(b_off)
    act_codes, a_off = _borrowed(act_codes), _borrowed(a_off)
    act, delta, raw, z_out = _borrowed(act), _borrowed(delta), _borrowed(raw), _borrowed(z_out)
    t_buf, w_buf, acc = _borrowed(t_buf), _borrowed(w_buf), _borrowed(acc)
    n = order.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    for b in range(start_batch, stop_batch):
        start = b * batch_size
        m = min(batch_size, n - start)
        t, w, wsum = _gather_batch(X, T, SW, order, start, m, sizes, act, a_off, t_buf, w_buf)
        step = counters[0] + 1
        lay = (params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, act_codes,
               drop_rates, drop_seed, step)
        forward_pass(lay, m)
        a_out = _block(act, sizes, a_off, L, m)
        scale = 1.0 / wsum if norm_weights else 1.0 / m
        batch_loss_value = output_delta_weighted(
            _view(z_out, 0, m, n_out), a_out, t, w, loss_code, act_codes[L - 1],
            scale, _block(delta, sizes, a_off, L, m), norm_weights,
        )
        if check and not np.isfinite(batch_loss_value):
            return STATUS_NONFINITE_LOSS, b
        account_batch(acc, m, wsum, batch_loss_value, a_out, t, loss_code, norm_weights)
        backward_pass(lay, m, rt(False))
        apply_update(params, grads, state, opt_kind, hyper, lr, step, l2, scale, sizes, w_off,
                     b_off, clip_norm, counters, acc, m, norm_weights)
    if check and not (all_finite(params) and all_finite(state)):
        return STATUS_NONFINITE_PARAMS, stop_batch
    return STATUS_OK, stop_batch


@njit(cache=True, nogil=True)
def loss_and_gradient_weighted(
    X, T, SW, params, grads, sizes, w_off, b_off, act_codes, loss_code, act, delta, a_off,
    z_out, row_scaled=False,
):
    """``loss_and_gradient`` with sample weights: loss ``sum_i w_i E_i / sum_i w_i``.

    ``row_scaled``: sum the loss as ``output_delta_weighted`` does with ``row_scaled``
    (the scikit-learn estimators' rounding).

    ``SW`` is an (n,) float array, or empty for unit weights (then identical to
    ``loss_and_gradient``). Chunks of the workspace capacity, accumulated in chunk order.
    """
    _check_data(X, T, sizes)
    if SW.shape[0] != 0 and SW.shape[0] != X.shape[0]:
        raise ValueError("SW must be empty or hold one weight per row of X")
    n = X.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    cap = _capacity(sizes, a_off, act)
    _check_workspace(params, sizes, w_off, b_off, act, a_off, z_out, min(cap, n))
    if grads.shape[0] != params.shape[0] or delta.shape[0] < act.shape[0]:
        raise ValueError("grads must match params and delta must match act")
    lay = _inference(params, sizes, w_off, b_off, act_codes, act, delta, a_off, z_out, grads)
    weighted = SW.shape[0] > 0
    wsum = 0.0
    for i in range(SW.shape[0]):
        wsum += np.float64(SW[i])
    scale = 1.0 / wsum if weighted else 1.0 / n
    total = 0.0
    for start in range(0, n, cap):
        m = min(cap, n - start)
        _copy_rows(X, start, 0, m, _block(act, sizes, a_off, 0, m))
        forward_pass(lay, m)
        total += output_delta_weighted(
            _view(z_out, 0, m, n_out), _block(act, sizes, a_off, L, m),
            T[start : start + m], SW[start : start + m] if weighted else SW, loss_code,
            act_codes[L - 1], scale, _block(delta, sizes, a_off, L, m), row_scaled,
        )
        backward_pass(lay, m, start > 0)
    return total


@njit(cache=True, nogil=True)
def batch_gradient_dropout(
    X, T, params, grads, sizes, w_off, b_off, act_codes, loss_code, drop_rates, drop_seed,
    step, act, delta, raw, a_off, z_out,
):
    """Mean loss of one batch (all rows of ``X``, at most the workspace capacity) and its
    gradient under the dropout mask of step ``step``: what ``train_epoch`` differentiates.
    Used to check the dropout backward pass against finite differences."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    _block(act, sizes, a_off, 0, n)[:, :] = X
    lay = (params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, act_codes,
           drop_rates, drop_seed, step)
    forward_pass(lay, n)
    value = output_delta(
        _view(z_out, 0, n, n_out), _block(act, sizes, a_off, L, n), T,
        loss_code, act_codes[L - 1], 1.0 / n, _block(delta, sizes, a_off, L, n),
    )
    backward_pass(lay, n, rt(False))
    return value


# ------------------------------------------------------------------ data-parallel steps
# A step of ``train_steps`` split in two so that the flat gradient can be summed across MPI
# ranks in between (``fastbp.distributed``): ``local_step_gradient`` (gather this rank's rows,
# forward, loss, output delta scaled by ``1 / M`` with ``M`` the rows of the *global* batch,
# backward) and ``apply_step`` (clipping and the optimizer update).


@njit(cache=True, nogil=True)
def local_step_gradient(
    X, T, SW, order, start, m, scale, params, grads, drop_rates, drop_seed, step, sizes,
    w_off, b_off, act_codes, loss_code, act, delta, raw, a_off, z_out, t_buf, w_buf, totals,
):
    """This rank's contribution to the gradient of one step, written into ``grads``.

    Parameters
    ----------
    X : (n, n_in) float array, this rank's shard
    T : (n, n_out) float array, its targets
    SW : (n,) float array of sample weights (global mean 1), or empty for unit weights
    order : (n,) int64 array, this epoch's row order of the shard
    start, m : int, the step takes rows ``order[start:start + m]`` (``m`` may be 0)
    scale : float, ``1 / M`` with ``M`` the rows of the global batch (all ranks)
        (local SGD: ``1 / m``)
    params, grads : (n_params,) float arrays
    drop_rates, drop_seed, step : dropout rates, seed and step number (mask of this step)
    sizes, w_off, b_off, act_codes, loss_code : layout and codes
    act, delta, raw, a_off, z_out, t_buf, w_buf : workspace for at least ``m`` rows
    totals : (3,) float64 array, accumulates ``[sum w_i E_i, sum w_i, correct rows]``
    """
    if m == 0:
        grads[:] = 0
        return
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    t, w, wsum = _gather_batch(X, T, SW, order, start, m, sizes, act, a_off, t_buf, w_buf)
    lay = (params, grads, act, delta, raw, z_out, sizes, w_off, b_off, a_off, act_codes,
           drop_rates, drop_seed, step)
    forward_pass(lay, m)
    a_out = _block(act, sizes, a_off, L, m)
    e = output_delta_weighted(
        _view(z_out, 0, m, n_out), a_out, t, w, loss_code, act_codes[L - 1],
        scale, _block(delta, sizes, a_off, L, m),
    )
    totals[0] += e / scale
    totals[1] += wsum
    totals[2] += count_correct(a_out, t, loss_code)
    backward_pass(lay, m, rt(False))


@njit(cache=True, nogil=True)
def apply_step(params, grads, state, opt_kind, hyper, counters, lr, l2, clip_norm, sizes,
               w_off, b_off):
    """Clip (if ``clip_norm > 0``) and apply the optimizer to the averaged gradient.

    ``counters[0]`` (the step number ``t``) is incremented first, as in ``train_epoch``.
    Returns False, and changes nothing, when the gradient is not finite.
    """
    if not all_finite(grads):
        return False
    if clip_norm > 0:
        clip_grad_norm(grads, clip_norm)
    step = counters[0] + 1
    counters[0] = step
    optimizer_step(params, grads, state, opt_kind, hyper, lr, step, l2, sizes, w_off, b_off)
    return True
