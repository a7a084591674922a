"""Optimizer updates over the whole flat parameter buffer.

Every optimizer is one fused loop over the flat index, run per parameter segment (each
layer's weights, then its bias) so that the L2 penalty reaches weights and never biases.
Segments large enough to repay a parallel launch use ``prange`` (unless Numba's thread count
is 1); each element is updated by exactly one iteration from its own state, so results do
not depend on the thread count.

The formulas are those of ``torch.optim`` (single-tensor code path), with ``g`` the gradient
of the data loss (after clipping), ``l2`` the coupled L2 coefficient (torch's
``weight_decay``; 0 on biases), ``t`` the step number starting at 1 and ``lr`` the step size:

SGD (``hyper = [momentum, dampening, nesterov, 0]``, state row 0 = momentum buffer ``b``)::

    g = g + l2 * p
    b = g                                   if t == 1
    b = momentum * b + (1 - dampening) * g  otherwise      (only when momentum != 0)
    g = g + momentum * b if nesterov else b                (only when momentum != 0)
    p = p - lr * g

Adam / AdamW (``hyper = [beta1, beta2, eps, weight_decay]``, rows ``m``, ``v``)::

    g = g + l2 * p
    p = p * (1 - lr * weight_decay)          (AdamW's decoupled decay; weights only)
    m = m + (1 - beta1) * (g - m)            (= beta1 m + (1 - beta1) g, torch's lerp)
    v = beta2 * v + (1 - beta2) * g * g
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

RMSprop (``hyper = [alpha, eps, momentum, centered]``, rows ``s``, ``b``, ``ga``)::

    g = g + l2 * p
    s = alpha * s + (1 - alpha) * g * g
    ga = ga + (1 - alpha) * (g - ga);  d = sqrt(s - ga * ga) + eps    (centered)
    d = sqrt(s) + eps                                                  (otherwise)
    b = momentum * b + g / d;  p = p - lr * b                          (momentum > 0)
    p = p - lr * g / d                                                 (otherwise)

Adagrad (``hyper = [lr_decay, eps, 0, 0]``, row ``s`` starting at initial_accumulator_value)::

    g = g + l2 * p
    s = s + g * g
    p = p - lr / (1 + (t - 1) * lr_decay) * g / (sqrt(s) + eps)

scikit-learn's rules (``sklearn.neural_network``'s ``SGDOptimizer`` and ``AdamOptimizer``),
computed in the same order of operations, with no fused multiply-adds, so that the
scikit-learn estimators reach scikit-learn's weights to rounding:

scikit-learn SGD (``hyper = [momentum, nesterov, 0, 0]``, row ``v``)::

    g = g + l2 * p
    v = momentum * v - lr * g
    p = p + momentum * v - lr * g   (nesterov)      p = p + v   (otherwise)

scikit-learn Adam (``hyper = [beta1, beta2, eps, 0]``, rows ``m``, ``u``)::

    g = g + l2 * p
    m = beta1 * m + (1 - beta1) * g;  u = beta2 * u + (1 - beta2) * g * g
    p = p - lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(u) + eps)
"""

import numpy as np
from numba import carray, prange, types

from ._cache import njit
from ._codes import (
    OPT_ADAGRAD,
    OPT_ADAM,
    OPT_RMSPROP,
    OPT_SGD,
    OPT_SKLEARN_ADAM,
    OPT_SKLEARN_SGD,
)
from ._flat import c_array, flat
from ._llvm import borrowed, ptr_at, rt, stack, threads, wide_vectors

# No fast-math flags here: an update like ``momentum * b + (1 - dampening) * g`` could be
# fused into a multiply-add in two ways, and which one LLVM picks depended on the code the
# kernel was optimised with -- a kernel compiled in this process and the same kernel loaded
# from Numba's cache then disagreed in the last bit. Without ``contract`` every product and
# sum is rounded on its own, the same everywhere. ``error_model="numpy"``: a division by
# zero gives inf/NaN (caught by the divergence check) instead of raising, which keeps a
# branch out of every division, so that the loops vectorise.

#: elements below which an update runs serially; larger ones in ``_PARALLEL_CHUNK`` pieces
_PARALLEL_MIN_ELEMENTS = 1 << 16
_PARALLEL_CHUNK = 1 << 16


