"""Data-parallel training over MPI.

    mpiexec -n 2 python examples/mpi_train.py            # 2 ranks on this machine
    mpiexec -n 2 python examples/mpi_train.py --average-every 4   # local SGD
    mpiexec -n 2 python examples/mpi_train.py --out model.npz     # keep the model there

Every rank holds a shard of the training rows and a replica of the model; each step the
flat gradient is averaged with one Allreduce, so the replicas stay identical. Rank 0 holds
the validation set, shows the progress bar, decides early stopping and saves the model
(to ``--out``; by default to a new temporary directory, never into the repository).
Needs the ``mpi`` extra: ``pip install ".[mpi]"`` (mpi4py and the mpich wheel, whose
``mpiexec`` lands next to ``python`` in the environment).
"""

import argparse
import os
import tempfile
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
# one Numba thread pool per rank: share the cores instead of oversubscribing them
# (set before fastbp imports numba; an explicit NUMBA_NUM_THREADS wins)
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
os.environ.setdefault("NUMBA_NUM_THREADS", str(max(1, cores // size)))

import numpy as np  # noqa: E402

import fastbp  # noqa: E402
from fastbp import distributed as dist  # noqa: E402


def make_data(n, n_features, n_classes, seed=0):
    """Gaussian clusters, the same on every rank (a real job would read its shard)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=0.5, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n)
    X = centers[y] + rng.normal(size=(n, n_features))
    return X.astype(np.float32), y


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32, help="rows per rank per step")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--average-every", type=int, default=1,
                   help="1: average gradients every step; k > 1: local SGD")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="abort all ranks after this many seconds without progress")
    p.add_argument("--out", default=None,
                   help="where rank 0 saves the model (default: a new temporary directory)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()

    X, y = make_data(args.samples, args.features, args.classes)
    n_val = args.samples // 10
    X_val, y_val, X_train, y_train = X[:n_val], y[:n_val], X[n_val:], y[n_val:]
    X_local, y_local = dist.shard(X_train, y_train, comm=comm)

    model = fastbp.Model([args.features, args.hidden, args.hidden, args.classes],
                         loss="cross_entropy", seed=0)
    stopper = fastbp.EarlyStopping(patience=5, restore_best=True, monitor="val_loss")
    t0 = time.perf_counter()
    history = dist.fit(
        model, X_local, y_local, comm=comm, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, optimizer="adam", average_every=args.average_every,
        validation_data=(X_val, y_val), early_stopping=stopper,  # used on rank 0
        verbose=not args.quiet, timeout=args.timeout,
    )
    elapsed = time.perf_counter() - t0
    out = args.out
    if out is None and rank == 0:
        out = os.path.join(tempfile.mkdtemp(prefix="fastbp_mpi_"), "model.npz")
    out = comm.bcast(out, root=0)
    dist.save(model, out, comm=comm)  # written by rank 0 only

    if rank == 0:
        epoch_times = np.array(history["time"])
        rate = len(X_train) / np.median(epoch_times)
        print(f"ranks: {size}, Numba threads per rank: {os.environ['NUMBA_NUM_THREADS']}, "
              f"global batch: {size * args.batch_size}, average_every: {args.average_every}")
        print(f"epochs: {history.epochs}, wall time: {elapsed:.2f} s, "
              f"median epoch: {np.median(epoch_times):.3f} s ({rate:,.0f} samples/s)")
        print(f"final training loss: {history['loss'][-1]:.4f}, validation accuracy: "
              f"{model.evaluate(X_val, y_val)['accuracy']:.4f}")
        print(f"saved to {out}")


if __name__ == "__main__":
    main()
