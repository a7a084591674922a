"""Whole-network passes over one batch held in the workspace.

``forward`` fills the activation workspace layer by layer; ``output_delta`` turns the output
layer's ``z``/``a`` and the targets into the loss and ``delta^L = dE/dz^L``; ``backward`` runs
the dynamic-programming sweep ``delta^(l-1) = (W^l)^T delta^l * f'(z^(l-1))`` and writes every
layer's gradient. See ``fastbp.kernels._layout`` for the buffer layout.

Training variants: ``output_delta_weighted`` folds a per-row weight into each row's scale;
``forward_train``/``backward_train`` add inverted dropout on hidden layers, with masks drawn
from a counter-based hash (``dropout_uniform``) so that the backward pass regenerates them
instead of storing them.
"""

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from ._activations import multiply_derivative
from ._codes import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, SOFTMAX
from ._dense import dense_delta, dense_forward, dense_grad


@intrinsic
def _view2d(typingctx, flat, start, n_rows, n_cols):
    """The C-contiguous ``(n_rows, n_cols)`` view of ``flat[start : start + n_rows * n_cols]``.

    What ``flat[start : ...].reshape((n_rows, n_cols))`` gives, without the call into
    Numba's C reshape helper (~15 ns, several times per layer and step). Unchecked: the
    caller guarantees that the range lies inside the 1-D, C-contiguous ``flat``.
    """
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"):
        return None
    ret = types.Array(flat.dtype, 2, "C")
    sig = ret(flat, types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        src = make_array(flat)(context, builder, args[0])
        start, rows, cols = args[1], args[2], args[3]
        dst = make_array(ret)(context, builder)
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(flat.dtype))
        )
        populate_array(
            dst, data=builder.gep(src.data, [start]),
            shape=cgutils.pack_array(builder, [rows, cols]),
            strides=cgutils.pack_array(builder, [builder.mul(cols, itemsize), itemsize]),
            itemsize=itemsize, meminfo=src.meminfo, parent=src.parent,
        )
        return impl_ret_borrowed(context, builder, ret, dst._getvalue())

    return sig, codegen


@intrinsic
def _borrowed(typingctx, arr):
    """``arr`` without its reference-counted owner: the same data, shape and strides.

    Every call that passes a Numba array to a compiled function increments and decrements
    the owner's reference count (an atomic operation, ~5-20 ns each, and a step passes
    arrays dozens of times); a borrowed array skips both. Only for use inside a call that
    keeps ``arr`` itself alive: a borrowed array must not be returned or stored.
    """
    if not isinstance(arr, types.Array):
        return None
    sig = arr(arr)

    def codegen(context, builder, signature, args):
        src = make_array(arr)(context, builder, args[0])
        dst = make_array(arr)(context, builder)
        populate_array(
            dst, data=src.data, shape=src.shape, strides=src.strides, itemsize=src.itemsize,
            meminfo=None, parent=None,
        )
        return dst._getvalue()

    return sig, codegen


@njit(inline="always", cache=True)
def _view(flat, start, n_rows, n_cols):
    """``_view2d`` after checking that the block lies inside ``flat``."""
    if n_rows < 0 or start < 0 or start + n_rows * n_cols > flat.shape[0]:
        raise ValueError("block outside its buffer: more rows than the workspace holds?")
    return _view2d(flat, start, n_rows, n_cols)


@njit(inline="always", cache=True)
def _W(buf, sizes, w_off, p):
    return _view(buf, w_off[p], sizes[p + 1], sizes[p])


@njit(inline="always", cache=True)
def _b(buf, sizes, b_off, p):
    return buf[b_off[p] : b_off[p] + sizes[p + 1]]


@njit(inline="always", cache=True)
def _block(ws, sizes, a_off, l, n):
    return _view(ws, a_off[l], n, sizes[l])


@njit(cache=True, nogil=True)
def forward(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, n):
    """Forward pass of the ``n`` input rows already stored in the layer-0 block of ``act``.

    Parameters
    ----------
    params : (n_params,) float array
    sizes : (L + 1,) int64 array, units per layer
    w_off, b_off : (L,) int64 arrays, parameter offsets (``fastbp.kernels._layout.param_offsets``)
    act_codes : (L,) int64 array, activation code of each layer (last: output activation)
    act : float array, activation workspace (``fastbp.kernels._layout.workspace_offsets``)
    a_off : (L + 1,) int64 array, workspace offsets
    z_out : float array of at least ``n * sizes[L]`` elements, receives the output layer's z
    n : int, rows in the batch
    """
    n_layers = sizes.shape[0] - 1
    for p in range(n_layers):
        if p == n_layers - 1:
            z_keep = _view(z_out, 0, n, sizes[p + 1])
        else:
            z_keep = _view(z_out, 0, 0, sizes[p + 1])
        dense_forward(
            _block(act, sizes, a_off, p, n),
            _W(params, sizes, w_off, p),
            _b(params, sizes, b_off, p),
            _block(act, sizes, a_off, p + 1, n),
            act_codes[p],
            z_keep,
        )


