"""Compiled halves of one data-parallel training step (used by ``fastbp.distributed``).

A step of ``train_epoch`` is split in two so that the flat gradient can be averaged across
MPI ranks in between, with one ``Allreduce`` on ``grads``:

1. ``local_step_gradient``: gather this rank's rows of the step, forward (with dropout),
   weighted loss, output delta scaled by ``1 / M`` (``M`` = rows of the *global* batch, all
   ranks together), backward. Summing ``grads`` over ranks then gives the gradient of the
   global batch's mean loss, exactly what ``train_epoch`` computes on the whole batch.
2. ``apply_step``: optional global-norm clipping, then ``optimizer_step`` with the step
   counter incremented, as in ``train_epoch``.

Both take only arrays and scalars and allocate nothing.
"""

from numba import njit

from ._network import _block, _view, backward_train, forward_train, output_delta_weighted
from ._optim import clip_grad_norm, optimizer_step
from ._train import _gather_batch, count_correct

# The kernels below call ``parallel=True`` functions and are loaded from Numba's on-disk
# cache, which needs the threading layer started first (numba/numba#8578): ``import fastbp``
# (run before this module) does that.


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
    forward_train(params, sizes, w_off, b_off, act_codes, act, a_off, z_out, m,
                  drop_rates, raw, drop_seed, step)
    a_out = _block(act, sizes, a_off, L, m)
    e = output_delta_weighted(
        _view(z_out, 0, m, n_out), a_out, t, w, loss_code, act_codes[L - 1],
        scale, _block(delta, sizes, a_off, L, m),
    )
    totals[0] += e / scale
    totals[1] += wsum
    totals[2] += count_correct(a_out, t, loss_code)
    backward_train(params, grads, sizes, w_off, b_off, act_codes, act, delta, a_off, m,
                   False, drop_rates, raw, drop_seed, step)


@njit(cache=True, nogil=True)
def apply_step(params, grads, state, opt_kind, hyper, counters, lr, l2, clip_norm, sizes,
               w_off, b_off):
    """Clip (if ``clip_norm > 0``) and apply the optimizer to the averaged gradient.

    ``counters[0]`` (the step number ``t``) is incremented first, as in ``train_epoch``.
    """
    if clip_norm > 0:
        clip_grad_norm(grads, clip_norm)
    step = counters[0] + 1
    counters[0] = step
    optimizer_step(params, grads, state, opt_kind, hyper, lr, step, l2, sizes, w_off, b_off)
