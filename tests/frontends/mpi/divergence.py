"""Run with ``mpiexec -n 2 python divergence.py MODE``: divergence on any rank stops every
rank at the same step with the same ``DivergenceError``, and every rank goes back to the
same state (that of ``Model.fit``'s rule: here, the state before the call).

Each mode trains one healthy epoch first, then makes a call that diverges, and checks on
every rank that ``DivergenceError`` was raised with the same event, that the parameters,
optimizer state, step count and history are bitwise those of before the call (and equal
across ranks), and that training goes on from there. It prints ``MODE: OK`` on rank 0.

- ``huge-lr``: ``learning_rate=1e30`` on every rank.
- ``one-rank``: only rank 1's shard holds a row whose loss overflows (a target of 1e200)
  while the gradient, clipped by ``clip_norm=1``, stays finite: rank 0's own loss is fine.
- ``local-sgd``: the same with ``average_every=3`` (ranks step on their own between
  averages).
- ``last-step``: one full-batch step whose update overflows float32 (``learning_rate=3e38``):
  the loss was finite, the parameters after the last step of the call are not.
"""

import sys

import numpy as np
from _common import fastbp, gather_equal, warm_kernels, world

from fastbp import distributed as dist

comm = world()
rank, P = comm.Get_rank(), comm.Get_size()
mode = sys.argv[1]
warm_kernels(comm)

rng = np.random.default_rng(0)
X = rng.normal(size=(64, 4))
y = X @ np.array([1.0, -2.0, 0.5, 1.5])
Xl, yl = dist.shard(X, y, comm=comm)
dtype = "float32" if mode == "last-step" else "float64"
model = fastbp.Model([4, 8, 1] if mode != "last-step" else [4, 1], activation="tanh",
                     dtype=dtype, seed=1)
common = dict(comm=comm, shuffle=False, batch_size=None if mode == "last-step" else 4,
              average_every=3 if mode == "local-sgd" else 1)
if mode in ("one-rank", "local-sgd"):
    common["clip_norm"] = 1.0
dist.fit(model, Xl, yl, epochs=1, learning_rate=0.01, **common)


def state(m):
    return (m.params.copy(), m.optimizer_state.copy(), m.optimizer_steps,
            {k: list(v) for k, v in m.history.metrics.items()}, len(m.history.events))


before = state(model)
bad_y, lr, bad_step = yl.copy(), 0.01, None
if mode == "huge-lr":
    lr = 1e30
elif mode == "last-step":
    lr = 3e38
elif rank == 1:  # one-rank, local-sgd: row 9 of rank 1's shard, in local step 9 // 4 = 2
    bad_y[9] = 1e200
    bad_step = 2

event = None
try:
    dist.fit(model, Xl, bad_y, epochs=1 if mode == "last-step" else 3, learning_rate=lr,
             **common)
except fastbp.DivergenceError as exc:
    event = exc.event
    print(f"rank {rank}: {exc}", flush=True)
events = comm.allgather(event)
assert all(ev is not None for ev in events), f"{mode}: not every rank raised: {events}"
assert all(ev == events[0] for ev in events), f"{mode}: the ranks disagree: {events}"
ev = events[0]
assert ev["restored"] == "the state before this call", ev
assert ev["epoch"] == 1 or mode == "huge-lr", ev  # 1e30 may take a few steps to overflow
if mode in ("one-rank", "local-sgd"):
    # local SGD finds it at the averaging step (the third), synchronous SGD at once
    assert ev["bad_batch"] == 2, ev
    assert "loss" in ev["reason"], ev
if mode == "last-step":
    assert "parameters" in ev["reason"], ev
now = state(model)
np.testing.assert_array_equal(now[0], before[0])
np.testing.assert_array_equal(now[1], before[1])
assert now[2] == before[2] == ev["step"], (now[2], before[2], ev)
assert now[3] == before[3], (now[3], before[3])
assert now[4] == before[4] + 1 and model.history.events[-1] == ev
assert gather_equal(comm, model.params)
if mode != "local-sgd":  # local SGD keeps rank-local optimizer states
    assert gather_equal(comm, model.optimizer_state)

dist.fit(model, Xl, yl, epochs=1, learning_rate=0.01, **common)  # trains on from there
assert np.isfinite(model.params).all() and model.history.epochs == 2
assert gather_equal(comm, model.params)

comm.Barrier()
if rank == 0:
    print(f"{mode}: OK", flush=True)
