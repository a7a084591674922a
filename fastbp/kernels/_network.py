"""Whole-network passes over one batch held in the workspace.

``forward`` fills the activation workspace layer by layer; ``output_delta`` turns the output
layer's ``z``/``a`` and the targets into the loss and ``delta^L = dE/dz^L``; ``backward`` runs
the dynamic-programming sweep ``delta^(l-1) = (W^l)^T delta^l * f'(z^(l-1))`` and writes every
layer's gradient. See ``fastbp.kernels._layout`` for the buffer layout.

The kernels take a network as a ``KernelArgs`` bundle (``net``) and a workspace as a
``WorkspaceArrays`` bundle (``ws``, see ``fastbp.kernels._layout``); ``check_workspace``
checks that the two fit together before any loop runs. Training variants:
``output_delta_weighted`` folds a per-row weight into each row's scale; the training
buffers (``train_buffers``) add inverted dropout on hidden layers, with masks drawn from a
counter-based hash (``dropout_uniform``) so that the backward pass regenerates them instead
of storing them.
"""

import numpy as np
from numba import carray, types

from ._activations import multiply_derivative_flat as multiply_derivative
from ._cache import njit
from ._codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, IDENTITY, POISSON, SOFTMAX
from ._dense import OP_BACKWARD, OP_DELTA, OP_FORWARD, OP_GRAD, dropout_uniform, layer_op, row_ops
from ._flat import c_array, flat
from ._llvm import as_array, flat_rows, rt, stack, wide_vectors
from ._llvm import borrowed as _borrowed
from ._llvm import view2d as _view2d
from ._rowvec import first_max, vector_row
from ._vmath import vexp, vlog, vlog1p

__all__ = ["backward", "backward_pass", "batch_loss", "check_workspace", "count_correct",
           "dropout_uniform", "forward", "forward_pass", "inference_buffers",
           "no_dropout_buffers", "output_delta", "output_delta_weighted", "train_buffers",
           "with_input"]


@njit(inline="always", cache=True)
def _view(flat, start, n_rows, n_cols):
    """``_view2d`` after checking that the block lies inside ``flat``."""
    if n_rows < 0 or start < 0 or start + n_rows * n_cols > flat.shape[0]:
        raise ValueError("block outside its buffer: more rows than the workspace holds?")
    return _view2d(flat, start, n_rows, n_cols)


@njit(inline="always", cache=True)
def _block(ws, sizes, a_off, l, n):
    return _view(ws, a_off[l], n, sizes[l])


@njit(inline="always", cache=True, nogil=True)
def check_workspace(net, ws, n, first):
    """Raise ``ValueError`` unless the network ``net`` (``KernelArgs``) and the workspace
    ``ws`` (``WorkspaceArrays``) describe the same layers and ``ws`` holds ``n`` rows, so
    that no kernel below reads or writes outside a buffer.

    ``first`` is the first unit layer with a block in ``ws``: 0, or 1 for a sparse
    workspace (no input block: ``Network.workspace(cap, sparse=True)``). The checks read
    only the layout and the buffers' lengths (``_check_layout``: compiled once for every
    dtype).
    """
    _check_layout(_borrowed(net.sizes), _borrowed(net.w_off), _borrowed(net.b_off),
                  _borrowed(net.act_codes), _borrowed(ws.a_off), net.params.shape[0],
                  net.grads.shape[0], ws.act.shape[0], ws.delta.shape[0], ws.z_out.shape[0],
                  np.int64(n), np.int64(first))


@njit(cache=True, nogil=True)
def _check_layout(sizes, w_off, b_off, act_codes, a_off, n_params, n_grads, n_act, n_delta,
                  n_z, n, first):
    """``check_workspace`` on the layout arrays and the lengths of ``params``, ``grads``,
    ``act``, ``delta`` and ``z_out``."""
    L = sizes.shape[0] - 1
    if L < 1 or w_off.shape[0] != L or b_off.shape[0] != L or a_off.shape[0] != L + 1 or \
            act_codes.shape[0] != L:
        raise ValueError("sizes, w_off, b_off, act_codes and a_off do not describe the same "
                         "layers")
    if b_off[L - 1] + sizes[L] > n_params:
        raise ValueError("params is shorter than the layout needs")
    if n_grads != n_params or n_delta < n_act:
        raise ValueError("grads must match params and delta must match act")
    if n < 0 or a_off[first] < 0 or a_off[L] + n * sizes[L] > n_act or n * sizes[L] > n_z:
        raise ValueError("the workspace holds fewer rows than the batch (n)")
    for l in range(first, L):
        if a_off[l] + n * sizes[l] > a_off[l + 1]:
            raise ValueError("the workspace holds fewer rows than the batch (n)")