@njit(inline="always", cache=True, nogil=True)
def _serial(n):
    """Whether an update of ``n`` elements runs on this thread alone: fewer than
    ``_PARALLEL_MIN_ELEMENTS`` (a parallel launch would cost more), or one thread."""
    return n < _PARALLEL_MIN_ELEMENTS or threads() == 1


@njit(error_model="numpy", cache=True, nogil=True)
def _sgd_range(params, grads, lr, lo, hi):
    """``params[k] -= lr * grads[k]`` for ``lo <= k < hi`` (``lr`` of the buffer dtype)."""
    wide_vectors()
    for k in range(np.uint64(lo), np.uint64(hi)):  # unsigned: no wraparound, vectorises
        params[k] -= lr * grads[k]


@njit(inline="always", cache=True, nogil=True)
def plain_sgd(kind, hyper, l2):
    """Whether an update of optimizer ``kind`` is plain gradient descent (SGD without
    momentum or L2 penalty): ``sgd_step``, one pass over the whole buffer."""
    return kind == OPT_SGD and hyper.shape[0] >= 4 and hyper[0] == 0 and l2 == 0


@njit(error_model="numpy", cache=True, nogil=True, entry=True)
def sgd_step(params, grads, learning_rate):
    """Plain gradient descent, ``params -= learning_rate * grads``, in place.

    Parameters
    ----------
    params, grads : (n_params,) float arrays of one dtype
    learning_rate : float
    """
    _sgd_step(borrowed(params), borrowed(grads), learning_rate)  # (the drivers' signature)


@njit(error_model="numpy", cache=True, nogil=True)
def _sgd_step(params, grads, learning_rate):
    """``sgd_step`` without its Python entry point, for ``optimizer_step``."""
    if grads.shape[0] != params.shape[0]:
        raise ValueError("grads must have the shape of params")
    n = params.shape[0]
    lr = params.dtype.type(learning_rate)
    if _serial(n):
        _sgd_range(params, grads, lr, rt(0), n)
    else:
        _sgd_parallel(params, grads, lr, n)


