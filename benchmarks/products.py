"""Every matrix product of a training step and of predict: fastbp's kernel beside OpenBLAS.

Usage (from the repository root)::

    python benchmarks/products.py                         # mnist and wide, 1 and all threads
    python benchmarks/products.py --workloads small,mnist --threads 1,2 --json out.json

For each workload of ``_workloads.py`` and each weight layer ``p`` it times, on the same
shapes and transposes:

- ``fwd``: ``a^(p+1) = f(a^p @ W.T + b)``, ``f`` ReLU (identity for the output layer)
  (fastbp: ``layer_op(OP_FORWARD)``, bias and activation fused in; OpenBLAS:
  ``np.matmul(a, W.T, out=)`` alone)
- ``delta``: ``delta^p = (delta^(p+1) @ W) * f'`` (layers ``p >= 1``)
- ``grad``: ``gW = delta^(p+1).T @ a^p`` (fastbp adds the bias gradient)
- ``pred``: the forward product at predict's chunk size (``chunk_rows``), keeping no ``z``
  of the output layer, as predict

in GFLOP/s (2 x multiply-adds per second; medians of ``--repeats`` timings of a compiled
loop of calls), at each thread count. fastbp's side includes its fused epilogues, so the
comparison is, if anything, in OpenBLAS's favour.

OpenBLAS is measured with its native kernels: this process re-runs itself without
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (which some machines set to pin OpenBLAS to
older kernels), and the table names the kernels threadpoolctl reports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

BLAS_PIN_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: seconds of pause before each side is timed (worker threads stop spinning)
SETTLE_S = 0.3

if __name__ == "__main__" and any(v in os.environ for v in BLAS_PIN_VARS):
    env = {k: v for k, v in os.environ.items() if k not in BLAS_PIN_VARS}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import fastbp  # noqa: E402, F401  (starts the threading layer)
from fastbp.kernels._codes import IDENTITY, RELU  # noqa: E402
from fastbp.kernels._dense import (  # noqa: E402
    OP_DELTA,
    OP_FORWARD,
    OP_GRAD,
    layer_op,
    op_shape,
)
from fastbp.kernels._layout import (  # noqa: E402
    chunk_rows,
    param_offsets,
    workspace_offsets,
)
from fastbp.kernels._llvm import rt  # noqa: E402


# not cached: Numba would stamp it with this file only, and run stale fastbp kernels
@njit
def _run_op(op, reps, params, grads, act, delta, sizes, w_off, b_off, a_off, codes, z_out,
            p, n):
    lay = (params, grads, act, delta, act, z_out, sizes, w_off, b_off, a_off, codes,
           np.empty(0), n * 0, n * 0, act, a_off[0])
    for _ in range(reps):
        layer_op(op, lay, p, n, rt(False))


def _median(xs):
    return float(np.median(np.asarray(xs)))


def _time(fn, reps, repeats):
    fn(1)  # warm-up (compilation, page faults)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(reps)
        out.append((time.perf_counter() - t0) / reps)
    return _median(out)


class Layers:
    """The buffers of one network and batch size, as the training step holds them."""

    def __init__(self, sizes, n, dtype=np.float32, seed=0, keep_z=True):
        rng = np.random.default_rng(seed)
        self.sizes = np.asarray(sizes, np.int64)
        self.w_off, self.b_off, n_params = param_offsets(self.sizes)
        self.a_off, total = workspace_offsets(self.sizes, n)
        self.params = (rng.standard_normal(n_params) * 0.05).astype(dtype)
        self.grads = np.zeros(n_params, dtype)
        self.act = rng.standard_normal(total).astype(dtype)
        self.delta = rng.standard_normal(total).astype(dtype)
        L = len(sizes) - 1
        # ReLU hidden layers, an identity output (the benchmark workloads' hidden
        # activation; the codes by name: 1 is the logistic function)
        self.codes = np.array([RELU] * (L - 1) + [IDENTITY], np.int64)
        # the output layer's z, kept for the loss; predict keeps none (an empty z_out)
        self.z_out = np.zeros(n * int(sizes[-1]) if keep_z else 0, dtype)
        self.n = n

    def W(self, p):
        n_in, n_out = self.sizes[p], self.sizes[p + 1]
        return self.params[self.w_off[p]:self.w_off[p] + n_in * n_out].reshape(n_out, n_in)

    def block(self, buf, l):
        return buf[self.a_off[l]:self.a_off[l] + self.n * self.sizes[l]].reshape(
            self.n, self.sizes[l])

    def fastbp(self, op, p):
        args = (self.params, self.grads, self.act, self.delta, self.sizes, self.w_off,
                self.b_off, self.a_off, self.codes, self.z_out, p, self.n)
        return lambda reps: _run_op(op, reps, *args)

    def openblas(self, op, p):
        W = self.W(p)
        a_in, a_out = self.block(self.act, p), self.block(self.act, p + 1)
        d_in, d_out = self.block(self.delta, p), self.block(self.delta, p + 1)
        gW = np.empty_like(W)
        if op == OP_FORWARD:
            f = lambda: np.matmul(a_in, W.T, out=a_out)  # noqa: E731
        elif op == OP_DELTA:
            f = lambda: np.matmul(d_out, W, out=d_in)  # noqa: E731
        else:
            f = lambda: np.matmul(d_out.T, a_in, out=gW)  # noqa: E731

        def run(reps):
            for _ in range(reps):
                f()

        return run


def products(sizes, batch):
    """``(label, op, p, rows)`` of every product of a training step and of predict."""
    out = []
    L = len(sizes) - 1
    for p in range(L):
        out.append((f"L{p} fwd", OP_FORWARD, p, batch))
        if p > 0:
            out.append((f"L{p} delta", OP_DELTA, p, batch))
        out.append((f"L{p} grad", OP_GRAD, p, batch))
    pred = chunk_rows(sizes, 4)
    for p in range(L):
        out.append((f"L{p} pred", OP_FORWARD, p, pred))
    return out


def measure(names, thread_counts, repeats, target_s=0.02):
    from _workloads import WORKLOADS

    rows = []
    for name in names:
        w = WORKLOADS[name]
        bufs = {}
        for label, op, p, n in products(w.sizes, w.batch):
            predict = label.endswith("pred")
            if (n, predict) not in bufs:
                bufs[n, predict] = Layers(w.sizes, n, keep_z=not predict)
            lay = bufs[n, predict]
            M, N, K = op_shape.py_func(op, p, n, lay.sizes)  # an internal kernel
            flops = 2.0 * M * N * K
            reps = max(1, int(target_s * 50e9 / flops))
            row = {"workload": name, "product": label, "M": int(M), "N": int(N), "K": int(K)}
            for t in thread_counts:
                numba.set_num_threads(t)
                # each side after a pause: OpenBLAS's and OpenMP's worker threads spin for a
                # while after a call, and would take a core from the other side's threads
                time.sleep(SETTLE_S)
                tf = _time(lay.fastbp(op, p), reps, repeats)
                time.sleep(SETTLE_S)
                with threadpool_limits(limits=t, user_api="blas"):
                    tb = _time(lay.openblas(op, p), reps, repeats)
                row[f"openblas_{t}"] = flops / tb / 1e9
                row[f"fastbp_{t}"] = flops / tf / 1e9
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def step_totals(rows, thread_counts):
    """Per workload and thread count: the training step's products (not predict's) summed,
    as samples/s of a step that did nothing else, for fastbp's kernels and for OpenBLAS."""
    from _workloads import WORKLOADS

    out = {}
    for r in rows:
        if r["product"].endswith("pred"):
            continue
        flops = 2.0 * r["M"] * r["N"] * r["K"]
        for t in thread_counts:
            for system in ("fastbp", "openblas"):
                key = (r["workload"], t, system)
                out[key] = out.get(key, 0.0) + flops / (r[f"{system}_{t}"] * 1e9)
    return {k: WORKLOADS[k[0]].batch / v for k, v in out.items()}


