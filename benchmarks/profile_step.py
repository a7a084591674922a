"""Per-step cost of the compiled training driver and of each of its parts.

Usage (from the repository root)::

    python benchmarks/profile_step.py                       # tiny_online and small
    python benchmarks/profile_step.py --workloads mnist     # any workload of _workloads.py

Each part (batch gather, forward pass, loss + output delta + accuracy count, backward pass,
optimizer step) runs alone in a compiled loop over the epoch's batches, and ``train_steps``
runs the whole epoch; medians of 7 runs, in ns per step. Run it with ``NUMBA_NUM_THREADS=1``
to see the serial path without scheduling noise. It shows where the time of a small step goes.
``--shuffle`` takes the batches' rows in a random order (``fit``'s default), which the next
batch's prefetch (``train_steps``) is for; without it the rows are in order, as report.py's.
"""

import argparse
import os
import sys
import time

import numpy as np
from numba import njit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _workloads import WORKLOADS  # noqa: E402

import fastbp  # noqa: E402
from fastbp.kernels import _drivers, _updates  # noqa: E402
from fastbp.kernels._drivers import _gather_batch, borrow, counts_correct  # noqa: E402
from fastbp.kernels._layout import OptimizerArgs  # noqa: E402
from fastbp.kernels._llvm import as_array as A  # noqa: E402
from fastbp.kernels._llvm import borrowed as B  # noqa: E402
from fastbp.kernels._network import (  # noqa: E402
    _block,
    backward_pass,
    forward_pass,
    output_delta_flat,
    train_buffers,
)


@njit
def loop_gather(X, T, SW, order, sizes, act, a_off, t_buf, w_buf, bs, nb):
    X, T, SW, order, sizes, act, a_off, t_buf, w_buf = (
        B(X),
        B(T),
        B(SW),
        B(order),
        B(sizes),
        B(act),
        B(a_off),
        B(t_buf),
        B(w_buf),
    )
    n = order.shape[0]
    s = 0.0
    for b in range(nb):
        start = b * bs
        m = min(bs, n - start)
        # (consecutive rows, unshuffled: only the targets are copied, as train_steps does)
        t, w, wsum, row0 = _gather_batch(X, T, SW, order, start, m, sizes, act, a_off, t_buf,
                                         w_buf)
        s += wsum + row0
    return s


@njit
def loop_forward(k, ws, m, nb):
    """The forward pass of ``train_steps``: step ``b``'s buffers (and dropout masks)."""
    k, ws = borrow(k, ws)
    for b in range(nb):
        forward_pass(train_buffers(k, ws, b), m)


@njit
def loop_outdelta(z_out, act, delta, T, sizes, a_off, act_codes, loss_code, m, nb, w):
    z_out, act, delta, T, sizes, a_off, act_codes, w = (
        B(z_out),
        B(act),
        B(delta),
        B(T),
        B(sizes),
        B(a_off),
        B(act_codes),
        B(w),
    )
    L = sizes.shape[0] - 1
    n_out = sizes[L]
    s = 0.0
    for _b in range(nb):
        a_out = _block(act, sizes, a_off, L, m)
        t = T[:m]
        e, correct = output_delta_flat(  # the loss, the delta and the count, as train_steps
            z_out[: m * n_out].reshape((m, n_out)),
            a_out,
            t,
            w,
            loss_code,
            act_codes[L - 1],
            1.0 / m,
            _block(delta, sizes, a_off, L, m),
            False,
            counts_correct(loss_code),
        )
        s += e + correct
    return s


@njit
def loop_backward(k, ws, m, nb):
    """The backward sweep of ``train_steps`` (step ``b``'s dropout masks)."""
    k, ws = borrow(k, ws)
    for b in range(nb):
        backward_pass(train_buffers(k, ws, b), m, False)


@njit
def loop_opt(params, grads, state, kind, hyper, lr, l2, sizes, w_off, b_off, nb):
    # the public kernels take ordinary arrays: borrowed ones (no owner) passed as such
    params, grads, state, hyper, sizes, w_off, b_off = (
        A(B(params)),
        A(B(grads)),
        A(B(state)),
        A(B(hyper)),
        A(B(sizes)),
        A(B(w_off)),
        A(B(b_off)),
    )
    for b in range(nb):
        _updates.optimizer_step(params, grads, state, kind, hyper, lr, b + 1, l2, sizes, w_off,
                                b_off)


@njit
def loop_sgd(params, grads, lr, nb):
    params, grads = A(B(params)), A(B(grads))
    for _b in range(nb):
        _updates.sgd_step(params, grads, lr)


def bench(f, *a, reps=7):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f(*a)
        ts.append(time.perf_counter() - t0)
    return np.median(ts)


def run(sizes, bs, n, dtype="float32", shuffle=False):
    loss = "squared_error" if sizes[-1] == 1 else "cross_entropy"
    m = fastbp.Model(sizes, loss=loss, seed=0, dtype=dtype)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if sizes[-1] == 1:
        T = rng.standard_normal((n, 1)).astype(dtype)
    else:
        y = rng.integers(0, sizes[-1], n)
        T = np.zeros((n, sizes[-1]), dtype)
        T[np.arange(n), y] = 1
    net = m.network
    ws = net.workspace(bs)
    order = rng.permutation(n) if shuffle else np.arange(n, dtype=np.int64)
    SW = np.zeros(0, dtype)
    nb = (n + bs - 1) // bs
    state = m.state.opt_state
    hyper = np.zeros(4)
    acc = np.zeros(5)
    cnt = np.zeros(1, np.int64)
    p0 = m.params.copy()
    k = net.args()
    wsa = ws.arrays(dropout=False)
    opt = OptimizerArgs(0, hyper, state, cnt)

    def full():
        m.params[:] = p0
        _drivers.train_steps(X, T, SW, order, k, wsa, opt, 0.01, 0.0, 0.0, bs, False, 0, nb,
                             acc, True)

    res = {}
    res["train_steps"] = bench(full)
    res["gather"] = bench(
        loop_gather, X, T, SW, order, m.layer_sizes, ws.act, ws.a_off, ws.t_buf, ws.w_buf, bs, nb
    )
    res["forward"] = bench(loop_forward, k, wsa, bs, nb)
    res["outdelta+cc"] = bench(
        loop_outdelta,
        ws.z_out,
        ws.act,
        ws.delta,
        T,
        m.layer_sizes,
        ws.a_off,
        net.act_codes,
        net.loss_code,
        bs,
        nb,
        SW,
    )
    res["backward"] = bench(loop_backward, k, wsa, bs, nb)
    m.params[:] = p0
    res["optimizer_step"] = bench(
        loop_opt,
        m.params,
        m.grads * 0,
        state,
        0,
        hyper,
        0.01,
        0.0,
        m.layer_sizes,
        net.w_off,
        net.b_off,
        nb,
    )
    res["sgd_step"] = bench(loop_sgd, m.params, m.grads * 0, 0.01, nb)
    print(f"{sizes} bs={bs} {dtype}: samples/s {n / res['train_steps']:.3g}")
    for k, v in res.items():
        print(f"  {k:15s} {1e9 * v / nb:8.1f} ns/step")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="tiny_online,small")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--shuffle", action="store_true",
                    help="batches of rows in a random order, as fit's default shuffle")
    args = ap.parse_args()
    for name in args.workloads.split(","):
        w = WORKLOADS[name]
        run(list(w.sizes), w.batch, w.samples, args.dtype, args.shuffle)


if __name__ == "__main__":
    main()