@njit(parallel=True, cache=True, nogil=True)
def _sgd_parallel_kernel(params, grads, lr, n):
    """``_sgd_range`` over ``[0, n)`` in pieces of ``_PARALLEL_CHUNK`` elements, one
    ``prange`` iteration each (``lr`` of the buffer dtype)."""
    for c in prange((n + _PARALLEL_CHUNK - 1) // _PARALLEL_CHUNK):
        a = c * _PARALLEL_CHUNK
        _sgd_range(params, grads, lr, a, min(n, a + _PARALLEL_CHUNK))


#: plain gradient descent on all threads, compiled at its first call (``_flat``, lazy)
_sgd_parallel = flat(_sgd_parallel_kernel, lambda dtype: types.none(
    c_array(dtype, 1), c_array(dtype, 1), dtype, types.int64), lazy=True, fallback=True)


# ------------------------------------------------------------------ per-element updates
@njit(inline="always", error_model="numpy")
def _sgd_one(params, grads, state, k, lr, l2, momentum, dampening1, nesterov, first):
    g = grads[k] + l2 * params[k]
    if momentum != 0:
        if first:
            b = g
        else:
            b = momentum * state[0, k] + dampening1 * g
        state[0, k] = b
        if nesterov:
            g = g + momentum * b
        else:
            g = b
    params[k] -= lr * g


@njit(inline="always", error_model="numpy")
def _adam_one(params, grads, state, k, l2, b1c, b2, b2c, step_size, bc2_sqrt, eps, decay):
    g = grads[k] + l2 * params[k]
    p = params[k] * decay
    m = state[0, k] + b1c * (g - state[0, k])
    v = b2 * state[1, k] + b2c * g * g
    state[0, k] = m
    state[1, k] = v
    params[k] = p - step_size * (m / (np.sqrt(v) / bc2_sqrt + eps))


@njit(inline="always", error_model="numpy")
def _rmsprop_one(params, grads, state, k, lr, l2, alpha, alpha1, eps, momentum, centered):
    g = grads[k] + l2 * params[k]
    s = alpha * state[0, k] + alpha1 * g * g
    state[0, k] = s
    if centered:
        ga = state[2, k] + alpha1 * (g - state[2, k])
        state[2, k] = ga
        d = np.sqrt(s - ga * ga) + eps
    else:
        d = np.sqrt(s) + eps
    if momentum > 0:
        b = momentum * state[1, k] + g / d
        state[1, k] = b
        params[k] -= lr * b
    else:
        params[k] -= lr * g / d


@njit(inline="always", error_model="numpy")
def _adagrad_one(params, grads, state, k, clr, l2, eps):
    g = grads[k] + l2 * params[k]
    s = state[0, k] + g * g
    state[0, k] = s
    params[k] -= clr * g / (np.sqrt(s) + eps)


# ------------------------------------------------------------------ segment loops
@njit(error_model="numpy", cache=True, nogil=True)
def _update_range(params, grads, state, kind, hyper, lr, step, l2, decoupled, lo, hi):
    """Update ``params[lo:hi]`` with optimizer ``kind``; ``l2`` and ``decoupled`` are 0 for
    biases. Scalars are cast to the buffer dtype once."""
    wide_vectors()
    ft = params.dtype.type
    l2_ = ft(l2)
    if kind == OPT_SGD:
        lr_ = ft(lr)
        momentum = ft(hyper[0])
        dampening1 = ft(1.0 - hyper[1])
        nesterov = hyper[2] != 0
        first = step == 1
        for k in range(np.uint64(lo), np.uint64(hi)):
            _sgd_one(params, grads, state, k, lr_, l2_, momentum, dampening1, nesterov, first)
    elif kind == OPT_ADAM:
        beta1, beta2, eps = hyper[0], hyper[1], hyper[2]
        bc1 = 1.0 - beta1**step
        bc2 = 1.0 - beta2**step
        b1c = ft(1.0 - beta1)
        b2 = ft(beta2)
        b2c = ft(1.0 - beta2)
        step_size = ft(lr / bc1)
        bc2_sqrt = ft(np.sqrt(bc2))
        eps_ = ft(eps)
        decay = ft(1.0 - lr * decoupled)
        for k in range(np.uint64(lo), np.uint64(hi)):
            _adam_one(params, grads, state, k, l2_, b1c, b2, b2c, step_size, bc2_sqrt, eps_,
                      decay)
    elif kind == OPT_RMSPROP:
        lr_ = ft(lr)
        alpha = ft(hyper[0])
        alpha1 = ft(1.0 - hyper[0])
        eps_ = ft(hyper[1])
        momentum = ft(hyper[2])
        centered = hyper[3] != 0
        for k in range(np.uint64(lo), np.uint64(hi)):
            _rmsprop_one(params, grads, state, k, lr_, l2_, alpha, alpha1, eps_, momentum,
                         centered)
    elif kind == OPT_ADAGRAD:
        clr = ft(lr / (1.0 + (step - 1) * hyper[0]))
        eps_ = ft(hyper[1])
        for k in range(np.uint64(lo), np.uint64(hi)):
            _adagrad_one(params, grads, state, k, clr, l2_, eps_)


@njit(parallel=True, cache=True, nogil=True)
def _update_parallel_kernel(params, grads, state, kind, hyper, lr, step, l2, decoupled, lo,
                            hi):
    """``_update_range`` over ``[lo, hi)`` in pieces of ``_PARALLEL_CHUNK`` elements, handed
    out one at a time (each element is updated by exactly one piece)."""
    n_chunks = (hi - lo + _PARALLEL_CHUNK - 1) // _PARALLEL_CHUNK
    for c in prange(n_chunks):
        a = lo + c * _PARALLEL_CHUNK
        _update_range(params, grads, state, kind, hyper, lr, step, l2, decoupled, a,
                      min(hi, a + _PARALLEL_CHUNK))


_I64 = c_array(types.int64, 1)
_F64 = c_array(types.float64, 1)

#: the parallel update, compiled at its first call (lazy: a model with fewer than
#: ``_PARALLEL_MIN_ELEMENTS`` parameters per segment, or one thread, never needs it)
_update_parallel = flat(_update_parallel_kernel, lambda dtype: types.none(
    c_array(dtype, 1), c_array(dtype, 1), c_array(dtype, 2), types.int64, _F64, types.float64,
    types.int64, types.float64, types.float64, types.int64, types.int64), lazy=True,
    fallback=True)


@njit(cache=True, nogil=True)
def _segment_kernel(params, grads, state, kind, hyper, lr, step, l2, decoupled, lo, hi):
    """The update of ``params[lo:hi]`` (``_update_range``), on all threads when it is big."""
    if _serial(hi - lo):
        _update_range(params, grads, state, kind, hyper, lr, step, l2, decoupled, lo, hi)
    else:
        _update_parallel(params, grads, state, kind, hyper, lr, step, l2, decoupled, lo, hi)


#: the optimizers with state, compiled at their first step (``_flat``, lazy): a fit with
#: plain gradient descent (``sgd_step``) compiles none of them
_segment = flat(_segment_kernel, lambda dtype: types.none(
    c_array(dtype, 1), c_array(dtype, 1), c_array(dtype, 2), types.int64, _F64, types.float64,
    types.int64, types.float64, types.float64, types.int64, types.int64), lazy=True,
    fallback=True)


#: lanes of ``_sum_squares``' partial sums (a fixed number: the order of the sum does not
#: depend on the machine or the thread count)
_SQ_LANES = 64
_sq_stack = stack(_SQ_LANES * 8)


@njit(error_model="numpy", cache=True, nogil=True)
def _sum_squares(params, lo, hi):
    """``sum params[lo:hi] ** 2`` in float64, as ``_SQ_LANES`` partial sums (lane ``j`` adds
    the elements ``lo + j (mod _SQ_LANES)`` in order) added in lane order at the end: a
    fixed order that vectorises (one running sum is a chain of dependent additions). Not
    inlined: its stack array kept the caller's update loop from vectorising."""
    wide_vectors()
    acc = carray(_sq_stack(np.float64), (_SQ_LANES,))
    for j in range(_SQ_LANES):
        acc[j] = 0.0
    n = hi - lo
    body = n - n % _SQ_LANES
    for k0 in range(np.uint64(0), np.uint64(body), np.uint64(_SQ_LANES)):
        blk = carray(ptr_at(params, lo + np.int64(k0)), (_SQ_LANES,))
        for j in range(np.uint64(_SQ_LANES)):
            w = np.float64(blk[j])
            acc[j] += w * w
    for k in range(body, n):
        w = np.float64(params[lo + k])
        acc[k - body] += w * w
    s = 0.0
    for j in range(_SQ_LANES):
        s += acc[j]
    return s


@njit(error_model="numpy", cache=True, nogil=True)
def _sklearn_range(params, grads, state, kind, hyper, lr, step, l2, lo, hi):
    """scikit-learn's update of ``params[lo:hi]`` (no fastmath: the same rounding as
    scikit-learn's NumPy code, element by element; the loops vectorise)."""
    wide_vectors()
    ft = params.dtype.type
    c = ft(l2)
    if kind == OPT_SKLEARN_SGD:
        lr_ = ft(lr)
        mu = ft(hyper[0])
        nesterov = hyper[1] != 0
        for k in range(np.uint64(lo), np.uint64(hi)):
            g = grads[k] + c * params[k] if l2 != 0 else grads[k]
            v = mu * state[0, k] - lr_ * g
            state[0, k] = v
            if nesterov:
                params[k] += mu * v - lr_ * g
            else:
                params[k] += v
    else:
        beta1, beta2 = hyper[0], hyper[1]
        b1 = ft(beta1)
        b2 = ft(beta2)
        b1c = ft(1.0) - b1
        b2c = ft(1.0) - b2
        eps = ft(hyper[2])
        lr_t = ft(lr * np.sqrt(1.0 - beta2**step) / (1.0 - beta1**step))
        for k in range(np.uint64(lo), np.uint64(hi)):
            g = grads[k] + c * params[k] if l2 != 0 else grads[k]
            m = b1 * state[0, k] + b1c * g
            u = b2 * state[1, k] + b2c * (g * g)
            state[0, k] = m
            state[1, k] = u
            params[k] -= lr_t * m / (np.sqrt(u) + eps)


@njit(parallel=True, cache=True, nogil=True)
def _sklearn_parallel_kernel(params, grads, state, kind, hyper, lr, step, l2, lo, hi):
    """``_sklearn_range`` over ``[lo, hi)`` in pieces of ``_PARALLEL_CHUNK`` elements, handed
    out one at a time (each element is updated by exactly one piece: bits as on one thread)."""
    n_chunks = (hi - lo + _PARALLEL_CHUNK - 1) // _PARALLEL_CHUNK
    for c in prange(n_chunks):
        a = lo + c * _PARALLEL_CHUNK
        _sklearn_range(params, grads, state, kind, hyper, lr, step, l2, a,
                       min(hi, a + _PARALLEL_CHUNK))


#: scikit-learn's rules on all threads, compiled at their first call (``_flat``, lazy)
_sklearn_parallel = flat(_sklearn_parallel_kernel, lambda dtype: types.none(
    c_array(dtype, 1), c_array(dtype, 1), c_array(dtype, 2), types.int64, _F64, types.float64,
    types.int64, types.float64, types.int64, types.int64), lazy=True, fallback=True)


@njit(cache=True, nogil=True)
def _sklearn_segment_kernel(params, grads, state, kind, hyper, lr, step, l2, lo, hi, sq):
    """scikit-learn's update of ``params[lo:hi]`` (``_sklearn_range``), on all threads when
    it is big, as ``_segment``. Returns ``sq`` plus the sum of the squared parameters before
    the update when ``l2 != 0`` (the L2 term of the reported loss, ``_sum_squares``: one
    thread, a fixed order), else ``sq``."""
    if l2 != 0:
        sq += _sum_squares(params, lo, hi)
    if _serial(hi - lo):
        _sklearn_range(params, grads, state, kind, hyper, lr, step, l2, lo, hi)
    else:
        _sklearn_parallel(params, grads, state, kind, hyper, lr, step, l2, lo, hi)
    return sq


#: scikit-learn's rules, compiled at their first call (lazy: only the estimators use them)
_sklearn_segment = flat(_sklearn_segment_kernel, lambda dtype: types.float64(
    c_array(dtype, 1), c_array(dtype, 1), c_array(dtype, 2), types.int64, _F64, types.float64,
    types.int64, types.float64, types.int64, types.int64, types.float64), lazy=True,
    fallback=True)


@njit(inline="always", cache=True, nogil=True)
def _check_step(params, grads, state, kind, hyper, sizes, w_off, b_off):
    """O(1) checks that keep ``optimizer_step`` inside its arrays (``_check_step_shapes``:
    they read only lengths and the layout, compiled once for every dtype; the arrays
    borrowed, so that a step counts no references for them)."""
    _check_step_shapes(params.shape[0], grads.shape[0], state.shape[0], state.shape[1],
                       np.int64(kind), borrowed(hyper), borrowed(sizes), borrowed(w_off),
                       borrowed(b_off))


@njit(cache=True, nogil=True)
def _check_step_shapes(n_params, n_grads, state_rows, state_cols, kind, hyper, sizes, w_off,
                       b_off):
    rows = 0 if kind == OPT_SGD and hyper.shape[0] > 0 and hyper[0] == 0 else (
        3 if kind == OPT_RMSPROP else 2 if kind == OPT_ADAM or kind == OPT_SKLEARN_ADAM else 1)
    if kind < 0 or kind > OPT_SKLEARN_ADAM:
        raise ValueError("kind is not an optimizer code (OPT_*)")
    if hyper.shape[0] < 4:
        raise ValueError("hyper must hold 4 hyperparameters")
    if n_grads != n_params:
        raise ValueError("grads must have the shape of params")
    if state_rows < rows or (rows > 0 and state_cols != n_params):
        raise ValueError("state must be (rows of this optimizer, n_params)")
    L = sizes.shape[0] - 1
    if w_off.shape[0] != L or b_off.shape[0] != L or b_off[L - 1] + sizes[L] > n_params:
        raise ValueError("sizes, w_off and b_off do not fit params")


@njit(cache=True, nogil=True, entry=True)
def optimizer_step(params, grads, state, kind, hyper, lr, step, l2, sizes, w_off, b_off):
    """One optimizer update of the whole flat buffer, in place (formulas: module docstring).

    Parameters
    ----------
    params, grads : (n_params,) float arrays; ``grads`` holds the data-loss gradient
    state : (rows, n_params) float array, optimizer state (``_codes.OPT_STATE_ROWS``)
    kind : int, optimizer code (``_codes.OPT_*``)
    hyper : (4,) float64 array, hyperparameters of ``kind`` (module docstring)
    lr : float, learning rate of this step
    step : int, the step number ``t`` (1 for the first step with this state)
    l2 : float, L2 penalty coefficient on weights (``E + l2/2 * sum W**2``); biases get none
    sizes, w_off, b_off : int64 layout arrays

    Returns
    -------
    float
        For scikit-learn's rules with ``l2 != 0``: the sum of the squared weights before
        the update (float64, the L2 term of scikit-learn's reported loss); else 0.
    """
    return optimizer_step_flat(params, grads, state, kind, hyper, lr, step, l2, sizes, w_off,
                               b_off)


@njit(cache=True, nogil=True)
def _optimizer_step(params, grads, state, kind, hyper, lr, step, l2, sizes, w_off, b_off):
    """``optimizer_step`` without its Python entry point (the drivers call it flat)."""
    _check_step(params, grads, state, kind, hyper, sizes, w_off, b_off)
    sq = 0.0
    if kind == OPT_SKLEARN_SGD or kind == OPT_SKLEARN_ADAM:
        for p in range(sizes.shape[0] - 1):
            n_w = sizes[p] * sizes[p + 1]
            sq = _sklearn_segment(params, grads, state, kind, hyper, lr, step, rt(l2),
                                  w_off[p], w_off[p] + n_w, sq)
            _sklearn_segment(params, grads, state, kind, hyper, lr, step, rt(0.0), b_off[p],
                             b_off[p] + sizes[p + 1], rt(0.0))
        return sq
    if plain_sgd(kind, hyper, l2):
        # plain gradient descent treats weights and biases alike: one pass over the buffer
        _sgd_step(params, grads, lr)
        return sq
    decoupled = hyper[3] if kind == OPT_ADAM else 0.0
    for p in range(sizes.shape[0] - 1):
        n_w = sizes[p] * sizes[p + 1]
        _segment(params, grads, state, kind, hyper, lr, step, l2, decoupled, w_off[p],
                 w_off[p] + n_w)
        _segment(params, grads, state, kind, hyper, lr, step, rt(0.0), rt(0.0), b_off[p],
                 b_off[p] + sizes[p + 1])
    return sq


#: ``optimizer_step`` compiled once per dtype and called through a pointer (see ``_flat``)
#: by the drivers, whose arguments are C-contiguous arrays
optimizer_step_flat = flat(_optimizer_step, lambda dtype: types.float64(
    c_array(dtype, 1), c_array(dtype, 1), c_array(dtype, 2), types.int64, _F64,
    types.float64, types.int64, types.float64, _I64, _I64, _I64), fallback=True)


@njit(cache=True, nogil=True, entry=True)
def grad_norm(grads):
    """Global L2 norm of the flat gradient, summed serially in float64 (a fixed order)."""
    s = 0.0
    for k in range(grads.shape[0]):
        g = np.float64(grads[k])
        s += g * g
    return np.sqrt(s)


@njit(cache=True, nogil=True, entry=True)
def clip_grad_norm(grads, max_norm):
    """Scale ``grads`` in place so that its global L2 norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: ``g *= max_norm / (norm + 1e-6)`` when that factor
    is below 1. Returns the norm before clipping (float64).
    """
    norm = grad_norm(grads)
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        c = grads.dtype.type(coef)
        for k in range(grads.shape[0]):
            grads[k] *= c
    return norm


#: ``clip_grad_norm`` for the epoch drivers, compiled at the first clipped step (``_flat``,
#: lazy; a strided gradient from user code is an ordinary call)
clip_grad_norm_flat = flat(clip_grad_norm, lambda dtype: types.float64(c_array(dtype, 1),
                                                                      types.float64),
                           lazy=True, fallback=True)


@njit(cache=True, nogil=True, entry=True)
def add_l2(params, grads, l2, sizes, w_off):
    """Add the L2 penalty ``l2/2 * sum W**2`` (weights only) to a gradient in place.

    ``grads[w] += l2 * params[w]`` for every weight entry; returns the penalty value
    (float64, summed in a fixed order) so that it can be added to the loss.
    """
    pen = 0.0
    c = grads.dtype.type(l2)
    for p in range(sizes.shape[0] - 1):
        lo = w_off[p]
        for k in range(lo, lo + sizes[p] * sizes[p + 1]):
            w = params[k]
            grads[k] += c * w
            pen += np.float64(w) * w
    return 0.5 * l2 * pen