@njit(inline="always", cache=True, nogil=True)
def train_buffers(net, ws, step):
    """``layer_op``'s buffers for training step ``step``: hidden layers drop units as
    ``net.drop_rates`` says, with the masks of ``(net.drop_seed, step)`` (``ws.raw`` keeps
    the undropped activations; it may be ``ws.act`` when no rate is positive)."""
    return (net.params, net.grads, ws.act, ws.delta, ws.raw, ws.z_out, net.sizes, net.w_off,
            net.b_off, ws.a_off, net.act_codes, net.drop_rates, net.drop_seed, step, ws.act,
            ws.a_off[0])


@njit(inline="always", cache=True, nogil=True)
def no_dropout_buffers(net, ws):
    """``layer_op``'s buffers without dropout (no check: see ``inference_buffers``)."""
    zero = net.sizes[0] * 0
    return (net.params, net.grads, ws.act, ws.delta, ws.act, ws.z_out, net.sizes, net.w_off,
            net.b_off, ws.a_off, net.act_codes, _borrowed(net.drop_rates[:0]), zero, zero,
            ws.act, ws.a_off[0])


@njit(inline="always", cache=True, nogil=True)
def with_input(lay, X, row0):
    """``lay`` with the layer-0 input read in place: rows ``row0 ..`` of the 2-D ``X``,
    C-contiguous (``X.flags.c_contiguous``: unchecked), a batch of consecutive rows or a
    chunk of a pass, instead of the workspace's input block (no copy)."""
    return (lay[0], lay[1], lay[2], lay[3], lay[4], lay[5], lay[6], lay[7], lay[8], lay[9],
            lay[10], lay[11], lay[12], lay[13], flat_rows(X), row0 * X.shape[1])


@njit(inline="always", cache=True, nogil=True)
def without_kept_z(lay):
    """``lay`` with an empty ``z_out``: the output layer's epilogue keeps no ``z`` (a pass
    that computes no loss, as predict, has no use for it)."""
    return (lay[0], lay[1], lay[2], lay[3], lay[4], lay[5][:0], lay[6], lay[7], lay[8],
            lay[9], lay[10], lay[11], lay[12], lay[13], lay[14], lay[15])


@njit(cache=True, nogil=True)
def inference_buffers(net, ws, n, first):
    """``layer_op``'s buffers (no dropout) for a whole-data-set pass over ``n`` rows in
    chunks of ``ws.capacity`` rows, after checking (``check_workspace``, same ``first``)
    that ``ws`` holds a chunk."""
    if ws.capacity < 1:
        raise ValueError("the workspace holds no rows (capacity < 1)")
    check_workspace(net, ws, min(ws.capacity, n), first)
    return no_dropout_buffers(net, ws)


@njit(cache=True, nogil=True, entry=True)
def forward(net, ws, n):
    """Forward pass of the ``n`` input rows already stored in the layer-0 block of ``ws.act``.

    Parameters
    ----------
    net : KernelArgs, the network (``params``, ``sizes``, ``w_off``, ``b_off``,
        ``act_codes``); no dropout
    ws : WorkspaceArrays, its ``act`` receives every layer's activations and ``z_out`` the
        output layer's ``z``
    n : int, rows in the batch
    """
    check_workspace(net, ws, n, rt(0))
    forward_pass(no_dropout_buffers(net, ws), n)


@njit(inline="always", cache=True, nogil=True)
def forward_pass(lay, n):
    """The forward pass of ``n`` rows over the buffers of ``lay`` (see ``layer_op``):
    dropout when ``lay``'s rates say so. One row: one call (``row_ops``)."""
    if n == 1:
        row_ops(rt(OP_FORWARD), lay, rt(0), lay[6].shape[0] - 1, rt(1), rt(False))
        return
    for p in range(lay[6].shape[0] - 1):
        layer_op(rt(OP_FORWARD), lay, p, n, rt(False))