def render(rows, thread_counts):
    head = "| workload | product | M x N x K |"
    rule = "|---|---|---|"
    for t in thread_counts:
        head += f" fastbp {t}t | OpenBLAS {t}t | ratio {t}t |"
        rule += "---|---|---|"
    lines = [head, rule]
    for r in rows:
        line = f"| {r['workload']} | {r['product']} | {r['M']} x {r['N']} x {r['K']} |"
        for t in thread_counts:
            f, b = r[f"fastbp_{t}"], r[f"openblas_{t}"]
            line += f" {f:.0f} | {b:.0f} | {f / b:.2f}x |"
        lines.append(line)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="mnist,wide")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts (default: 1 and all cores)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args()
    n_cpu = len(os.sched_getaffinity(0))
    threads = ([int(t) for t in args.threads.split(",")] if args.threads
               else sorted({1, n_cpu}))
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    kernels = ", ".join(f"{i.get('internal_api')} {i.get('architecture')}" for i in blas)
    print(f"# OpenBLAS kernels: {kernels}; Numba {numba.__version__} "
          f"({numba.threading_layer()}); GFLOP/s, medians of {args.repeats}", flush=True)
    rows = measure(args.workloads.split(","), threads, args.repeats)
    print(render(rows, threads))
    print("\nA training step's products alone, as samples/s:")
    for (name, t, system), sps in sorted(step_totals(rows, threads).items()):
        print(f"  {name:6s} {t} thread(s) {system:8s} {sps / 1e3:8.1f} k")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"blas": kernels, "threads": threads, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
