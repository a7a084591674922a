"""Run with ``mpiexec -n P``: P ranks with per-rank batch b equal one process with batch P*b.

Each case trains a replica per rank on ``shard(X, y)`` with ``fastbp.distributed.fit``;
rank 0 then trains one model on all rows, epoch by epoch, in ``equivalent_order`` (the
documented data-order rule) with batch ``P*b`` and compares parameters and history.
Every case also checks that the replicas are bitwise identical on all ranks.
"""

import numpy as np
from _common import fastbp, gather_equal, warm_kernels, world

from fastbp import distributed as dist
from fastbp.optim import SGD, Adam

comm = world()
rank, P = comm.Get_rank(), comm.Get_size()
warm_kernels(comm)


def case(name, n, sizes, loss, dtype, b, epochs, optimizer, rtol, **kw):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, sizes[0]))
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], size=n)
    else:
        y = rng.normal(size=(n, sizes[-1]))
    sw = rng.uniform(0.2, 2.0, size=n) if kw.pop("weighted", False) else None
    if sw is not None:
        sw *= kw.pop("weight_scale", 1.0)
    Xl, yl = dist.shard(X, y, comm=comm)
    swl = None if sw is None else dist.shard(sw, comm=comm)
    shard_sizes = comm.allgather(len(Xl))

    model = fastbp.Model(sizes, activation="tanh", loss=loss, dtype=dtype, seed=3)
    hist = dist.fit(model, Xl, yl, comm=comm, epochs=epochs, batch_size=b, learning_rate=0.05,
                    optimizer=optimizer, sample_weight=swl, **kw)
    same = gather_equal(comm, model.params)
    if rank != 0:
        return
    assert same, f"{name}: replicas differ between ranks"
    ref = fastbp.Model(sizes, activation="tanh", loss=loss, dtype=dtype, seed=3)
    for e in range(epochs):
        order = dist.equivalent_order(shard_sizes, b, ref.seed, e)
        ref.fit(X[order], y[order], epochs=1, batch_size=P * b, learning_rate=0.05,
                shuffle=False, optimizer=optimizer,
                sample_weight=None if sw is None else sw[order], **kw)
    err = np.max(np.abs(model.params - ref.params)) / np.max(np.abs(ref.params))
    assert err < rtol, f"{name}: max relative parameter difference {err:.3g} >= {rtol}"
    np.testing.assert_allclose(hist["loss"], ref.history["loss"], rtol=rtol * 10,
                               err_msg=name)
    if "accuracy" in ref.history:
        np.testing.assert_allclose(hist["accuracy"], ref.history["accuracy"], err_msg=name)
    assert ref.optimizer_steps == model.optimizer_steps, name
    print(f"{name}: OK (rel. diff {err:.2g}, {model.optimizer_steps} steps, shards "
          f"{shard_sizes})", flush=True)


# equal shards, full batches
case("sgd float64", 48, [5, 7, 3], "squared_error", "float64", 4, 3, SGD(), 1e-12)
# unequal shards (19 + 18 rows), last batch partial on every rank, momentum
case("momentum float64 unequal", 37, [5, 6, 4], "cross_entropy", "float64", 5, 3,
     SGD(momentum=0.9, nesterov=True), 1e-12)
# Adam, L2, clipping of the averaged gradient, sample weights rescaled to global mean 1
case("adam float64 l2 clip weights", 41, [4, 8, 3], "cross_entropy", "float64", 3, 2,
     Adam(), 1e-10, l2=1e-3, clip_norm=0.5, weighted=True)
# weights whose sum overflows float64: rescaled as Model.fit does (by the largest first)
case("sgd float64 huge weights", 41, [4, 8, 3], "cross_entropy", "float64", 3, 2,
     SGD(), 1e-10, weighted=True, weight_scale=1e307)
# float32, the default dtype
case("adam float32", 64, [6, 16, 2], "squared_error", "float32", 8, 3, Adam(), 1e-4)


# split training: 2 + 1 epochs in two fit calls equal 3 epochs in one (orders follow the
# model's epoch count, Adam state carries over), bit for bit
rng = np.random.default_rng(1)
X, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 2))
Xl, yl = dist.shard(X, y, comm=comm)
one = fastbp.Model([4, 5, 2], dtype="float64", seed=2)
dist.fit(one, Xl, yl, comm=comm, epochs=3, batch_size=4, optimizer="adam")
two = fastbp.Model([4, 5, 2], dtype="float64", seed=2)
dist.fit(two, Xl, yl, comm=comm, epochs=2, batch_size=4, optimizer="adam")
dist.fit(two, Xl, yl, comm=comm, epochs=1, batch_size=4)
assert np.array_equal(one.params, two.params), "split fit differs from one fit"
assert one.history["loss"] == two.history["loss"]
if rank == 0:
    print("split fit: OK", flush=True)

# dropout: per-rank masks, replicas still identical
drop = fastbp.Model([4, 16, 2], dtype="float32", seed=2, dropout=0.5)
h = dist.fit(drop, Xl, yl, comm=comm, epochs=3, batch_size=4, optimizer="adam")
assert gather_equal(comm, drop.params), "replicas differ with dropout"
assert np.isfinite(h["loss"]).all()
if rank == 0:
    print("dropout replicas: OK", flush=True)

comm.Barrier()
if rank == 0:
    print("equivalence: all cases passed", flush=True)