@njit(inline="always", cache=True, nogil=True)
def backward_pass(lay, n, accumulate):
    """The backward sweep over the buffers of ``lay``, from the output delta already in
    ``delta``'s last block: every hidden delta and every layer's gradient. One row: one
    call (``row_ops``)."""
    if n == 1:
        row_ops(rt(OP_BACKWARD), lay, rt(0), lay[6].shape[0] - 1, rt(1), accumulate)
        return
    for p in range(lay[6].shape[0] - 2, -1, -1):
        layer_op(rt(OP_GRAD), lay, p, n, accumulate)
        if p > 0:
            layer_op(rt(OP_DELTA), lay, p, n, rt(False))


#: exponentials of a row's logits computed per chunk (on the stack) before they are summed
_EXP_CHUNK = 64
_exp_stack = stack(_EXP_CHUNK * 8)

#: largest logit (in magnitude) for which the cross-entropy is summed as ``lse - z``
CE_FAR_LOGIT = 2.0**24


@njit(inline="always", cache=True, nogil=True)
def _ce_term(tj, zj, mx, log_s):
    """One class's term ``t_j (lse - z_j)`` of a cross-entropy (all float64), from the row's
    largest logit ``mx`` and ``log_s``, the log of its sum of ``exp(z - mx)``. 0 where
    ``t_j`` is 0: ``0 * (lse - z)`` must not turn an infinite ``z`` into NaN. ``(mx + log s)
    - z`` rounds log s away once ulp(mx) is not small beside it (to 0.0 for equal logits
    beyond ~1e16): there, ``(mx - z) + log s``. Below ``CE_FAR_LOGIT`` the usual form, so
    ordinary losses keep their bits."""
    if abs(mx) >= CE_FAR_LOGIT:
        v = tj * ((mx - zj) + log_s)
    else:
        v = tj * ((mx + log_s) - zj)
    return v if tj != 0 else 0.0


@njit(inline="always", cache=True, nogil=True)
def _ce_row(z, t, i, mx, log_s):
    """Cross-entropy of row ``i`` from its largest logit ``mx`` and ``log_s`` (float64), its
    terms (``_ce_term``) summed in column order."""
    total = 0.0
    for j in range(z.shape[1]):
        total += _ce_term(np.float64(t[i, j]), np.float64(z[i, j]), mx, log_s)
    return total


@njit(inline="always", cache=True, nogil=True)
def _add_row_loss(total, row_e, w, i, scale, row_scaled):
    """``total`` plus row ``i``'s loss as ``output_delta_weighted`` sums it: ``row_e``
    (``w`` empty), ``w_i * row_e``, or with ``row_scaled`` ``row_e * (scale * w_i)``."""
    if w.shape[0] > 0 and row_scaled:  # each row's loss with the scale of its delta
        return total + row_e * (scale * np.float64(w[i]))
    if w.shape[0] > 0:
        return total + np.float64(w[i]) * row_e
    return total + row_e


@njit(inline="always", cache=True, nogil=True)
def _row_loss(z, a, t, loss_code, i):
    """Loss of row ``i`` in float64; cross-entropies from z, so stable for any logits."""
    if loss_code == CROSS_ENTROPY or loss_code == BINARY_CROSS_ENTROPY or loss_code == POISSON:
        return _log_loss_row(z, a, t, loss_code, i)
    total = 0.0
    for j in range(z.shape[1]):  # squared error
        g = np.float64(a[i, j]) - t[i, j]
        total += 0.5 * g * g
    return total


