"""Compiled solvers with scikit-learn's exact update rules (used by ``fastbp.sklearn``).

``sklearn.neural_network.MLPClassifier``/``MLPRegressor`` define their objective and their
optimizers slightly differently from ``torch.optim`` (the convention of ``Model.fit``), so the
estimators run these drivers instead. They are built from the public kernels
(``fastbp.kernels``) and, like them, take only arrays and scalars.

Objective of one batch ``B`` with sample weights ``s_i`` (all 1 when none are given),
``S = sum_{i in B} s_i`` and ``E_i`` fastbp's per-row loss (``1/2 ||a_i - t_i||^2``, the
cross-entropy or the summed logistic loss)::

    E_B = 1/S sum_i s_i E_i + alpha / (2 S) * sum_l ||W_l||^2       (biases not penalised)

which is scikit-learn's ``_backprop`` objective (scikit-learn *reports* the squared error
divided by the number of outputs as well; the estimators rescale the reported value, the
gradient is the same).

Updates (``g`` the gradient of ``E_B``; ``t`` counts Adam steps from 1)::

    sgd :  v = momentum * v - lr * g
           p += momentum * v - lr * g   (nesterov)     p += v   (otherwise)
    adam:  m = beta1 * m + (1 - beta1) * g ;  u = beta2 * u + (1 - beta2) * g^2
           p -= lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(u) + eps)
"""

import numpy as np
from numba import njit

from . import kernels as K

SOLVER_SGD = 0
SOLVER_ADAM = 1


@njit(cache=True, nogil=True)
def _chunk(X, T, sw, use_sw, rows, start, m, inv_norm, params, grads, sizes, w_off, b_off,
           act_codes, loss_code, act, delta, a_off, z_out, t_buf, accumulate):
    """Loss (weighted sum of row losses times ``inv_norm``) and gradient of rows
    ``rows[start:start+m]``; the gradient is written to (or added to) ``grads``."""
    L = sizes.shape[0] - 1
    n_in = sizes[0]
    n_out = sizes[L]
    a0 = K.input_block(act, sizes, a_off, m)
    t = t_buf[: m * n_out].reshape((m, n_out))
    for r in range(m):
        row = rows[start + r]
        for c in range(n_in):
            a0[r, c] = X[row, c]
        for c in range(n_out):
            t[r, c] = T[row, c]
    K.forward(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, m)
    z = K.output_z(z_out, sizes, m)
    a = K.output_block(act, sizes, a_off, m)
    d = K.output_block(delta, sizes, a_off, m)
    out_code = act_codes[L - 1]
    if use_sw:
        value = 0.0
        for r in range(m):
            value += K.output_delta(
                z[r : r + 1], a[r : r + 1], t[r : r + 1], loss_code, out_code,
                sw[rows[start + r]] * inv_norm, d[r : r + 1],
            )
    else:
        value = K.output_delta(z, a, t, loss_code, out_code, inv_norm, d)
    K.backward(params, grads, sizes, w_off, b_off, act_codes, act, delta, a_off, m, accumulate)
    return value


@njit(cache=True, nogil=True)
def _add_l2(params, grads, sizes, w_off, coef):
    """``grads[W] += coef * W`` for every weight; returns ``coef / 2 * sum W^2`` (float64)."""
    c = params.dtype.type(coef)
    sq = 0.0
    for p in range(sizes.shape[0] - 1):
        lo = w_off[p]
        for k in range(lo, lo + sizes[p] * sizes[p + 1]):
            w = params[k]
            sq += np.float64(w) * w
            grads[k] += c * w
    return 0.5 * coef * sq


@njit(cache=True, nogil=True)
def full_loss_grad(X, T, sw, use_sw, alpha, params, grads, sizes, w_off, b_off, act_codes,
                   loss_code, act, delta, a_off, z_out, t_buf):
    """Objective and gradient over the whole data set (L-BFGS), in workspace-sized chunks.

    ``X (n, n_in)``, ``T (n, n_out)``, ``sw (n,)`` (ignored unless ``use_sw``); writes
    ``grads``; returns the objective's data term and L2 term (float64).
    """
    n = X.shape[0]
    cap = (a_off[1] - a_off[0]) // sizes[0]
    rows = np.arange(n)
    if use_sw:
        total_w = 0.0
        for i in range(n):
            total_w += sw[i]
    else:
        total_w = float(n)
    inv = 1.0 / total_w
    value = 0.0
    for start in range(0, n, cap):
        m = min(cap, n - start)
        value += _chunk(X, T, sw, use_sw, rows, start, m, inv, params, grads, sizes, w_off,
                        b_off, act_codes, loss_code, act, delta, a_off, z_out, t_buf,
                        start > 0)
    return value, _add_l2(params, grads, sizes, w_off, alpha * inv)


@njit(cache=True, nogil=True)
def epoch(X, T, sw, use_sw, order, batch_size, alpha, solver, lr, momentum, nesterov, beta1,
          beta2, eps, step, state, params, grads, sizes, w_off, b_off, act_codes, loss_code,
          act, delta, a_off, z_out, t_buf):
    """One epoch over the rows ``X[order]`` in consecutive minibatches (last one partial).

    Parameters
    ----------
    X, T : (n, n_in), (n, n_out) float arrays; sw : (n,) float array
    order : (n_rows,) int64 array, the epoch's row order
    solver : SOLVER_SGD or SOLVER_ADAM
    lr : float, the step size (scikit-learn's current ``learning_rate`` for sgd,
        ``learning_rate_init`` for adam)
    step : int, Adam steps taken so far
    state : (2, n_params) float array, velocity (sgd) or first and second moments (adam)

    Returns
    -------
    mean_data_loss, mean_penalty : float
        ``sum_B |B| E_B / n_rows`` with ``E_B`` measured before the batch's update, split
        into its data term and its L2 term (their sum is scikit-learn's epoch loss).
    step : int
        Adam steps taken after this epoch.
    """
    n = order.shape[0]
    n_params = params.shape[0]
    ft = params.dtype.type
    mu = ft(momentum)
    b1 = ft(beta1)
    b2 = ft(beta2)
    one = ft(1.0)
    eps_ = ft(eps)
    total = 0.0
    total_pen = 0.0
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        if use_sw:
            norm = 0.0
            for r in range(m):
                norm += sw[order[start + r]]
        else:
            norm = float(m)
        inv = 1.0 / norm
        value = _chunk(X, T, sw, use_sw, order, start, m, inv, params, grads, sizes, w_off,
                       b_off, act_codes, loss_code, act, delta, a_off, z_out, t_buf, False)
        total += value * m
        total_pen += _add_l2(params, grads, sizes, w_off, alpha * inv) * m
        if solver == SOLVER_SGD:
            lr_ = ft(lr)
            for k in range(n_params):
                v = mu * state[0, k] - lr_ * grads[k]
                state[0, k] = v
                if nesterov:
                    params[k] += mu * v - lr_ * grads[k]
                else:
                    params[k] += v
        else:
            step += 1
            lr_t = ft(lr * np.sqrt(1.0 - beta2**step) / (1.0 - beta1**step))
            for k in range(n_params):
                g = grads[k]
                mk = b1 * state[0, k] + (one - b1) * g
                uk = b2 * state[1, k] + (one - b2) * (g * g)
                state[0, k] = mk
                state[1, k] = uk
                params[k] -= lr_t * mk / (np.sqrt(uk) + eps_)
    return total / n, total_pen / n, step
