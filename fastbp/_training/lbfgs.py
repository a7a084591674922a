"""Full-batch L-BFGS through ``scipy.optimize.minimize(method="L-BFGS-B")``.

SciPy iterates directly on the flat parameter vector; the objective is the (weighted) mean
loss over all rows plus the L2 penalty, with its gradient from the compiled kernels. One
L-BFGS iteration is one "epoch" of the training loop: it ends with the loop's end-of-epoch
work (history, stopping rule, callbacks, progress), and Ctrl-C stops at the last accepted
iterate. SciPy does not expose its curvature memory, so each call starts a new one.
"""

from __future__ import annotations

import time

import numpy as np

from ..kernels._updates import add_l2
from . import passes


def objective(trainer):
    """``f(x) -> (loss, gradient)`` of the plan's full-batch objective (float64 gradient).

    ``weight_norm="weights"`` (the estimators) scales the L2 coefficient by ``1 / sum w``,
    scikit-learn's ``alpha / (2 n)``."""
    plan, net = trainer.plan, trainer.net
    X, T, SW = plan.X, plan.T, plan.SW
    l2 = plan.l2
    if plan.weight_norm == "weights" and l2:
        total = float(np.sum(SW, dtype=np.float64)) if SW.shape[0] else float(X.shape[0])
        l2 = l2 / total
    row_scaled = plan.weight_norm == "weights"
    chunk = plan.lbfgs_chunk or net.chunk_rows
    ws = passes.workspace(net, X, min(X.shape[0], chunk))
    params, grads = net.params, net.grads

    def f(x):
        if trainer.interrupt is not None and trainer.interrupt.pending:
            raise KeyboardInterrupt
        params[...] = x
        value = passes.loss_and_gradient(net, X, T, SW, grads, row_scaled, ws)
        f.penalty = add_l2(params, grads, l2, net.sizes, net.w_off) if l2 else 0.0
        f.data = value
        return value + f.penalty, grads.astype(np.float64)

    f.penalty = f.data = 0.0
    f.l2 = l2
    return f


def fit_lbfgs(trainer) -> None:
    """Run the plan's L-BFGS iterations on the trainer's network (see the module doc)."""
    from scipy.optimize import minimize

    plan, net, state = trainer.plan, trainer.net, trainer.state
    cfg = state.optimizer.get_config()
    params = net.params
    f = objective(trainer)
    last_good = params.copy()  # the last accepted (finite) iterate
    t0 = [time.perf_counter()]

    def callback(intermediate_result):
        with net.boundary:
            params[...] = intermediate_result.x
            loss = float(intermediate_result.fun)
            if f.l2:
                loss -= float(add_l2(params, np.zeros_like(net.grads), f.l2, net.sizes,
                                     net.w_off))
            if np.isfinite(loss) and np.isfinite(params).all():
                last_good[...] = params
            state.counters[0] += 1
        logs = {"loss": loss, "lr": float("nan"), "time": time.perf_counter() - t0[0]}
        if plan.weight_norm == "weights":  # the estimators report the last evaluation's terms
            logs["loss"], logs["penalty"] = float(f.data), float(f.penalty)
        if trainer.classification and plan.lbfgs_accuracy:
            logs["accuracy"] = trainer.accuracy(plan.X, plan.T)
        stop = trainer.end_epoch(logs)
        t0[0] = time.perf_counter()
        if stop:
            raise StopIteration

    options = {"maxiter": plan.epochs, "maxfun": cfg["max_fun"], "maxcor": cfg["m"],
               "gtol": cfg["tol"], "ftol": cfg["ftol"]}
    options.update(plan.lbfgs_options)
    try:
        res = minimize(f, params.astype(np.float64), jac=True, method="L-BFGS-B",
                       callback=callback, options=options)
    except KeyboardInterrupt:  # back to the last accepted iterate (not a line-search trial)
        params[...] = last_good
        trainer.interrupted(state.history.epochs, 0, 1)
        raise
    params[...] = res.x
    trainer.lbfgs_result = res
    if not (np.isfinite(res.fun) and np.isfinite(params).all()):
        trainer.diverged({
            "event": "diverged", "epoch": state.history.epochs, "reason":
            "the loss or the parameters became non-finite", "bad_batch": 0, "n_batches": 1,
        })
    if trainer.interrupt.pending:
        trainer.interrupted(state.history.epochs, 0, 1)
        raise KeyboardInterrupt