@njit(cache=True, nogil=True)
def _log_loss_row_kernel(z, a, t, loss_code, i):
    """``_row_loss`` of the losses with logarithms: cross-entropy, binary cross-entropy,
    Poisson deviance."""
    m = z.shape[1]
    total = 0.0
    if loss_code == CROSS_ENTROPY:
        mx = z[i, 0]
        for j in range(1, m):
            if z[i, j] > mx:
                mx = z[i, j]
        s = 0.0
        e = carray(_exp_stack(np.float64), (_EXP_CHUNK,))
        for c0 in range(0, m, _EXP_CHUNK):
            cl = np.uint64(min(_EXP_CHUNK, m - c0))
            zr = z[i, c0:]
            for j in range(cl):  # the exponentials vectorised (no reduction in this loop)
                e[j] = vexp(np.float64(zr[j]) - mx)
            for j in range(cl):  # then summed in order
                s += e[j]
        total = _ce_row(z, t, i, np.float64(mx), vlog(s))
    elif loss_code == BINARY_CROSS_ENTROPY:
        for j in range(m):
            x = np.float64(z[i, j])
            total += max(x, 0.0) - t[i, j] * x + vlog1p(vexp(-abs(x)))
    elif loss_code == POISSON:
        # half Poisson deviance t log(t / a) - t + a with a = exp(z), so log a = z;
        # t log(t / a) is 0 at t = 0 (scipy's xlogy), and infinite z stays visible
        for j in range(m):
            tj = np.float64(t[i, j])
            if tj != 0:
                total += tj * (vlog(tj) - z[i, j])
            total += np.float64(a[i, j]) - tj
    return total


#: compiled at its first call (``_flat``, lazy): the cross-entropy of up to ``CE_COLS``
#: softmax classes is taken by blocks (``_ce_total``), so a classifier's first fit does not
#: compile the row-by-row logarithms
_log_loss_row = flat(_log_loss_row_kernel, lambda dtype: types.float64(
    c_array(dtype, 2), c_array(dtype, 2), c_array(dtype, 2), types.int64, types.int64),
    lazy=True, fallback=True)


#: the cross-entropy of up to ``CE_COLS`` classes is taken ``CE_ROWS`` rows at a time
#: (``_ce_total``), the block transposed so that every loop runs across its rows, one row
#: per vector lane: the maxima, exponentials, sums, logarithms and loss terms of a block are
#: vector operations, each row's operations still in its own column order
CE_ROWS = 16
CE_COLS = 64
_CE_BLOCK = CE_ROWS * CE_COLS
_ce_stack = stack(2 * _CE_BLOCK * 8)
_ce_rows_stack = stack(3 * CE_ROWS * 8)


@njit(error_model="numpy", cache=True, nogil=True)
def _ce_total_kernel(z, t, w, scale, row_scaled):
    """The cross-entropy summed over the rows of ``z`` (``(n, m)``, ``m <= CE_COLS``) as
    ``output_delta_weighted`` sums it (``w`` empty: unweighted), each row's loss bit for
    bit ``_row_loss``'s: the same operations on each element, in the same order per row."""
    wide_vectors()
    n, m = z.shape
    G, um = np.uint64(CE_ROWS), np.uint64(m)
    buf = carray(_ce_stack(np.float64), (2 * _CE_BLOCK,))
    Z, T = buf[:_CE_BLOCK], buf[_CE_BLOCK:]  # z and t, transposed: [j * G + r]
    rows = carray(_ce_rows_stack(np.float64), (3 * CE_ROWS,))
    mx, lg, e = rows[:CE_ROWS], rows[CE_ROWS:2 * CE_ROWS], rows[2 * CE_ROWS:]
    total = 0.0
    for g0 in range(0, n, CE_ROWS):
        # the loops over a block's rows run to g, not to the constant CE_ROWS: LLVM would
        # unroll those and vectorise the column loops around them, with gathers
        g = np.uint64(min(CE_ROWS, n - g0))
        for r in range(g):  # the block, transposed, and each row's maximum: row by row
            zr = z[g0 + np.int64(r)]  # (contiguous loads; by columns they were gathers)
            tr = t[g0 + np.int64(r)]
            m_r = np.float64(zr[0])
            for j in range(um):
                v = np.float64(zr[j])
                Z[j * G + r] = v
                T[j * G + r] = np.float64(tr[j])
                m_r = v if v > m_r else m_r
            mx[r] = m_r
            e[r] = 0.0
        for j in range(um):  # the exponentials, summed in column order
            for r in range(g):
                e[r] += vexp(Z[j * G + r] - mx[r])
        for r in range(g):
            lg[r] = vlog(e[r])
            e[r] = 0.0
        for j in range(um):  # each row's terms, in column order
            for r in range(g):
                e[r] += _ce_term(T[j * G + r], Z[j * G + r], mx[r], lg[r])
        for r in range(g):
            total = _add_row_loss(total, e[r], w, g0 + np.int64(r), scale, row_scaled)
    return total