@njit(cache=True, nogil=True)
def _row_loss(z, a, t, loss_code, i):
    """Loss of row ``i`` in float64; cross-entropies from z, so stable for any logits."""
    m = z.shape[1]
    total = 0.0
    if loss_code == CROSS_ENTROPY:
        mx = z[i, 0]
        for j in range(1, m):
            if z[i, j] > mx:
                mx = z[i, j]
        s = 0.0
        for j in range(m):
            s += np.exp(np.float64(z[i, j]) - mx)
        lse = mx + np.log(s)
        for j in range(m):
            if t[i, j] != 0:  # 0 * (lse - z) must not turn an infinite z into NaN
                total += t[i, j] * (lse - z[i, j])
    elif loss_code == BINARY_CROSS_ENTROPY:
        for j in range(m):
            x = np.float64(z[i, j])
            total += max(x, 0.0) - t[i, j] * x + np.log1p(np.exp(-abs(x)))
    else:
        for j in range(m):
            g = np.float64(a[i, j]) - t[i, j]
            total += 0.5 * g * g
    return total


@njit(cache=True, nogil=True)
def output_delta(z, a, t, loss_code, out_code, scale, delta):
    """Loss of a batch and the output delta ``dE/dz^L``.

    ``E = scale * sum_i E_i``, with ``E_i`` the loss of row ``i`` (``1/2 ||a - t||^2`` for
    squared error, ``-sum_j t_j log softmax(z)_j`` for cross-entropy, the summed logistic
    log-loss for binary cross-entropy). ``scale = 1/n`` gives the batch mean.

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
    return output_delta_weighted(z, a, t, delta.reshape(-1)[:0], loss_code, out_code, scale, delta)


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
    n, m = a.shape
    weighted = w.shape[0] > 0
    sc = delta.dtype.type(scale)
    total = 0.0
    row_scale = scale
    for i in range(n):
        if weighted:
            row_scale = scale * np.float64(w[i])
            sc = delta.dtype.type(row_scale)
        if loss_code == CROSS_ENTROPY:
            # d/dz_k sum_j t_j (lse(z) - z_j) = a_k sum_j t_j - t_k  (= a_k - t_k for one-hot)
            tsum = t.dtype.type(0)
            for j in range(m):
                tsum += t[i, j]
            for j in range(m):
                delta[i, j] = (a[i, j] * tsum - t[i, j]) * sc
        elif loss_code == BINARY_CROSS_ENTROPY:
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
            else:
                multiply_derivative(delta, a, i, i + 1, 0, m, out_code)
            for j in range(m):
                delta[i, j] *= sc
        row_e = _row_loss(z, a, t, loss_code, i)
        if weighted and row_scaled:  # each row's loss with the scale of its delta
            total += row_e * row_scale
        elif weighted:
            total += np.float64(w[i]) * row_e
        else:
            total += row_e
    return total if weighted and row_scaled else total * scale


@njit(cache=True, nogil=True)
def batch_loss(z, a, t, loss_code):
    """Sum over rows of the per-row loss (float64), without computing a delta.

    Parameters
    ----------
    z, a, t : (n, m) arrays
    loss_code : int
    """
    total = 0.0
    for i in range(a.shape[0]):
        total += _row_loss(z, a, t, loss_code, i)
    return total


@njit(cache=True, nogil=True)
def backward(params, grads, sizes, w_off, b_off, act_codes, act, delta, a_off, n, accumulate):
    """Backward sweep from the output delta (already in ``delta``'s last block) to all gradients.

    Writes ``delta`` for every hidden layer and the weight and bias gradients of every layer
    into ``grads`` (same layout as ``params``), added to the existing values when
    ``accumulate`` is true. The gradient is a sum over the batch rows; the averaging factor
    is carried by the output delta (``output_delta``'s ``scale``).

    Parameters
    ----------
    params, grads : (n_params,) float arrays
    sizes, w_off, b_off, act_codes, a_off : int64 layout arrays (see ``forward``)
    act, delta : float workspaces holding this batch's activations and output delta
    n : int, rows in the batch
    accumulate : bool
    """
    n_layers = sizes.shape[0] - 1
    for p in range(n_layers - 1, -1, -1):
        d = _block(delta, sizes, a_off, p + 1, n)
        a_in = _block(act, sizes, a_off, p, n)
        if p > 0:
            dense_delta(
                d, _W(params, sizes, w_off, p), a_in, act_codes[p - 1],
                _block(delta, sizes, a_off, p, n),
            )
        dense_grad(d, a_in, _W(grads, sizes, w_off, p), _b(grads, sizes, b_off, p), accumulate)


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


@njit(cache=True, nogil=True)
def _apply_dropout(a, raw, rate, seed, step, unit0):
    """Inverted dropout of the (n, k) block ``a`` in place; ``raw`` keeps the undropped a."""
    n, k = a.shape
    s = a.dtype.type(1.0 / (1.0 - rate))
    for i in range(n):
        for j in range(k):
            raw[i, j] = a[i, j]
            if dropout_uniform(seed, step, i, unit0 + j) < rate:
                a[i, j] = 0
            else:
                a[i, j] = a[i, j] * s


@njit(cache=True, nogil=True)
def _mask_delta(d, rate, seed, step, unit0):
    """``d *= mask / (1 - rate)`` with the mask regenerated from the counters."""
    n, k = d.shape
    s = d.dtype.type(1.0 / (1.0 - rate))
    for i in range(n):
        for j in range(k):
            if dropout_uniform(seed, step, i, unit0 + j) < rate:
                d[i, j] = 0
            else:
                d[i, j] = d[i, j] * s


@njit(cache=True, nogil=True)
def forward_train(
    params, sizes, w_off, b_off, act_codes, act, a_off, z_out, n, drop_rates, raw, seed, step,
):
    """``forward`` with inverted dropout on hidden layers (the training-time pass).

    Hidden layer ``h`` (unit layer ``h + 1``) drops each unit with probability
    ``drop_rates[h]`` and scales kept units by ``1 / (1 - rate)``; the mask of row ``i`` is
    ``dropout_uniform(seed, step, i, unit) < rate``. ``act`` receives the dropped activations
    (what the next layer and the weight gradient see), ``raw`` (same layout as ``act``) the
    undropped ones (what ``f'`` needs in the backward pass). With all rates 0 this is
    ``forward`` and ``raw`` is not touched.

    Parameters
    ----------
    drop_rates : (L - 1,) float64 array, dropout rate of each hidden layer, in [0, 1)
    raw : float array, same length as ``act``
    seed : int, >= 0
    step : int, the step counter (the mask changes every step)
    """
    n_layers = sizes.shape[0] - 1
    unit0 = 0
    for p in range(n_layers):
        if p == n_layers - 1:
            z_keep = _view(z_out, 0, n, sizes[p + 1])
        else:
            z_keep = _view(z_out, 0, 0, sizes[p + 1])
        dense_forward(
            _block(act, sizes, a_off, p, n),
            _W(params, sizes, w_off, p),
            _b(params, sizes, b_off, p),
            _block(act, sizes, a_off, p + 1, n),
            act_codes[p],
            z_keep,
        )
        if p < n_layers - 1:
            if drop_rates[p] > 0:
                _apply_dropout(
                    _block(act, sizes, a_off, p + 1, n), _block(raw, sizes, a_off, p + 1, n),
                    drop_rates[p], seed, step, unit0,
                )
            unit0 += sizes[p + 1]


@njit(cache=True, nogil=True)
def backward_train(
    params, grads, sizes, w_off, b_off, act_codes, act, delta, a_off, n, accumulate,
    drop_rates, raw, seed, step,
):
    """``backward`` through the dropout masks of ``forward_train`` (same arguments).

    For a hidden layer with dropout, ``delta = ((W^T delta_next) * f'(raw)) * mask/(1-rate)``
    and the weight gradient of the next layer uses the dropped activations in ``act``.
    """
    n_layers = sizes.shape[0] - 1
    unit0 = 0
    for q in range(1, n_layers):
        unit0 += sizes[q]
    for p in range(n_layers - 1, -1, -1):
        d = _block(delta, sizes, a_off, p + 1, n)
        a_in = _block(act, sizes, a_off, p, n)
        dense_grad(d, a_in, _W(grads, sizes, w_off, p), _b(grads, sizes, b_off, p), accumulate)
        if p > 0:
            unit0 -= sizes[p]
            rate = drop_rates[p - 1]
            d_in = _block(delta, sizes, a_off, p, n)
            if rate > 0:
                dense_delta(d, _W(params, sizes, w_off, p), _block(raw, sizes, a_off, p, n),
                            act_codes[p - 1], d_in)
                _mask_delta(d_in, rate, seed, step, unit0)
            else:
                dense_delta(d, _W(params, sizes, w_off, p), a_in, act_codes[p - 1], d_in)