#: the block cross-entropy, compiled once per dtype and called through a pointer
#: (``_flat``): the loss kernel does not link it
_ce_total = flat(_ce_total_kernel, lambda dtype: types.float64(
    c_array(dtype, 2), c_array(dtype, 2), c_array(dtype, 1), types.float64, types.boolean),
    fallback=True)


@njit(cache=True, nogil=True, entry=True)
def output_delta(z, a, t, loss_code, out_code, scale, delta):
    """Loss of a batch and the output delta ``dE/dz^L``.

    ``E = scale * sum_i E_i``, with ``E_i`` the loss of row ``i`` (``1/2 ||a - t||^2`` for
    squared error, ``-sum_j t_j log softmax(z)_j`` for cross-entropy, the summed logistic
    log-loss for binary cross-entropy, the summed half Poisson deviance
    ``t log(t / a) - t + a`` with ``a = exp(z)`` for Poisson). ``scale = 1/n`` gives the batch mean.

    Parameters
    ----------
    z, a : (n, m) arrays, output layer pre-activation and activation
    t : (n, m) array, targets (one-hot or probabilities for cross-entropy)
    loss_code, out_code : int
    scale : float
    delta : (n, m) array, written

    Returns
    -------
    float
        ``E`` in float64.
    """
    # a zero-length view means "unit weights" and allocates nothing
    return output_delta_weighted(z, a, t, delta.reshape(-1)[:0], loss_code, out_code, scale,
                                 delta, rt(False))


@njit(cache=True, nogil=True)
def output_delta_weighted(z, a, t, w, loss_code, out_code, scale, delta, row_scaled=False):
    """Weighted loss of a batch and its output delta: ``E = scale * sum_i w_i E_i``.

    As ``output_delta`` with a per-row weight folded into each row's scale (``delta_i``
    is multiplied by ``scale * w_i``). ``scale = 1 / sum_i w_i`` gives the weighted mean.
    ``E`` is summed as ``(sum_i w_i E_i) * scale``, or with ``row_scaled`` as
    ``sum_i E_i * (scale * w_i)`` (scikit-learn's rounding; unit weights then differ from
    the unweighted sum in the last bit).

    Parameters
    ----------
    z, a, t, delta : (n, m) arrays (see ``output_delta``)
    w : (n,) float array of row weights, or an empty array for unit weights
    loss_code, out_code : int
    scale : float

    Returns
    -------
    float
        ``E`` in float64.
    """
    return output_delta_counted(z, a, t, w, loss_code, out_code, scale, delta, row_scaled,
                                rt(False))[0]


@njit(cache=True, nogil=True)
def output_delta_counted(z, a, t, w, loss_code, out_code, scale, delta, row_scaled, count):
    """``output_delta_weighted``, and with ``count`` the rows of ``a`` that match ``t`` as
    ``count_correct`` counts them (else 0): ``(E, correct)``."""
    n, m = a.shape
    weighted = w.shape[0] > 0
    block = loss_code == CROSS_ENTROPY and m <= CE_COLS  # the loss by blocks of rows
    sc = delta.dtype.type(scale)
    total = 0.0
    for i in range(n):
        if weighted:
            sc = delta.dtype.type(scale * np.float64(w[i]))
        if loss_code == CROSS_ENTROPY:
            # d/dz_k sum_j t_j (lse(z) - z_j) = a_k sum_j t_j - t_k  (= a_k - t_k for one-hot)
            tsum = t.dtype.type(0)
            for j in range(m):
                tsum += t[i, j]
            for j in range(m):
                delta[i, j] = (a[i, j] * tsum - t[i, j]) * sc
        elif loss_code == BINARY_CROSS_ENTROPY or loss_code == POISSON:
            # canonical link: logistic / log-likelihood and exp / Poisson give a - t
            for j in range(m):
                delta[i, j] = (a[i, j] - t[i, j]) * sc
        else:  # squared error, any output activation
            for j in range(m):
                delta[i, j] = a[i, j] - t[i, j]
            if out_code == SOFTMAX:
                # Jacobian-vector product of softmax: a_k (g_k - sum_j g_j a_j)
                ga = delta.dtype.type(0)
                for j in range(m):
                    ga += delta[i, j] * a[i, j]
                for j in range(m):
                    delta[i, j] = a[i, j] * (delta[i, j] - ga)
            elif out_code != IDENTITY:  # (f' = 1: no call)
                multiply_derivative(delta, a, i, i + 1, rt(0), m, out_code)
            for j in range(m):
                delta[i, j] *= sc
        if not block:
            total = _add_row_loss(total, _row_loss(z, a, t, loss_code, i), w, i, scale,
                                  row_scaled)
    if block:
        total = _ce_total(z, t, w, scale, row_scaled)
    correct = count_correct(as_array(a), as_array(t), loss_code) if count else 0
    return (total if weighted and row_scaled else total * scale), correct


#: ``output_delta_counted`` compiled once per dtype and called through a pointer (see
#: ``_flat``) by the drivers, whose arguments are C-contiguous arrays of the model's dtype
output_delta_flat = flat(output_delta_counted, lambda dtype: types.Tuple(
    (types.float64, types.int64))(
    c_array(dtype, 2), c_array(dtype, 2), c_array(dtype, 2), c_array(dtype, 1), types.int64,
    types.int64, types.float64, c_array(dtype, 2), types.boolean, types.boolean))


@njit(cache=True, nogil=True, entry=True)
def count_correct(a, t, loss_code):
    """Rows of the (n, m) outputs ``a`` that match the targets ``t``.

    Cross-entropy: ``argmax a == argmax t`` (the first maximum of each). Binary
    cross-entropy: every label right at the 0.5 threshold (exact match, as scikit-learn's
    multi-label accuracy). Other losses: 0.
    """
    n, m = a.shape
    correct = 0
    if loss_code == CROSS_ENTROPY and vector_row(a):
        a, t = np.ascontiguousarray(a), np.ascontiguousarray(t)  # (no copy when they are)
        for i in range(n):
            correct += first_max(a, i) == first_max(t, i)
        return correct
    for i in range(n):
        if loss_code == CROSS_ENTROPY:
            # the first maximum of each row, as selects: a branch per new maximum was
            # mispredicted about once per row (most of the function's time)
            ja, jt, ba, bt = 0, 0, a[i, 0], t[i, 0]
            for j in range(1, m):
                va, vt = a[i, j], t[i, j]
                ga, gt = va > ba, vt > bt
                ja, ba = (j, va) if ga else (ja, ba)
                jt, bt = (j, vt) if gt else (jt, bt)
            correct += ja == jt
        elif loss_code == BINARY_CROSS_ENTROPY:
            ok = True
            for j in range(m):
                if (a[i, j] >= 0.5) != (t[i, j] >= 0.5):
                    ok = False
            if ok:
                correct += 1
    return correct


@njit(cache=True, nogil=True, entry=True)
def batch_loss(z, a, t, loss_code):
    """Sum over rows of the per-row loss (float64), without computing a delta.

    Parameters
    ----------
    z, a, t : (n, m) arrays
    loss_code : int
    """
    if loss_code == CROSS_ENTROPY and z.shape[1] <= CE_COLS:
        return _ce_total(z, t, z[:0, 0], 1.0, rt(False))
    total = 0.0
    for i in range(a.shape[0]):
        total += _row_loss(z, a, t, loss_code, i)
    return total


@njit(cache=True, nogil=True, entry=True)
def backward(net, ws, n, accumulate):
    """Backward sweep from the output delta (already in ``ws.delta``'s last block) to all
    gradients.

    Writes ``ws.delta`` for every hidden layer and the weight and bias gradients of every
    layer into ``net.grads`` (same layout as ``params``), added to the existing values when
    ``accumulate`` is true. The gradient is a sum over the batch rows; the averaging factor
    is carried by the output delta (``output_delta``'s ``scale``).

    Parameters
    ----------
    net : KernelArgs (no dropout)
    ws : WorkspaceArrays holding this batch's activations (``forward``) and output delta
    n : int, rows in the batch
    accumulate : bool
    """
    check_workspace(net, ws, n, rt(0))
    backward_pass(no_dropout_buffers(net, ws), n, accumulate)
